"""The fast engine: the contract of ``docs/simulator.md`` computed with numpy.

The exact engine replays a :class:`~sgxlab.sim.trace.Trace` event by event
through the emulator. This engine answers the same question from the trace's
columns, with no per-launch Python loop, and must return **identical** summary
metrics (the differential tests in ``tests/test_differential.py`` hold it to
that). It knows the built-in designs only; for anything else it raises
:class:`~sgxlab.errors.EngineUnsupported` instead of guessing.

How each design becomes array arithmetic
----------------------------------------

Launches are sorted stably by physical CPU (the trace's kept
:meth:`Trace.launch_cpu_order`, sorted once per trace), so every CPU's
launches form one contiguous run in trace order and "the previous launch on
this CPU" is the previous element. The four hash words are compared as small
integer ids (equal 64-bit words get equal ids; Intel's reset value and zero
have their own), so a partial collision between two signers' words would
still be counted word by word; a launch's pair (what the MSRs or the cache
held, what it wants) is one small int indexing tables of those comparisons
(:func:`_pair_codes`). With ``s3[i]`` = number of S3 events before launch *i*:

* ``always-write``: 4 WRMSR per launch; never fails.
* ``read-compare``: H before a launch is the previous launch's words on that
  CPU unless ``s3`` changed since (then Intel's); WRMSR = words that differ.
* ``percpu-cache``: C before a launch is the previous launch's words (the
  cache's initial value for the first: zero, the 2019 default, or Intel's);
  WRMSR = words where C differs. Word *k* is stale when it is not written,
  differs from Intel's, and no write of word *k* on that CPU came after the
  last S3 (or ever: a zero cache never writes a zero word, and H holds
  Intel's there since boot), found with a running maximum of the positions
  of the writes.
* ``percpu-cache-retry``: after any launch not cut short by interrupts
  H = w; the last attempt fails iff, for some unwritten word that differs
  from Intel's, the launch is its CPU's first or ``s3`` changed since the
  previous launch on the CPU; then 4 more WRMSRs and a second EINIT. With
  launches whose every attempt was interrupted (they repair nothing), the
  same running maximum as above, over "writes of word *k* and launches not
  cut short", decides.
* ``eager-load``: H on a CPU is set by the last schedule-in (the vCPU's
  virtual hash at that moment: its last lewr launch's signer, else its VM's
  ``lehash``), lewr-guest launch or host launch on that CPU, unless an S3
  came later; a guest without lewr fails when that H is not its signer. On
  a validated trace it never does (docs/simulator.md: the launching vCPU is
  current on its CPU, so the last write of H there was its own schedule-in,
  reload or lewr passthrough), so a validated trace skips the check, and
  the differential tests hold the exact engine, which runs every EINIT, to
  that. A trace run with ``validate=False`` that never passed validation is
  checked: per such launch, the last setter launch comes from a running
  maximum over the CPU-sorted launches and the last schedule-in from the
  schedule-ins sorted by CPU (:func:`_eager_failures`).

Interrupts during EINIT (the trace's ``unmasked`` column, k per launch):
a launch makes ``a = min(k + 1, 1000)`` attempts and fails with
SGX_UNMASKED_EVENT when k = 1000. Every attempt costs the lock, the ENCLS
trap (trapped guests), the guest's 4 intercepted WRMSRs (lewr) and an EINIT;
always-write and eager-load's host and passthrough writes repeat per attempt,
read-compare's RDMSRs too; the caches' writes happen on the first attempt
only. So the per-launch arithmetic above is unchanged and the attempts only
multiply terms (``att_s``); without the column nothing of this runs.

S3 resumes schedule every current vCPU in again (:func:`_s3_reloads`): a
SCHED row keeps its vCPU current until the next SCHED onto its CPU or of
its vCPU, and every S3 in between reloads it. Their number is added to
``schedule_ins`` (and, under eager-load, 4 WRMSR each); eager-load also
merges them into its per-CPU state as SCHED rows right after their S3 row.

The host launch policy (the trace's, or a
:class:`~sgxlab.kvm.policy.HostPolicy` given to :func:`simulate`) is asked
once per run by :func:`sgxlab.sim.hostpolicy.run_tables`, which both engines
share; its answers are tables by VM and signer, so they become array
lookups. A VM it refuses never exists: the trace is replayed without its
rows (:meth:`Trace.without_vms`). A refused launch (a host launch of a
signer ``host_refused``, or a trapped guest launch of one
``guest_refused`` in its VM) never reaches the design: it is taken out of
the launches before any of the arithmetic above, so it touches no H or C,
takes no lock and waits in no queue; it is counted in ``refusals`` and
``launches`` with its own latency (0 for the host; the ENCLS trap plus, for
a lewr guest, its 4 intercepted WRMSRs). ``mainline``'s PROVISIONKEY gate
(:func:`~sgxlab.sim.hostpolicy.gate_rows`) takes its launches out the same
way, counted in ``gate_refusals`` too: a host one (``-EACCES``) with latency
0, a guest one (#GP at its trapped ECREATE, before the lewr WRMSRs and any
EINIT exit, so no ``encls_exits`` or ``msr_exits``) with latency
``encls_trap``. A host with one launch enclave
(``single-le``) loads the LE's hash for every host launch: the host
launches' wanted words are the LE's, and a launch fails exactly when H
differs from them, as without a token (a token's MAC only verifies under
the launch key derived from the LE's hash in the MSRs). ``bypasses`` are the
guest launches that succeed for a signer the policy does not ``permits``.

The trace is checked with :meth:`Trace.validate` first (``validate=False``
skips that for a trace that has just passed it): a trace outside the
contract's rules is refused, never approximated.

Timing is Lindley's recursion per queue in closed form: with ``E`` the
exclusive running sum of service times, ``wait = cummax(A - E) - (A - E)``
(one queue for a global lock, else one per CPU), computed a block of
launches at a time (:func:`_queue_pass`; the running sum and maximum carry
over, the maximum restarts at each CPU's run). Without interrupts a launch's
service time is ``table[code]``, ``code`` an int8 number made of its few
counts (WRMSRs, trap, lewr exits, forced retry; :func:`_service`), so no
int64 service column exists and the total comes from the counts. Everything
is int64 and exact; the latencies are stored as int32 while they fit
(:class:`_LatencyStore`), and their p50 and p99 are found by
:func:`sgxlab.sim.stats.percentiles` (sampled brackets, exact).

Memory: the large passes go a block (``_BLOCK`` launches) at a time into
small reused buffers, so the working set is a few narrow per-launch columns:
the latencies (4 bytes while they fit in int32), the CPU-sorted trace rows
when not every row is a launch (int32, 4), flags and codes (bool/int8, 1
each). Measured with tracemalloc on 10 M launches: 5 to 6 bytes per launch
on ``host-only``, 11 to 12 on ``multi-tenant`` (3.1 rows per launch), 15 for
eager-load there (its schedule-ins). The trace's kept CPU order (int32, 4
bytes per launch) belongs to the trace and is not counted; ``bench/run.py``
and ``bench/trace.py`` measure whole 10 M-launch runs.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np

from sgxlab.errors import ConfigError, EngineUnsupported
from sgxlab.host.designs import (
    INITIAL_VALUES,
    LOCKS,
    AlwaysWrite,
    Design,
    EagerLoad,
    PerCpuCache,
    PerCpuCacheRetry,
    ReadCompare,
    design_class,
)
from sgxlab.hw.arch import INTEL_LEPUBKEYHASH, Words
from sgxlab.kvm.policy import HostPolicy
from sgxlab.sim.budget import Budget, check_trace
from sgxlab.sim.costs import CostModel
from sgxlab.sim.hostpolicy import GATE_EACCES, GATE_ECREATE_GP, PolicyTables, gate_rows, run_tables, signer_hashes
from sgxlab.sim.stats import exact_sum, latency_summary
from sgxlab.sim.trace import EXIT, LAUNCH, MAX_EINIT_ATTEMPTS, S3, SCHED, Trace

__all__ = ["simulate", "model_of", "Model", "signer_words", "signer_word_ids", "BUILTIN_MODES"]

BUILTIN_MODES: dict[type[Design], str] = {
    AlwaysWrite: "always-write",
    ReadCompare: "read-compare",
    PerCpuCache: "percpu-cache",
    PerCpuCacheRetry: "percpu-cache-retry",
    EagerLoad: "eager-load",
}
"""The design classes this engine models, by the behaviour it computes for them."""

# (traps_einit, loads_on_schedule) each built-in behaviour assumes.
_FLAGS = {
    "always-write": (True, False),
    "read-compare": (True, False),
    "percpu-cache": (True, False),
    "percpu-cache-retry": (True, False),
    "eager-load": (False, True),
}

_I64 = np.int64

_BLOCK = 1 << 16
"""Launches per block of the blockwise passes: their buffers (512 KB of int64) stay in cache
and are reused, instead of fresh full-length temporaries the kernel must zero."""


class Model(NamedTuple):
    """What the engine computes for a design: the built-in behaviour, its lock,
    whether KVM traps guest EINIT, and (cache designs) the cache's initial value."""

    mode: str
    lock: str | None
    traps: bool
    initial: str | None = None


def model_of(design: str | type[Design]) -> Model:
    """The :class:`Model` of a built-in design, else raise EngineUnsupported.

    A built-in class, or a class made by :meth:`PerCpuCache.variant` (which
    only fixes ``lock`` and ``initial``), is accepted. Any other class, even a
    trivial subclass, is refused: the engine cannot know what its hooks do.
    """
    if isinstance(design, Design):
        raise EngineUnsupported(f"the fast engine takes a design class or name, not an instance ({design!r})")
    cls = design_class(design)
    base = cls
    if cls not in BUILTIN_MODES:
        variant_of = cls.__dict__.get("variant_of")
        if variant_of in (PerCpuCache, PerCpuCacheRetry) and cls.__bases__ == (variant_of,):
            base = variant_of  # made by variant(): only lock and initial differ
        else:
            raise EngineUnsupported(
                f"the fast engine models only the built-in designs "
                f"({', '.join(BUILTIN_MODES.values())}); {cls.__qualname__} ({cls.name!r}) is not one "
                "of them: run it on the exact engine (engine='exact')"
            )
    mode = BUILTIN_MODES[base]
    if (bool(cls.traps_einit), bool(cls.loads_on_schedule)) != _FLAGS[mode]:
        raise EngineUnsupported(
            f"{cls.__qualname__} has traps_einit={cls.traps_einit}, loads_on_schedule={cls.loads_on_schedule}, "
            f"which the fast engine's model of {mode!r} does not cover: run it on the exact engine"
        )
    if cls.lock not in (None, *LOCKS):
        raise EngineUnsupported(f"{cls.__qualname__}.lock={cls.lock!r}: the fast engine knows None, 'global', 'percpu'")
    initial = None
    if issubclass(cls, PerCpuCache):
        initial = cls.initial
        if initial not in INITIAL_VALUES:
            raise EngineUnsupported(
                f"{cls.__qualname__}.initial={initial!r}: the fast engine knows {', '.join(INITIAL_VALUES)}"
            )
    return Model(mode, cls.lock, bool(cls.traps_einit), initial)


def signer_words(nsigners: int) -> list[Words]:
    """The four MSR words of signers ``0..nsigners-1``' hashes
    (:func:`sgxlab.sim.hostpolicy.signer_hashes`, cached per process)."""
    return [h.words for h in signer_hashes(nsigners)]


def signer_word_ids(nsigners: int) -> np.ndarray:
    """``(4, nsigners + 2)`` small ints: entry ``[k, s]`` identifies hash word *k* of signer *s*.

    Column ``-1`` (the last) is Intel's reset value, so a signer code of -1
    means "Intel's hash"; column ``-2`` is the all-zero hash (what the 2019
    per-CPU cache held at boot). Two entries of a row are equal iff the
    64-bit words are equal. The signers' hashes are
    :func:`sgxlab.sim.hostpolicy.signer_hashes` (each key file read once per
    process); the table is read-only, made once per set of hashes.
    """
    return _word_ids((*map(tuple, signer_words(nsigners)), (0, 0, 0, 0), INTEL_LEPUBKEYHASH.words))


@lru_cache(maxsize=16)
def _word_ids(words: tuple[tuple[int, ...], ...]) -> np.ndarray:
    ids = np.empty((4, len(words)), dtype=np.int8)
    for k in range(4):
        col = np.array([w[k] for w in words], dtype=np.uint64)
        _, inv = np.unique(col, return_inverse=True)
        ids[k] = inv.reshape(-1)
    ids.flags.writeable = False  # shared by every run with these hashes
    return ids


# --------------------------------------------------------------------------- helpers


def _vcpu_key(vm: np.ndarray, vcpu: np.ndarray, trace: Trace) -> np.ndarray:
    """A dense per-vCPU sort key (int16 when it fits, so numpy's radix sort applies)."""
    maxv = max((s.nvcpus for s in trace.vms), default=1)
    span = len(trace.vms) * max(maxv, 1)
    dt = np.dtype(np.int16 if span < 32767 else (np.int32 if span < 2**31 - 1 else np.int64))
    key: np.ndarray = vm.astype(dt)
    np.multiply(key, maxv, out=key, casting="unsafe")
    np.add(key, vcpu, out=key, casting="unsafe")
    return key


def _pos_dtype(n: int) -> type[np.signedinteger[Any]]:
    """The smallest index dtype for positions ``0..n`` (int32 below 2**31: half the memory)."""
    return np.int32 if n < 2**31 - 1 else np.int64


def _gather(col: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``col[idx]``, blockwise (a small index buffer, never a full-length int64 copy of ``idx``)."""
    out = np.empty(len(idx), dtype=col.dtype)
    for a in range(0, len(idx), _BLOCK):
        np.take(col, idx[a : a + _BLOCK], out=out[a : a + _BLOCK], mode="clip")
    return out


def _prev(w: np.ndarray, first: np.ndarray, boot: int) -> np.ndarray:
    """The previous element on the same CPU (``boot`` for each CPU's first launch)."""
    p = np.empty_like(w)
    if len(w):
        p[0] = boot
        p[1:] = w[:-1]
        p[first] = boot
    return p


def _pair_codes(want: np.ndarray, reset: np.ndarray, boot: int, m: int) -> np.ndarray:
    """``prev * m + want`` for each launch (CPU-sorted), ``prev`` being the previous launch's
    ``want`` on its CPU, or ``boot`` where ``reset``: one small int that indexes a table of
    ``(m, m)`` signer-column pairs (``m`` = columns of :func:`signer_word_ids`)."""
    dt = np.int16 if m * m <= np.iinfo(np.int16).max else np.int32
    pc = _prev(want, reset, boot).astype(dt, copy=False)
    np.multiply(pc, dt(m), out=pc)
    np.add(pc, want, out=pc, casting="unsafe")
    return pc


def _words_differing(ids: np.ndarray) -> np.ndarray:
    """For each pair code of :func:`_pair_codes`, how many of the four hash words differ (int8)."""
    diff = ids[:, :, None] != ids[:, None, :]  # (4, m, m)
    counts: np.ndarray = diff.sum(axis=0, dtype=np.int8)
    return counts.reshape(-1)


def _queue_pass(
    arrivals: Callable[[int, int, np.ndarray], np.ndarray],
    service: Callable[[int, int, np.ndarray], np.ndarray],
    n: int,
    starts: np.ndarray | None,
    lat: _LatencyStore,
    *,
    block: int | None = None,
) -> tuple[int, int]:
    """FIFO single-server queues by Lindley's recursion in closed form, one block at a time.

    Jobs ``0..n-1`` in queue order; ``arrivals(a, b, buf)`` and ``service(a, b, buf)``
    give the int64 arrival and service times of jobs ``a:b`` (in ``buf``, or any array
    the pass only reads). ``starts``: the ascending indices where a queue begins
    (``None``: one queue). With ``E`` the exclusive running sum of the service times,
    a job waits ``cummax(A - E) - (A - E)``, the running maximum taken within its
    queue (``E``'s offset cancels out, so one running sum serves all queues). The
    running sum and maximum are carried from block to block, so three block buffers
    are all the memory it takes. Puts each job's latency (wait + service) in ``lat``
    (from index 0); returns the exact total wait and the largest latency.
    """
    if n == 0:
        return 0, 0
    size = min(block or _BLOCK, n)
    buf_a, buf_s, buf_c = (np.empty(size, dtype=_I64) for _ in range(3))
    qs = np.zeros(1, dtype=np.int64) if starts is None else np.asarray(starts, dtype=np.int64)
    before = 0  # service of the jobs before the block
    carry = 0  # running maximum of A - E at the end of the previous block
    total_wait = top = 0
    for a in range(0, n, size):
        b = min(a + size, n)
        m = b - a
        Y = buf_a[:m]
        A = arrivals(a, b, Y)
        if A is not Y:
            np.copyto(Y, A)
        S = service(a, b, buf_s[:m])
        C = np.cumsum(S, out=buf_c[:m])
        np.subtract(C, S, out=C)
        C += _I64(before)  # E
        before = int(C[-1]) + int(S[-1])
        np.subtract(Y, C, out=Y)  # Y = A - E
        cuts = qs[np.searchsorted(qs, a) : np.searchsorted(qs, b)] - a  # queue starts in the block
        bounds = [0, *(int(c) for c in cuts if c), m]
        for s, e in itertools.pairwise(bounds):
            np.maximum.accumulate(Y[s:e], out=C[s:e])
        if a and not (len(cuts) and cuts[0] == 0):  # the block's first queue goes on from the last block
            np.maximum(C[: bounds[1]], _I64(carry), out=C[: bounds[1]])
        carry = int(C[-1])
        np.subtract(C, Y, out=C)  # the wait
        total_wait += exact_sum(C)
        np.add(C, S, out=C)  # the latency
        top = max(top, int(C.max()))
        lat.put(a, C, top)
    return total_wait, top


class _LatencyStore:
    """The latencies of a run, for the percentiles: int32 while every one so far fits
    (half the memory, and half the fresh pages), int64 from the first that does not."""

    def __init__(self, n: int, *, narrow: bool = True):
        self.values = np.empty(n, dtype=np.int32 if narrow else _I64)

    def put(self, a: int, block: np.ndarray, top: int) -> None:
        """Store ``block`` (int64, none above ``top``) at index ``a``."""
        if self.values.dtype == np.int32 and top > np.iinfo(np.int32).max:
            wide = np.empty(len(self.values), dtype=_I64)
            wide[:a] = self.values[:a]
            self.values = wide
        self.values[a : a + len(block)] = block


def _wait(A: np.ndarray, S: np.ndarray, starts: np.ndarray | None, *, block: int | None = None) -> np.ndarray:
    """Waiting time of each job under FIFO single-server queues (:func:`_queue_pass` over
    whole columns): ``A`` arrivals and ``S`` service times (int64) in queue order,
    ``starts`` where each queue begins (``None``: one queue). Returns int64 waits."""
    lat = _LatencyStore(len(A), narrow=False)
    _queue_pass(lambda a, b, _: A[a:b], lambda a, b, _: S[a:b], len(A), starts, lat, block=block)
    wait: np.ndarray = lat.values - S
    return wait


def _next_same(group: np.ndarray, rows: np.ndarray, none: int) -> np.ndarray:
    """For each of ``rows`` (ascending), the next one with the same ``group`` value (``none`` if none)."""
    out = np.empty(len(rows), dtype=np.int64)
    if len(rows):
        o = np.argsort(group, kind="stable")
        g = group[o]
        ro = rows[o]
        out[o[:-1]] = np.where(g[1:] == g[:-1], ro[1:], none)
        out[o[-1]] = none
    return out


def _s3_reloads(trace: Trace, s3_row: np.ndarray, *, expand: bool) -> tuple[int, np.ndarray | None]:
    """The implicit schedule-ins of S3 resumes (docs/simulator.md, S3).

    A SCHED row *j* keeps its vCPU current on its CPU until the next SCHED
    onto that CPU or of that vCPU, whichever comes first; every S3 row in
    between reloads it. Returns the number of reloads and, with ``expand``,
    an ``(4, n)`` int64 array of them (S3 row, cpu, vm, vcpu) in row order
    (by S3 row, then CPU). Work and memory are O(SCHED rows + reloads).
    """
    N = len(trace)
    # A SCHED after the last S3 reloads nothing, and leaving it out changes no
    # earlier SCHED's count (its end would be after that S3 too).
    last = int(np.searchsorted(s3_row, s3_row[-1]))  # the last S3 row
    sr = np.flatnonzero(trace.kind[:last] == SCHED)
    if not len(sr):
        return 0, (np.zeros((4, 0), np.int64) if expand else None)
    cpu_s, vm_s, vcpu_s = trace.cpu[sr], trace.vm[sr], trace.vcpu[sr]
    end = _next_same(cpu_s, sr, N)
    np.minimum(end, _next_same(_vcpu_key(vm_s, vcpu_s, trace), sr, N), out=end)
    end -= 1
    before = s3_row[sr]  # S3 rows before the SCHED (it is not one)
    cnt = s3_row[end] - before  # S3 rows strictly between the SCHED and its end
    del end
    total = int(cnt.sum(dtype=np.int64))
    if not expand:
        return total, None
    j = np.repeat(np.arange(len(sr)), cnt)
    first = np.cumsum(cnt, dtype=np.int64) - cnt
    ordinal = before[j] + (np.arange(total) - first[j])  # 0-based S3 number
    at = np.searchsorted(s3_row, ordinal + 1)  # that S3's row: where the running count reaches it
    out = np.stack([at, cpu_s[j].astype(np.int64), vm_s[j].astype(np.int64), vcpu_s[j].astype(np.int64)])
    o = np.lexsort((out[1], out[0]))
    return total, out[:, o]


def _eager_failures(
    trace: Trace, ids: np.ndarray, lo: _Order, lc: _Launches, ev: _Events, host_le: int | None
) -> np.ndarray:
    """Trace rows of the native guest EINITs that fail under eager-load (guests without lewr only).

    Such a launch (a *check*) meets the H that the last *setter* on its CPU
    before it left: a schedule-in (a SCHED row, or an S3 resume's reload, right after its
    S3 row: :func:`_s3_reloads`), a lewr guest's launch or a host launch (what it
    writes: its signer's hash, the LE's for a ``host_le`` host), unless an S3 came
    after that setter (then Intel's); it fails when H is not its signer's hash.
    Refused launches (not in ``lo``) write nothing. One pass over the CPU-sorted
    launches, a block at a time, carries the last setter launch (a running
    maximum of positions); each block's checks then find the last schedule-in
    among the schedule-ins sorted by CPU (:class:`_EagerChecks`). Memory: the
    schedule-ins and blocks, nothing of the launches' length.
    """
    none = np.zeros(0, dtype=np.int64)
    if lc.guest_s is None or not lo.nl:
        return none
    if lo.order is None and len(lo.starts) > 1:  # an unvalidated trace: one CPU declared, more used
        lo, lc = _sorted_by_cpu(trace, lo, lc)
    guest_s, lewr_s = lc.guest_s, lc.lewr_s
    assert guest_s is not None and lewr_s is not None
    checks = _EagerChecks(trace, ids, lo, lc, ev, host_le)
    fails = [none]
    carry = -1  # the last setter launch so far on the current CPU
    for a in range(0, lo.nl, _BLOCK):
        b = min(a + _BLOCK, lo.nl)
        setter = ~guest_s[a:b]
        setter |= lewr_s[a:b]
        runs = lo.starts[np.searchsorted(lo.starts, a, side="right") - 1 : np.searchsorted(lo.starts, b)]
        last, carry = _last_setters(setter, [int(r) - a for r in runs if r >= a], a, carry)
        c = np.flatnonzero(~setter)
        if not len(c):
            continue
        c += a
        rows = lo.rows(a, b)
        cut = np.searchsorted(c, runs[1:])  # the checks of each CPU run in the block
        for run, (i, j) in zip(runs, itertools.pairwise([0, *cut.tolist(), len(c)]), strict=True):
            if i < j:
                fails.append(checks.failing(c[i:j], last[c[i:j] - a], rows, a, int(run)))
    return np.concatenate(fails)


def _sorted_by_cpu(trace: Trace, lo: _Order, lc: _Launches) -> tuple[_Order, _Launches]:
    """``lo`` and the guest flags of ``lc`` stably sorted by CPU (for launches the trace's
    order leaves unsorted: a trace with ``ncpus=1`` that uses other CPUs, never validated)."""
    assert lc.guest_s is not None and lc.lewr_s is not None
    rows = lo.rows_at(np.arange(lo.nl))
    order = np.argsort(trace.cpu[rows], kind="stable")
    srows = rows[order]
    starts = _run_starts(trace.cpu, srows, lo.nl)
    first = np.zeros(lo.nl, dtype=bool)
    first[starts] = True
    return _Order(lo.nl, order, srows, first, starts), replace(lc, guest_s=lc.guest_s[order], lewr_s=lc.lewr_s[order])


def _take_rows(rows: np.ndarray | slice, i: np.ndarray) -> np.ndarray:
    """``rows[i]`` for a block's trace rows given as an array or as a slice (consecutive rows)."""
    if isinstance(rows, slice):
        out: np.ndarray = i + rows.start
    else:
        out = rows[i]
    return out


def _last_setters(setter: np.ndarray, starts: list[int], a: int, carry: int) -> tuple[np.ndarray, int]:
    """For CPU-sorted positions ``a, a+1, ...`` (one block), the last position at or before
    each on the same CPU where ``setter`` holds (-1: none), given ``carry``, the last one
    before the block, and ``starts``, where CPU runs start in the block (relative to ``a``);
    and the new carry."""
    pos = np.arange(a, a + len(setter), dtype=np.int64)
    last = np.where(setter, pos, -1)
    np.maximum(last[:1], carry, out=last[:1])
    np.maximum.accumulate(last, out=last)
    for s in starts:  # a setter of an earlier CPU is none of this one's
        run = last[s:]
        run[run < a + s] = -1
    return last, int(last[-1])


class _EagerChecks:
    """What eager-load's checks need besides the running maximum: the schedule-ins by CPU,
    the CPU of each run, and (built only if some check needs it) the lewr launches by vCPU."""

    def __init__(self, trace: Trace, ids: np.ndarray, lo: _Order, lc: _Launches, ev: _Events, host_le: int | None):
        self.trace, self.lo, self.lc, self.host_le, self.s3_row = trace, lo, lc, host_le, ev.s3_row
        self.m = ids.shape[1]
        self.differ = _words_differing(ids)
        self.ent = ent = _schedule_ins(trace, ev)
        run_cpu = trace.cpu[lo.rows_at(lo.starts)].astype(np.int64)
        # Each run's schedule-ins: ent[bounds[i]:bounds[i + 1]] are on the CPU of run i.
        self.ent_lo = np.searchsorted(ent.cpu, run_cpu, side="left")
        self.ent_hi = np.searchsorted(ent.cpu, run_cpu, side="right")
        # Each schedule-in's VM: its lehash, and whether it has lewr (then its vCPU's last lewr launch counts).
        self.ent_lehash = np.array([v.lehash for v in trace.vms], dtype=np.int64)[ent.vm]
        self.ent_lewr = np.array([v.lewr for v in trace.vms], dtype=bool)[ent.vm]
        self.lewr_index: tuple[np.ndarray, np.ndarray, int] | None = None

    def failing(
        self, chk: np.ndarray, last: np.ndarray, block_rows: np.ndarray | slice, a: int, run_start: int
    ) -> np.ndarray:
        """Trace rows of the failing checks among ``chk`` (CPU-sorted positions, ascending,
        all on the CPU whose run starts at ``run_start``, in the block from ``a`` whose
        launches' trace rows are ``block_rows``), ``last`` being the last setter launch
        before each on its CPU (-1: none)."""
        trace, ent, m = self.trace, self.ent, self.m
        rows = _take_rows(block_rows, chk - a).astype(np.int64)
        e, has_e = self.last_schedule_ins(rows, int(np.searchsorted(self.lo.starts, run_start)))
        e_key = np.full(len(chk), -1, dtype=np.int64)
        e_key[has_e] = ent.key[e[has_e]]
        has_l = last >= 0
        l_rows = np.zeros(len(chk), dtype=np.int64)
        inside = last >= a  # in the block (else an earlier one's, or none)
        l_rows[inside] = _take_rows(block_rows, last[inside] - a)
        before = has_l & ~inside
        if before.any():
            l_rows[before] = self.lo.rows_at(last[before])
        by_sched = e_key > np.where(has_l, 2 * l_rows, -1)  # the schedule-in came later
        H = np.full(len(chk), -1, dtype=np.int64)  # Intel's, unless a setter says otherwise
        use = has_l & ~by_sched
        if use.any():
            lr = l_rows[use]
            code = trace.signer[lr].astype(np.int64)
            if self.host_le is not None:
                code[trace.vm[lr] < 0] = self.host_le  # what a host launch writes: the LE's hash
            H[use] = code
        if by_sched.any():
            H[by_sched] = self.virtual_hashes(e[by_sched])
        if self.s3_row is not None:  # an S3 after the setter: Intel's again
            assert ent.s3 is not None
            s3_set = self.s3_row[l_rows]
            s3_set[by_sched] = ent.s3[e[by_sched]]
            H[(has_l | by_sched) & (s3_set != self.s3_row[rows])] = -1
        H[H < 0] += m  # -1: Intel's (column -1 of ids)
        H *= m
        H += np.take(trace.signer, rows)
        failed: np.ndarray = rows[self.differ[H] != 0]
        return failed

    def last_schedule_ins(self, rows: np.ndarray, run: int) -> tuple[np.ndarray, np.ndarray]:
        """For launches at trace ``rows`` (ascending) on the CPU of run ``run``, the index of
        the last schedule-in on that CPU before each (key 2*row; a reload's is 2*S3 row + 1)
        and whether there is one. Only the schedule-ins between the first and the last
        launch are placed among the launches (the fewer of the two), then counted."""
        e0, e1 = int(self.ent_lo[run]), int(self.ent_hi[run])
        keys = self.ent.key[e0:e1]
        want = 2 * rows
        i, j = np.searchsorted(keys, (want[0], want[-1]))
        at = np.searchsorted(want, keys[i:j])  # the first launch after each of those schedule-ins
        e = np.cumsum(np.bincount(at, minlength=len(want))[: len(want)])
        e += e0 + int(i) - 1
        return e, e >= e0

    def virtual_hashes(self, e: np.ndarray) -> np.ndarray:
        """The vCPU's virtual hash at schedule-ins ``e``: the signer of its last lewr launch
        before, else its VM's ``lehash`` (a VM without lewr never has one: ``lehash``)."""
        trace, ent = self.trace, self.ent
        out: np.ndarray = self.ent_lehash[e]
        find = self.ent_lewr[e]
        if not find.any():
            return out
        # Rare (on a valid trace a check meets only its own vCPU's schedule-in): search
        # the lewr launches by (vCPU, row).
        comp, lrows, maxv = self.lewr_launches()
        span = len(trace) + 1
        vkey = ent.vm[e[find]].astype(np.int64) * maxv + ent.vcpu[e[find]]
        j = np.searchsorted(comp, vkey * span + (ent.key[e[find]] - 1) // 2, side="right") - 1  # rows < key / 2
        ok = j >= 0
        ok[ok] = comp[j[ok]] // span == vkey[ok]
        got = out[find]
        got[ok] = trace.signer[lrows[j[ok]]]
        out[find] = got
        return out

    def lewr_launches(self) -> tuple[np.ndarray, np.ndarray, int]:
        """The lewr guests' launches sorted by ``vCPU key * (rows + 1) + row``: those keys,
        their rows and the vCPU key's multiplier (built once, on first need)."""
        if self.lewr_index is None:
            trace = self.trace
            assert self.lc.lewr_s is not None
            maxv = max(s.nvcpus for s in trace.vms) + 1
            lrows = self.lo.rows_at(np.flatnonzero(self.lc.lewr_s)).astype(np.int64)
            comp = (trace.vm[lrows].astype(np.int64) * maxv + trace.vcpu[lrows]) * (len(trace) + 1) + lrows
            o = np.argsort(comp)
            self.lewr_index = (comp[o], lrows[o], maxv)
        return self.lewr_index


class _ScheduleIns(NamedTuple):
    """The schedule-ins (SCHED rows and S3 reloads) sorted by CPU, then time."""

    cpu: np.ndarray  # int64
    key: np.ndarray  # 2 * trace row (a reload: 2 * its S3 row + 1)
    vm: np.ndarray
    vcpu: np.ndarray
    s3: np.ndarray | None  # S3 rows up to it (None: no S3)


def _schedule_ins(trace: Trace, ev: _Events) -> _ScheduleIns:
    """The schedule-ins eager-load loads the MSRs at, sorted by CPU (stably: by time within one)."""
    rows = ev.sched_rows if ev.sched_rows is not None else np.zeros(0, dtype=np.int64)
    rows = rows.astype(np.int64)
    key = 2 * rows
    cpu, vm, vcpu = trace.cpu[rows], trace.vm[rows], trace.vcpu[rows]
    s3 = ev.s3_row[rows] if ev.s3_row is not None else None
    if ev.reloads is not None and ev.reloads.shape[1]:
        assert ev.s3_row is not None and s3 is not None
        at, rc, rvm, rvc = ev.reloads
        key = np.concatenate([key, 2 * at + 1])
        cpu = np.concatenate([cpu, rc.astype(cpu.dtype)])
        vm = np.concatenate([vm, rvm.astype(vm.dtype)])
        vcpu = np.concatenate([vcpu, rvc.astype(vcpu.dtype)])
        s3 = np.concatenate([s3, ev.s3_row[at]])
        o = np.argsort(key, kind="stable")
        key, cpu, vm, vcpu, s3 = key[o], cpu[o], vm[o], vcpu[o], s3[o]
    o = np.argsort(cpu, kind="stable")
    return _ScheduleIns(cpu[o].astype(np.int64), key[o], vm[o], vcpu[o], None if s3 is None else s3[o].astype(np.int64))


# --------------------------------------------------------------------------- engine steps


@dataclass(frozen=True)
class _Refusals:
    """The launches the host policy refused, taken out before the designs see any."""

    n: int = 0
    n_guest: int = 0  # refused trapped guest EINITs (each an ENCLS exit)
    n_lewr: int = 0  # of those, lewr guests (they wrote their 4 MSRs first)
    rows: np.ndarray | None = None  # trace rows of the refused launches
    pos: np.ndarray | None = None  # their positions among the trace's launches
    lat: np.ndarray | None = None  # their latencies (= service; they queue nowhere)
    n_eacces: int = 0  # host launches the PROVISIONKEY gate refused (-EACCES)
    n_gp: int = 0  # guest launches it refused (#GP at ECREATE)

    def gate(self) -> dict[str, int]:
        """The summary's ``gate_refusals`` (non-zero entries only)."""
        out = {GATE_EACCES: self.n_eacces, GATE_ECREATE_GP: self.n_gp}
        return {k: n for k, n in out.items() if n}


@dataclass(frozen=True)
class _Events:
    """The trace's non-launch rows: counts, the running S3 count, the S3 reloads."""

    nsched: int  # schedule-ins, S3 reloads included
    nexit: int
    ns3: int
    s3_row: np.ndarray | None  # number of S3 rows up to each row (None: no S3)
    reloads: np.ndarray | None  # (4, n) reloads of :func:`_s3_reloads` (eager-load only)
    sched_rows: np.ndarray | None = None  # the SCHED rows (eager-load only)


@dataclass(frozen=True)
class _Order:
    """Which trace rows are the launches and how to sort them by CPU."""

    nl: int  # launches the designs see
    order: np.ndarray | None  # the stable CPU-sorting permutation of the launches (None: already sorted)
    srows: np.ndarray | None  # trace rows of the CPU-sorted launches (int32 when they fit; None: = order,
    # or 0..nl-1 without order, when every trace row is a launch)
    first: np.ndarray  # first launch on its CPU (CPU-sorted)
    starts: np.ndarray  # where each CPU's run starts (CPU-sorted positions, ascending)

    def column(self, col: np.ndarray) -> np.ndarray:
        """A trace column's launches in CPU-sorted order (a blockwise gather)."""
        idx = self.srows if self.srows is not None else self.order
        return col if idx is None else _gather(col, idx)

    def rows(self, a: int, b: int) -> np.ndarray | slice:
        """The trace rows of the CPU-sorted launches ``a:b`` (a slice when they are consecutive)."""
        idx = self.srows if self.srows is not None else self.order
        return slice(a, b) if idx is None else idx[a:b]

    def rows_at(self, pos: np.ndarray) -> np.ndarray:
        """The trace rows of the CPU-sorted launches at positions ``pos``."""
        idx = self.srows if self.srows is not None else self.order
        return pos if idx is None else idx[pos]

    def trace_order_rows(self) -> np.ndarray | None:
        """The launches' trace rows in trace order (``None``: every row is one)."""
        if self.srows is None:
            return None
        if self.order is None:
            return self.srows
        li = np.empty_like(self.srows)
        li[self.order] = self.srows
        return li


@dataclass(frozen=True)
class _Launches:
    """The CPU-sorted launch columns the designs' arithmetic reads."""

    sig_s: np.ndarray | None  # signer (None: the design needs no words, no bypass is possible)
    want_s: np.ndarray | None  # the words wanted in the MSRs (the LE's for a single-le host launch)
    guest_s: np.ndarray | None  # a guest launch (None: no VMs)
    lewr_s: np.ndarray | None  # a launch of a guest with lewr (None: no VMs)
    nguest: int
    nlewr: int
    s3_s: np.ndarray | None  # S3 rows before the launch (None: no S3)
    s3_changed: np.ndarray | None  # an S3 since the previous launch on this CPU


@dataclass(frozen=True)
class _Attempts:
    """EINIT attempts under interrupts (all None / 0 / nl without the ``unmasked`` column)."""

    att_s: np.ndarray | None  # EINIT attempts of each launch (CPU-sorted; None: one each)
    capped_s: np.ndarray | None  # every attempt interrupted: fails with SGX_UNMASKED_EVENT
    ncapped: int
    attempts: int  # in total


@dataclass(frozen=True)
class _Msrs:
    """The functional outcome: MSR accesses, failures and forced retries."""

    wr: np.ndarray | int  # WRMSRs of each launch (CPU-sorted), or of every launch
    rd: int = 0  # RDMSRs per attempt
    fail_s: np.ndarray | None = None  # final EINIT said SGX_INVALID_EINITTOKEN (CPU-sorted launches)
    fail_rows: np.ndarray | None = None  # or: trace rows of such launches
    retry_s: np.ndarray | None = None  # a forced rewrite and second EINIT (CPU-sorted)
    extra_wrmsr: int = 0  # WRMSRs outside launches (eager-load's schedule-ins)

    @property
    def failures(self) -> int:
        """Launches failing with SGX_INVALID_EINITTOKEN."""
        if self.fail_s is not None:
            return int(np.count_nonzero(self.fail_s))
        return len(self.fail_rows) if self.fail_rows is not None else 0


def _checked_costs(trace: Trace, costs: CostModel | None, validate: bool) -> CostModel:
    """Check the arguments (and, with ``validate``, the trace); return the cost model to use."""
    if costs is None:
        costs = CostModel()
    if not isinstance(costs, CostModel):
        raise ConfigError("costs", costs, "expected a CostModel")
    if not isinstance(trace, Trace):
        raise ConfigError("trace", trace, "expected a sgxlab.sim.trace.Trace")
    if validate:
        trace.validate()
    return costs


def _host_refusals(
    trace: Trace, tables: PolicyTables, is_launch: np.ndarray, traps: bool, costs: CostModel
) -> _Refusals:
    """Find the launches the host policy or the PROVISIONKEY gate refuses and clear them
    from ``is_launch`` (in place)."""
    host_ref = np.array(tables.host_refused, dtype=bool)
    guest_check = traps and len(trace.vms) > 0 and any(map(any, tables.guest_refused))
    if not (host_ref.any() or guest_check or tables.gates_anything):
        return _Refusals()
    lrows = np.flatnonzero(is_launch)
    if not len(lrows):
        return _Refusals()
    sig_l = trace.signer[lrows]
    vm_l = trace.vm[lrows]
    ref = (vm_l < 0) & host_ref[sig_l]
    n_eacces = n_gp = 0
    gp: np.ndarray | None = None
    gated = gate_rows(tables, np.ones(len(lrows), dtype=bool), vm_l, sig_l)
    if gated is not None:  # -EACCES on the host (after the policy); #GP at a guest's ECREATE (first)
        eacces, gp = gated
        n_eacces, n_gp = int(np.count_nonzero(eacces)), int(np.count_nonzero(gp))
        ref |= eacces | gp
    gref: np.ndarray | None = None
    if guest_check:
        gtab = np.array(tables.guest_refused, dtype=bool)  # (VM, signer)
        gref = (vm_l >= 0) & gtab[np.maximum(vm_l, 0), sig_l]
        if gp is not None:
            gref &= ~gp  # ECREATE failed: the guest never got to EINIT
        ref |= gref
    nref = int(np.count_nonzero(ref))
    if not nref:
        return _Refusals()
    pos = np.flatnonzero(ref)
    rows = lrows[pos]
    is_launch[rows] = False
    n_ref_guest = int(np.count_nonzero(gref)) if gref is not None else 0
    lat = np.zeros(nref - n_ref_guest - n_gp, dtype=_I64)  # the host's: no time at all
    nref_guest = nref_lewr = 0
    if gref is not None and n_ref_guest:
        lewr_g = np.array([v.lewr for v in trace.vms], dtype=bool)[vm_l[gref]]
        nref_guest = len(lewr_g)
        nref_lewr = int(np.count_nonzero(lewr_g))
        g_lat = lewr_g.astype(_I64) * _I64(4 * costs.vm_exit) + _I64(costs.encls_trap)
        lat = np.concatenate([lat, g_lat])
    if n_gp:  # the trapped ECREATE's exit
        lat = np.concatenate([lat, np.full(n_gp, costs.encls_trap, dtype=_I64)])
    return _Refusals(nref, nref_guest, nref_lewr, rows, pos, lat, n_eacces, n_gp)


def _events(trace: Trace, mode: str) -> _Events:
    """Count the SCHED, EXIT and S3 rows (and the exits the trace counts, ``vm_exits``), and
    the S3 resumes' implicit schedule-ins."""
    kind = trace.kind
    is_sched = kind == SCHED
    nsched = int(np.count_nonzero(is_sched))
    sched_rows = _true_rows(is_sched, nsched) if mode == "eager-load" else None
    del is_sched
    nexit = int(np.count_nonzero(kind == EXIT)) + sum(trace.vm_exits)  # listed and counted
    is_s3 = kind == S3
    ns3 = int(np.count_nonzero(is_s3))
    s3_row = np.cumsum(is_s3, dtype=np.int32) if ns3 else None
    del is_s3
    # S3 resume schedules every current vCPU in again: implicit SCHED rows.
    nreload = 0
    reloads: np.ndarray | None = None
    if s3_row is not None and nsched and len(trace.vms):
        nreload, reloads = _s3_reloads(trace, s3_row, expand=mode == "eager-load")
    return _Events(nsched + nreload, nexit, ns3, s3_row, reloads, sched_rows)


def _cpu_order(trace: Trace, is_launch: np.ndarray, ref: _Refusals) -> _Order:
    """Select the launches and sort them stably by CPU; mark each CPU's first launch.

    The order is the trace's kept :meth:`Trace.launch_cpu_order` (sorted once
    per trace), with the refused launches taken out of it. When not every row is
    a launch, the launches' rows are kept in CPU order (``srows``, int32: 4 bytes
    per launch), so a column is one gather away. Each CPU's run is found by
    binary search (the CPUs ascend along the order), not by a pass.
    """
    nl = int(np.count_nonzero(is_launch))
    li = None if nl == len(trace) else _true_rows(is_launch, nl)
    order = _kept_order(trace, ref)
    srows = li
    if li is not None and order is not None:
        srows = _gather(li, order)
        del li
    idx = srows if srows is not None else order
    if order is None:  # one CPU (or an unvalidated trace's odd CPU column): runs as they come
        cpu_l = trace.cpu if idx is None else _gather(trace.cpu, idx)
        starts = np.flatnonzero(np.r_[nl > 0, cpu_l[1:] != cpu_l[:-1]])
        del cpu_l
    else:
        starts = _run_starts(trace.cpu, idx, nl)
    first = np.zeros(nl, dtype=bool)  # first launch on its CPU
    first[starts] = True
    return _Order(nl, order, srows, first, starts)


_SMALL_RUN = 1 << 16
"""Up to this many launches, :func:`_run_starts` compares neighbours instead of searching."""


def _run_starts(cpu: np.ndarray, idx: np.ndarray | None, nl: int) -> np.ndarray:
    """Where each CPU's run starts among ``nl`` launches sorted by CPU, whose trace rows are
    ``idx`` (``None``: rows ``0..nl-1``): a vectorised binary search for the first launch
    on each CPU ``>= c``, reading ``cpu`` at about ``ncpus * log2(nl)`` rows. The CPUs
    searched run from the first launch's to the last's (at most ``ncpus`` of them on a
    valid trace; an unvalidated one's out-of-range CPUs get runs of their own too)."""
    if nl == 0:
        return np.zeros(0, dtype=np.int64)
    if nl <= _SMALL_RUN:  # a small run: one pass is cheaper than the search's Python loop
        cpu_s = cpu[:nl] if idx is None else cpu[idx]
        return np.flatnonzero(np.r_[True, cpu_s[1:] != cpu_s[:-1]])
    ends = np.array([0, nl - 1])
    c0, c1 = (int(c) for c in cpu[ends if idx is None else idx[ends]])
    want = np.arange(c0, c1 + 1)
    lo = np.zeros(len(want), dtype=np.int64)
    hi = np.full(len(want), nl, dtype=np.int64)
    while True:
        open_ = lo < hi
        if not open_.any():
            break
        mid = (lo + hi) // 2
        p = np.minimum(mid, nl - 1)
        below = cpu[p if idx is None else idx[p]] < want  # the first >= want is after mid
        below &= open_
        lo[below] = mid[below] + 1
        above = open_ & ~below
        hi[above] = mid[above]
    firsts = np.append(lo, nl)
    starts: np.ndarray = lo[firsts[:-1] < firsts[1:]]  # CPUs with a launch
    return starts


def _true_rows(mask: np.ndarray, count: int) -> np.ndarray:
    """``np.flatnonzero(mask)`` (``count`` of them) as int32 when the rows fit, built blockwise
    (no int64 array of them all: 4 bytes per row instead of 8)."""
    dt = _pos_dtype(len(mask))
    if dt is np.int64:  # pragma: no cover - 2**31 rows
        return np.flatnonzero(mask)
    out = np.empty(count, dtype=dt)
    j = 0
    step = 16 * _BLOCK
    for a in range(0, len(mask), step):
        r = np.flatnonzero(mask[a : a + step])
        np.add(r, a, out=out[j : j + len(r)], casting="unsafe")
        j += len(r)
    return out


def _kept_order(trace: Trace, ref: _Refusals) -> np.ndarray | None:
    """The stable CPU order of the launches the designs see: the trace's kept order of all
    its launches, without the refused ones (positions renumbered among those left)."""
    base = trace.launch_cpu_order()
    if base is None or ref.pos is None:
        return base
    keep = np.ones(len(base), dtype=bool)
    keep[ref.pos] = False
    order: np.ndarray = base[keep[base]]  # positions among all launches
    rank = np.cumsum(keep, dtype=_pos_dtype(len(keep)))  # 1 + position among the kept ones
    del keep
    for a in range(0, len(order), _BLOCK):
        blk = order[a : a + _BLOCK]
        blk[:] = rank[blk]
    order -= 1
    return order


def _launch_columns(
    trace: Trace, lo: _Order, s3_row: np.ndarray | None, host_le: int | None, *, signers: bool
) -> _Launches:
    """Gather the CPU-sorted launch columns: signer and wanted words (only with ``signers``),
    guest/lewr flags, S3 counts."""
    sig_s = lo.column(trace.signer) if signers else None
    guest_s: np.ndarray | None = None
    lewr_s: np.ndarray | None = None
    nguest = nlewr = 0
    if trace.vms:
        guest_s, lewr_s = _guest_flags(trace, lo)
        nguest = int(np.count_nonzero(guest_s))
        nlewr = int(np.count_nonzero(lewr_s))
    # The words each launch needs in the MSRs: its signer's, but the LE's for a
    # host with one launch enclave (single-le), which launches with LE tokens.
    want_s = sig_s
    if host_le is not None and sig_s is not None:
        want_s = (
            np.full_like(sig_s, host_le) if guest_s is None else np.where(guest_s, sig_s, sig_s.dtype.type(host_le))
        )
    s3_s = lo.column(s3_row) if s3_row is not None else None
    s3_changed: np.ndarray | None = None  # an S3 since the previous launch on this CPU
    if s3_s is not None:
        s3_changed = np.zeros(lo.nl, dtype=bool)
        np.not_equal(s3_s[1:], s3_s[:-1], out=s3_changed[1:])
        s3_changed &= ~lo.first
    return _Launches(sig_s, want_s, guest_s, lewr_s, nguest, nlewr, s3_s, s3_changed)


def _guest_flags(trace: Trace, lo: _Order) -> tuple[np.ndarray, np.ndarray]:
    """Whether each CPU-sorted launch is a guest's, and a lewr guest's (one blockwise pass)."""
    lewr_tab = np.array([v.lewr for v in trace.vms] + [False], dtype=bool)  # [-1]: the host
    guest_s = np.empty(lo.nl, dtype=bool)
    lewr_s = np.empty(lo.nl, dtype=bool)
    vm = np.empty(min(_BLOCK, lo.nl), dtype=trace.vm.dtype)
    for a in range(0, lo.nl, _BLOCK):
        b = min(a + _BLOCK, lo.nl)
        rows = lo.rows(a, b)
        v = trace.vm[rows] if isinstance(rows, slice) else np.take(trace.vm, rows, out=vm[: b - a], mode="clip")
        np.greater_equal(v, 0, out=guest_s[a:b])
        np.take(lewr_tab, v, out=lewr_s[a:b], mode="wrap")  # -1 wraps to the host's entry
    return guest_s, lewr_s


def _einit_attempts(trace: Trace, lo: _Order) -> _Attempts:
    """EINIT attempts per launch from the ``unmasked`` column, and the launches every attempt of which is cut short."""
    if not (lo.nl and trace.interrupted):
        return _Attempts(None, None, 0, lo.nl)
    assert trace.unmasked is not None
    u_s = lo.column(trace.unmasked).astype(_I64)
    att_s = np.minimum(u_s + 1, MAX_EINIT_ATTEMPTS)
    capped_s = u_s >= MAX_EINIT_ATTEMPTS
    del u_s
    ncapped = int(np.count_nonzero(capped_s))
    return _Attempts(att_s, capped_s if ncapped else None, ncapped, int(att_s.sum(dtype=_I64)))


def _read_compare_msrs(ids: np.ndarray, intel: list[int], lo: _Order, lc: _Launches) -> _Msrs:
    """read-compare: every attempt reads all four words; the first writes the ones H differs in."""
    assert lc.want_s is not None
    reset = lo.first if lc.s3_changed is None else lo.first | lc.s3_changed
    m = ids.shape[1]
    pc = _pair_codes(lc.want_s, reset, m - 1, m)  # H = Intel's (column -1) after a reset
    acc: np.ndarray = _words_differing(ids)[pc]
    return _Msrs(acc, rd=4)


def _cache_msrs(
    retry: bool, initial: str | None, ids: np.ndarray, intel: list[int], lo: _Order, lc: _Launches, at: _Attempts
) -> _Msrs:
    """percpu-cache(-retry): writes where the cache differs, and stale words (failures or forced retries)."""
    nl, first, s3_s, capped_s = lo.nl, lo.first, lc.s3_s, at.capped_s
    # What the cache holds before a CPU's first EINIT (H holds Intel's then).
    boot = [int(ids[k][-2]) if initial == "zero" else intel[k] for k in range(4)]
    boot_stale = any(boot[k] != intel[k] and bool(np.any(ids[k][:-2] == boot[k])) for k in range(4))
    assert lc.want_s is not None
    m = ids.shape[1]
    pc = _pair_codes(lc.want_s, first, m - 2 if initial == "zero" else m - 1, m)  # (C before, w)
    acc: np.ndarray = _words_differing(ids)[pc]
    stale_any = np.zeros(nl, dtype=bool) if (s3_s is not None or boot_stale) else None
    pos = gstart = None
    if stale_any is not None and (not retry or capped_s is not None):
        pos = np.arange(nl, dtype=np.int32 if nl < 2**31 - 1 else np.int64)
        if boot_stale:  # a word may be stale before any write on its CPU: mind the CPU's start
            gstart = np.where(first, pos, 0)
            np.maximum.accumulate(gstart, out=gstart)
        # else an unwritten word at a CPU's first launch is Intel's (never stale), so that
        # launch may count as a set point and the running maximum never leaves the CPU
    for k in range(4) if stale_any is not None else ():
        pair_k = ids[k][:, None] != ids[k][None, :]  # (C, w) -> word k differs
        written = pair_k.reshape(-1)[pc]  # the cache differs from w: written
        # Unwritten (C = w) but H = Intel's: no "set point" of word k on this
        # CPU since the last S3 (or boot). Set points: writes of word k, and
        # for the retry design every launch not cut short by interrupts (it
        # leaves H = w, by its forced rewrite if need be).
        pair_k = ~pair_k & (ids[k] != intel[k])[None, :]
        cand = pair_k.reshape(-1)[pc]
        if pos is not None:
            sp = written | ~capped_s if retry else written  # type: ignore[operator]
            if gstart is None:
                sp = sp | first  # (not in place: sp may be ``written`` itself)
            last = np.where(sp, pos, -1)
            np.maximum.accumulate(last, out=last)
            del sp
            if retry:  # set points strictly before the launch
                last = _prev(last, first, -1)
            if gstart is not None:
                fresh = last >= gstart
                if s3_s is not None:
                    fresh &= s3_s[np.maximum(last, 0)] == s3_s
            else:  # last >= 0 except at a CPU's first launch (where cand is False)
                assert s3_s is not None
                fresh = s3_s[np.maximum(last, 0)] == s3_s
            cand &= ~fresh
            del last, fresh
        stale_any |= cand
        del written, cand
    del pos, gstart, pc
    if not retry:
        if stale_any is not None and capped_s is not None:
            stale_any &= ~capped_s  # SGX_UNMASKED_EVENT instead
        return _Msrs(acc, fail_s=stale_any)
    if stale_any is None:
        return _Msrs(acc)
    if capped_s is None:  # every earlier launch left H = w: stale only at a CPU's first or after an S3
        stale_any &= first if lc.s3_changed is None else first | lc.s3_changed
    else:
        stale_any &= ~capped_s  # no attempt got as far as the token check
    acc += stale_any.astype(np.int8) * np.int8(4)  # the forced rewrite
    return _Msrs(acc, retry_s=stale_any)


def _eager_msrs(
    trace: Trace, ids: np.ndarray, lo: _Order, lc: _Launches, at: _Attempts, ev: _Events, host_le: int | None
) -> _Msrs:
    """eager-load: writes on the host path, lewr passthrough and every schedule-in; the failing native EINITs."""
    wr: np.ndarray | int
    if lc.guest_s is None:
        wr = 4 if at.att_s is None else at.att_s * 4
    else:
        assert lc.lewr_s is not None
        wr = (~lc.guest_s | lc.lewr_s).astype(np.int8) * np.int8(4)  # host path, lewr passthrough
        if at.att_s is not None:
            wr = wr * at.att_s  # per attempt
    # On a validated trace no native EINIT fails (docs/simulator.md: the launching vCPU is
    # current, so H holds its own virtual hash); only an unvalidated one is checked launch by launch.
    fail_rows = np.zeros(0, np.int64) if trace.validated else _eager_failures(trace, ids, lo, lc, ev, host_le)
    if at.ncapped and len(fail_rows):  # SGX_UNMASKED_EVENT instead
        assert trace.unmasked is not None
        fail_rows = fail_rows[trace.unmasked[fail_rows] < MAX_EINIT_ATTEMPTS]
    return _Msrs(wr, fail_rows=fail_rows, extra_wrmsr=4 * ev.nsched)


def _msr_counts(
    model: Model,
    trace: Trace,
    ids: np.ndarray,
    lo: _Order,
    lc: _Launches,
    at: _Attempts,
    ev: _Events,
    host_le: int | None,
) -> _Msrs:
    """The functional part: per-launch WRMSR counts and failures under the design's behaviour."""
    intel = [int(ids[k][-1]) for k in range(4)]
    if model.mode == "always-write":
        return _Msrs(4 if at.att_s is None else at.att_s * 4)  # every attempt writes all four
    if model.mode == "read-compare":
        return _read_compare_msrs(ids, intel, lo, lc)
    if model.mode in ("percpu-cache", "percpu-cache-retry"):
        return _cache_msrs(model.mode == "percpu-cache-retry", model.initial, ids, intel, lo, lc, at)
    return _eager_msrs(trace, ids, lo, lc, at, ev, host_le)


def _bypasses(trace: Trace, tables: PolicyTables, lc: _Launches, at: _Attempts, msr: _Msrs, failures: int) -> int:
    """Policy bypasses: successful guest launches of signers the host may not launch."""
    outside = np.array(tables.forbidden, dtype=bool)
    if not (outside.any() and lc.guest_s is not None and lc.nguest):
        return 0
    outside_s = outside[lc.sig_s] & lc.guest_s
    bypasses = int(np.count_nonzero(outside_s))
    if msr.fail_s is not None and failures:
        bypasses -= int(np.count_nonzero(outside_s & msr.fail_s))
    elif msr.fail_rows is not None and failures:
        bypasses -= int(np.count_nonzero(outside[trace.signer[msr.fail_rows]]))
    if at.capped_s is not None:
        bypasses -= int(np.count_nonzero(outside_s & at.capped_s))
    return bypasses


def _exits(traps: bool, lc: _Launches, at: _Attempts, ref: _Refusals) -> tuple[int, int]:
    """``(encls_exits, msr_exits)``: trapped EINIT attempts and the lewr guests' intercepted WRMSRs."""
    nguest = lc.nguest
    msr_exits = 4 * lc.nlewr
    if at.att_s is not None and lc.guest_s is not None:
        assert lc.lewr_s is not None
        if traps:
            nguest = int(at.att_s[lc.guest_s].sum(dtype=_I64))  # one trapped EINIT per attempt
        msr_exits = 4 * int(at.att_s[lc.lewr_s].sum(dtype=_I64))  # the guest rewrites before each attempt
    encls_exits = nguest + ref.n_guest if traps else 0  # a refused trapped EINIT is an ENCLS exit too
    msr_exits += 4 * ref.n_lewr  # the refused lewr guest wrote its MSRs first
    return encls_exits, msr_exits


def _service_times(costs: CostModel, model: Model, nl: int, lc: _Launches, at: _Attempts, msr: _Msrs) -> np.ndarray:
    """Each launch's service time (CPU-sorted): its attempts, MSR accesses, traps and a forced retry."""
    att_s, wr_s = at.att_s, msr.wr
    per_attempt = costs.einit + (costs.lock if model.lock is not None else 0) + msr.rd * costs.rdmsr_lehash
    if att_s is not None:
        S = att_s * _I64(per_attempt)
        S += np.asarray(wr_s, dtype=_I64) * _I64(costs.wrmsr_lehash)
    elif isinstance(wr_s, np.ndarray):
        S = wr_s.astype(_I64)
        S *= _I64(costs.wrmsr_lehash)
        S += _I64(per_attempt)
    else:
        S = np.full(nl, per_attempt + wr_s * costs.wrmsr_lehash, dtype=_I64)
    if lc.guest_s is not None:
        assert lc.lewr_s is not None
        if model.traps and costs.encls_trap:
            if att_s is None:  # in place, no temporary
                np.add(S, _I64(costs.encls_trap), out=S, where=lc.guest_s)
            else:
                S += lc.guest_s.astype(_I64) * _I64(costs.encls_trap) * att_s
        if costs.vm_exit and lc.nlewr:
            if att_s is None:
                np.add(S, _I64(4 * costs.vm_exit), out=S, where=lc.lewr_s)
            else:
                S += lc.lewr_s.astype(_I64) * _I64(4 * costs.vm_exit) * att_s
    if msr.retry_s is not None:
        S += msr.retry_s.astype(_I64) * _I64(costs.einit)  # the second EINIT (its 4 WRMSRs are in wr)
    return S


@dataclass(frozen=True)
class _Service:
    """Each launch's service time: ``table[code]``, or the int64 column ``full``."""

    table: np.ndarray  # int64 service time of each code
    code: np.ndarray | None  # int8 code of each launch (None: code 0 for all)
    full: np.ndarray | None  # int64 times (with interrupts; table and code unused then)
    total: int  # exact sum over the launches

    def block(self, a: int, b: int, out: np.ndarray) -> np.ndarray:
        """The service times of launches ``a:b`` (in ``out``, or a view of ``full``)."""
        if self.full is not None:
            return self.full[a:b]
        if self.code is None:
            out.fill(self.table[0])
            return out
        return np.take(self.table, self.code[a:b], out=out, mode="clip")

    def in_trace_order(self, lo: _Order) -> _Service:
        """The same times for the launches in trace order (the global lock's queue order)."""
        col = self.full if self.full is not None else self.code
        if lo.order is None or col is None:
            return self
        back = np.empty_like(col)
        back[lo.order] = col
        if self.full is not None:
            return _Service(self.table, None, back, self.total)
        return _Service(self.table, back, None, self.total)


def _service(costs: CostModel, model: Model, nl: int, lc: _Launches, at: _Attempts, msr: _Msrs) -> _Service:
    """Each launch's service time (CPU-sorted): its attempts, MSR accesses, traps and a forced retry.

    Without interrupts a launch's time is a fixed part plus a few terms, each a
    small count times a cost: its WRMSRs (0..8), a trapped guest's ENCLS exit, a
    lewr guest's intercepted WRMSRs, a forced second EINIT. So it is
    ``table[code]``, ``code`` being those counts as one mixed-radix number (int8, at
    most 72 values), and the exact total comes from the counts' sums: no int64
    column at all. ``msr.wr``, when an int8 array, becomes the code array (in place:
    the caller has counted its WRMSRs). With interrupts the attempts multiply the
    terms: an int64 column (:func:`_service_times`).
    """
    if at.att_s is not None:
        S = _service_times(costs, model, nl, lc, at, msr)
        return _Service(np.zeros(1, dtype=_I64), None, S, exact_sum(S))
    fixed = costs.einit + (costs.lock if model.lock is not None else 0) + msr.rd * costs.rdmsr_lehash
    terms: list[tuple[np.ndarray, int, int]] = []  # (count of each launch, counts it can take, cost of one)
    if isinstance(msr.wr, np.ndarray):
        terms.append((msr.wr, 9, costs.wrmsr_lehash))
    else:
        fixed += msr.wr * costs.wrmsr_lehash
    if lc.guest_s is not None:
        assert lc.lewr_s is not None
        if model.traps and costs.encls_trap and lc.nguest:
            terms.append((lc.guest_s, 2, costs.encls_trap))
        if costs.vm_exit and lc.nlewr:
            terms.append((lc.lewr_s, 2, 4 * costs.vm_exit))
    if msr.retry_s is not None:
        terms.append((msr.retry_s, 2, costs.einit))  # the second EINIT (its 4 WRMSRs are in wr)
    table = [fixed]
    total = fixed * nl
    code: np.ndarray | None = None
    for col, nvals, cost in terms:
        radix = len(table)
        table = [t + d * cost for d in range(nvals) for t in table]  # code += count * radix
        if col.dtype == bool:
            total += cost * int(np.count_nonzero(col))
            if code is None:
                code = col.astype(np.int8)
            else:
                code += col.view(np.int8) * np.int8(radix)  # (a bool is one byte, 0 or 1)
        else:  # the WRMSR counts (int8), always the first term
            assert code is None and col.dtype == np.int8
            total += cost * int(col.sum(dtype=_I64))
            code = col
    return _Service(np.array(table, dtype=_I64), code, None, total)


def _arrival_blocks(t: np.ndarray, rows: Callable[[int, int], np.ndarray | slice]) -> Callable[..., np.ndarray]:
    """The :func:`_queue_pass` arrivals of the launches whose trace rows ``rows(a, b)`` gives."""

    def arrivals(a: int, b: int, out: np.ndarray) -> np.ndarray:
        r = rows(a, b)
        if isinstance(r, slice):
            return t[r]
        return np.take(t, r, out=out, mode="clip")

    return arrivals


def simulate(
    trace: Trace,
    design: str | type[Design],
    costs: CostModel | None = None,
    *,
    validate: bool = True,
    policy: HostPolicy | str | None = None,
    budget: Budget | None = None,
) -> dict[str, Any]:
    """Run ``trace`` under ``design`` with ``costs``; return the summary dict of docs/simulator.md.

    All keys except ``design``, ``workload``, ``seed`` and ``engine`` (the
    caller adds those). The trace is checked with :meth:`Trace.validate`
    unless ``validate=False`` (for a trace that has just passed it). Raises
    :class:`~sgxlab.errors.EngineUnsupported` for a design it does not model.
    ``policy``: a :class:`~sgxlab.kvm.policy.HostPolicy` (or a built-in's
    name, built with the trace's approved signers), else the trace's own.
    """
    model = model_of(design)
    costs = _checked_costs(trace, costs, validate)
    check_trace(trace, budget)  # refuse work over the budget (sgxlab.sim.budget) before allocating
    tables = run_tables(trace, design_class(design), policy, gate=True)
    trace = trace.without_vms([v for v, r in enumerate(tables.vm_refused) if r])
    ids = signer_word_ids(trace.nsigners)

    is_launch = trace.kind == LAUNCH
    ref = _host_refusals(trace, tables, is_launch, model.traps, costs)
    ev = _events(trace, model.mode)
    lo = _cpu_order(trace, is_launch, ref)
    del is_launch
    signers = model.mode not in ("always-write", "eager-load") or any(tables.forbidden)
    lc = _launch_columns(trace, lo, ev.s3_row, tables.host_le, signers=signers)
    at = _einit_attempts(trace, lo)
    msr = _msr_counts(model, trace, ids, lo, lc, at, ev, tables.host_le)
    nsched, nexit, ns3 = ev.nsched, ev.nexit, ev.ns3
    del ev  # the S3 counts and reloads

    nl = lo.nl
    failures = msr.failures
    bypasses = _bypasses(trace, tables, lc, at, msr, failures)
    retries = at.attempts - nl + (int(np.count_nonzero(msr.retry_s)) if msr.retry_s is not None else 0)
    einits = nl + retries
    wr = msr.wr
    wrmsr = (int(wr.sum(dtype=_I64)) if isinstance(wr, np.ndarray) else wr * nl) + msr.extra_wrmsr
    encls_exits, msr_exits = _exits(model.traps, lc, at, ref)

    svc = _service(costs, model, nl, lc, at, msr)
    del lc, wr  # the launch columns; msr's arrays go with msr
    rdmsr, extra_wrmsr, ncapped = msr.rd * at.attempts, msr.extra_wrmsr, at.ncapped
    del msr, at
    if model.lock == "global":  # one FIFO in trace order
        svc = svc.in_trace_order(lo)
        li = lo.trace_order_rows()
        del lo  # the CPU-sorted rows
        lat = _LatencyStore(nl + ref.n)  # the latencies, in queue order
        rows = (lambda a, b: slice(a, b)) if li is None else (lambda a, b: li[a:b])
        sum_wait, top = _queue_pass(_arrival_blocks(trace.t, rows), svc.block, nl, None, lat)
        del li
    else:  # one FIFO per CPU: the CPU-sorted runs
        lat = _LatencyStore(nl + ref.n)
        sum_wait, top = _queue_pass(_arrival_blocks(trace.t, lo.rows), svc.block, nl, lo.starts, lat)
        del lo  # the index arrays
    sum_s = svc.total  # Python ints: a saturated lock's total wait can pass 2**63
    del svc  # the service codes
    if ref.lat is not None:  # the refused launches: their own service, no queue
        sum_s += exact_sum(ref.lat)
        if len(ref.lat):
            top = max(top, int(ref.lat.max()))
            lat.put(nl, ref.lat, top)
    lat_summary = latency_summary(lat.values, total=sum_s + sum_wait, maximum=top, overwrite=True)
    del lat

    global_wait = sum_wait if model.lock == "global" else 0
    overhead = sum_s - einits * costs.einit + global_wait + extra_wrmsr * costs.wrmsr_lehash
    fails: dict[str, int] = {}
    if failures:
        fails["SGX_INVALID_EINITTOKEN"] = failures
    if ncapped:
        fails["SGX_UNMASKED_EVENT"] = ncapped
    return {
        "launches": nl + ref.n,
        "einit": einits,
        "failures": fails,
        "retries": retries,
        "wrmsr": int(wrmsr),
        "rdmsr": int(rdmsr),
        "schedule_ins": nsched,
        "encls_exits": encls_exits,
        "msr_exits": msr_exits,
        "exits": nexit,
        "s3_events": ns3,
        "latency_cycles": lat_summary,
        "overhead_cycles": int(overhead),
        "sched_cycles": nsched * (costs.vcpu_load + costs.context_switch),
        "exit_cycles": nexit * costs.vm_exit,
        "bypasses": bypasses,
        "refusals": ref.n,
        "gate_refusals": ref.gate(),
        "vms_refused": sum(tables.vm_refused),
    }
