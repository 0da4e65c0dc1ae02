"""The project's own files: environment.yml agrees with pyproject.toml, and so on."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _split(spec: str) -> tuple[str, str]:
    m = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", spec)
    assert m, spec
    return m.group(1).lower().replace("_", "-"), m.group(2).replace(" ", "")


def test_environment_yml_matches_pyproject():
    py = tomllib.loads((ROOT / "pyproject.toml").read_text())
    deps = dict(_split(s) for s in py["project"]["dependencies"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda: dict[str, str] = {}
    pip: list[str] = []
    for item in env["dependencies"]:
        if isinstance(item, dict):
            pip.extend(item.get("pip", []))
            continue
        name, spec = _split(item)
        conda[name] = spec
    assert conda.pop("python") == "=3.11"
    assert "pip" in conda and conda.pop("pip") == ""
    assert conda == deps
    assert "-e ." in pip, "Binder does not install the package without pip: [-e .]"
    req = py["project"]["requires-python"]
    assert req == ">=3.11"


def test_no_lock_files_with_registry_urls():
    for name in ("uv.lock", "poetry.lock", "Pipfile.lock", "pdm.lock"):
        assert not (ROOT / name).exists(), name


def test_console_script_and_typed_marker():
    py = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert py["project"]["scripts"]["sgxlab"] == "sgxlab.cli:main"
    assert (ROOT / "sgxlab" / "py.typed").exists()


def test_readme_has_exactly_two_setup_commands():
    text = (ROOT / "README.md").read_text()
    block = text.split("## Set up", 1)[1].split("\n## ", 1)[0]
    cmds = re.findall(r"^```(?:sh|bash)?\n(.*?)\n```", block, flags=re.S | re.M)
    lines = [ln for c in cmds for ln in c.splitlines() if ln.strip() and not ln.startswith("#")]
    assert lines == ["make lab", "make test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci


def test_make_lab_opens_an_existing_notebook_with_the_venv():
    import subprocess

    out = subprocess.run(["make", "-n", "lab"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    line = [ln for ln in out.splitlines() if "jupyter lab" in ln][-1]
    assert line.split()[0].endswith(".venv/bin/jupyter")
    nb = line.split()[-1]
    assert (ROOT / nb).is_file(), nb
