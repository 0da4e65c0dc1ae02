"""The per-CPU timeline figure (issue 9): bands per signer, failures, S3, migrations.

Small runs only: ``suspend-resume`` with 300 launches and ``workshop`` with 400.
"""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

import sgxlab
from sgxlab.errors import ConfigError
from sgxlab.present import plots
from sgxlab.present.result import compare
from sgxlab.present.style import provenance_of
from sgxlab.sim.exact import HIST_INTEL, ExactSimulation
from sgxlab.sim.workloads import make_workload


def _bands(fig: Figure, kind: str) -> int:
    return sum(len(c.get_paths()) for c in fig.axes[0].findobj(PolyCollection) if c.get_gid() == f"band-{kind}")


def _gid(fig: Figure, gid: str) -> list[Line2D]:
    return [ln for ln in fig.axes[0].get_lines() if ln.get_gid() == gid]


@pytest.fixture(scope="module")
def stale() -> sgxlab.Result:
    return sgxlab.run("percpu-cache", "suspend-resume", {"launches": 300}, records=True)


def test_stale_cache_shows_as_bands_and_failures(stale):
    fig = stale.plot_timeline()
    assert isinstance(fig, Figure)
    assert _bands(fig, "hw") > 4 and _bands(fig, "cached") > 4  # one MSR row and one cache row per CPU
    fails = _gid(fig, "failures")
    nfail = int((stale.records()["outcome"] == "failed").sum())
    assert nfail > 0 and fails and sum(len(ln.get_xdata()) for ln in fails) == nfail
    assert _gid(fig, "s3")  # the dashed S3 line
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert "CPU 0 MSRs" in labels and "CPU 0 cache" in labels
    legend = [t.get_text() for leg in fig.legends for t in leg.get_texts()]
    assert "Intel's hash (reset value)" in legend and any(s.startswith("failed EINIT") for s in legend)
    assert "stale cache" in fig.get_suptitle() and "suspend-resume" in fig.get_suptitle()
    assert provenance_of(fig) is not None


def test_the_observed_state_is_the_emulator_s():
    """After an S3 every CPU's MSRs hold Intel's value while the cache keeps its signer."""
    trace = make_workload("suspend-resume", {"launches": 300}).trace(0)
    plain = ExactSimulation(trace, "percpu-cache", records=False).run()
    sim = ExactSimulation(trace, "percpu-cache", records=False)
    hist = sim.observe()
    assert sim.summary() == plain.summary()  # observing changes nothing
    s3 = int(trace.t[trace.kind == 3][0])
    at = hist.t == s3
    assert at.sum() >= trace.ncpus and set(hist.hw[at].tolist()) == {HIST_INTEL}
    assert (hist.cached[at] >= 0).any()  # the caches still name a signer: stale


def test_workshop_without_a_cache_has_one_row_per_cpu_and_migrations():
    c = compare(["always-write", "percpu-cache"], "workshop", {"launches": 400})
    fig = c.plot_timeline("always-write", cpus=[2, 3])
    assert _bands(fig, "cached") == 0 and _bands(fig, "hw") >= 2
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == ["CPU 2 MSRs", "CPU 3 MSRs"]
    assert _gid(fig, "migrations")
    assert not _gid(fig, "failures")
    # the default design is the first that failed
    assert c.plot_timeline().get_suptitle().startswith("percpu-cache:")


def test_segments_merge_equal_neighbours():
    t = np.array([0, 10, 10, 20, 30])
    v = np.array([1, 1, 2, 2, 1])
    assert plots._segments(t, v, 40) == [(0, 10, 1), (10, 20, 2), (30, 10, 1)]


def test_bad_timeline_input_is_a_config_error(stale):
    with pytest.raises(ConfigError, match="cpus"):
        stale.plot_timeline([9])
    with pytest.raises(ConfigError, match="window"):
        stale.plot_timeline(window=(5, 1))
    c = compare(["always-write"], "workshop", {"launches": 200}, engine="fast")
    with pytest.raises(ConfigError, match="design"):
        c.plot_timeline("nope")
    with pytest.raises(ConfigError, match="seed"):
        c.plot_timeline(seed=7)


def test_bands_draw_what_broken_barh_draws(stale, monkeypatch):
    # The bands skip broken_barh's autoscaling (the figure sets its own limits): same pixels.
    from figure_pixels import pixels

    ours = pixels(stale.plot_timeline())
    monkeypatch.setattr(plots, "_bands", lambda ax, spans, yrange, **kw: ax.broken_barh(spans, yrange, **kw))
    assert np.array_equal(ours, pixels(stale.plot_timeline()))
