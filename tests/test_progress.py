"""Progress of long runs (issue 9): a bar only when asked or long, a callback that can
cancel, and per-run results a comparison's figures reuse instead of running again."""

from __future__ import annotations

import pytest

import sgxlab
from sgxlab.cli import main
from sgxlab.errors import SgxlabError
from sgxlab.sim import run as simrun
from sgxlab.sim.progress import LONG_EXACT, Cancelled, Progress, is_long

SMALL = {"launches": 300}


def test_a_callback_sees_every_phase_and_ends_at_the_total():
    seen: list[tuple[int, int]] = []
    simrun.compare(
        ["always-write", "read-compare"], "workshop", SMALL, engine="fast", progress=lambda d, t: seen.append((d, t))
    )
    assert seen[0] == (1, 1)  # the trace
    assert seen[-1][0] == seen[-1][1] == 3  # and each design
    seen.clear()
    simrun.run("percpu-cache", "workshop", SMALL, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1][0] == seen[-1][1] >= 2  # exact: the trace, then chunks of rows


def test_the_callback_cancels_the_run():
    calls = []

    def stop(done: int, total: int) -> None:
        calls.append(done)
        if done >= 2:
            raise Cancelled()

    with pytest.raises(Cancelled):
        sgxlab.compare(None, "workshop", SMALL, engine="fast", progress=stop)
    assert calls == [1, 2]
    assert isinstance(Cancelled(), SgxlabError)


def test_bars_only_when_long_or_asked(capsys):
    assert not is_long("exact", LONG_EXACT) and is_long("exact", LONG_EXACT + 1)
    assert not is_long("fast", LONG_EXACT + 1)
    sgxlab.run("always-write", "workshop", SMALL, engine="fast")
    assert capsys.readouterr().err == ""
    sgxlab.run("always-write", "workshop", SMALL, engine="fast", progress=True)
    assert "step" in capsys.readouterr().err
    with pytest.raises(SgxlabError, match="progress"):
        Progress("yes", 1)  # type: ignore[arg-type]


def test_cli_progress_flag(capsys):
    base = ["run", "--design", "always-write", "--workload", "workshop", "--param", "launches=300", "--engine", "fast"]
    assert main(base) == 0
    assert capsys.readouterr().err == ""  # stderr is not a terminal here: no bar
    assert main([*base, "--progress"]) == 0
    assert "step" in capsys.readouterr().err
    cmp = ["compare", "--designs", "always-write,read-compare", "--param", "launches=300", "--engine", "fast"]
    assert main([*cmp, "--no-progress"]) == 0
    assert capsys.readouterr().err == ""
    assert main([*cmp, "--progress"]) == 0
    assert "step" in capsys.readouterr().err


def test_a_comparison_keeps_its_exact_runs_for_the_latency_figure():
    c = sgxlab.compare(["percpu-cache", "always-write"], "workshop", SMALL)
    c.plot_latency()
    assert c.exact_reruns == 0  # the latencies came from the comparison's own runs
    lat = c.latencies()
    assert len(lat["always-write"]) == int(c[c["design"] == "always-write"]["launches"].iloc[0])
    s = sgxlab.compare_seeds(["always-write"], "workshop", SMALL, seeds=2)
    s.latencies()  # what plot_latency draws
    assert s.exact_reruns == 0
    f = sgxlab.compare(["always-write"], "workshop", SMALL, engine="fast")
    f.latencies()
    assert f.exact_reruns == 1  # the fast engine keeps no latencies: re-run once
    f.latencies()
    assert f.exact_reruns == 1


def test_signer_images_are_built_once_and_handed_out_as_forks():
    from sgxlab.sim.exact import _built_signer, signer_image

    a, b = signer_image(3), signer_image(3)
    assert a.sigstruct == b.sigstruct and a.mrsigner_words == b.mrsigner_words
    assert a.enclave is not b.enclave and a.enclave.mrenclave() == b.enclave.mrenclave()
    before = _built_signer.cache_info().hits
    signer_image(3)
    assert _built_signer.cache_info().hits == before + 1
