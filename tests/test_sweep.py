"""Sweeps: a tidy grid, one trace per workload point and seed, any executor, resumable."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import pytest

import sgxlab.sim.sweep as sw
from sgxlab.errors import ConfigError

DESIGNS = ["always-write", "percpu-cache", "read-compare"]
VARY = {"wrmsr_lehash": [400, 1200, 4000], "launches": [200, 300]}


def small(**kw):
    return sw.sweep(DESIGNS, "workshop", VARY, seeds=2, progress=False, **kw)


@pytest.fixture(scope="module")
def inline() -> pd.DataFrame:
    return small()


def test_the_grid_is_tidy_and_in_order(inline):
    assert len(inline) == len(DESIGNS) * 3 * 2 * 2
    # launches is also a summary column, so the varied parameter is launches_param.
    assert list(inline.columns[:4]) == ["design", "seed", "launches_param", "wrmsr_lehash"]
    assert inline.attrs["varied"] == ["launches_param", "wrmsr_lehash"]
    first = inline.iloc[: len(DESIGNS)]
    assert list(first.design) == DESIGNS and set(first.wrmsr_lehash) == {400} and set(first.seed) == {0}
    # Costs change cycles, never counts: the same trace under every cost value.
    g = inline.groupby(["design", "seed", "launches_param"])
    assert (g["wrmsr"].nunique() == 1).all() and (g["overhead_cycles"].nunique() == 3).all()


def test_one_trace_per_workload_point_and_seed(monkeypatch):
    made = []
    real = sw.make_workload

    class Counting:
        def __init__(self, wl):
            self.wl = wl
            self.values = wl.values

        def trace(self, seed):
            made.append((self.wl.values["launches"], seed))  # the workload's own parameter
            return self.wl.trace(seed)

    monkeypatch.setattr(
        sw, "make_workload", lambda name, params, budget=None: Counting(real(name, params, budget=budget))
    )
    small()
    assert sorted(made) == [(200, 0), (200, 1), (300, 0), (300, 1)]


def test_results_do_not_depend_on_the_executor(inline):
    with ThreadPoolExecutor(3) as pool:
        threads = small(executor=pool, workers=3)
    processes = small(executor="local", workers=2)
    pd.testing.assert_frame_equal(inline, threads)
    pd.testing.assert_frame_equal(inline, processes)


def test_a_local_dask_cluster_gives_the_same_rows(inline):
    pytest.importorskip("distributed")
    got = small(executor="dask", workers=2)
    pd.testing.assert_frame_equal(inline, got)


def test_an_interrupted_sweep_resumes(tmp_path, inline, monkeypatch):
    out = tmp_path / "sweep"
    first = small(out=out)
    pd.testing.assert_frame_equal(first, inline)
    parts = sorted(out.glob("part-*.json"))
    assert parts and (out / "sweep.json").exists() and (out / "sweep.csv").exists()
    for p in parts[1:3]:
        p.unlink()  # as if interrupted before these finished
    ran = []
    real = sw._run_task
    monkeypatch.setattr(sw, "_run_task", lambda t: ran.append(t.index) or real(t))
    again = small(out=out)
    assert len(ran) == 2
    pd.testing.assert_frame_equal(again, inline)


def test_a_folder_of_another_sweep_is_refused(tmp_path):
    out = tmp_path / "s"
    sw.sweep(["always-write"], "host-only", {"launches": [100]}, out=out, progress=False)
    with pytest.raises(ConfigError, match="different sweep"):
        sw.sweep(["always-write"], "host-only", {"launches": [200]}, out=out, progress=False)


@pytest.mark.parametrize(
    "kw,match",
    [
        ({"vary": {"nope": [1]}}, "vary=.nope.*not a cost parameter"),
        ({"vary": {"einit": []}}, "at least one value"),
        ({"vary": {"einit": 5}}, "a list of values"),
        ({"vary": {"einit": ["x"]}}, "einit"),
        ({"vary": {"launches": [-1]}}, "launches"),
        ({"seeds": 0}, "seeds"),
        ({"seeds": [1, 1]}, "distinct"),
        ({"executor": "warp"}, "executor"),
        ({"designs": "nope"}, "unknown design"),
        ({"engine": "warp"}, "engine"),
        ({"params": {"launches": 5}, "vary": {"launches": [1]}}, "both fixed and varied"),
    ],
)
def test_bad_arguments_are_refused_by_name(kw, match):
    args = {"designs": ["always-write"], "vary": {"einit": [1]}} | kw
    with pytest.raises(ConfigError, match=match):
        sw.sweep(workload="host-only", progress=False, **args)


def test_a_single_design_name_is_one_design():
    df = sw.sweep("always-write", "host-only", {"launches": [100]}, progress=False)
    assert list(df.design) == ["always-write"]
