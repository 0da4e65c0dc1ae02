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
a lewr guest, its 4 intercepted WRMSRs). A host with one launch enclave
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
as they are used, about 41 bytes per launch at the peak (``bench/run.py``
measures a 10 M-launch run).
"""

from __future__ import annotations

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
from sgxlab.hw.arch import INTEL_LEPUBKEYHASH
from sgxlab.hw.crypto import load_test_key
from sgxlab.kvm.policy import HostPolicy
from sgxlab.sim.costs import CostModel
from sgxlab.sim.hostpolicy import run_tables
from sgxlab.sim.stats import exact_sum, latency_summary
from sgxlab.sim.trace import EXIT, LAUNCH, MAX_EINIT_ATTEMPTS, S3, SCHED, Trace

__all__ = ["simulate", "model_of", "Model", "signer_word_ids", "BUILTIN_MODES"]

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


def signer_word_ids(nsigners: int) -> np.ndarray:
    """``(4, nsigners + 2)`` small ints: entry ``[k, s]`` identifies hash word *k* of signer *s*.

    Column ``-1`` (the last) is Intel's reset value, so a signer code of -1
    means "Intel's hash"; column ``-2`` is the all-zero hash (what the 2019
    per-CPU cache held at boot). Two entries of a row are equal iff the
    64-bit words are equal. Keys are loaded from ``data/keys`` for this call
    only.
    """
    words = [load_test_key(s).mrsigner.words for s in range(nsigners)]
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


def _prev(w: np.ndarray, first: np.ndarray, boot: int) -> np.ndarray:
    """The previous element on the same CPU (``boot`` for each CPU's first launch)."""
    p = np.empty_like(w)
    if len(w):
        p[0] = boot
        p[1:] = w[:-1]
        p[first] = boot
    return p


def _wait(A: np.ndarray, S: np.ndarray, starts: np.ndarray | None) -> np.ndarray:
    """Waiting time of each job under FIFO single-server queues (Lindley, closed form).

    ``A`` arrivals and ``S`` service times (int64) in queue order; ``starts``
    are the indices where a new queue begins (``None``: one queue). Returns
    ``start - A`` as int64.
    """
    n = len(A)
    if n == 0:
        return np.zeros(0, dtype=_I64)
    Y = np.cumsum(S, dtype=_I64)
    Y -= S  # exclusive running sum E
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
    r = np.flatnonzero((kind == SCHED) | (kind == LAUNCH))
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
    lewr_r = lewr_tab[vm_r]
    check_r = ~sched_r & (vm_r >= 0) & ~lewr_r
    if sched_r.any():
        # The vCPU's virtual hash when it is scheduled in: its last lewr launch's signer, else lehash.
        q = np.flatnonzero(sched_r | lewr_r)  # SCHED rows and lewr-guest launches
        key = _vcpu_key(vm_r[q], vcpu_r[q], trace)
        o = np.argsort(key, kind="stable")
        key_s = key[o]
        nq = len(q)
        pos = np.arange(nq, dtype=np.int64)
        start = np.empty(nq, dtype=bool)
        start[0] = True
        np.not_equal(key_s[1:], key_s[:-1], out=start[1:])
        gstart = np.maximum.accumulate(np.where(start, pos, 0))
        sq = sched_r[q][o]
        last = np.maximum.accumulate(np.where(~sq, pos, -1))
        sig_s = code[q][o]
        v = np.where(last >= gstart, sig_s[np.maximum(last, 0)], lehash_tab[vm_r[q][o]])
        vq = np.empty(nq, dtype=np.int16)
        vq[o] = v
        code[q[sched_r[q]]] = vq[sched_r[q]]
        del key, o, key_s, pos, start, gstart, sq, last, sig_s, v, vq, q
    # Per CPU: the last setter before each check row, unless an S3 came after it.
    nr = len(r)
    o = np.argsort(cpu_r, kind="stable")
    cpu_s = cpu_r[o]
    pos = np.arange(nr, dtype=np.int64)
    start = np.empty(nr, dtype=bool)
    start[0] = True
    np.not_equal(cpu_s[1:], cpu_s[:-1], out=start[1:])
    gstart = np.maximum.accumulate(np.where(start, pos, 0))
    chk_s = check_r[o]
    last = np.maximum.accumulate(np.where(~chk_s, pos, -1))
    valid = last >= gstart
    lastc = np.maximum(last, 0)
    if s3_r is not None:
        s3_s = s3_r[o]
        valid &= s3_s[lastc] == s3_s
    code_s = code[o]
    H = np.where(valid, code_s[lastc], np.int16(-1))[chk_s]
    w = code_s[chk_s]
    fail = np.zeros(len(w), dtype=bool)
    for k in range(4):
        fail |= ids[k][H] != ids[k][w]
    return r[o[np.flatnonzero(chk_s)[fail]]]


# --------------------------------------------------------------------------- engine


def simulate(
    trace: Trace,
    design: str | type[Design],
    costs: CostModel | None = None,
    *,
    validate: bool = True,
    policy: HostPolicy | str | None = None,
) -> dict[str, Any]:
    """Run ``trace`` under ``design`` with ``costs``; return the summary dict of docs/simulator.md.

    All keys except ``design``, ``workload``, ``seed`` and ``engine`` (the
    caller adds those). The trace is checked with :meth:`Trace.validate`
    unless ``validate=False`` (for a trace that has just passed it). Raises
    :class:`~sgxlab.errors.EngineUnsupported` for a design it does not model.
    ``policy``: a :class:`~sgxlab.kvm.policy.HostPolicy` (or a built-in's
    name, built with the trace's approved signers), else the trace's own.
    """
    mode, lock, traps, initial = model_of(design)
    if costs is None:
        costs = CostModel()
    if not isinstance(costs, CostModel):
        raise ConfigError("costs", costs, "expected a CostModel")
    if not isinstance(trace, Trace):
        raise ConfigError("trace", trace, "expected a sgxlab.sim.trace.Trace")
    if validate:
        trace.validate()
    tables = run_tables(trace, design_class(design), policy)
    trace = trace.without_vms([v for v, r in enumerate(tables.vm_refused) if r])
    ids = signer_word_ids(trace.nsigners)
    intel = [int(ids[k][-1]) for k in range(4)]
    host_le = tables.host_le

    kind = trace.kind
    N = len(trace)
    nvms = len(trace.vms)
    is_launch = kind == LAUNCH
    nl = int(np.count_nonzero(is_launch))

    # Host policy refusals: taken out of the launches the designs see -----------------
    nref = nref_guest = nref_lewr = 0
    ref_rows: np.ndarray | None = None  # trace rows of the refused launches
    ref_lat: np.ndarray | None = None  # their latencies (= service; they queue nowhere)
    host_ref = np.array(tables.host_refused, dtype=bool)
    guest_check = traps and nvms > 0 and any(map(any, tables.guest_refused))
    if nl and (host_ref.any() or guest_check):
        lrows = np.flatnonzero(is_launch)
        sig_l = trace.signer[lrows]
        vm_l = trace.vm[lrows]
        ref = (vm_l < 0) & host_ref[sig_l]
        gref: np.ndarray | None = None
        if guest_check:
            gtab = np.array(tables.guest_refused, dtype=bool)  # (VM, signer)
            gref = (vm_l >= 0) & gtab[np.maximum(vm_l, 0), sig_l]
            ref |= gref
        nref = int(np.count_nonzero(ref))
        if nref:
            ref_rows = lrows[ref]
            is_launch[ref_rows] = False
            nl -= nref
            ref_lat = np.zeros(nref - (int(np.count_nonzero(gref)) if gref is not None else 0), dtype=_I64)
            if gref is not None and gref.any():
                lewr_g = np.array([v.lewr for v in trace.vms], dtype=bool)[vm_l[gref]]
                nref_guest = len(lewr_g)
                nref_lewr = int(np.count_nonzero(lewr_g))
                g_lat = lewr_g.astype(_I64) * _I64(4 * costs.vm_exit) + _I64(costs.encls_trap)
                ref_lat = np.concatenate([ref_lat, g_lat])
        del lrows, sig_l, vm_l, ref, gref
    nsched = int(np.count_nonzero(kind == SCHED))
    nexit = int(np.count_nonzero(kind == EXIT))
    is_s3 = kind == S3
    ns3 = int(np.count_nonzero(is_s3))
    s3_row = np.cumsum(is_s3, dtype=np.int32) if ns3 else None
    del is_s3
    # S3 resume schedules every current vCPU in again: implicit SCHED rows.
    nreload = 0
    reloads: np.ndarray | None = None
    if s3_row is not None and nsched and nvms:
        nreload, reloads = _s3_reloads(trace, s3_row, expand=mode == "eager-load")
    nsched += nreload

    li: np.ndarray | None = None if nl == N else np.flatnonzero(is_launch)
    del is_launch

    def take(col: np.ndarray) -> np.ndarray:
        return col if li is None else col[li]

    cpu_l = take(trace.cpu)
    order: np.ndarray | None = None
    if nl and trace.ncpus > 1 and int(cpu_l.min()) != int(cpu_l.max()):
        order = np.argsort(cpu_l, kind="stable")  # int16 keys: numpy's radix sort

    def srt(col: np.ndarray) -> np.ndarray:
        """A launch column in CPU-sorted order."""
        return col if order is None else col[order]

    cpu_s = srt(cpu_l)
    del cpu_l
    first = np.zeros(nl, dtype=bool)  # first launch on its CPU
    if nl:
        first[0] = True
        np.not_equal(cpu_s[1:], cpu_s[:-1], out=first[1:])
    del cpu_s
    sig_s = srt(take(trace.signer))
    guest_s: np.ndarray | None = None
    lewr_s: np.ndarray | None = None
    nguest = nlewr = 0
    if nvms:
        vm_s = srt(take(trace.vm))
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
    s3_s = srt(take(s3_row)) if s3_row is not None else None
    s3_changed: np.ndarray | None = None  # an S3 since the previous launch on this CPU
    if s3_s is not None:
        s3_changed = np.zeros(nl, dtype=bool)
        np.not_equal(s3_s[1:], s3_s[:-1], out=s3_changed[1:])
        s3_changed &= ~first

    # Interrupts during EINIT: attempts per launch (None: one each) --------------
    att_s: np.ndarray | None = None  # EINIT attempts of each launch (CPU-sorted)
    capped_s: np.ndarray | None = None  # every attempt interrupted: fails with SGX_UNMASKED_EVENT
    ncapped = 0
    if nl and trace.interrupted:
        assert trace.unmasked is not None
        u_s = srt(take(trace.unmasked)).astype(_I64)
        att_s = np.minimum(u_s + 1, MAX_EINIT_ATTEMPTS)
        capped_s = u_s >= MAX_EINIT_ATTEMPTS
        del u_s
        ncapped = int(np.count_nonzero(capped_s))
        if not ncapped:
            capped_s = None
    attempts = int(att_s.sum(dtype=_I64)) if att_s is not None else nl

    # Functional part: per-launch WRMSR counts and failures -----------------------
    wr_s: np.ndarray | int
    rd = 0  # RDMSRs per attempt
    fail_s: np.ndarray | None = None  # final EINIT said SGX_INVALID_EINITTOKEN (CPU-sorted launches)
    fail_rows: np.ndarray | None = None  # or: trace rows of such launches
    retry_s: np.ndarray | None = None
    extra_wrmsr = 0
    if mode == "always-write":
        wr_s = 4 if att_s is None else att_s * 4  # every attempt writes all four
    elif mode == "read-compare":
        rd = 4  # every attempt reads all four; only the first writes
        reset = first if s3_changed is None else first | s3_changed
        acc = np.zeros(nl, dtype=np.int8)
        for k in range(4):
            w = ids[k][want_s]
            acc += _prev(w, reset, intel[k]) != w
        wr_s = acc
        del reset
    elif mode in ("percpu-cache", "percpu-cache-retry"):
        retry = mode == "percpu-cache-retry"
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
            w = ids[k][want_s]
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
        if retry:
            if stale_any is not None:
                if pos is None:  # every earlier launch left H = w: stale only at a CPU's first or after an S3
                    stale_any &= first if s3_changed is None else first | s3_changed
                if capped_s is not None:
                    stale_any &= ~capped_s  # no attempt got as far as the token check
                retry_s = stale_any
                acc += stale_any.astype(np.int8) * np.int8(4)  # the forced rewrite
        else:
            fail_s = stale_any
        wr_s = acc
        del stale_any, pos, gstart
    else:  # eager-load
        if guest_s is None:
            wr_s = 4 if att_s is None else att_s * 4
        else:
            assert lewr_s is not None
            wr_s = (~guest_s | lewr_s).astype(np.int8) * np.int8(4)  # host path, lewr passthrough
            if att_s is not None:
                wr_s = wr_s * att_s  # per attempt
        extra_wrmsr = 4 * nsched
        fail_rows = _eager_failures(trace, ids, s3_row, reloads, skip=ref_rows, host_le=host_le)
        del reloads

    # Failures: SGX_UNMASKED_EVENT when every attempt was interrupted, else the MSRs' verdict.
    if fail_s is not None and capped_s is not None:
        fail_s &= ~capped_s
    if fail_rows is not None and ncapped and len(fail_rows):
        assert trace.unmasked is not None
        fail_rows = fail_rows[trace.unmasked[fail_rows] < MAX_EINIT_ATTEMPTS]
    failures = 0
    if fail_s is not None:
        failures = int(np.count_nonzero(fail_s))
    elif fail_rows is not None:
        failures = len(fail_rows)

    # Policy bypasses: successful guest launches of signers the host may not launch.
    bypasses = 0
    outside = np.array(tables.forbidden, dtype=bool)
    if outside.any() and guest_s is not None and nguest:
        outside_s = outside[sig_s] & guest_s
        bypasses = int(np.count_nonzero(outside_s))
        if fail_s is not None and failures:
            bypasses -= int(np.count_nonzero(outside_s & fail_s))
        elif fail_rows is not None and failures:
            bypasses -= int(np.count_nonzero(outside[trace.signer[fail_rows]]))
        if capped_s is not None:
            bypasses -= int(np.count_nonzero(outside_s & capped_s))
        del outside_s
    del sig_s, want_s, s3_s, s3_changed, s3_row, fail_s, fail_rows, capped_s

    nretry = int(np.count_nonzero(retry_s)) if retry_s is not None else 0
    retries = attempts - nl + nretry
    einits = nl + retries
    wrmsr = (int(wr_s.sum(dtype=_I64)) if isinstance(wr_s, np.ndarray) else wr_s * nl) + extra_wrmsr
    rdmsr = rd * attempts
    encls_exits = 0
    msr_exits = 4 * nlewr
    if att_s is not None and guest_s is not None:
        assert lewr_s is not None
        if traps:
            nguest = int(att_s[guest_s].sum(dtype=_I64))  # one trapped EINIT per attempt
        msr_exits = 4 * int(att_s[lewr_s].sum(dtype=_I64))  # the guest rewrites before each attempt
    if traps:
        encls_exits = nguest + nref_guest  # a refused trapped EINIT is an ENCLS exit too
    msr_exits += 4 * nref_lewr  # the refused lewr guest wrote its MSRs first

    # Service times ---------------------------------------------------------------
    per_attempt = costs.einit + (costs.lock if lock is not None else 0) + rd * costs.rdmsr_lehash
    if att_s is not None:
        S = att_s * _I64(per_attempt)
        S += np.asarray(wr_s, dtype=_I64) * _I64(costs.wrmsr_lehash)
    elif isinstance(wr_s, np.ndarray):
        S = wr_s.astype(_I64)
        S *= _I64(costs.wrmsr_lehash)
        S += _I64(per_attempt)
    else:
        S = np.full(nl, per_attempt + wr_s * costs.wrmsr_lehash, dtype=_I64)
    del wr_s
    if guest_s is not None:
        assert lewr_s is not None
        if traps and costs.encls_trap:
            trap = guest_s.astype(_I64) * _I64(costs.encls_trap)
            S += trap if att_s is None else trap * att_s
            del trap
        if costs.vm_exit and nlewr:
            mx = lewr_s.astype(_I64) * _I64(4 * costs.vm_exit)
            S += mx if att_s is None else mx * att_s
            del mx
    del guest_s, lewr_s, att_s
    if retry_s is not None:
        S += retry_s.astype(_I64) * _I64(costs.einit)  # the second EINIT (its 4 WRMSRs are in wr_s)
    del retry_s

    # Queues ----------------------------------------------------------------------
    if lock == "global":  # one FIFO in trace order
        if order is not None:
            St = np.empty_like(S)
            St[order] = S
            S = St
            del St
        A = take(trace.t)
        wait = _wait(A, S, None)
    else:  # one FIFO per CPU: the CPU-sorted runs
        if li is None:
            A = trace.t if order is None else trace.t[order]
        else:
            A = trace.t[li] if order is None else trace.t[li[order]]
        wait = _wait(A, S, np.flatnonzero(first))
    del A, first
    order = li = None  # free the index arrays (the closures above see them)
    sum_s = exact_sum(S)  # Python ints: a saturated lock's total wait can pass 2**63
    sum_wait = exact_sum(wait)
    wait += S  # now the latency
    del S
    if ref_lat is not None:  # the refused launches: their own service, no queue
        sum_s += exact_sum(ref_lat)
        wait = np.concatenate([wait, ref_lat])
    lat = latency_summary(wait)
    del wait, ref_lat

    overhead = sum_s - einits * costs.einit + (sum_wait if lock == "global" else 0) + extra_wrmsr * costs.wrmsr_lehash
    fails: dict[str, int] = {}
    if failures:
        fails["SGX_INVALID_EINITTOKEN"] = failures
    if ncapped:
        fails["SGX_UNMASKED_EVENT"] = ncapped
    return {
        "launches": nl + nref,
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
        "refusals": nref,
        "vms_refused": sum(tables.vm_refused),
    }
