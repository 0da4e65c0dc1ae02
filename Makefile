# Two entry points, both self-contained on a fresh machine with python3 (>= 3.11):
#   make lab   -- install what the kit needs into .venv and open it in JupyterLab
#   make test  -- also install the test tools, then run the whole test suite
# and, for workshop leaders:
#   make dashboard -- serve the runner and the policy chooser with Voila
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
LAB_STAMP  := $(VENV)/.sgxlab-lab
TEST_STAMP := $(VENV)/.sgxlab-test

# Notebooks are kept in git as jupytext percent scripts (jupytext.toml); the
# .ipynb files are built from them here and are ignored by git.
NOTEBOOK_SOURCES  := $(sort $(wildcard notebooks/[0-9]*.py))
DASHBOARD_SOURCES := $(sort $(wildcard dashboards/*.py))
NOTEBOOKS  := $(NOTEBOOK_SOURCES:.py=.ipynb)
DASHBOARDS := $(DASHBOARD_SOURCES:.py=.ipynb)
FIRST_NOTEBOOK := notebooks/00-start-here.ipynb

.PHONY: lab test bench install notebooks dashboard clean

install: $(LAB_STAMP)

# pip prints what it downloads and installs, so a first install is not silent.
$(LAB_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e .
	touch $@

$(TEST_STAMP): $(LAB_STAMP)
	$(BIN)/python -m pip install -e '.[test]'
	touch $@

# Build a notebook from its script, and again whenever the script is newer
# (after a git pull): --sync takes the cells from the script and keeps the
# outputs already saved in the .ipynb. Both files then get the same time, so
# the next `make lab` has nothing to do.
%.ipynb: %.py | $(LAB_STAMP)
	$(BIN)/jupytext --sync --quiet --set-kernel python3 $<
	touch -r $< $@

notebooks: $(NOTEBOOKS) $(DASHBOARDS)

# Root (e.g. in a container) must say --allow-root or JupyterLab refuses to start.
LAB_FLAGS := $(if $(filter 0,$(shell id -u)),--allow-root,)

lab: $(LAB_STAMP) notebooks
	$(BIN)/jupyter lab $(LAB_FLAGS) $(FIRST_NOTEBOOK)

# Voila starts one kernel per page view; a kernel whose page was closed is
# shut down after two idle minutes (kernels of open pages are never culled).
VOILA_FLAGS := --MappingKernelManager.cull_idle_timeout=120 --MappingKernelManager.cull_interval=30

dashboard: $(LAB_STAMP) notebooks
	$(BIN)/voila $(VOILA_FLAGS) dashboards/

test: $(TEST_STAMP)
	$(BIN)/python -m pytest

bench: $(TEST_STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .mypy_cache .ruff_cache .import_linter_cache
