"""Quality gates that run with the tests: layers, lint, format and types.

* ``lint-imports`` reads the contracts in ``pyproject.toml``
  (``[tool.importlinter]``): the layers of ``docs/design.md`` (each imports
  only from the layers below), no import cycles between sibling modules, and a
  pure Python hardware layer. A second test shows the contract can fail;
* ``ruff check`` and ``ruff format --check`` over the tree;
* ``mypy`` in strict mode over the package (``[tool.mypy]``).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    exe = BIN / name
    if exe.exists():
        return str(exe)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed; `make test` installs it with the test extras")
    return found


def test_layers_contract_holds():
    p = subprocess.run([_tool("lint-imports"), "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "broken" not in p.stdout.lower().replace("0 broken", "")


def test_layers_contract_catches_an_upward_import(tmp_path):
    """The contract can fail: a copy of the package with one upward import breaks it."""
    copy = tmp_path / "sgxlab"
    shutil.copytree(ROOT / "sgxlab", copy, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    arch = copy / "hw" / "arch.py"
    arch.write_text(arch.read_text() + "\nfrom sgxlab.sim import trace as _upward  # noqa\n")
    env = {"PYTHONPATH": str(tmp_path), "PATH": str(BIN)}
    p = subprocess.run([_tool("lint-imports"), "--no-cache"], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert p.returncode != 0
    assert "sgxlab.hw.arch -> sgxlab.sim" in p.stdout


def test_ruff_lint_is_clean():
    p = subprocess.run([_tool("ruff"), "check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr


def test_ruff_format_is_clean():
    p = subprocess.run(
        [_tool("ruff"), "format", "--check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True
    )
    assert p.returncode == 0, "run `ruff format .`:\n" + p.stdout[-4000:] + p.stderr


def test_mypy_is_clean():
    """``mypy sgxlab`` with the ``[tool.mypy]`` config of ``pyproject.toml`` (strict) finds nothing.

    It keeps mypy's default incremental cache, ``.mypy_cache`` (git-ignored by
    the ``.gitignore`` mypy writes inside it): a cold run takes about half a
    minute, a warm one a second.
    """
    import importlib.util

    if importlib.util.find_spec("mypy") is None:
        pytest.fail("mypy is not installed; `make test` installs it with the test extras")
    p = subprocess.run([sys.executable, "-m", "mypy", "sgxlab"], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0, "mypy sgxlab:\n" + p.stdout[-4000:] + p.stderr


def test_every_module_opens_with_a_short_paragraph():
    """Each module's docstring says what the module is in one short opening paragraph
    (sources and decisions follow in their own section)."""
    import ast

    for path in sorted((ROOT / "sgxlab").rglob("*.py")):
        doc = ast.get_docstring(ast.parse(path.read_text()))
        rel = path.relative_to(ROOT)
        assert doc, f"{rel} has no module docstring"
        first = doc.split("\n\n")[0]
        assert len(first.split()) <= 60, f"{rel}: the opening paragraph has {len(first.split())} words"
