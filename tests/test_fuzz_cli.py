"""Hypothesis over every command-line option: a hostile value is a clean exit 2 or a run.

The options are read from the parser itself (``sgxlab.cli.build_parser``), so
an option added later is fuzzed without editing this file. Each subcommand
starts from a cheap, valid command line; one option at a time gets a value
drawn from hostile text (empty, huge numbers, separators, control and
non-ASCII characters, near-misses of valid spellings). The command either
succeeds or exits with status 2 and exactly one line on stderr, never a
traceback. Run configs and cost presets as files get the same treatment.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sgxlab.cli import COMMANDS, build_parser, main
from sgxlab.errors import SgxlabError
from sgxlab.sim.costs import CostModel
from sgxlab.sim.result import RunConfig

HOSTILE = st.one_of(
    st.sampled_from(
        (
            "",
            " ",
            ",",
            ",,,",
            "=",
            "a=b=c",
            "9" * 5000,
            "-1",
            "0",
            "nan",
            "inf",
            "1e99",
            "0x",
            "\x00",
            "é",
            "../../etc/passwd",
            "launches=",
            "launches=-5",
            "einit=abc",
            "always-write,nope",
            "percpu-cache:lock=bogus",
            "trace:/nonexistent.csv",
            "'" + "ab" * 32,
            "1,2,x",
        )
    ),
    st.text(
        alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters="\n"),
        max_size=24,
    ),
)


def _base(vectors: Path) -> dict[str, list[str]]:
    fort = vectors / "fortanix-rust-sgx"
    small = ["--param", "launches=40"]
    return {
        "sigstruct": [str(vectors / "intel-linux-sgx/le_prod_css.bin")],
        "measure": [str(fort / "report.sgxs")],
        "einit": [
            "--sigstruct",
            str(fort / "test_enclave.sig"),
            "--mrenclave",
            "784acfd7d5096a8f0fbd3265760bff21b120f62407a9a9e5ba31aa3c8ed198fc",
        ],
        "guest": ["--sgx", "epc=64M"],
        "policy-matrix": [],
        "policies": [],
        "run": ["--design", "always-write", "--workload", "workshop", "--engine", "fast", *small],
        "compare": ["--designs", "always-write,read-compare", "--engine", "fast", *small],
        "sweep": [
            "--designs",
            "always-write",
            "--vary",
            "einit=1000,2000",
            "--engine",
            "fast",
            "--workers",
            "1",
            *small,
        ],
        "plot": ["msr-traffic", "--out", "f.png", "--designs", "always-write", "--engine", "fast", *small],
        "designs": [],
        "workloads": [],
    }


def _options(command: str) -> list[str]:
    """The long options of ``command`` that take a value."""
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    p = sub.choices[command]
    return sorted(
        s
        for a in p._actions
        if a.option_strings and a.nargs != 0 and not isinstance(a, argparse._HelpAction)
        for s in a.option_strings
        if s.startswith("--")
    )


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        rc = main(argv)
    except SystemExit as e:
        rc = int(e.code or 0) if not isinstance(e.code, str) else 2
    _, err = capsys.readouterr()
    return rc, err


EXAMPLES = {"sweep": 4, "plot": 8, "compare": 12}


@pytest.mark.parametrize("command", [c for c in COMMANDS if _options(c)])
def test_every_option_takes_hostile_values(command: str, vectors: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    base = _base(vectors)
    assert set(base) == set(COMMANDS), "a new subcommand needs a cheap valid command line here"
    options = _options(command)

    @settings(
        max_examples=EXAMPLES.get(command, 30),
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(option=st.sampled_from(options), value=HOSTILE.filter(lambda v: not v.lower().startswith("dask")))
    def check(option: str, value: str) -> None:
        argv = [command, *base[command], f"{option}={value}"]
        rc, err = _run(argv, capsys)
        assert rc in (0, 2), (argv, rc, err[-800:])
        if rc == 2:
            assert "Traceback" not in err and err.count("\n") == 1, (argv, err[-800:])
            assert len(err) < 2000, (argv, len(err))

    check()


def _mutations(seed: bytes) -> st.SearchStrategy[bytes]:
    return st.binary(max_size=8).flatmap(
        lambda junk: st.integers(0, len(seed)).map(lambda i: seed[:i] + junk + seed[i + len(junk) :])
    )


RUN_TOML = (
    b'design = "percpu-cache"\nworkload = "workshop"\nseed = 3\nengine = "fast"\n'
    b"[params]\nlaunches = 40\n[costs]\neinit = 60000\n"
)


@settings(
    max_examples=120, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=_mutations(RUN_TOML))
def test_run_config_files(tmp_path: Path, data: bytes) -> None:
    for name, text in (("run.toml", data), ("run.json", data)):
        f = tmp_path / name
        f.write_bytes(text)
        try:
            c = RunConfig.load(f)
        except SgxlabError:
            continue
        assert RunConfig.from_dict(c.as_dict()) == c


@settings(max_examples=120, deadline=None, derandomize=True)
@given(data=_mutations(b'name = "mine"\ncpu_ghz = 3.0\n[costs]\neinit = 60000\nwrmsr_lehash = 400\nlock = 20\n'))
def test_cost_preset_text(data: bytes) -> None:
    import tomllib

    try:
        body = tomllib.loads(data.decode("utf-8", "replace"))
    except tomllib.TOMLDecodeError:
        return
    costs = dict(body.get("costs", {})) if isinstance(body.get("costs"), dict) else {}
    try:
        CostModel.from_dict(costs, name=str(body.get("name", "x")))
    except SgxlabError:
        pass
