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
    nb = Path(line.split()[-1])
    assert nb.suffix == ".ipynb", nb
    # make lab builds the .ipynb from its committed jupytext script (jupytext.toml)
    assert (ROOT / nb.with_suffix(".py")).is_file(), nb


def test_setuptools_packages_list_every_package_folder():
    py = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = set(py["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "sgxlab").rglob("__init__.py")}
    data = {f"sgxlab.data.{d.name}" for d in (ROOT / "data").iterdir() if d.is_dir() and d.name != "__pycache__"}
    assert found | {"sgxlab.data"} | data == listed
    assert py["tool"]["setuptools"]["package-dir"] == {"sgxlab.data": "data"}


def test_a_wheel_install_finds_its_data_from_any_folder(tmp_path):
    """A non-editable install (a wheel in a fresh venv) runs from another folder.

    The wheel is built offline from a copy of the tracked files with the test
    venv's setuptools; the fresh venv borrows the test venv's third-party
    packages through a .pth file, so nothing is downloaded.
    """
    import shutil
    import subprocess
    import sys
    import sysconfig
    import venv

    src = tmp_path / "src"
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for f in files:
        if (ROOT / f).is_file():
            (src / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, src / f)
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(src)],
        check=True, capture_output=True,
    )  # fmt: skip
    (wheel,) = wheels.glob("sgxlab-*.whl")
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    site = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    (Path(site) / "borrowed.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(py), "install", "--quiet", "--no-deps", "--no-index", str(wheel)],
        check=True, capture_output=True,
    )  # fmt: skip
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    exe = env_dir / "bin" / "sgxlab"
    where = subprocess.run(
        [str(py), "-c", "import sgxlab.files as f; print(f.__file__); print(f.data_path('keys'))"],
        cwd=elsewhere, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert all(w.startswith(site) for w in where), where
    run = subprocess.run(
        [str(exe), "run", "--design", "always-write", "--workload", "workshop", "--json"],
        cwd=elsewhere, capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert '"launches": 2000' in run.stdout
    # sgxlab einit with a SIGSTRUCT made here (test key 4) under its own hash.
    made = subprocess.run(
        [str(py), "-c",
         "from sgxlab.host.samples import signed_enclave; e = signed_enclave(4); "
         "open('e.sig', 'wb').write(e.sigstruct_bytes); print(e.mrenclave.hex(), e.mrsigner.hex())"],
        cwd=elsewhere, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    einit = subprocess.run(
        [str(exe), "einit", "--sigstruct", "e.sig", "--mrenclave", made[0], "--lehash", made[1]],
        cwd=elsewhere, capture_output=True, text=True,
    )  # fmt: skip
    assert einit.returncode == 0, einit.stderr
    assert "SUCCESS (0)" in einit.stdout
