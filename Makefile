# Two entry points, both self-contained on a fresh machine with python3 (>= 3.11):
#   make lab   -- install what the kit needs into .venv and open it in JupyterLab
#   make test  -- also install the test tools, then run the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
LAB_STAMP  := $(VENV)/.sgxlab-lab
TEST_STAMP := $(VENV)/.sgxlab-test

.PHONY: lab test bench install clean

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

# Root (e.g. in a container) must say --allow-root or JupyterLab refuses to start.
LAB_FLAGS := $(if $(filter 0,$(shell id -u)),--allow-root,)

lab: $(LAB_STAMP)
	$(BIN)/jupyter lab $(LAB_FLAGS) notebooks/00-start.ipynb

test: $(TEST_STAMP)
	$(BIN)/python -m pytest

bench: $(TEST_STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .mypy_cache .ruff_cache .import_linter_cache
