"""Figures (sgxlab.present.plots): object API only, one house style, honest axes, exact cost splits.

Small workloads only (``workshop`` with 400 launches). That sgxlab never
imports pyplot is checked in a fresh interpreter by ``tests/test_export.py``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from matplotlib.text import Text

import sgxlab
from sgxlab.errors import ConfigError
from sgxlab.host.designs import DESIGNS
from sgxlab.present import plots
from sgxlab.present import result as present
from sgxlab.present.result import Comparison, compare, compare_seeds
from sgxlab.present.style import DESIGN_COLORS, OKABE_ITO, Caption, design_style, provenance_of

SMALL = {"launches": 400}


@pytest.fixture(scope="module")
def cmp() -> Comparison:
    return compare(None, "workshop", SMALL, costs="pessimistic-msr", engine="fast")


@pytest.fixture(scope="module")
def exact_runs() -> dict[str, sgxlab.Result]:
    return {d: sgxlab.run(d, "workshop", SMALL, costs="pessimistic-msr", records=True) for d in DESIGNS}


def _texts(fig: Figure) -> list[Text]:
    fig.draw_without_rendering()
    return [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]


def _check_house_style(fig: Figure) -> list[Text]:
    assert isinstance(fig, Figure)
    texts = _texts(fig)
    small = [(t.get_text(), t.get_fontsize()) for t in texts if t.get_fontsize() < 9]
    assert not small, f"text under 9 pt: {small[:5]}"
    w, h = fig.get_size_inches()
    assert 6.5 <= w <= 10.5 and 3.5 <= h <= 7, (w, h)
    # Legends sit outside the plotting areas: they cover no data.
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    for leg in legends:
        lb = leg.get_window_extent()
        for ax in fig.axes:
            if not ax.get_visible() or ax.get_label() == "<colorbar>":
                continue
            ab = ax.get_window_extent()
            assert not lb.overlaps(ab), f"legend {[t.get_text() for t in leg.get_texts()]} over an axes"
    return texts


def test_design_colours_are_fixed_and_colour_blind_safe():
    assert list(DESIGN_COLORS) == list(DESIGNS)
    assert set(DESIGN_COLORS.values()) <= set(OKABE_ITO.values())
    assert len(set(DESIGN_COLORS.values())) == len(DESIGNS)
    assert design_style("always-write").color == OKABE_ITO["blue"]
    v = design_style("percpu-cache:percpu")
    assert v.variant and v.hatch and v.dashes is not None
    assert v.color != DESIGN_COLORS["percpu-cache"]  # a shade of it
    assert design_style("percpu-cache:percpu,initial=intel").hatch != v.hatch
    assert design_style("mymod:Twice") == design_style("mymod:Twice")


def test_msr_traffic_figure(cmp: Comparison):
    fig = cmp.plot_msr_traffic()
    _check_house_style(fig)
    title = fig.get_suptitle()
    assert "workshop (launches=400)" in title and "seed 0" in title and "costs pessimistic-msr" in title
    assert "fast engine" in title
    left, right = fig.axes[:2]
    assert "count" in left.get_ylabel() and "per launch" in right.get_ylabel()
    # One WRMSR and one RDMSR bar per design, in the design's colour.
    bars = [p for p in left.patches if p.get_height() >= 0]
    assert len(bars) == 2 * len(DESIGNS)
    wr = dict(zip(cmp["design"], cmp["wrmsr"]))
    heights = sorted(round(p.get_height()) for p in bars[::2])
    assert heights == sorted(int(v) for v in wr.values())
    assert provenance_of(fig) is not None and "compare" in provenance_of(fig).command


def test_msr_traffic_of_several_seeds_has_error_bars():
    cs = compare_seeds(["read-compare", "always-write"], "workshop", SMALL, seeds=3, engine="fast")
    assert len(cs) == 6 and sorted(set(cs["seed"])) == [0, 1, 2]
    fig = cs.plot_msr_traffic()
    assert "mean ± stddev of 3 seeds" in fig.get_suptitle()
    assert "seeds 0-2 (3 runs)" in fig.get_suptitle()
    assert any(len(ax.lines) or ax.collections for ax in fig.axes)  # error bars drawn


def test_cost_breakdown_is_exact_against_the_records(exact_runs):
    """The summary-only split of overhead and latency equals the per-launch records' sums."""
    for d, r in exact_runs.items():
        table = pd.DataFrame([sgxlab.sim.result.flatten_summary(r.summary())])
        bd = plots.cost_breakdown(table, r.config.costs).iloc[0]
        rec = r.records()
        assert bd["overhead_msr"] == rec["msr_cycles"].sum(), d
        assert bd["overhead_trap"] == (rec["trap_cycles"] + rec["msr_exit_cycles"]).sum(), d
        assert bd["overhead_lock"] == (rec["lock_cycles"] + rec["lock_wait"]).sum(), d
        assert bd["latency_einit"] == rec["einit_cycles"].sum(), d
        assert bd["latency_lock"] == (rec["lock_cycles"] + rec["lock_wait"] + rec["queue_wait"]).sum(), d
        parts = bd[["overhead_msr", "overhead_lock", "overhead_trap", "overhead_sched"]].sum()
        assert parts == r["overhead_cycles"], d
        assert bd["latency_total"] == rec["latency"].sum(), d
        sched = bd["overhead_sched"]
        if DESIGNS[d].loads_on_schedule:
            assert sched == (r["wrmsr"] - rec["wrmsr"].sum()) * r.config.costs["wrmsr_lehash"] > 0
        else:
            assert sched == 0


def test_latency_figure(cmp: Comparison, exact_runs):
    fig = cmp.plot_latency()  # a fast comparison: latencies re-run on the exact engine
    _check_house_style(fig)
    assert "exact engine (re-run of the fast-engine runs)" in fig.get_suptitle()
    cdf, box, comp = fig.axes[:3]
    assert cdf.get_xscale() == "log" and box.get_xscale() == "log"
    assert "cycles" in box.get_xlabel() and "log scale" in box.get_xlabel()
    assert "cycles" in comp.get_xlabel()
    # Each design's CDF line: its colour, its exact latencies.
    lines = {ln.get_label(): ln for ln in cdf.get_lines()}
    for d, r in exact_runs.items():
        assert lines[d].get_color().lower() == DESIGN_COLORS[d].lower()
        x = np.asarray(lines[d].get_xdata())
        assert x.max() == r["latency_cycles"]["max"] and x.min() == r.latencies.min()
    # The stacked parts add up to the mean latency of the summary.
    comps = plots.latency_components(plots.cost_breakdown(pd.DataFrame(cmp), cmp.spec.costs))
    for d, r in exact_runs.items():
        assert comps.loc[d].sum() == pytest.approx(r["latency_cycles"]["mean"], rel=1e-9)
        rec = r.records()
        assert comps.loc[d, "msr"] == pytest.approx(rec["msr_cycles"].mean())


@pytest.mark.parametrize("workload, params", [("workshop", SMALL), ("host-only", {"launches": 300, "cpus": 3})])
def test_log_axes_make_ticks_only_in_view_and_draw_the_same(monkeypatch, workload, params):
    from figure_pixels import pixels
    from matplotlib.ticker import LogLocator

    c = compare(None, workload, params, engine="exact")
    fig = c.plot_latency()
    ours = pixels(fig)
    box = fig.axes[1]
    lo, hi = box.get_xlim()
    for locs in (box.xaxis.get_majorticklocs(), box.xaxis.get_minorticklocs()):
        assert len(locs) and all(lo <= x <= hi for x in locs)
    monkeypatch.setattr(plots, "_InViewLogLocator", LogLocator)  # matplotlib's, with ticks beyond the view
    fig = c.plot_latency()
    theirs = pixels(fig)
    assert any(not lo <= x <= hi for x in fig.axes[1].xaxis.get_minorticklocs())
    assert np.array_equal(ours, theirs)


def test_box_view_uses_the_summary_percentiles(exact_runs):
    r = exact_runs["percpu-cache"]
    st = plots._box_stats("x", r.latencies)
    assert st["med"] == r["latency_cycles"]["p50"] and st["whishi"] == r["latency_cycles"]["p99"]


def test_result_figures_in_one_call(exact_runs):
    r = exact_runs["eager-load"]
    for fig in (r.plot_msr_traffic(), r.plot_latency(), r.plot_overhead()):
        texts = _check_house_style(fig)
        assert "eager-load" in " ".join(t.get_text() for t in texts)
        assert "costs pessimistic-msr · exact engine" in fig.get_suptitle()
        p = provenance_of(fig)
        assert p is not None and p.command[:2] == ["sgxlab", "run"]
        assert sgxlab.RunConfig.from_json(p.config) == r.config


def test_fast_result_latency_reruns_exactly_or_refuses(monkeypatch):
    r = present.run("read-compare", "workshop", {"launches": 200}, engine="fast")
    assert r.latencies is None
    fig = r.plot_latency()
    assert "exact engine (re-run" in fig.get_suptitle()
    monkeypatch.setattr(present, "EXACT_RERUN_MAX", 100)
    with pytest.raises(ConfigError, match="latency=.fast.*engine='exact'"):
        r.plot_latency()


def test_overhead_figure(cmp: Comparison):
    fig = cmp.plot_overhead()
    _check_house_style(fig)
    ax = fig.axes[0]
    assert "cycles" in ax.get_ylabel()
    # Stacked totals are the overhead_cycles of the table.
    totals = {}
    for p in ax.patches:
        x = round(p.get_x() + p.get_width() / 2)
        totals[x] = max(totals.get(x, 0.0), p.get_y() + p.get_height())
    assert [round(totals[i]) for i in range(len(cmp))] == [int(v) for v in cmp["overhead_cycles"]]
    sec = list(ax.child_axes)
    assert sec and "per launch" in sec[0].get_ylabel()


def test_policy_matrix_heatmap(cmp: Comparison):
    fig = cmp.plot_policy_matrix()
    _check_house_style(fig)
    assert len(fig.axes) == 4
    assert [ax.get_title() for ax in fig.axes] == [
        "VM created",
        "enclave launched",
        "policy bypass",
        "hardware-consistent",
    ]
    m = sgxlab.policy_matrix()
    cells = [t.get_text() for t in fig.axes[2].texts]
    assert cells.count("yes") == int(m["bypass"].sum())
    assert len(cells) == len(m)
    assert "always-write" in fig.get_suptitle()
    assert provenance_of(fig).command == ["sgxlab", "policy-matrix", "--design", "always-write"]


def test_figure_inputs_are_checked():
    with pytest.raises(ConfigError, match="missing column"):
        plots.plot_msr_traffic(pd.DataFrame({"design": ["x"]}))
    with pytest.raises(ConfigError, match="not a built-in design"):
        plots.cost_breakdown(
            pd.DataFrame([dict.fromkeys(plots._BREAKDOWN_NEEDS, 1) | {"design": "mymod:Twice"}]),
            {"wrmsr_lehash": 1, "rdmsr_lehash": 1, "einit": 1, "encls_trap": 1, "vm_exit": 1},
        )
    with pytest.raises(ConfigError, match="no launches"):
        plots.plot_latency({"x": np.zeros(0, dtype=np.int64)}, pd.DataFrame())


def test_a_comparison_still_behaves_as_the_dataframe(cmp: Comparison):
    sub = cmp[["design", "wrmsr"]]
    assert isinstance(sub, pd.DataFrame) and list(sub.columns) == ["design", "wrmsr"]
    assert sub.spec == cmp.spec  # the settings survive a selection
    assert isinstance(cmp.iloc[0], pd.Series) and cmp["wrmsr"].dtype.kind == "i"
    assert cmp["design"].tolist() == list(DESIGNS)
    assert pd.DataFrame(cmp).equals(sgxlab.sim.run.compare(None, "workshop", SMALL, "pessimistic-msr", 0, "fast"))
    lost = pd.concat([pd.DataFrame(cmp)])
    with pytest.raises(AttributeError):
        lost.spec  # noqa: B018  (a plain DataFrame has no settings)


def test_caption_text():
    c = Caption("suspend-resume", {"s3": 2}, (1, 2, 3), "skylake-2021", "exact")
    assert c.text() == "suspend-resume (s3=2) · seeds 1-3 (3 runs) · costs skylake-2021 · exact engine"
    assert Caption("w", {}, (4, 9)).seeds_text() == "seeds 4,9 (2 runs)"


def test_issue9_figures_keep_the_house_style():
    """The timeline and the sweep figures: text at 9 pt or more, legends off the data."""
    from sgxlab.present.result import sweep

    r = sgxlab.run("percpu-cache", "suspend-resume", {"launches": 200}, records=True)
    _check_house_style(r.plot_timeline())
    sw = sweep(
        ["read-compare", "always-write"],
        "workshop",
        {"wrmsr_lehash": [100, 1600], "rdmsr_lehash": [50, 400]},
        params=SMALL,
        progress=False,
    )
    _check_house_style(sw.plot_crossover("wrmsr_lehash", at={"rdmsr_lehash": 50}))
    _check_house_style(sw.plot_winner("wrmsr_lehash", "rdmsr_lehash"))
