"""Notebooks: kept in git as jupytext percent scripts, unharmed by a JupyterLab save, run top to bottom.

The source of every notebook (``notebooks/NN-name.py``) and dashboard
(``dashboards/*.py``) is its percent script; the ``.ipynb`` beside it is built
by ``make lab`` / ``make dashboard`` / Binder's ``postBuild`` and ignored by
git (``jupytext.toml``, ``.gitignore``). The tests here:

* simulate what an attendee's JupyterLab does to a notebook (open, autosave,
  Run All, save, through jupytext's own contents manager, as the Lab server
  does) and check that the committed script stays byte-identical;
* simulate a ``git pull`` that changes a script under a saved notebook;
* execute every notebook headless from its script (nbclient, kernel
  ``python3``, working directory the notebook's folder), several at once.

Nothing here writes into the repository.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import io
import os
import re
import shlex
import shutil
import subprocess
import time
import tomllib
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import jupytext
import jupytext.cli
import nbformat
import pytest
from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager
from jupytext.async_contentsmanager import build_async_jupytext_contents_manager_class
from nbclient import NotebookClient
from nbformat import NotebookNode

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.py"))
DASHBOARDS = sorted((ROOT / "dashboards").glob("*.py"))
SOURCES = NOTEBOOKS + DASHBOARDS
CONFIG = ROOT / "jupytext.toml"

EXECUTE_TIMEOUT = 300  # seconds for one cell
PARALLEL = 3  # notebooks executing at once: kernels mostly wait on start-up and imports

# What an attendee's JupyterLab 4 puts into a notebook it opens, runs and saves.
LAB_KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
LAB_LANGUAGE_INFO = {
    "codemirror_mode": {"name": "ipython", "version": 3},
    "file_extension": ".py",
    "mimetype": "text/x-python",
    "name": "python",
    "nbconvert_exporter": "python",
    "pygments_lexer": "ipython3",
    "version": "3.11.7",
}
LAB_WIDGET_STATE = {"application/vnd.jupyter.widget-state+json": {"state": {}, "version_major": 2, "version_minor": 0}}


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


# ---------------------------------------------------------------------------
# How notebooks are built: one command, the same in the Makefile and postBuild


def _build_args(text: str, where: str) -> list[str]:
    """The arguments given to ``jupytext`` in ``text`` (a Makefile or postBuild), without file names."""
    lines = [ln for ln in text.splitlines() if re.search(r"(^|/|\s)jupytext\s", ln) and not ln.lstrip().startswith("#")]
    assert len(lines) == 1, f"{where} should build notebooks with exactly one jupytext command, found {lines}"
    words = shlex.split(lines[0].split("jupytext", 1)[1])
    return [w for w in words if w.startswith("-") or not (w.endswith(".py") or "$" in w)]


MAKE_BUILD_ARGS = _build_args((ROOT / "Makefile").read_text(), "Makefile")


def _build(script: Path) -> Path:
    """Build ``script``'s notebook the way ``make lab`` does (jupytext's CLI, in-process)."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        status = jupytext.cli.jupytext([*MAKE_BUILD_ARGS, str(script)])
    assert not status, f"jupytext {' '.join(MAKE_BUILD_ARGS)} {script} failed"
    ipynb = script.with_suffix(".ipynb")
    mtime = script.stat().st_mtime_ns
    os.utime(ipynb, ns=(mtime, mtime))  # the Makefile's `touch -r $< $@`
    return ipynb


def test_there_are_notebooks_and_dashboards() -> None:
    assert NOTEBOOKS, "no notebooks/NN-name.py"
    assert {p.name for p in DASHBOARDS} >= {"runner.py", "policy-chooser.py"}


def test_jupytext_config_pairs_scripts_and_strips_metadata() -> None:
    config = tomllib.loads(CONFIG.read_text())
    assert config["formats"] == "ipynb,py:percent"
    assert config["notebook_metadata_filter"] == "-all"
    assert config["cell_metadata_filter"].endswith("-all")


def test_makefile_and_postbuild_build_notebooks_the_same_way() -> None:
    post_build = ROOT / "postBuild"
    assert os.access(post_build, os.X_OK), "postBuild must be executable (repo2docker runs it as a program)"
    assert _build_args(post_build.read_text(), "postBuild") == MAKE_BUILD_ARGS
    assert "--sync" in MAKE_BUILD_ARGS and "python3" in MAKE_BUILD_ARGS
    assert "\ttouch -r $< $@\n" in (ROOT / "Makefile").read_text()


def test_built_notebooks_are_ignored_and_none_is_tracked() -> None:
    if not (ROOT / ".git").exists() or shutil.which("git") is None:
        pytest.skip("not a git checkout")
    built = [p.with_suffix(".ipynb") for p in SOURCES] + [ROOT / "test-artifacts" / "browser" / "lab.png"]
    for path in built:
        ignored = subprocess.run(["git", "check-ignore", "-q", "--no-index", _rel(path)], cwd=ROOT)
        assert ignored.returncode == 0, f"{_rel(path)} is not ignored by git"
    tracked = subprocess.run(
        ["git", "ls-files", "--", "*.ipynb"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert not tracked, f"notebooks are built from their scripts; `git rm --cached` these: {tracked}"


# ---------------------------------------------------------------------------
# What JupyterLab does: open (autosave), Run All, save


def _run_async(coro: Any) -> Any:
    """``asyncio.run`` in a thread of its own: Playwright's sync API (tests/test_browser.py,
    earlier in the session) leaves an event loop running in the test thread."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _contents_manager(root: Path) -> Any:
    """The contents manager JupyterLab's server uses with jupytext installed."""
    return build_async_jupytext_contents_manager_class(AsyncLargeFileManager)(root_dir=str(root))


async def _lab_open_and_save(root: Path, path: str, *, run: bool, edit: str | None = None) -> NotebookNode:
    """Open ``path`` as JupyterLab does, optionally run it (outputs, counts, metadata) or edit a cell, save."""
    cm = _contents_manager(root)
    model = await cm.get(path, content=True, type="notebook")
    nb: NotebookNode = nbformat.from_dict(model["content"])
    nb.metadata["kernelspec"] = dict(LAB_KERNELSPEC)
    nb.metadata["language_info"] = dict(LAB_LANGUAGE_INFO)
    if run:
        nb.metadata["widgets"] = LAB_WIDGET_STATE
        count = 0
        for cell in nb.cells:
            if cell.cell_type == "code":
                count += 1
                cell.execution_count = count
                cell.outputs = [
                    nbformat.v4.new_output("stream", name="stdout", text=f"output {count}\n"),
                    nbformat.v4.new_output("execute_result", data={"text/plain": f"{count}"}, execution_count=count),
                ]
                cell.metadata["scrolled"] = True
                cell.metadata["execution"] = {"iopub.status.busy": "2026-12-02T01:00:00.000000Z"}
            cell.metadata["jupyter"] = {"source_hidden": False}
    if edit is not None:
        code = next(c for c in nb.cells if c.cell_type == "code")
        code.source += edit
    await cm.save({"type": "notebook", "format": "json", "content": nb}, path)
    return nb


def _copy_for_lab(script: Path, root: Path) -> Path:
    """``script`` and the project's jupytext.toml in a scratch root, as in the repository."""
    (root / script.parent.name).mkdir(parents=True)
    shutil.copy2(CONFIG, root / CONFIG.name)
    return Path(shutil.copy2(script, root / script.parent.name / script.name))


@pytest.mark.parametrize("script", SOURCES, ids=_rel)
def test_a_jupyterlab_save_leaves_the_script_byte_identical(script: Path, tmp_path: Path) -> None:
    committed = script.read_bytes()
    copy = _copy_for_lab(script, tmp_path)
    ipynb = _build(copy)
    assert copy.read_bytes() == committed, (
        f"{_rel(script)} is not in jupytext's canonical form, so building its notebook rewrites it; "
        f"run `.venv/bin/jupytext --to py:percent {_rel(script)}` and commit the result"
    )
    built = nbformat.read(ipynb, as_version=4)
    assert built.metadata["kernelspec"]["name"] == "python3"
    rel = str(ipynb.relative_to(tmp_path))

    _run_async(_lab_open_and_save(tmp_path, rel, run=False))  # first open: Lab marks it modified, autosaves
    assert copy.read_bytes() == committed, f"opening {rel} in JupyterLab rewrites {_rel(script)}"
    ran = _run_async(_lab_open_and_save(tmp_path, rel, run=True))  # Run All, save
    assert copy.read_bytes() == committed, f"running and saving {rel} in JupyterLab rewrites {_rel(script)}"
    saved = nbformat.read(ipynb, as_version=4)  # the outputs are in the ignored .ipynb
    assert [c.get("outputs") for c in saved.cells] == [c.get("outputs") for c in ran.cells]

    # The check can fail: an attendee's edit does reach the script.
    _run_async(_lab_open_and_save(tmp_path, rel, run=False, edit="\nx_attendee = 1"))
    assert b"x_attendee = 1" in copy.read_bytes()


def test_a_git_pull_under_a_saved_notebook_keeps_outputs_and_takes_the_new_cells(tmp_path: Path) -> None:
    """An attendee ran and saved a notebook; upstream changed its script; `make lab` rebuilds it."""
    first = "# %% [markdown]\n# # A notebook\n\n# %%\nx = 1\nx\n"
    (tmp_path / "notebooks").mkdir()
    shutil.copy2(CONFIG, tmp_path / CONFIG.name)
    script = tmp_path / "notebooks" / "00-demo.py"
    script.write_text(first)
    ipynb = _build(script)
    _run_async(_lab_open_and_save(tmp_path, "notebooks/00-demo.ipynb", run=True))
    assert script.read_text() == first
    pulled = first + "\n# %%\ny = 2\n"
    script.write_text(pulled)  # what git pull does: a new script, newer than the notebook
    later = ipynb.stat().st_mtime + 10
    os.utime(script, (later, later))
    _build(script)
    assert script.read_text() == pulled
    nb = nbformat.read(ipynb, as_version=4)
    assert [c.source for c in nb.cells] == ["# A notebook", "x = 1\nx", "y = 2"]
    assert nb.cells[1].outputs, "the attendee's outputs were dropped"
    reopened = _run_async(_contents_manager(tmp_path).get("notebooks/00-demo.ipynb", content=True))
    assert [c["source"] for c in reopened["content"]["cells"]] == ["# A notebook", "x = 1\nx", "y = 2"]


# ---------------------------------------------------------------------------
# Every notebook runs top to bottom on a fresh python3 kernel, from its script


def _execute(script: Path) -> float:
    start = time.monotonic()
    nb = jupytext.read(script)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    client = NotebookClient(
        nb,
        timeout=EXECUTE_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(script.parent)}},
    )
    client.execute()
    return time.monotonic() - start


@pytest.fixture(scope="module")
def executions(request: pytest.FixtureRequest) -> Iterator[dict[Path, Future[float]]]:
    """The selected notebooks and dashboards, executing a few at a time from the first test that asks."""
    selected = [
        item.callspec.params["script"]
        for item in request.session.items
        if isinstance(item, pytest.Function) and item.originalname == "test_notebook_runs_top_to_bottom"
    ]
    pool = ThreadPoolExecutor(max_workers=PARALLEL, thread_name_prefix="notebook")
    try:
        yield {script: pool.submit(_execute, script) for script in selected}
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # after a failure with -x, start no more kernels


@pytest.mark.parametrize("script", SOURCES, ids=_rel)
def test_notebook_runs_top_to_bottom(script: Path, executions: dict[Path, Future[float]]) -> None:
    seconds = executions[script].result(timeout=EXECUTE_TIMEOUT * 4)
    assert seconds < EXECUTE_TIMEOUT
