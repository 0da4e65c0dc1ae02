"""``sgxlab sweep`` on the command line."""

from __future__ import annotations

import pandas as pd
import pytest

from sgxlab.cli import main

BASE = ["sweep", "--designs", "always-write,percpu-cache", "--workload", "host-only", "--no-progress"]


def test_sweep_prints_a_narrow_table_and_writes_csv(tmp_path, capsys):
    csv = tmp_path / "s.csv"
    rc = main(
        [*BASE, "--vary", "wrmsr_lehash=400,4000", "--param", "launches=200", "--workers", "1", "--csv", str(csv)]
    )
    out = capsys.readouterr().out
    assert rc == 0
    assert all(len(line) <= 72 for line in out.splitlines())
    assert "wrmsr_lehash" in out and "percpu-cache" in out
    df = pd.read_csv(csv)
    assert len(df) == 4 and set(df.wrmsr_lehash) == {400, 4000}


def test_sweep_resumes_from_its_folder(tmp_path, capsys):
    args = [*BASE, "--vary", "launches=100,200", "--out", str(tmp_path / "o"), "--workers", "1"]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert main(args) == 0
    assert capsys.readouterr().out == first
    assert (tmp_path / "o" / "sweep.csv").exists()


@pytest.mark.parametrize(
    "extra,word",
    [
        (["--vary", "nope=1,2"], "nope"),
        (["--vary", "einit"], "NAME=V1,V2"),
        (["--vary", "einit=1,,2"], "none empty"),
        (["--vary", "einit=1", "--vary", "einit=2"], "twice"),
        (["--vary", "einit=x"], "einit"),
        (["--executor", "warp"], "executor"),
        (["--seeds", "0"], "seeds"),
        (["--designs", "a,,b"], "designs"),
        (["--csv", "/no/such/dir/x.csv"], "no such folder"),
    ],
)
def test_bad_options_exit_2_with_one_line(extra, word, capsys):
    rc = main([*BASE, "--param", "launches=100", "--workers", "1", *extra])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and word in err
