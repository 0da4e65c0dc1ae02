"""The fast engine: the contract of ``docs/simulator.md`` computed with numpy.

The exact engine replays a :class:`~sgxlab.sim.trace.Trace` event by event
through the emulator. This engine answers the same question from the trace's
columns, with no per-launch Python loop, and must return **identical** summary
metrics (the differential tests in ``tests/test_differential.py`` hold it to
that). It knows the built-in designs only; for anything else it raises
:class:`~sgxlab.errors.EngineUnsupported` instead of guessing.

How each design becomes array arithmetic
----------------------------------------

Launches are sorted stably by physical CPU, so every CPU's launches form one
contiguous run in trace order and "the previous launch on this CPU" is the
previous element. The four hash words are compared as small integer ids
(equal 64-bit words get equal ids; Intel's reset value and zero have their
own), so a partial collision between two signers' words would still be
counted word by word. With ``s3[i]`` = number of S3 events before launch *i*:

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
  came later; a guest without lewr fails when that H is not its signer (on
  a valid trace it never does, see docs/simulator.md, but this engine
  computes it rather than assume it).

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
(one queue for a global lock, else one per CPU; per-CPU runs are separated by
adding a per-run offset so one running maximum serves them all). Everything
is int64 and exact.

Memory: the per-launch working set is a handful of int64 columns (times,
service, wait) plus int8/int16/bool columns; temporaries are dropped as soon
as they are used, and updated in place where they can be (the arrival times
become the queue's scratch array), about 41 bytes per launch at the peak
(``bench/run.py`` and ``bench/trace.py`` measure 10 M-launch runs).
Positions inside eager-load's per-vCPU and per-CPU passes are int32; the
launch index arrays stay int64, as numpy would convert int32 indices on every
gather (measured slower).
"""

from __future__ import annotations

from dataclasses import dataclass
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
    process).
    """
    words = signer_words(nsigners)
    words.append((0, 0, 0, 0))
    words.append(INTEL_LEPUBKEYHASH.words)
    ids = np.empty((4, nsigners + 2), dtype=np.int8)
    for k in range(4):
        col = np.array([w[k] for w in words], dtype=np.uint64)
        _, inv = np.unique(col, return_inverse=True)
        ids[k] = inv.reshape(-1)
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


def _prev(w: np.ndarray, first: np.ndarray, boot: int) -> np.ndarray:
    """The previous element on the same CPU (``boot`` for each CPU's first launch)."""
    p = np.empty_like(w)
    if len(w):
        p[0] = boot
        p[1:] = w[:-1]
        p[first] = boot
    return p


def _wait(A: np.ndarray, S: np.ndarray, starts: np.ndarray | None, *, overwrite: bool = False) -> np.ndarray:
    """Waiting time of each job under FIFO single-server queues (Lindley, closed form).

    ``A`` arrivals and ``S`` service times (int64) in queue order; ``starts``
    are the indices where a new queue begins (``None``: one queue). Returns
    ``start - A`` as int64. ``overwrite``: ``A`` (a writable int64 array the
    caller no longer needs) is used as scratch space, one array less.
    """
    n = len(A)
    if n == 0:
        return np.zeros(0, dtype=_I64)
    Y = np.cumsum(S, dtype=_I64)
    Y -= S  # exclusive running sum E
    if overwrite:
        np.subtract(A, Y, out=A)
        del Y
        Y = A  # Y = A - E
    else:
        np.subtract(A, Y, out=Y)  # Y = A - E
    if starts is not None and len(starts) > 1:
        bounds = np.append(starts, n)
        lo, hi = int(Y.min()), int(Y.max())
        span = hi - lo + 1
        if abs(lo) + abs(hi) + span * len(starts) < 2**62:
            # Lift each queue above all earlier ones: one running max then serves all.
            for g in range(1, len(starts)):
                Y[bounds[g] : bounds[g + 1]] += _I64(g * span)
            cm = np.maximum.accumulate(Y)
        else:  # pragma: no cover - astronomically long runs only
            cm = np.empty_like(Y)
            for g in range(len(starts)):
                a, b = bounds[g], bounds[g + 1]
                np.maximum.accumulate(Y[a:b], out=cm[a:b])
    else:
        cm = np.maximum.accumulate(Y)
    cm -= Y
    return cm


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
    trace: Trace,
    ids: np.ndarray,
    s3_row: np.ndarray | None,
    reloads: np.ndarray | None,
    *,
    skip: np.ndarray | None = None,
    host_le: int | None = None,
) -> np.ndarray:
    """Trace rows of the native guest EINITs that fail under eager-load (guests without lewr only).

    ``reloads`` (from :func:`_s3_reloads`) are implicit SCHED rows placed
    right after their S3 row. ``skip``: launch rows the host policy refused
    (they write nothing). ``host_le``: host launches load that signer's hash
    (a host with one launch enclave) instead of their own.
    """
    kind = trace.kind
    nvms = len(trace.vms)
    none = np.zeros(0, dtype=np.int64)
    if nvms == 0:
        return none
    lewr_tab = np.array([s.lewr for s in trace.vms] + [False], dtype=bool)
    lehash_tab = np.array([s.lehash for s in trace.vms] + [-1], dtype=np.int16)
    r = np.flatnonzero((kind == SCHED) | (kind == LAUNCH)).astype(_pos_dtype(len(kind)))
    if skip is not None and len(skip):
        r = r[~np.isin(r, skip, assume_unique=True)]
    k_r = kind[r]
    vm_r = trace.vm[r]
    if not (~lewr_tab[vm_r] & (vm_r >= 0) & (k_r == LAUNCH)).any():
        return none
    cpu_r = trace.cpu[r]
    vcpu_r = trace.vcpu[r]
    code = trace.signer[r]  # the signer for launches, to fill for SCHED rows
    if host_le is not None:
        code[vm_r < 0] = host_le  # what a host launch writes: the LE's hash
    s3_r = s3_row[r] if s3_row is not None else None
    if reloads is not None and reloads.shape[1]:
        assert s3_row is not None
        at = np.searchsorted(r, reloads[0])  # right after the S3 row
        m = reloads.shape[1]
        r = np.insert(r, at, -1)  # no trace row of its own
        k_r = np.insert(k_r, at, np.full(m, SCHED, k_r.dtype))
        cpu_r = np.insert(cpu_r, at, reloads[1].astype(cpu_r.dtype))
        vm_r = np.insert(vm_r, at, reloads[2].astype(vm_r.dtype))
        vcpu_r = np.insert(vcpu_r, at, reloads[3].astype(vcpu_r.dtype))
        code = np.insert(code, at, np.full(m, -1, code.dtype))
        assert s3_r is not None
        s3_r = np.insert(s3_r, at, s3_row[reloads[0]])
    sched_r = k_r == SCHED
    del k_r
    lewr_r = lewr_tab[vm_r]
    check_r = ~sched_r & (vm_r >= 0) & ~lewr_r
    if sched_r.any():
        # The vCPU's virtual hash when it is scheduled in: its last lewr launch's signer, else lehash.
        q = np.flatnonzero(sched_r | lewr_r)  # SCHED rows and lewr-guest launches
        nq = len(q)
        pdt = _pos_dtype(nq)
        q = q.astype(pdt)
        key = _vcpu_key(vm_r[q], vcpu_r[q], trace)
        o = np.argsort(key, kind="stable").astype(pdt)
        q = q[o]  # in vCPU order (stable: time order within a vCPU)
        key = key[o]
        del o
        start = np.empty(nq, dtype=bool)
        start[0] = True
        np.not_equal(key[1:], key[:-1], out=start[1:])
        del key
        pos = np.arange(nq, dtype=pdt)
        gstart = np.where(start, pos, 0)
        del start
        np.maximum.accumulate(gstart, out=gstart)
        sq = sched_r[q]
        last = np.where(~sq, pos, -1)
        del pos
        np.maximum.accumulate(last, out=last)
        has = last >= gstart  # a lewr launch of this vCPU before: its signer, else the VM's lehash
        del gstart
        np.maximum(last, 0, out=last)
        v = lehash_tab[vm_r[q]]
        np.copyto(v, code[q][last], where=has)
        del last, has
        code[q[sq]] = v[sq]
        del q, sq, v
    # Per CPU: the last setter before each check row, unless an S3 came after it.
    nr = len(r)
    del vm_r, vcpu_r, sched_r, lewr_r
    o = np.argsort(cpu_r, kind="stable")
    cpu_s = cpu_r[o]
    del cpu_r
    o = o.astype(_pos_dtype(nr))
    pos = np.arange(nr, dtype=_pos_dtype(nr))
    start = np.empty(nr, dtype=bool)
    start[0] = True
    np.not_equal(cpu_s[1:], cpu_s[:-1], out=start[1:])
    del cpu_s
    gstart = np.where(start, pos, 0)
    np.maximum.accumulate(gstart, out=gstart)
    del start
    chk_s = check_r[o]
    del check_r
    last = np.where(~chk_s, pos, -1)
    del pos
    np.maximum.accumulate(last, out=last)
    valid = last >= gstart
    del gstart
    np.maximum(last, 0, out=last)
    lastc = last
    if s3_r is not None:
        s3_s = s3_r[o]
        valid &= s3_s[lastc] == s3_s
    code_s = code[o]
    H = np.where(valid, code_s[lastc], np.int16(-1))[chk_s]
    w = code_s[chk_s]
    fail = np.zeros(len(w), dtype=bool)
    for k in range(4):
        fail |= ids[k][H] != ids[k][w]
    rows: np.ndarray = r[o[np.flatnonzero(chk_s)[fail]]]
    return rows


# --------------------------------------------------------------------------- engine steps


@dataclass(frozen=True)
class _Refusals:
    """The launches the host policy refused, taken out before the designs see any."""

    n: int = 0
    n_guest: int = 0  # refused trapped guest EINITs (each an ENCLS exit)
    n_lewr: int = 0  # of those, lewr guests (they wrote their 4 MSRs first)
    rows: np.ndarray | None = None  # trace rows of the refused launches
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


@dataclass(frozen=True)
class _Order:
    """Which trace rows are the launches and how to sort them by CPU."""

    nl: int  # launches the designs see
    li: np.ndarray | None  # their trace rows (None: every row is one)
    order: np.ndarray | None  # the stable CPU-sorting permutation (None: already sorted)
    first: np.ndarray  # first launch on its CPU (CPU-sorted)

    def take(self, col: np.ndarray) -> np.ndarray:
        """A trace column restricted to the launches, in trace order."""
        return col if self.li is None else col[self.li]

    def srt(self, col: np.ndarray) -> np.ndarray:
        """A launch column in CPU-sorted order."""
        return col if self.order is None else col[self.order]


@dataclass(frozen=True)
class _Launches:
    """The CPU-sorted launch columns the designs' arithmetic reads."""

    sig_s: np.ndarray  # signer
    want_s: np.ndarray  # the words wanted in the MSRs (the LE's for a single-le host launch)
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
    rows = lrows[ref]
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
    return _Refusals(nref, nref_guest, nref_lewr, rows, lat, n_eacces, n_gp)


def _events(trace: Trace, mode: str) -> _Events:
    """Count the SCHED, EXIT and S3 rows, and the S3 resumes' implicit schedule-ins."""
    kind = trace.kind
    nsched = int(np.count_nonzero(kind == SCHED))
    nexit = int(np.count_nonzero(kind == EXIT))
    is_s3 = kind == S3
    ns3 = int(np.count_nonzero(is_s3))
    s3_row = np.cumsum(is_s3, dtype=np.int32) if ns3 else None
    del is_s3
    # S3 resume schedules every current vCPU in again: implicit SCHED rows.
    nreload = 0
    reloads: np.ndarray | None = None
    if s3_row is not None and nsched and len(trace.vms):
        nreload, reloads = _s3_reloads(trace, s3_row, expand=mode == "eager-load")
    return _Events(nsched + nreload, nexit, ns3, s3_row, reloads)


def _cpu_order(trace: Trace, is_launch: np.ndarray) -> _Order:
    """Select the launches and sort them stably by CPU; mark each CPU's first launch."""
    nl = int(np.count_nonzero(is_launch))
    li: np.ndarray | None = None
    if nl != len(trace):
        li = np.flatnonzero(is_launch)
    cpu_l = trace.cpu if li is None else trace.cpu[li]
    order: np.ndarray | None = None
    if nl and trace.ncpus > 1 and int(cpu_l.min()) != int(cpu_l.max()):
        order = np.argsort(cpu_l, kind="stable")  # int16 keys: numpy's radix sort
    cpu_s = cpu_l if order is None else cpu_l[order]
    del cpu_l
    first = np.zeros(nl, dtype=bool)  # first launch on its CPU
    if nl:
        first[0] = True
        np.not_equal(cpu_s[1:], cpu_s[:-1], out=first[1:])
    return _Order(nl, li, order, first)


def _launch_columns(trace: Trace, lo: _Order, s3_row: np.ndarray | None, host_le: int | None) -> _Launches:
    """Gather the CPU-sorted launch columns: signer, wanted words, guest/lewr flags, S3 counts."""
    sig_s = lo.srt(lo.take(trace.signer))
    guest_s: np.ndarray | None = None
    lewr_s: np.ndarray | None = None
    nguest = nlewr = 0
    if trace.vms:
        vm_s = lo.srt(lo.take(trace.vm))
        guest_s = vm_s >= 0
        lewr_tab = np.array([v.lewr for v in trace.vms] + [False], dtype=bool)  # [-1]: the host
        lewr_s = lewr_tab[vm_s]
        del vm_s
        nguest = int(np.count_nonzero(guest_s))
        nlewr = int(np.count_nonzero(lewr_s))
    # The words each launch needs in the MSRs: its signer's, but the LE's for a
    # host with one launch enclave (single-le), which launches with LE tokens.
    want_s = sig_s
    if host_le is not None:
        want_s = (
            np.full_like(sig_s, host_le) if guest_s is None else np.where(guest_s, sig_s, sig_s.dtype.type(host_le))
        )
    s3_s = lo.srt(lo.take(s3_row)) if s3_row is not None else None
    s3_changed: np.ndarray | None = None  # an S3 since the previous launch on this CPU
    if s3_s is not None:
        s3_changed = np.zeros(lo.nl, dtype=bool)
        np.not_equal(s3_s[1:], s3_s[:-1], out=s3_changed[1:])
        s3_changed &= ~lo.first
    return _Launches(sig_s, want_s, guest_s, lewr_s, nguest, nlewr, s3_s, s3_changed)


def _einit_attempts(trace: Trace, lo: _Order) -> _Attempts:
    """EINIT attempts per launch from the ``unmasked`` column, and the launches every attempt of which is cut short."""
    if not (lo.nl and trace.interrupted):
        return _Attempts(None, None, 0, lo.nl)
    assert trace.unmasked is not None
    u_s = lo.srt(lo.take(trace.unmasked)).astype(_I64)
    att_s = np.minimum(u_s + 1, MAX_EINIT_ATTEMPTS)
    capped_s = u_s >= MAX_EINIT_ATTEMPTS
    del u_s
    ncapped = int(np.count_nonzero(capped_s))
    return _Attempts(att_s, capped_s if ncapped else None, ncapped, int(att_s.sum(dtype=_I64)))


def _read_compare_msrs(ids: np.ndarray, intel: list[int], lo: _Order, lc: _Launches) -> _Msrs:
    """read-compare: every attempt reads all four words; the first writes the ones H differs in."""
    reset = lo.first if lc.s3_changed is None else lo.first | lc.s3_changed
    acc = np.zeros(lo.nl, dtype=np.int8)
    for k in range(4):
        w = ids[k][lc.want_s]
        acc += _prev(w, reset, intel[k]) != w
    return _Msrs(acc, rd=4)


def _cache_msrs(
    retry: bool, initial: str | None, ids: np.ndarray, intel: list[int], lo: _Order, lc: _Launches, at: _Attempts
) -> _Msrs:
    """percpu-cache(-retry): writes where the cache differs, and stale words (failures or forced retries)."""
    nl, first, s3_s, capped_s = lo.nl, lo.first, lc.s3_s, at.capped_s
    # What the cache holds before a CPU's first EINIT (H holds Intel's then).
    boot = [int(ids[k][-2]) if initial == "zero" else intel[k] for k in range(4)]
    boot_stale = any(boot[k] != intel[k] and bool(np.any(ids[k][:-2] == boot[k])) for k in range(4))
    acc = np.zeros(nl, dtype=np.int8)
    stale_any = np.zeros(nl, dtype=bool) if (s3_s is not None or boot_stale) else None
    pos = gstart = None
    if stale_any is not None and (not retry or capped_s is not None):
        pos = np.arange(nl, dtype=np.int32 if nl < 2**31 - 1 else np.int64)
        if boot_stale:  # a word may be stale before any write on its CPU: mind the CPU's start
            gstart = np.where(first, pos, 0)
            np.maximum.accumulate(gstart, out=gstart)
        # else an unwritten word at a CPU's first launch is Intel's (never stale), so that
        # launch may count as a set point and the running maximum never leaves the CPU
    for k in range(4):
        w = ids[k][lc.want_s]
        written = _prev(w, first, boot[k]) != w  # the cache differs from w
        acc += written
        if stale_any is None:
            continue
        # Unwritten (C = w) but H = Intel's: no "set point" of word k on this
        # CPU since the last S3 (or boot). Set points: writes of word k, and
        # for the retry design every launch not cut short by interrupts (it
        # leaves H = w, by its forced rewrite if need be).
        cand = ~written
        cand &= w != intel[k]
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
        del w, written, cand
    del pos, gstart
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
    trace: Trace, ids: np.ndarray, lc: _Launches, at: _Attempts, ev: _Events, ref: _Refusals, host_le: int | None
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
    fail_rows = _eager_failures(trace, ids, ev.s3_row, ev.reloads, skip=ref.rows, host_le=host_le)
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
    ref: _Refusals,
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
    return _eager_msrs(trace, ids, lc, at, ev, ref, host_le)


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


def _in_trace_order(S: np.ndarray, lo: _Order) -> np.ndarray:
    """A CPU-sorted launch column back in trace order (the global lock's queue order)."""
    if lo.order is None:
        return S
    St = np.empty_like(S)
    St[lo.order] = S
    return St


def _arrivals(trace: Trace, lock: str | None, lo: _Order) -> tuple[np.ndarray, np.ndarray | None]:
    """The launches' arrival times in queue order (trace order for the global lock, else
    CPU-sorted), as a new array, and where each queue starts (``None``: one queue)."""
    if lock == "global":  # one FIFO in trace order
        A = lo.take(trace.t)
        starts = None
    else:  # one FIFO per CPU: the CPU-sorted runs
        li, order = lo.li, lo.order
        if li is None:
            A = trace.t if order is None else trace.t[order]
        else:
            A = trace.t[li] if order is None else trace.t[li[order]]
        starts = np.flatnonzero(lo.first)
    return (A.copy() if A is trace.t else A), starts


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
    lo = _cpu_order(trace, is_launch)
    del is_launch
    lc = _launch_columns(trace, lo, ev.s3_row, tables.host_le)
    at = _einit_attempts(trace, lo)
    msr = _msr_counts(model, trace, ids, lo, lc, at, ev, ref, tables.host_le)
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

    S = _service_times(costs, model, nl, lc, at, msr)
    del lc, wr  # the launch columns; msr's arrays go with msr
    rdmsr, extra_wrmsr, ncapped = msr.rd * at.attempts, msr.extra_wrmsr, at.ncapped
    del msr, at
    if model.lock == "global":
        S = _in_trace_order(S, lo)
    A, starts = _arrivals(trace, model.lock, lo)
    del lo  # the index arrays
    wait = _wait(A, S, starts, overwrite=True)
    del A, starts
    sum_s = exact_sum(S)  # Python ints: a saturated lock's total wait can pass 2**63
    sum_wait = exact_sum(wait)
    wait += S  # now the latency
    del S
    if ref.lat is not None:  # the refused launches: their own service, no queue
        sum_s += exact_sum(ref.lat)
        wait = np.concatenate([wait, ref.lat])
    lat = latency_summary(wait)
    del wait

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
        "latency_cycles": lat,
        "overhead_cycles": int(overhead),
        "sched_cycles": nsched * (costs.vcpu_load + costs.context_switch),
        "exit_cycles": nexit * costs.vm_exit,
        "bypasses": bypasses,
        "refusals": ref.n,
        "gate_refusals": ref.gate(),
        "vms_refused": sum(tables.vm_refused),
    }
