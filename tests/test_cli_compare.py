"""``sgxlab compare`` and ``sgxlab plot``: reports, figures and the reproduce command."""

from __future__ import annotations

import shlex

import pytest

from sgxlab.cli import main

BASE = [
    "compare",
    "--designs",
    "percpu-cache,always-write",
    "--workload",
    "suspend-resume",
    "--param",
    "launches=200",
    "--seeds",
    "2",
    "--engine",
    "fast",
]


def _reproduce(report: str) -> list[str]:
    tail = report.split("to reproduce:", 1)[1].strip()
    return shlex.split(tail.replace("\\\n", " "))


def test_the_report_fits_72_columns_and_reproduces_itself(capsys):
    assert main(BASE) == 0
    report = capsys.readouterr().out
    assert all(len(line) <= 72 for line in report.splitlines())
    assert "± " in report and "%change" in report
    argv = _reproduce(report)
    assert argv[:2] == ["sgxlab", "compare"]
    assert main(argv[1:]) == 0
    assert capsys.readouterr().out == report


def test_files_are_written_and_figures_are_byte_identical(tmp_path, capsys):
    a, b = tmp_path / "a.svg", tmp_path / "b.svg"
    txt, csv = tmp_path / "r.txt", tmp_path / "r.csv"
    assert main([*BASE, "--plot", str(a), "--figure", "msr-traffic", "--text", str(txt), "--csv", str(csv)]) == 0
    assert main([*BASE, "--plot", str(b), "--figure", "msr-traffic"]) == 0
    out = capsys.readouterr().out
    assert a.read_bytes() == b.read_bytes() and b"sgxlab compare" in a.read_bytes()
    assert txt.read_text().strip() in out
    assert csv.read_text().startswith("design,") or "design" in csv.read_text().splitlines()[0]


@pytest.mark.parametrize("kind", ["msr-traffic", "overhead", "policy-matrix"])
def test_plot_saves_each_kind(kind, tmp_path, capsys):
    out = tmp_path / f"{kind}.png"
    args = ["plot", kind, "--out", str(out)]
    if kind != "policy-matrix":
        args += BASE[1:]
    assert main(args) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "extra,word",
    [
        (["--plot", "x.gif"], "--plot"),
        (["--plot", "/no/such/dir/x.png"], "no such folder"),
        (["--csv", "x.txt"], "--csv"),
        (["--seeds", "zero"], "--seeds"),
        (["--designs", "nope"], "unknown design"),
        (["--baseline", "read-compare"], "baseline"),
    ],
)
def test_bad_options_exit_2_before_running(extra, word, capsys):
    rc = main([*BASE, *extra])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and word in err


def test_plot_refuses_a_bad_design_for_the_matrix(tmp_path, capsys):
    rc = main(["plot", "policy-matrix", "--design", "nope", "--out", str(tmp_path / "m.png")])
    assert rc == 2 and "unknown design" in capsys.readouterr().err


def test_plot_timeline_is_byte_identical_and_bad_input_is_one_line(tmp_path, capsys):
    argv = ["plot", "timeline", "--design", "percpu-cache", "--workload", "suspend-resume", "--param", "launches=200"]
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    assert main([*argv, "--out", str(a)]) == 0
    assert main([*argv, "--out", str(b)]) == 0
    assert a.read_bytes() == b.read_bytes() and a.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    capsys.readouterr()
    for bad, word in (
        (["plot", "nope"], "nope"),
        (["plot", "timeline", "--design", "nope"], "nope"),
        (["plot", "timeline", "--design", "always-write", "--cpus", "x"], "--cpus"),
        (["plot", "timeline", "--design", "always-write", "--window", "1"], "--window"),
        (["plot", "timeline", "--design", "always-write", "--cpus", "9"], "cpus"),
        (["plot", "latency", "--designs", "nope"], "nope"),
    ):
        try:
            rc = main([*bad, "--param", "launches=200", "--out", str(tmp_path / "x.png")])
        except SystemExit as e:  # argparse's own usage errors
            rc = e.code
        err = capsys.readouterr().err
        assert rc == 2 and err.count("\n") == 1 and word in err, (bad, err)
