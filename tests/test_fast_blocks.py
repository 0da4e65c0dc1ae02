"""The fast engine's blockwise machinery, checked piece by piece against plain loops.

The engine works a block of launches at a time (``fast._BLOCK``) and carries
state from block to block: the queue's running sum and maximum, the last setter
launch of eager-load's checks, the latencies' int32 store that widens to int64.
These tests run the pieces with tiny blocks, so that every carry, every queue
start on a block boundary and every widening happens many times.
"""

from __future__ import annotations

import numpy as np
import pytest
import simref
from simref import fifo_waits

from sgxlab.host.designs import EagerLoad
from sgxlab.hw.arch import INTEL_LEPUBKEYHASH
from sgxlab.sim import fast
from sgxlab.sim.costs import CostModel
from sgxlab.sim.fast import _kept_order, _LatencyStore, _queue_pass, _Refusals, _run_starts, _wait
from sgxlab.sim.trace import LAUNCH, S3, SCHED, Trace, VmSpec


@pytest.mark.parametrize("seed", range(30))
def test_queue_pass_blocks_match_a_loop(seed: int) -> None:
    rng = np.random.default_rng(seed)
    nq = int(rng.integers(1, 8))
    lens = rng.integers(0, 60, size=nq)
    A = np.concatenate([np.sort(rng.integers(0, 10**6, size=n)) for n in lens]).astype(np.int64)
    S = rng.integers(0, 3 * 10**4, size=len(A)).astype(np.int64)
    starts = np.unique(np.concatenate(([0], np.cumsum(lens)[:-1])))
    starts = starts[starts < len(A)]
    want = fifo_waits(A, S, starts.tolist() or [0])
    for block in (1, 2, 3, 7, 64, 1 << 16):
        got = _wait(A, S, starts if len(starts) else None, block=block)
        assert got.tolist() == want, block


def test_queue_pass_returns_exact_totals_and_the_largest_latency() -> None:
    rng = np.random.default_rng(5)
    A = np.sort(rng.integers(0, 10**5, size=500)).astype(np.int64)
    S = rng.integers(0, 10**4, size=500).astype(np.int64)
    wait = np.array(fifo_waits(A, S, [0]))
    lat = _LatencyStore(len(A))
    total, top = _queue_pass(lambda a, b, _: A[a:b], lambda a, b, _: S[a:b], len(A), None, lat, block=13)
    assert total == int(wait.sum())
    assert top == int((wait + S).max())
    assert lat.values.tolist() == (wait + S).tolist()


def test_latency_store_widens_past_int32() -> None:
    store = _LatencyStore(10)
    assert store.values.dtype == np.int32
    store.put(0, np.arange(4, dtype=np.int64), 3)
    big = np.array([2**31, 5, 2**40], dtype=np.int64)
    store.put(4, big, 2**40)
    store.put(7, np.array([1, 2, 3], dtype=np.int64), 2**40)
    assert store.values.dtype == np.int64
    assert store.values.tolist() == [0, 1, 2, 3, 2**31, 5, 2**40, 1, 2, 3]


@pytest.mark.parametrize("seed", range(10))
def test_run_starts_by_binary_search(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ncpus = int(rng.integers(1, 40))
    n = int(rng.integers(1, 300))
    cpu_sorted = np.sort(rng.integers(0, ncpus, size=n)).astype(np.int16)
    want = np.flatnonzero(np.r_[True, cpu_sorted[1:] != cpu_sorted[:-1]])
    assert _run_starts(cpu_sorted, None, n).tolist() == want.tolist()
    # through an index: trace rows of the CPU-sorted launches
    perm = rng.permutation(n)
    col = np.empty(n, dtype=np.int16)
    col[perm] = cpu_sorted
    assert _run_starts(col, perm, n).tolist() == want.tolist()
    assert _run_starts(col, perm, 0).tolist() == []
    # an unvalidated trace's CPUs outside [0, ncpus) still get runs of their own
    odd = np.sort(rng.integers(-3, ncpus + 3, size=n)).astype(np.int16)
    want = np.flatnonzero(np.r_[True, odd[1:] != odd[:-1]])
    assert _run_starts(odd, None, n).tolist() == want.tolist()


@pytest.mark.parametrize("seed", range(10))
def test_kept_order_without_refused_launches(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 400))
    cpu = rng.integers(0, 5, size=n).astype(np.int16)
    tr = Trace(
        5,
        2,
        (),
        np.arange(n, dtype=np.int64),
        np.full(n, LAUNCH, np.int8),
        cpu,
        np.full(n, -1, np.int16),
        np.full(n, -1, np.int16),
        np.zeros(n, np.int16),
    )
    pos = np.flatnonzero(rng.random(n) < 0.3)
    keep = np.ones(n, dtype=bool)
    keep[pos] = False
    got = _kept_order(tr, _Refusals(n=len(pos), pos=pos))
    want = np.argsort(cpu[keep], kind="stable")
    assert got is not None and got.tolist() == want.tolist()


def _scrambled(rng: np.random.Generator, n: int, ncpus: int = 3) -> Trace:
    """A trace outside the contract's rules (guests launch where they are not scheduled,
    host launches share CPUs with vCPUs, S3 anywhere; with ``ncpus=1``, CPUs beyond the
    declared one): the engine must still compute, not assume."""
    vms = (VmSpec(2, lewr=True, lehash=0), VmSpec(2, lewr=False, lehash=1), VmSpec(1, lewr=False, lehash=-1))
    kind = rng.choice(np.array([LAUNCH, SCHED, S3], dtype=np.int8), size=n, p=[0.7, 0.27, 0.03])
    vm = rng.integers(-1, 3, size=n).astype(np.int16)
    vm[kind == SCHED] = np.maximum(vm[kind == SCHED], 0)
    vm[kind == S3] = -1
    nv = np.array([2, 1, 1, 2])[vm]  # vCPUs of the VM (index -1: the last entry, unused)
    vcpu = np.where(vm >= 0, rng.integers(0, 2, size=n) % nv, -1).astype(np.int16)
    return Trace(
        ncpus,
        3,
        vms,
        np.cumsum(rng.integers(0, 5, size=n)).astype(np.int64),
        kind,
        rng.integers(0, 3, size=n).astype(np.int16),
        vm,
        vcpu,
        rng.integers(0, 3, size=n).astype(np.int16),
    )


def _eager_failures_loop(trace: Trace) -> int:
    """eager-load's failing native guest EINITs, row by row (the engine's rule, literally):
    H per CPU is set by schedule-ins (the vCPU's virtual hash), host and lewr-guest
    launches; S3 resets it to Intel's and reloads each CPU's current vCPU; a guest
    without lewr fails when H's words are not its signer's."""
    words = [*fast.signer_words(trace.nsigners), INTEL_LEPUBKEYHASH.words]  # [-1]: Intel's
    H: dict[int, int] = {}  # CPU -> signer whose words it holds (-1: Intel's)
    virtual: dict[tuple[int, int], int] = {}
    current: dict[int, tuple[int, int]] = {}
    fails = 0
    for i in range(len(trace)):
        k, c = int(trace.kind[i]), int(trace.cpu[i])
        v, vc, s = int(trace.vm[i]), int(trace.vcpu[i]), int(trace.signer[i])
        if k == S3:
            H.clear()
            for cpu, key in current.items():
                H[cpu] = virtual.get(key, trace.vms[key[0]].lehash)
        elif k == SCHED:
            current = {cpu: key for cpu, key in current.items() if key != (v, vc)}
            current[c] = (v, vc)
            H[c] = virtual.get((v, vc), trace.vms[v].lehash)
        elif k == LAUNCH:
            if v < 0 or trace.vms[v].lewr:
                H[c] = s
                if v >= 0:
                    virtual[(v, vc)] = s
            elif words[H.get(c, -1)] != words[s]:
                fails += 1
    return fails


@pytest.mark.parametrize("ncpus", [3, 1])
@pytest.mark.parametrize("seed", range(12))
def test_eager_load_checks_on_scrambled_traces(seed: int, ncpus: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """eager-load's failures with the blocks cut small, against the row-by-row rule."""
    monkeypatch.setattr(fast, "_BLOCK", 16)
    tr = _scrambled(np.random.default_rng(seed), 800, ncpus)
    got = fast.simulate(tr, EagerLoad, CostModel(), validate=False)
    assert got["failures"].get("SGX_INVALID_EINITTOKEN", 0) == _eager_failures_loop(tr)


@pytest.mark.parametrize("seed", range(40))
def test_eager_load_checks_find_nothing_on_valid_traces(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """What lets a validated trace skip eager-load's checks: run on an unmarked copy of a
    valid trace (S3, lewr and fixed-lehash guests, host launches, policies), the checks
    launch by launch find no failure, and the summary is the validated run's."""
    monkeypatch.setattr(fast, "_BLOCK", 16)
    tr = simref.random_trace(np.random.default_rng(seed))
    assert tr.validated
    copy = tr.take_rows(np.ones(len(tr), bool))  # the same rows, never validated
    assert not copy.validated
    checked = fast.simulate(copy, EagerLoad, CostModel(), validate=False)
    assert checked["failures"].get("SGX_INVALID_EINITTOKEN", 0) == 0
    assert checked == fast.simulate(tr, EagerLoad, CostModel())


@pytest.mark.parametrize("seed", range(6))
def test_small_blocks_change_nothing(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every design's summary with blocks of 8 launches equals the one with the default blocks."""
    rng = np.random.default_rng(seed)
    tr = simref.random_trace(rng)
    want = {label: fast.simulate(tr, d, CostModel()) for label, d in simref.BUILTIN_DESIGNS}
    monkeypatch.setattr(fast, "_BLOCK", 8)
    got = {label: fast.simulate(tr, d, CostModel()) for label, d in simref.BUILTIN_DESIGNS}
    assert got == want
