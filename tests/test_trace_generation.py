"""The vectorised trace generator against the per-slice loop it replaced, and its edge cases.

The reference functions below are the generator of sgxlab 0.1.0 before the
vectorisation (a Python loop with one ``argsort`` per time slice, one
``lexsort`` of every row): the new code must give the very same traces, so
pinned results elsewhere stay true. Hypothesis runs derandomized.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sgxlab.errors import ConfigError
from sgxlab.sim import trace as trace_mod
from sgxlab.sim import workloads as W
from sgxlab.sim.stats import exact_sum, latency_summary, percentile, percentiles
from sgxlab.sim.trace import EXIT, LAUNCH, S3, SCHED, Trace, VmSpec
from sgxlab.sim.workloads import make_trace

FAST = settings(max_examples=40, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
COLS = ("t", "kind", "cpu", "vm", "vcpu", "signer")

# --------------------------------------------------------------------------- the old generator


def old_schedule(
    rng: np.random.Generator, nslices: int, ncpus: int, nvcpus_total: int, stay: float, state: list[int]
) -> np.ndarray:
    out = np.empty((nslices, ncpus), np.int64)
    keep_draw = rng.random((nslices, ncpus)) < stay
    perm_keys = rng.random((nslices, nvcpus_total))
    for k in range(nslices):
        keep = [state[c] if (keep_draw[k, c] and state[c] >= 0) else -1 for c in range(ncpus)]
        kept = {x for x in keep if x >= 0}
        free = [x for x in np.argsort(perm_keys[k]).tolist() if x not in kept]
        it = iter(free)
        for c in range(ncpus):
            if keep[c] < 0:
                keep[c] = next(it, -1)
        state[:] = keep
        out[k] = keep
    return out


def old_vm_batch(rng, lay, slice0, nsl, state, prev_row):  # type: ignore[no-untyped-def]
    slice_, vcpus, host_cpus = lay.slice_, lay.vcpus, lay.host_cpus
    sched = old_schedule(rng, nsl, lay.vm_cpus, lay.total_vcpus, lay.stay, state)
    prev = np.vstack([prev_row[None, :], sched[:-1]])
    ks, cs = np.nonzero((sched != prev) & (sched >= 0))
    g = sched[ks, cs]
    cols = [
        (
            ((slice0 + ks) * slice_).astype(np.int64),
            np.full(len(ks), SCHED, np.int8),
            (host_cpus + cs).astype(np.int16),
            (g // vcpus).astype(np.int16),
            (g % vcpus).astype(np.int16),
            np.full(len(ks), -1, np.int16),
        )
    ]
    launches = 0
    run_k, run_c = np.nonzero(sched >= 0)
    run_g = sched[run_k, run_c]
    for ev_kind, iv in ((LAUNCH, lay.interval), (EXIT, lay.exit_iv)):
        if iv <= 0:
            continue
        idx = np.repeat(np.arange(len(run_k)), rng.poisson(slice_ / iv, len(run_k)))
        m = len(idx)
        et = (slice0 + run_k[idx]) * slice_ + rng.integers(1, slice_, m)
        eg = run_g[idx]
        evm = eg // vcpus
        if ev_kind == LAUNCH:
            es = lay.sfirst[evm] + np.floor(rng.random(m) * lay.scount[evm]).astype(np.int64)
            launches += m
        else:
            es = np.full(m, -1, np.int64)
        cols.append(
            (
                et.astype(np.int64),
                np.full(m, ev_kind, np.int8),
                (host_cpus + run_c[idx]).astype(np.int16),
                evm.astype(np.int16),
                (eg % vcpus).astype(np.int16),
                es.astype(np.int16),
            )
        )
    return cols, launches, sched[-1].copy()


def old_host_batch(rng, lay, t_lo, t_hi):  # type: ignore[no-untyped-def]
    nh = int(rng.poisson(lay.host_cpus * (t_hi - t_lo) / lay.host_interval))
    ht = np.sort(t_lo + rng.integers(0, t_hi - t_lo, nh)).astype(np.int64)
    hc = rng.integers(0, lay.host_cpus, nh).astype(np.int16)
    hs = rng.integers(0, lay.host_signers, nh).astype(np.int16)
    m1 = np.full(nh, -1, np.int16)
    return (ht, np.zeros(nh, np.int8), hc, m1, m1, hs)


def old_batches(rng, lay, target, per_slice):  # type: ignore[no-untyped-def]
    data = []
    prev_row = np.full(lay.vm_cpus, -1, np.int64)
    state = [-1] * lay.vm_cpus
    got = slice0 = 0
    while got < target:
        nsl = min(math.ceil((target - got) / per_slice * 1.1) + 2, 1_000_000)
        t_lo, t_hi = slice0 * lay.slice_, (slice0 + nsl) * lay.slice_
        cols = []
        if lay.host_cpus:
            cols.append(old_host_batch(rng, lay, t_lo, t_hi))
            got += len(cols[-1][0])
        if lay.vm_cpus and lay.total_vcpus:
            vm_cols, nlaunch, prev_row = old_vm_batch(rng, lay, slice0, nsl, state, prev_row)
            cols.extend(vm_cols)
            got += nlaunch
        data.append(tuple(np.concatenate([c[i] for c in cols]) for i in range(6)))
        slice0 += nsl
    if data:
        t, kind, cpu, vm, vcpu, signer = (np.concatenate([p[i] for p in data]) for i in range(6))
    else:
        return None
    order = np.lexsort((np.where(kind == SCHED, 0, 1), t))
    lpos = np.flatnonzero(kind[order] == LAUNCH)
    order = order[: int(lpos[target - 1]) + 1 if target else 0]
    return t[order], kind[order], cpu[order], vm[order], vcpu[order], signer[order]


def old_reuse_signers(rng, cpu, choices, reuse):  # type: ignore[no-untyped-def]
    n = len(cpu)
    draw = choices[rng.integers(0, len(choices), n)].astype(np.int16)
    if reuse <= 0.0 or n == 0:
        return draw
    fresh = rng.random(n) >= reuse
    order = np.argsort(cpu, kind="stable")
    cs = cpu[order]
    first = np.empty(n, bool)
    first[0] = True
    first[1:] = cs[1:] != cs[:-1]
    src = np.maximum.accumulate(np.where(fresh[order] | first, np.arange(n), 0))
    out = np.empty(n, np.int16)
    out[order] = draw[order][src]
    return out


def layout(**kw: Any) -> W._MixedLayout:
    vms, vcpus = kw.pop("vms", 2), kw.pop("vcpus", 2)
    v = {"vms": vms, "nolewr": kw.pop("nolewr", 0), "signers_per_vm": 2, "vcpus": vcpus}
    _, sfirst, scount = W._vm_layout(v, kw.get("host_signers", 0))
    base = {
        "host_cpus": 0,
        "host_signers": 0,
        "host_interval": 1,
        "vm_cpus": 2,
        "slice_": 1000,
        "interval": 300,
        "exit_iv": 200,
        "stay": 0.25,
    }
    base.update(kw)
    return W._MixedLayout(vcpus=vcpus, total_vcpus=vms * vcpus, sfirst=sfirst, scount=scount, **base)


# --------------------------------------------------------------------------- the scheduler


@FAST
@given(
    seed=st.integers(0, 2**32),
    nslices=st.integers(1, 700),
    ncpus=st.integers(1, 20),
    nvcpus=st.integers(1, 24),
    stay=st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.9, 0.99, 1.0]),
    warm=st.booleans(),
)
def test_schedule_matches_the_per_slice_loop(seed, nslices, ncpus, nvcpus, stay, warm):
    state0 = [-1] * ncpus
    if warm:  # a running start, as a second batch has
        pick = np.random.default_rng(seed + 1).permutation(nvcpus)[:ncpus].tolist()
        state0 = pick + [-1] * (ncpus - len(pick))
    s_old, s_new = list(state0), list(state0)
    a = old_schedule(np.random.default_rng(seed), nslices, ncpus, nvcpus, stay, s_old)
    b = W._schedule(np.random.default_rng(seed), nslices, ncpus, nvcpus, stay, s_new)
    assert b.dtype == np.int16 and b.shape == (nslices, ncpus)
    assert np.array_equal(a, b)
    assert s_old == s_new


@FAST
@given(
    seed=st.integers(0, 2**32),
    nslices=st.integers(1, 200),
    ncpus=st.integers(1, 40),
    nvcpus=st.integers(1, 60),
    stay=st.sampled_from([0.0, 0.3, 0.8, 1.0]),
    lane=st.integers(1, 9),
)
def test_short_lanes_are_corrected_exactly(seed, nslices, ncpus, nvcpus, stay, lane):
    # Short lanes force many corrections (and, above 16 CPUs, the table-based lockstep).
    rng = np.random.default_rng(seed)
    keep = W._keep_draws(rng, nslices, ncpus, stay)
    cand = W._candidates(rng, nslices, nvcpus, ncpus)
    want = old_schedule(np.random.default_rng(seed), nslices, ncpus, nvcpus, stay, [-1] * ncpus)
    out = W._lockstep(keep, cand, nvcpus, [-1] * ncpus, min(lane, nslices))
    W._fix_lanes(keep, cand, out, min(lane, nslices))
    assert np.array_equal(out, want)


@FAST
@given(
    seed=st.integers(0, 2**32),
    nslices=st.integers(1, 300),
    nvcpus=st.integers(1, 40),
    width=st.integers(1, 40),
    full=st.sampled_from([0, 512]),
)
def test_candidates_are_the_first_of_each_slices_order(seed, nslices, nvcpus, width, full):
    # Sorted whole (few vCPUs) or partitioned first (many; forced here with full=0): the same
    # prefix of each slice's argsort, padded with -1.
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(W, "_FULL_SORT_VCPUS", full)
        got = W._candidates(np.random.default_rng(seed), nslices, nvcpus, width)
    keys = np.random.default_rng(seed).random((nslices, nvcpus))
    want = np.full((nslices, width), -1, np.int16)
    want[:, : min(width, nvcpus)] = np.argsort(keys, axis=1)[:, :width]
    assert got.dtype == np.int16 and np.array_equal(got, want)


def test_schedule_edge_cases():
    rng = np.random.default_rng
    # One CPU, one vCPU: always running, never idle.
    assert (W._schedule(rng(0), 50, 1, 1, 0.25, [-1]) == 0).all()
    # More CPUs than vCPUs: every vCPU runs in every slice, the other CPUs idle.
    s = W._schedule(rng(1), 300, 6, 3, 0.4, [-1] * 6)
    assert ((s >= 0).sum(axis=1) == 3).all()
    assert all(sorted(r[r >= 0].tolist()) == [0, 1, 2] for r in s)
    # stay = 1: the first slice's assignment forever; stay = 0: fresh every slice.
    s = W._schedule(rng(2), 100, 4, 9, 1.0, [-1] * 4)
    assert (s == s[0]).all()
    # Running vCPUs are distinct in every slice.
    s = W._schedule(rng(3), 400, 7, 9, 0.5, [-1] * 7)
    assert all(len(set(r.tolist())) == 7 for r in s)
    assert W._schedule(rng(4), 0, 3, 5, 0.5, [-1] * 3).shape == (0, 3)


# --------------------------------------------------------------------------- whole batches


@FAST
@given(
    seed=st.integers(0, 2**32),
    target=st.integers(0, 400),
    host_cpus=st.integers(0, 3),
    vm_cpus=st.integers(1, 6),
    vms=st.integers(1, 4),
    vcpus=st.integers(1, 4),
    slice_=st.sampled_from([2, 3, 1000, 2**31, 2**31 + 7]),
    stay=st.sampled_from([0.0, 0.25, 0.9]),
    exits=st.booleans(),
    guess=st.sampled_from([1.0, 1.0, 4.0]),
)
def test_mixed_batches_match_the_old_sort(seed, target, host_cpus, vm_cpus, vms, vcpus, slice_, stay, exits, guess):
    lay = layout(
        host_cpus=host_cpus,
        host_signers=2 if host_cpus else 0,
        host_interval=max(1, slice_ // 2),
        vm_cpus=vm_cpus,
        vms=vms,
        vcpus=vcpus,
        nolewr=1,
        slice_=slice_,
        interval=max(1, slice_ // 3),
        exit_iv=max(1, slice_ // 4) if exits else 0,
        stay=stay,
    )
    busy = min(vm_cpus, vms * vcpus)
    per_slice = (host_cpus / lay.host_interval + busy / lay.interval) * slice_ * guess  # 4: several batches
    r_old, r_new = np.random.default_rng(seed), np.random.default_rng(seed)
    old = old_batches(r_old, lay, target, per_slice)
    new, exits = W._mixed_batches(r_new, lay, target, per_slice, more=True)
    assert exits.dtype == np.int64 and len(exits) == vms
    # the stream goes on where the old one did (S3 times are drawn next)
    assert r_old.integers(0, 2**62) == r_new.integers(0, 2**62)
    if old is None:
        assert all(len(c) == 0 for c in new) and not exits.any()
        return
    assert_rows_without_exits(old, new, exits, vms)


def assert_rows_without_exits(old: tuple[np.ndarray, ...], new: tuple[np.ndarray, ...], exits, nvms: int) -> None:
    """``new`` is ``old`` without its EXIT rows, and ``exits`` counts those rows per VM."""
    listed = old[1] == EXIT
    for (name, dt), a, b in zip(trace_mod._COLUMNS, old, new):
        assert np.array_equal(a[~listed], b), name
        assert b.dtype == dt, name
    assert np.array_equal(exits, np.bincount(old[3][listed], minlength=nvms))


def test_merge_cuts_in_many_chunks_and_batches():
    # An estimate of launches per slice 20 times too high: many small batches, each
    # merged on its own (batches never overlap in time) and cut in the last one.
    lay = layout(vm_cpus=3, vms=2, vcpus=2, slice_=2, interval=8, exit_iv=4, stay=0.4)
    per_slice = 20 * 3 * 2 / 8
    old = old_batches(np.random.default_rng(7), lay, 6_000, per_slice)
    new, exits = W._mixed_batches(np.random.default_rng(7), lay, 6_000, per_slice)
    assert old is not None
    assert_rows_without_exits(old, new, exits, 2)


def test_exits_cut_with_their_slice_in_blocks(monkeypatch):
    # The cut slice's exits straddle offset blocks; the counts are those of the old rows.
    monkeypatch.setattr(W, "_BLOCK", 7)
    lay = layout(vm_cpus=3, vms=3, vcpus=2, slice_=1000, interval=300, exit_iv=9, stay=0.3)
    for seed in range(5):
        old = old_batches(np.random.default_rng(seed), lay, 200, 10.0)
        new, exits = W._mixed_batches(np.random.default_rng(seed), lay, 200, 10.0)
        assert old is not None
        assert_rows_without_exits(old, new, exits, 3)


@FAST
@given(
    seed=st.integers(0, 2**32),
    n=st.integers(0, 3000),
    ncpus=st.integers(1, 20),
    used=st.integers(1, 20),
    reuse=st.floats(0, 1),
    block=st.one_of(st.none(), st.integers(1, 64)),
)
def test_reuse_signers_match(seed, n, ncpus, used, reuse, block):
    # small blocks cut CPU runs (the carried signer); CPUs may have no launches, and
    # more than 16 take the sort instead of the counting placement
    cpu = np.random.default_rng(seed).integers(0, min(used, ncpus), n).astype(np.int16)
    for choices in (np.arange(5), np.array([4, 2, 7])):
        with pytest.MonkeyPatch.context() as mp:
            if block is not None:
                mp.setattr(W, "_REUSE_BLOCK", block)
                mp.setattr(W, "_BLOCK", block)  # the picks' blocks (_small_ints)
                mp.setattr(trace_mod, "_ORDER_BLOCK", block)
            a = old_reuse_signers(np.random.default_rng(seed), cpu, choices, reuse)
            b, order = W._reuse_signers(np.random.default_rng(seed), cpu, choices, reuse, ncpus)
        assert np.array_equal(a, b) and b.dtype == np.int16
        if order is not None:
            assert np.array_equal(order, np.argsort(cpu, kind="stable"))


@FAST
@given(
    seed=st.integers(0, 2**32),
    n=st.integers(0, 400),
    gap=st.floats(0.5, 1e9),
    t0=st.integers(0, 9),
    block=st.integers(1, 50),
)
def test_poisson_times_are_the_floored_sums(seed, n, gap, t0, block):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(W, "_CAST_BLOCK", block)
        got = W._poisson_times(np.random.default_rng(seed), n, gap, t0)
    ref = np.floor(np.cumsum(np.random.default_rng(seed).exponential(gap, n))).astype(np.int64) + t0
    assert got.dtype == np.int64 and np.array_equal(got, ref)


def test_small_ints_continue_one_stream_across_blocks(monkeypatch):
    # Blocks of int32 draws give exactly one call's values, and leave the generator where
    # one call does, also when Lemire's method rejects draws inside a block: with
    # high = 32513 a draw is rejected with probability 32509/2**32 (the most of any
    # int16 bound), so 1.5 M draws reject about 11 (checked: the bit generator has
    # moved past the n/2 64-bit outputs they would take without a rejection).
    n, high, seed = 1_500_001, 32513, 5
    monkeypatch.setattr(W, "_BLOCK", 99_999)  # odd: blocks end inside a 64-bit output
    rng = np.random.default_rng(seed)
    got = W._small_ints(rng, n, high)
    ref_rng = np.random.default_rng(seed)
    ref = ref_rng.integers(0, high, n)
    assert got.dtype == np.int16 and np.array_equal(got, ref)
    assert rng.bit_generator.state == ref_rng.bit_generator.state
    assert rng.random() == ref_rng.random()
    plain = np.random.PCG64(seed)
    plain.advance((n + 1) // 2)
    assert plain.state["state"] != rng.bit_generator.state["state"]  # there were rejections


@FAST
@given(
    seed=st.integers(0, 2**32),
    n=st.integers(0, 500),
    ncpus=st.integers(1, 20),
    lo=st.integers(-2, 0),
    extra=st.integers(0, 2),
    block=st.integers(1, 64),
)
def test_stable_cpu_order_is_the_stable_argsort(seed, n, ncpus, lo, extra, block):
    # CPU numbers outside [0, ncpus) (lo < 0, extra > 0) fall back to sorting
    cpu = np.random.default_rng(seed).integers(lo, ncpus + extra, n).astype(np.int16)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(trace_mod, "_ORDER_BLOCK", block)
        got = trace_mod.stable_cpu_order(cpu, ncpus)
    assert got.dtype == np.int32 and np.array_equal(got, np.argsort(cpu, kind="stable"))


@pytest.mark.parametrize(
    ("workload", "params"),
    [
        ("host-only", {"launches": 3000, "cpus": 5}),
        ("host-only", {"launches": 300, "cpus": 1}),
        ("host-only", {"launches": 3000, "cpus": 3, "reuse": 0.0}),
        ("suspend-resume", {"launches": 3000, "cpus": 4, "s3": 7}),
        ("multi-tenant", {"launches": 2000}),
    ],
)
def test_kept_cpu_order(workload, params):
    """The CPU order a generator hands over is the one the trace would compute itself."""
    tr = make_trace(workload, params, seed=3)
    kept = tr.launch_cpu_order()
    fresh = Trace(tr.ncpus, tr.nsigners, tr.vms, tr.t, tr.kind, tr.cpu, tr.vm, tr.vcpu, tr.signer)
    want = fresh.launch_cpu_order()
    assert (kept is None) == (want is None)
    if want is not None:
        assert np.array_equal(kept, want)
        cpu_l = tr.cpu[tr.kind == 0]
        assert np.array_equal(want, np.argsort(cpu_l, kind="stable"))


def test_cpu_order_forgotten_on_new_column():
    tr = make_trace("host-only", {"launches": 500, "cpus": 3}, seed=1)
    assert tr.launch_cpu_order() is not None
    tr.cpu = np.zeros(len(tr), np.int16)
    tr.validate()
    assert tr.launch_cpu_order() is None


# --------------------------------------------------------------------------- pinned traces

PINNED = {
    ("multi-tenant", (), 0): "75187ebdd60f0957",
    ("multi-tenant", (("cpus", 1), ("vcpus", 1), ("vms", 1), ("launches", 3000)), 0): "fba7d8621d158975",
    (
        "multi-tenant",
        (("cpus", 3), ("vms", 20), ("vcpus", 3), ("nolewr", 5), ("stay", 0.9), ("s3", 7)),
        1,
    ): "89105e0c3cc847a1",
    ("mixed", (("host_cpus", 3), ("vm_cpus", 6), ("vms", 2), ("vcpus", 2), ("stay", 0.6)), 2): "1ce55b173529d3ca",
    ("workshop", (), 0): "050946f2dc4e4871",
    ("host-only", (("launches", 5000), ("cpus", 7), ("signers", 5), ("reuse", 1.0)), 1): "937a13f79f055637",
    ("suspend-resume", (("launches", 2000), ("s3", 50), ("cpus", 1)), 4): "da5f5d94fa951ce2",
    ("enclave-churn", (("launches", 999), ("signers", 7), ("cpus", 3)), 3): "5a3d96493b1111c8",
}


def digest(tr: Trace) -> str:
    h = hashlib.sha256()
    for c in COLS:
        a = getattr(tr, c)
        h.update(a.dtype.str.encode() + a.tobytes())
    h.update(repr(tr.vm_exits).encode())
    return h.hexdigest()[:16]


@pytest.mark.parametrize("case", list(PINNED))
def test_traces_are_pinned(case):
    # Recorded with the per-slice generator before the vectorisation: the traces did not change.
    # Since the guest workloads count their exits (vm_exits) the digests cover the counts; the
    # rows are the old ones without the EXIT rows and the counts the old EXIT rows per VM (the
    # new pins were checked against the generator that still made EXIT rows, d4d8cd5).
    name, params, seed = case
    assert digest(make_trace(name, dict(params), seed)) == PINNED[case]


def test_zero_launches_and_dtypes():
    for name in W.WORKLOADS:
        tr = make_trace(name, {"launches": 0}, 3)
        assert len(tr) == 0 or (tr.kind != LAUNCH).all()
        for c, dt in trace_mod._COLUMNS:
            assert getattr(tr, c).dtype == dt
    tr = make_trace("multi-tenant", {"launches": 1, "cpus": 1, "vms": 1, "vcpus": 1}, 0)
    assert tr.launches == 1 and tr.kind[-1] == LAUNCH and tr.kind[0] == SCHED


# --------------------------------------------------------------------------- validation


def random_trace(seed: int, corrupt: bool) -> Trace:
    rng = np.random.default_rng(seed)
    params = {
        "launches": int(rng.integers(0, 120)),
        "host_cpus": int(rng.integers(1, 3)),
        "vm_cpus": int(rng.integers(1, 5)),
        "vms": int(rng.integers(1, 4)),
        "vcpus": int(rng.integers(1, 4)),
        "nolewr": 1,
        "slice": int(rng.choice([200, 2_000_000])),
        "s3": int(rng.integers(0, 3)),
    }
    tr = make_trace("mixed", params, seed)
    cols = {c: getattr(tr, c).copy() for c in COLS}
    if corrupt and len(tr):
        i = int(rng.integers(0, len(tr)))
        what = rng.integers(0, 6)
        if what == 0:
            cols["cpu"][i] = rng.integers(0, tr.ncpus)
        elif what == 1:
            cols["vcpu"][i] = rng.integers(0, params["vcpus"])
        elif what == 2:
            cols["kind"][i] = rng.choice([LAUNCH, SCHED, EXIT])
        elif what == 3:
            cols["vm"][i] = rng.integers(-1, params["vms"])
        elif what == 4:
            cols["signer"][i] = rng.integers(0, tr.nsigners)
        else:
            j = int(rng.integers(0, len(tr)))
            for c in COLS[1:]:
                cols[c][[i, j]] = cols[c][[j, i]]
    return Trace(tr.ncpus, tr.nsigners, tr.vms, **cols, allowlist=tr.allowlist, policy=tr.policy)


@settings(FAST, max_examples=25)
@given(seed=st.integers(0, 2**32), corrupt=st.booleans())
def test_table_validation_agrees_with_the_sorted_one(seed, corrupt):
    tr = random_trace(seed, corrupt)
    a, b = tr._rows_ok_tables(), tr._rows_ok_sorted()
    assert a == b
    if not a:
        with pytest.raises(ConfigError, match="trace row"):
            tr._validate_rows()


def test_validation_falls_back_to_sorting_for_big_tables(monkeypatch):
    tr = random_trace(11, False)
    monkeypatch.setattr(trace_mod, "_TABLE_CELLS", 1)
    assert tr._rows_ok_tables() is None and tr._rows_ok()


def test_validation_edge_rules():
    vms = (VmSpec(2, True), VmSpec(1, False, 0))
    ok = [(0, SCHED, 1, 0, 0, -1), (5, LAUNCH, 1, 0, 0, 1), (6, SCHED, 2, 0, 0, -1), (7, EXIT, 2, 0, 0, -1)]
    assert Trace.from_rows(ok, ncpus=3, nsigners=2, vms=vms)._rows_ok_tables()
    # The vCPU moved to CPU 2: acting on CPU 1 again is refused (table and sort alike).
    bad = [*ok, (8, LAUNCH, 1, 0, 0, 1)]
    tr = Trace.from_rows(bad, ncpus=3, nsigners=2, vms=vms)
    assert tr._rows_ok_tables() is False and tr._rows_ok_sorted() is False
    # An act on a CPU outside every SCHED, and a host launch on a VM CPU.
    for extra in ((9, EXIT, 0, 0, 0, -1), (9, LAUNCH, 2, -1, -1, 0)):
        tr = Trace.from_rows([*ok, extra], ncpus=3, nsigners=2, vms=vms)
        assert tr._rows_ok_tables() is False and tr._rows_ok_sorted() is False
    # S3 rows with junk in their other columns are ignored.
    tr = Trace.from_rows([*ok, (9, S3, 7, 5, 5, 5)], ncpus=3, nsigners=2, vms=vms)
    assert tr._rows_ok_tables() is True and tr._rows_ok_sorted() is True


def test_validation_tables_past_int16_vcpu_keys():
    # More than 32,767 vCPUs in all: the vCPU keys no longer fit the int16 radix sort.
    vms = (VmSpec(30_000, True), VmSpec(30_000, True))
    ok = [(0, SCHED, 0, 1, 29_999, -1), (1, SCHED, 1, 0, 5, -1), (2, LAUNCH, 0, 1, 29_999, 0)]
    moved = [*ok, (3, SCHED, 1, 1, 29_999, -1), (4, LAUNCH, 0, 1, 29_999, 0)]  # it left CPU 0
    for rows, want in ((ok, True), (moved, False)):
        tr = Trace.from_rows(rows, ncpus=2, nsigners=1, vms=vms)
        assert tr._rows_ok_tables() is want and tr._rows_ok_sorted() is want


# --------------------------------------------------------------------------- statistics


@FAST
@given(st.lists(st.integers(-(2**62), 2**62), max_size=300))
def test_percentiles_equal_the_sorted_ones(values):
    a = np.array(values, dtype=np.int64)
    s = np.sort(a)
    for q in (0.0, 0.01, 0.5, 0.99, 1.0):
        assert percentiles(a, (q,)) == [percentile(s, q)]
    assert exact_sum(a) == sum(values)
    summary = latency_summary(a)
    assert summary["p50"] == percentile(s, 0.5) and summary["p99"] == percentile(s, 0.99)
    assert summary["max"] == (int(s[-1]) if len(s) else 0)


def test_exact_sum_past_int64():
    v = np.full(10, 2**62, dtype=np.int64)
    assert exact_sum(v) == 10 * 2**62
    assert latency_summary(np.array([], dtype=np.int64)) == {"mean": 0.0, "p50": 0, "p99": 0, "max": 0}


def test_kept_cpu_order_survives_a_pickle():
    """A trace shipped to a worker (a sweep's process pool, Dask) keeps a correct order,
    including the "already in CPU order" case of a one-CPU trace."""
    import pickle

    for params in ({"launches": 400, "cpus": 1}, {"launches": 400, "cpus": 3}):
        tr = make_trace("host-only", params, seed=2)
        want = tr.launch_cpu_order()
        back = pickle.loads(pickle.dumps(tr))
        got = back.launch_cpu_order()
        assert (got is None) == (want is None)
        if want is not None:
            assert np.array_equal(got, want)
