"""Sweep figures (issue 9): the crossover of two designs' costs and the winner heatmap,
from ``sgxlab.sweep`` (a :class:`SweepTable`) and from ``sgxlab plot crossover|winner``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

import sgxlab
from sgxlab.cli import main
from sgxlab.errors import ConfigError
from sgxlab.present import plots
from sgxlab.present.result import SweepTable
from sgxlab.present.style import design_style, provenance_of

GRID = {"wrmsr_lehash": [100, 400, 1600], "rdmsr_lehash": [50, 400]}


@pytest.fixture(scope="module")
def table() -> SweepTable:
    return sgxlab.sweep(
        ["read-compare", "always-write"], "workshop", GRID, params={"launches": 200}, seeds=2, progress=False
    )


def test_the_sweep_is_still_a_tidy_dataframe(table):
    assert isinstance(table, SweepTable) and isinstance(table, pd.DataFrame)
    assert len(table) == 2 * 3 * 2 * 2
    sub = table[table["design"] == "always-write"]
    assert isinstance(sub, SweepTable) and sub.spec.workload == "workshop"
    assert table.groupby("design")["overhead_cycles"].mean().shape == (2,)


def test_crossover_is_interpolated_and_labelled(table):
    fig = table.plot_crossover("wrmsr_lehash", at={"rdmsr_lehash": 50})
    assert isinstance(fig, Figure)
    labels = [t.get_text() for t in fig.axes[0].texts if t.get_gid() == "crossover-label"]
    assert labels and all("always-write" in t and "read-compare" in t and "wrmsr_lehash ≈" in t for t in labels)
    # The label's value is where the mean curves cross, by linear interpolation.
    m = table[table["rdmsr_lehash"] == 50].groupby(["design", "wrmsr_lehash"])["overhead_cycles"].mean()
    xs = np.array(GRID["wrmsr_lehash"], dtype=float)
    d = m["read-compare"].to_numpy(dtype=float) - m["always-write"].to_numpy(dtype=float)
    k = int(np.flatnonzero(np.sign(d[:-1]) != np.sign(d[1:]))[0])
    x = xs[k] + (xs[k + 1] - xs[k]) * d[k] / (d[k] - d[k + 1])
    assert f"≈ {x:,.0f}" in labels[0]
    title = fig.get_suptitle()
    assert "workshop" in title and "seeds 0-1" in title and "costs default" in title
    colours = {ln.get_label(): ln.get_color() for ln in fig.axes[0].get_lines() if not ln.get_label().startswith("_")}
    assert colours["always-write"].lower() == design_style("always-write").color.lower()
    assert provenance_of(fig).command[:3] == ["sgxlab", "plot", "crossover"]


def test_crossovers_helper():
    curves = {
        "a": (np.array([0.0, 1.0, 2.0]), np.array([0.0, 2.0, 4.0])),
        "b": (np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 1.0])),
    }
    assert plots.crossovers(curves) == [("a", "b", 0.5, 1.0)]
    same = {"a": (np.array([0.0, 1.0]), np.array([1.0, 1.0])), "b": (np.array([0.0, 1.0]), np.array([1.0, 1.0]))}
    assert plots.crossovers(same) == [("a", "b", 0.0, 1.0)]


def test_winner_heatmap_colours_each_cell_by_its_design(table):
    fig = table.plot_winner("wrmsr_lehash", "rdmsr_lehash")
    cells = [p for p in fig.axes[0].patches if isinstance(p, Rectangle) and p.get_gid() == "winner-cell"]
    assert len(cells) == 3 * 2
    w = plots.winners(table, "wrmsr_lehash", "rdmsr_lehash", "overhead_cycles")
    want = sorted(design_style(d).color.lower() for d in w["design"])
    got = sorted(to_hex(p.get_facecolor()) for p in cells)
    assert got == want
    legend = [t.get_text() for leg in fig.legends for t in leg.get_texts()]
    assert {lab.split(" (")[0] for lab in legend} == {"read-compare", "always-write"}


def test_bad_axes_and_metrics_name_the_option(table):
    with pytest.raises(ConfigError, match="nope"):
        table.plot_crossover("nope")
    with pytest.raises(ConfigError, match="rdmsr_lehash"):
        table.plot_crossover("wrmsr_lehash")  # the other varied parameter must be fixed
    with pytest.raises(ConfigError, match="metric"):
        table.plot_winner("wrmsr_lehash", "rdmsr_lehash", metric="design")
    with pytest.raises(ConfigError, match="at rdmsr_lehash"):
        table.plot_crossover("wrmsr_lehash", at={"rdmsr_lehash": 7})


def test_cli_reads_a_sweep_folder(tmp_path, capsys):
    out = tmp_path / "sw"
    args = ["--designs", "read-compare,always-write", "--workload", "host-only", "--param", "launches=200"]
    assert (
        main(["sweep", *args, "--vary", "wrmsr_lehash=100,1600", "--out", str(out), "--no-progress", "--workers", "1"])
        == 0
    )
    capsys.readouterr()
    assert (
        main(["plot", "crossover", "--sweep", str(out), "--x", "wrmsr_lehash", "--out", str(tmp_path / "c.svg")]) == 0
    )
    assert (tmp_path / "c.svg").read_bytes().startswith(b"<?xml")
    capsys.readouterr()
    for bad, word in (
        (["plot", "crossover", "--sweep", str(out), "--x", "nope"], "nope"),
        (["plot", "winner", "--sweep", str(out), "--x", "wrmsr_lehash"], "--y"),
        (["plot", "crossover", "--x", "wrmsr_lehash"], "--vary"),
        (["plot", "crossover", "--sweep", str(tmp_path / "missing"), "--x", "wrmsr_lehash"], "missing"),
    ):
        assert main([*bad, "--out", str(tmp_path / "x.png")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and word in err, err
