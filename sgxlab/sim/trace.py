"""A workload as a trace: the flat, columnar event list both engines consume.

A workload generator (``sgxlab.sim.workloads``) turns parameters and a seed into a
:class:`Trace`: every launch request, vCPU schedule-in, plain VM exit and S3
event, with its time in cycles, sorted by time. The *exact* engine replays it
event by event through the emulator; the *fast* engine processes the same
columns with numpy. Because both read one trace, they answer the same
question, and a differential test can demand identical summaries.

Columns (numpy arrays of equal length, one row per event):

=========  =======  ============================================================
``t``      int64    time in cycles; non-decreasing
``kind``   int8     :data:`LAUNCH`, :data:`SCHED`, :data:`EXIT` or :data:`S3`
``cpu``    int16    physical CPU (-1 for S3)
``vm``     int16    VM index, or -1 for the host (-1 for S3)
``vcpu``   int16    vCPU index within the VM (-1 for host and S3)
``signer`` int16    LAUNCH: index of the enclave's signer; else -1
=========  =======  ============================================================

One optional column, ``unmasked`` (int16, or ``None`` when the trace has
none, which means all zero): for a LAUNCH, how many of its EINIT attempts in
a row an interrupt aborts with SGX_UNMASKED_EVENT before one runs through;
0 on every other row. Linux tries at most :data:`MAX_EINIT_ATTEMPTS` (1,000)
times (``sgx_encl_init``'s 20 tries x 50 passes), so the value is at most
that, and 1,000 means every attempt was aborted and the launch fails with
SGX_UNMASKED_EVENT. Both engines replay these draws (``docs/simulator.md``);
a workload makes them from its ``unmasked_rate`` parameter.

Static facts sit beside the columns: the number of physical CPUs, the number
of signers, one :class:`VmSpec` per VM (vCPU count, lewr, the signer
index whose hash is the VM's initial ``lehash``, or -1 for Intel's, and
``provision``: its QEMU passed ``/dev/sgx_provision``, so it holds
KVM_CAP_SGX_ATTRIBUTE), and the host launch policy: ``policy``, a name of
:data:`sgxlab.kvm.policy.HOST_POLICY_NAMES` (``allow-all``, ``allowlist``,
``single-le``, ``approved-set``, ``host-only``, ``mainline``), and ``allowlist``, the
host-approved signer indices it is built with (the allowlist of
``allowlist`` and ``host-only``, the approved launch enclaves of
``approved-set``; for ``single-le`` the first index is the host's one launch
enclave and all of them are its token policy; ``allow-all`` ignores it). The
name ``allowlist`` is kept from the time when the only policy a trace could
carry was ``host-only``: a trace built with an ``allowlist`` and no
``policy`` still means ``host-only``, one with neither ``allow-all``. The
engines turn the name and the indices into a
:class:`~sgxlab.kvm.policy.HostPolicy` (:mod:`sgxlab.sim.hostpolicy`) and
apply it (``docs/simulator.md``, "Host launch policy"); the trace itself
never changes with the policy. Two more facts feed ``mainline``'s
PROVISIONKEY gate: ``provisionkey``, the signer indices whose enclaves ask
for PROVISIONKEY (empty: none), and ``host_provision``, whether the host's
launching process holds ``/dev/sgx_provision``.

Plain VM exits change no state in either engine (they are only counted and
costed, ``exit_cycles``), so a trace may count them instead of listing them:
``vm_exits`` holds, per VM, the exits that happened while its vCPUs ran
beside the trace's EXIT rows (empty: none). The guest workloads count
theirs this way; a CSV trace may list EXIT rows, declare counts on its
``#@ vm=`` lines, or both. :attr:`Trace.exits` is their total.

Rules a trace obeys (``Trace.validate`` checks them):

* a guest LAUNCH or EXIT happens only while its vCPU is *current* on that
  CPU: the latest SCHED row onto the CPU scheduled in this vCPU, and the
  vCPU has not been scheduled in elsewhere since (a vCPU runs guest code only
  inside KVM_RUN, i.e. while loaded; one displaced by another vCPU, or
  migrated away, needs a new SCHED before it acts again);
* host LAUNCHes happen on CPUs no vCPU is ever scheduled on (host CPUs and
  VM CPUs are disjoint, so a host launch never preempts a vCPU);
* a guest without lewr launches only enclaves of its ``lehash`` signer (its
  launch enclave's vendor), because it cannot change its virtual hash;
* ``policy`` is a known name and every ``allowlist`` index a signer of the
  trace; ``single-le`` needs at least one index (its launch enclave); every
  ``provisionkey`` index is a signer of the trace. Host
  launches of signers the policy refuses are allowed: the engines refuse
  them at run time and count them;
* ``unmasked`` (if present) is in ``[0, MAX_EINIT_ATTEMPTS]`` on LAUNCH rows
  and 0 on the others.
* ``vm_exits`` is empty or has one count, 0 or more, per VM.

``validate`` checks all rows with numpy first (a 10-million-row trace takes
well under a second) and, only when something is wrong, walks the rows in
order to name the first offending one; that :class:`ConfigError` carries the
row index as ``error.row`` (``None`` for a problem with the static facts).
The numpy pass sorts nothing when it can: the "current vCPU" rule is looked
up in a table of each CPU's current vCPU after every SCHED row (SCHED rows x
VM CPUs, at most :data:`_TABLE_CELLS`), in blocks of rows; a trace whose table
would be bigger is checked by one stable sort of its guest rows by vCPU.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from sgxlab.errors import ConfigError

__all__ = [
    "Trace",
    "VmSpec",
    "LAUNCH",
    "SCHED",
    "EXIT",
    "S3",
    "KIND_NAMES",
    "MAX_EINIT_ATTEMPTS",
    "POLICY_NAMES",
    "canonical_policy",
]

LAUNCH = 0
SCHED = 1
EXIT = 2
S3 = 3
KIND_NAMES = {LAUNCH: "launch", SCHED: "sched", EXIT: "exit", S3: "s3"}

MAX_EINIT_ATTEMPTS = 1000
"""The most EINIT attempts of one launch: Linux's ``sgx_encl_init`` tries 20 times
in each of 50 passes (``sgxlab.host.designs.EINIT_MAX_ATTEMPTS``; not imported,
so traces and workloads stay free of the emulator; a test checks they agree)."""

POLICY_NAMES = ("allow-all", "allowlist", "single-le", "approved-set", "host-only", "mainline")
"""The host policies a trace may name: :data:`sgxlab.kvm.policy.HOST_POLICY_NAMES`, the
2017 thread's five and ``mainline`` (not imported, so traces and workloads stay free of
the emulator; a test checks they agree)."""


def canonical_policy(name: object, option: str = "policy") -> str:
    """``name`` as a policy name of :data:`POLICY_NAMES` (case-insensitive, ``_`` for ``-``)."""
    if isinstance(name, str):
        key = name.strip().lower().replace("_", "-")
        if key in POLICY_NAMES:
            return key
    raise ConfigError(option, name, f"unknown host policy; valid names: {', '.join(POLICY_NAMES)}")


_TABLE_CELLS = 1 << 25
"""Most cells (SCHED rows x CPUs) of the current-vCPU table :meth:`Trace.validate` builds (128 MB)."""

_ROW_BLOCK = 1 << 20
"""Rows :meth:`Trace.validate` checks at a time (its temporaries are a few bytes per row of a block)."""

_COLUMNS = (
    ("t", np.int64),
    ("kind", np.int8),
    ("cpu", np.int16),
    ("vm", np.int16),
    ("vcpu", np.int16),
    ("signer", np.int16),
)


_INT16_MAX = int(np.iinfo(np.int16).max)


@dataclass(frozen=True, slots=True)
class VmSpec:
    """A guest: ``nvcpus`` vCPUs, ``lewr`` (guest may write its hash),
    ``lehash`` = index of the signer whose hash the VM starts with (-1: Intel's),
    and ``provision``: its QEMU opened ``/dev/sgx_provision`` (``+sgx-provisionkey``),
    so the VM holds KVM_CAP_SGX_ATTRIBUTE (``mainline``'s gate lets its
    PROVISIONKEY enclaves through)."""

    nvcpus: int
    lewr: bool
    lehash: int = -1
    provision: bool = False


_IN_ORDER = np.zeros(0, np.int64)
"""The kept :meth:`Trace.launch_cpu_order` of a trace whose launches are already in CPU order
(recognised by its length, not its identity, so that it survives a pickle)."""


_ORDER_BLOCK = 1 << 20
"""Rows per block of :func:`stable_cpu_order` (its temporaries stay a few MB)."""

_COUNTING_CPUS = 16
"""Up to this many CPUs, :func:`stable_cpu_order` places positions CPU by CPU instead of sorting."""


def cpu_counts(cpu: np.ndarray, ncpus: int) -> np.ndarray:
    """``np.bincount(cpu, minlength=ncpus)`` (int64) of an int16 column of CPUs in
    ``[0, ncpus)``, without bincount's int64 copy of it while there are few CPUs (one
    comparison per CPU and row)."""
    if ncpus > _COUNTING_CPUS:
        return np.bincount(cpu, minlength=ncpus)
    return np.array([np.count_nonzero(cpu == c) for c in range(ncpus)], dtype=np.int64)


def stable_cpu_order(cpu: np.ndarray, ncpus: int, counts: np.ndarray | None = None) -> np.ndarray:
    """``np.argsort(cpu, kind="stable")`` for CPU numbers in ``[0, ncpus)`` (``counts``:
    the rows per CPU, if the caller has them), as int32 while the positions fit (half
    the memory of argsort's int64, and faster gathers), else int64.

    With a few CPUs the positions are placed, not sorted: each CPU's slice of the
    result starts after the counts of the CPUs below it, and a block of rows at a
    time appends each CPU's positions (``flatnonzero``) to its slice. That is one
    comparison per CPU and row, with temporaries of a block's size only, and half
    the bytes of argsort's int64 result: on a machine that backs memory lazily,
    first touches of fresh pages cost more than the comparisons.
    Above :data:`_COUNTING_CPUS` CPUs, or with a CPU outside the range, it sorts.
    """
    n = len(cpu)
    dt = np.int32 if n < 2**31 - 1 else np.int64
    if ncpus > _COUNTING_CPUS or n == 0 or int(cpu.min()) < 0 or int(cpu.max()) >= ncpus:
        return np.argsort(cpu, kind="stable").astype(dt, copy=False)
    if counts is None:
        counts = cpu_counts(cpu, ncpus)
    at = np.zeros(ncpus, np.int64)
    np.cumsum(counts[:-1], out=at[1:])
    order = np.empty(n, dt)
    eq = np.empty(min(n, _ORDER_BLOCK), bool)
    for a in range(0, n, _ORDER_BLOCK):
        b = min(n, a + _ORDER_BLOCK)
        m = eq[: b - a]
        for c in range(ncpus):
            if not counts[c]:
                continue
            np.equal(cpu[a:b], c, out=m)
            nz = np.flatnonzero(m)
            k = len(nz)
            np.add(nz, a, out=order[at[c] : at[c] + k], casting="unsafe")
            at[c] += k
    return order


@dataclass(eq=False)
class Trace:
    """Columnar events plus the static facts of the workload."""

    ncpus: int
    nsigners: int
    vms: tuple[VmSpec, ...]
    t: np.ndarray
    kind: np.ndarray
    cpu: np.ndarray
    vm: np.ndarray
    vcpu: np.ndarray
    signer: np.ndarray
    name: str = "trace"
    params: dict[str, object] = field(default_factory=dict)
    allowlist: tuple[int, ...] | None = None
    unmasked: np.ndarray | None = None
    policy: str | None = None
    provisionkey: tuple[int, ...] = ()
    host_provision: bool = False
    vm_exits: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        for name in ("ncpus", "nsigners"):
            v = getattr(self, name)
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
                raise ConfigError(f"trace {name}", v, "expected an integer")
            setattr(self, name, int(v))
        if isinstance(self.vms, list):
            self.vms = tuple(self.vms)
        if not isinstance(self.vms, tuple) or not all(isinstance(v, VmSpec) for v in self.vms):
            raise ConfigError("trace vms", self.vms, "expected a tuple of VmSpec")
        if self.allowlist is not None:
            self.allowlist = tuple(int(x) for x in self.allowlist)
        self.provisionkey = _signer_indices(self.provisionkey, "trace provisionkey")
        if not isinstance(self.host_provision, (bool, np.bool_)):
            raise ConfigError("trace host_provision", self.host_provision, "expected true or false")
        self.host_provision = bool(self.host_provision)
        self.vm_exits = _exit_counts(self.vm_exits)
        if self.policy is None:  # a trace from before policies had names: an allowlist meant host-only
            self.policy = "allow-all" if self.allowlist is None else "host-only"
        else:
            self.policy = canonical_policy(self.policy, "trace policy")
        for col, dt in (*_COLUMNS, ("unmasked", np.int16)):
            value = getattr(self, col)
            if value is None and col == "unmasked":
                continue
            try:
                arr = np.ascontiguousarray(value, dtype=dt)
            except (TypeError, ValueError, OverflowError):
                raise ConfigError(f"trace.{col}", value, f"expected a column of {np.dtype(dt).name} values") from None
            if arr.ndim != 1:
                raise ConfigError(f"trace.{col}", arr.shape, "expected a one-dimensional column")
            setattr(self, col, arr)
        n = len(self.t)
        for col in self._column_names():
            if len(getattr(self, col)) != n:
                raise ConfigError(f"trace.{col}", len(getattr(self, col)), f"all columns must have {n} rows")

    def _column_names(self) -> tuple[str, ...]:
        cols = tuple(c for c, _ in _COLUMNS)
        return (*cols, "unmasked") if self.unmasked is not None else cols

    def __setattr__(self, name: str, value: object) -> None:
        # Any change to what validate() checked makes the trace unchecked again,
        # and a new kind or cpu column forgets the launches' CPU order.
        object.__setattr__(self, name, value)
        if name not in ("_valid", "_cpu_order"):
            object.__setattr__(self, "_valid", False)
            if name in ("kind", "cpu"):
                object.__setattr__(self, "_cpu_order", None)

    def launch_cpu_order(self) -> np.ndarray | None:
        """The launches stably sorted by CPU: positions among the LAUNCH rows (0 for the
        first launch, in row order), as int32 while they fit (else int64), or ``None``
        when they already are (one CPU).

        What every engine run needs first ("the previous launch on this CPU", per-CPU
        queues). A validated (frozen) trace computes it once and keeps it, so five
        designs over one trace sort once; a generator that has sorted its launches by
        CPU anyway hands its order over (:meth:`_keep_cpu_order`).
        """
        kept = getattr(self, "_cpu_order", None)
        if kept is not None and self.validated:
            return kept if len(kept) else None  # empty: in order (by length, which survives a pickle)
        launch = self.kind == LAUNCH
        cpu_l = self.cpu if bool(launch.all()) else self.cpu[launch]
        del launch
        order: np.ndarray | None = None
        if len(cpu_l) and self.ncpus > 1 and int(cpu_l.min()) != int(cpu_l.max()):
            order = stable_cpu_order(cpu_l, self.ncpus)
            order.flags.writeable = False
        if self.validated:
            self._cpu_order = _IN_ORDER if order is None else order
        return order

    def _keep_cpu_order(self, order: np.ndarray | None) -> None:
        """Take ``order`` (as :meth:`launch_cpu_order` would compute it) from the generator
        that built this trace; it is used once the trace is validated."""
        if order is not None:
            order.flags.writeable = False
        self._cpu_order = _IN_ORDER if order is None else order

    def __len__(self) -> int:
        return len(self.t)

    @property
    def validated(self) -> bool:
        """Whether :meth:`validate` passed and nothing it checked has changed since."""
        return bool(getattr(self, "_valid", False))

    @property
    def approved(self) -> tuple[int, ...]:
        """The host-approved signer indices (``allowlist``; empty when there is none)."""
        return self.allowlist if self.allowlist is not None else ()

    @property
    def policy_name(self) -> str:
        """The host policy's name (``policy``, resolved at construction)."""
        assert self.policy is not None
        return self.policy

    def without_vms(self, vms: set[int] | frozenset[int] | list[int] | tuple[int, ...]) -> Trace:
        """This trace without the rows (SCHED, EXIT, LAUNCH) of the VMs ``vms``, and
        with their ``vm_exits`` counts 0.

        What the engines replay when the host policy refuses to create those
        VMs (``docs/simulator.md``): the VMs keep their indices and specs but
        never act. Removing a VM's rows cannot break a rule of a valid trace
        (a vCPU stays current at least as long as before, CPUs stay disjoint),
        so a validated trace gives a validated one. ``self`` if ``vms`` is empty
        or has neither rows nor counted exits.
        """
        gone = sorted({int(v) for v in vms})
        if not gone:
            return self
        drop = np.isin(self.vm, np.array(gone, dtype=np.int64)) & (self.kind != S3)
        exits = tuple(0 if j in gone else x for j, x in enumerate(self.vm_exits))
        if not drop.any() and exits == self.vm_exits:
            return self
        out = self.take_rows(~drop)
        out.vm_exits = exits
        if self.validated:
            for col in out._column_names():
                getattr(out, col).flags.writeable = False
            out._valid = True
        return out

    def take_rows(self, keep: np.ndarray) -> Trace:
        """A new, unvalidated trace of the rows where the bool mask ``keep`` is true (every
        column, ``unmasked`` included), with this trace's VMs, signers, policy and
        provenance, and its ``vm_exits`` counts (which no row mask can thin: the caller
        sets them if the rows it drops should take exits with them). Dropping arbitrary
        rows can break the contract's rules, so the caller validates it, or knows (as
        :meth:`without_vms` does) that it cannot."""
        return Trace(
            self.ncpus,
            self.nsigners,
            self.vms,
            self.t[keep],
            self.kind[keep],
            self.cpu[keep],
            self.vm[keep],
            self.vcpu[keep],
            self.signer[keep],
            name=self.name,
            params=dict(self.params),
            allowlist=self.allowlist,
            unmasked=None if self.unmasked is None else self.unmasked[keep],
            policy=self.policy,
            provisionkey=self.provisionkey,
            host_provision=self.host_provision,
            vm_exits=self.vm_exits,
        )

    @property
    def launches(self) -> int:
        return int(np.count_nonzero(self.kind == LAUNCH))

    @property
    def exits(self) -> int:
        """All plain VM exits: the EXIT rows and the ``vm_exits`` counts."""
        return int(np.count_nonzero(self.kind == EXIT)) + sum(self.vm_exits)

    @property
    def interrupted(self) -> bool:
        """Whether some launch has an EINIT attempt aborted by an interrupt (``unmasked`` > 0)."""
        u = self.unmasked
        return u is not None and bool(u.any())

    def interrupted_attempts(self) -> int:
        """The total of the ``unmasked`` column: EINIT attempts an interrupt aborts."""
        u = self.unmasked
        return int(u.sum(dtype=np.int64)) if u is not None else 0

    @classmethod
    def from_rows(
        cls,
        rows: list[tuple[int, ...]],
        *,
        ncpus: int,
        nsigners: int,
        vms: tuple[VmSpec, ...] = (),
        name: str = "trace",
        params: dict[str, object] | None = None,
        allowlist: tuple[int, ...] | None = None,
        policy: str | None = None,
        provisionkey: tuple[int, ...] = (),
        host_provision: bool = False,
        vm_exits: tuple[int, ...] = (),
    ) -> Trace:
        """Build from ``(t, kind, cpu, vm, vcpu, signer)`` tuples (sorted stably by t).

        Rows may carry a seventh item, ``unmasked`` (all rows or none); the
        trace then has that column.
        """
        rows = sorted(rows, key=lambda r: r[0])
        widths = {len(r) for r in rows}
        if not widths <= {6} and widths != {7}:
            raise ConfigError("rows", sorted(widths), "every row has 6 items, or every row 7 (with unmasked)")
        cols = [np.array(c) for c in (list(zip(*rows)) if rows else [()] * 6)]
        return cls(
            ncpus,
            nsigners,
            tuple(vms),
            cols[0],
            cols[1],
            cols[2],
            cols[3],
            cols[4],
            cols[5],
            name=name,
            params=dict(params or {}),
            allowlist=allowlist,
            unmasked=cols[6] if len(cols) == 7 else None,
            policy=policy,
            provisionkey=provisionkey,
            host_provision=host_provision,
            vm_exits=vm_exits,
        )

    def validate(self) -> None:
        """Check the rules in the module docstring; raise ConfigError naming the row.

        A trace that passes is *frozen*: its column arrays become read-only
        and the verdict is remembered, so validating it again (each engine
        does) costs nothing and cannot go stale. Replacing a column or a
        static field makes it unchecked again; to edit a validated trace's
        columns in place, work on copies (``trace.t.copy()``).
        """
        if self.validated:
            return
        self._validate_static()
        if not self._rows_ok():
            self._validate_rows()
        for col in self._column_names():
            getattr(self, col).flags.writeable = False
        self._valid = True

    def _validate_static(self) -> None:
        if self.ncpus < 1:
            raise _err(None, "ncpus", self.ncpus, "at least one CPU")
        if self.nsigners < 0:
            raise _err(None, "nsigners", self.nsigners, "must not be negative")
        for j, spec in enumerate(self.vms):
            if spec.nvcpus < 1:
                raise _err(None, f"vm {j} nvcpus", spec.nvcpus, "a VM has at least one vCPU")
            if spec.nvcpus > _INT16_MAX:
                raise _err(
                    None, f"vm {j} nvcpus", spec.nvcpus, f"at most {_INT16_MAX} vCPUs (the vcpu column is int16)"
                )
            if not -1 <= spec.lehash < self.nsigners:
                raise _err(
                    None, f"vm {j} lehash", spec.lehash, f"must be -1 (Intel's) or a signer in [0, {self.nsigners})"
                )
        canonical_policy(self.policy, "trace policy")
        if self.allowlist is not None:
            for s in self.allowlist:
                if not 0 <= s < self.nsigners:
                    raise _err(None, "allowlist", s, f"signer index must be in [0, {self.nsigners})")
        if self.policy == "single-le" and not self.approved:
            raise _err(None, "allowlist", self.allowlist, "policy single-le needs its launch enclave's signer first")
        for s in self.provisionkey:
            if not 0 <= s < self.nsigners:
                raise _err(None, "provisionkey", s, f"signer index must be in [0, {self.nsigners})")
        if self.vm_exits and len(self.vm_exits) != len(self.vms):
            raise _err(None, "vm_exits", self.vm_exits, f"one count per VM ({len(self.vms)}), or none (an empty tuple)")

    def _rows_ok(self) -> bool:
        """All row rules, vectorised; True iff :meth:`_validate_rows` would pass."""
        ok = self._rows_ok_tables()
        return self._rows_ok_sorted() if ok is None else ok

    def _rows_ok_tables(self) -> bool | None:
        """:meth:`_rows_ok` in blocks of rows with small-table lookups, no sort of the rows.

        The current-vCPU rule uses a table of each CPU's current vCPU after every
        SCHED row (SCHED rows x VM CPUs); ``None`` when that table would be too
        big (then the sort-based :meth:`_rows_ok_sorted` decides). Temporaries are
        per block of :data:`_ROW_BLOCK` rows.
        """
        n = len(self)
        if n == 0:
            return True
        t, kind, cpu, vm, vcpu, signer, u = self.t, self.kind, self.cpu, self.vm, self.vcpu, self.signer, self.unmasked
        nvms, ncpus, nsig = len(self.vms), self.ncpus, self.nsigners
        nv = np.array([m.nvcpus for m in self.vms] + [32767], dtype=np.int16)  # [-1]: the host
        need = np.array([-2 if m.lewr else m.lehash for m in self.vms] + [-2], dtype=np.int16)  # -2: any signer
        same_nv = len({m_.nvcpus for m_ in self.vms}) == 1
        min_nv = min((m_.nvcpus for m_ in self.vms), default=0)
        fixed_signer = bool((need[:-1] != -2).any())  # some VM (without lewr) launches one signer only
        hcpu = np.zeros(ncpus, dtype=bool)  # CPUs with a host launch
        srows: list[np.ndarray] = []
        acts_seen = False
        for a in range(0, n, _ROW_BLOCK):
            b = min(n, a + _ROW_BLOCK)
            tb = t[max(a - 1, 0) : b]
            if len(tb) > 1 and bool((tb[1:] < tb[:-1]).any()):
                return False
            k = kind[a:b]
            if int(k.min()) < LAUNCH or int(k.max()) > S3:
                return False
            if u is not None:
                ub = u[a:b]
                if int(ub.min()) < 0 or int(ub.max()) > MAX_EINIT_ATTEMPTS or bool(((ub != 0) & (k != LAUNCH)).any()):
                    return False
            ns = k != S3
            all_ns = bool(ns.all())
            c, v, vc, s = cpu[a:b], vm[a:b], vcpu[a:b], signer[a:b]
            if (int(c.min()) < 0 or int(c.max()) >= ncpus) and bool((ns & ((c < 0) | (c >= ncpus))).any()):
                return False
            v_bad = int(v.min()) < -1 or int(v.max()) >= nvms
            if v_bad and bool((ns & ((v < -1) | (v >= nvms))).any()):
                return False
            launch = k == LAUNCH  # never an S3 row
            if (int(s.min()) < 0 or int(s.max()) >= nsig) and bool((launch & ((s < 0) | (s >= nsig))).any()):
                return False
            host = v == -1
            if not all_ns:
                host &= ns
            if bool((host & ~launch).any()):
                return False
            hcpu[c[host]] = True
            del host
            if not nvms:
                continue
            if not all_ns and v_bad:
                v = np.where(ns, v, np.int16(-1))  # an S3 row's VM may be anything: look up the host's
            guest = v >= 0
            if not all_ns:
                guest &= ns
            # (the masks only when some vCPU index could be out of its VM's range)
            vc_odd = int(vc.min()) < 0 or int(vc.max()) >= min_nv
            if vc_odd and bool((guest & ((vc < 0) | (vc >= (nv[0] if same_nv else nv[v])))).any()):
                return False
            if fixed_signer:
                sign = need[v]
                if bool((launch & (sign != -2) & (s != sign)).any()):
                    return False
                del sign
            sched = k == SCHED  # only guest rows (host rows only launch)
            srows.append(np.flatnonzero(sched) + a)
            acts_seen = acts_seen or bool((guest & ~sched).any())
        if not nvms:
            return True
        srow = np.concatenate(srows) if srows else np.zeros(0, np.int64)
        del srows
        m = len(srow)
        if m == 0:
            return not acts_seen
        vm_cpus = np.unique(cpu[srow])
        if hcpu[vm_cpus].any():
            return False
        lo, hi = int(vm_cpus[0]), int(vm_cpus[-1])
        ncols = hi - lo + 1  # the table's columns: CPUs lo..hi (one without a SCHED stays -1)
        if (m + 1) * ncols > _TABLE_CELLS:
            return None
        off = np.zeros(nvms + 1, dtype=np.int32)
        np.cumsum(nv[:-1], out=off[1:])
        skey = off[vm[srow]] + vcpu[srow]  # the vCPU of each SCHED, as one integer
        # The next SCHED of the same vCPU (m: none).
        small = int(off[-1]) <= np.iinfo(np.int16).max  # then a stable sort is numpy's radix sort
        o = np.argsort(skey.astype(np.int16) if small else skey, kind="stable").astype(np.int32)
        nxt = np.full(m + 1, m, dtype=np.int32)
        same = skey[o[1:]] == skey[o[:-1]]
        nxt[o[:-1][same]] = o[1:][same]
        del o, same
        # cur[q, col]: the vCPU current on CPU lo + col after the first q SCHEDs (-1: none):
        # that of its latest SCHED j, unless the vCPU was scheduled in again since (nxt[j] < q).
        tab = np.full((m + 1, ncols), -1, dtype=np.int32)
        at = np.arange(ncols, (m + 1) * ncols, ncols, dtype=np.int64)  # row q = j + 1, flat
        at += cpu[srow]
        at -= lo
        tab.ravel()[at] = np.arange(m, dtype=np.int32)
        del at
        np.maximum.accumulate(tab, axis=0, out=tab)
        skey_ = np.append(skey, np.int32(-1))  # [-1]: no SCHED
        cur = skey_[tab]
        cur[nxt[tab] < np.arange(m + 1, dtype=np.int32)[:, None]] = -1
        del tab, skey_, nxt
        cur = cur.ravel()
        nvc = int(nv[0])
        for a in range(0, n, _ROW_BLOCK):
            b = min(n, a + _ROW_BLOCK)
            k, c, v = kind[a:b], cpu[a:b], vm[a:b]
            sched = k == SCHED
            acts = (v >= 0) & ~sched & (k != S3)  # guest LAUNCH and EXIT rows
            if not acts.any():
                continue
            if bool((acts & ((c < lo) | (c > hi))).any()):  # no vCPU is ever scheduled on that CPU
                return False
            idx = np.cumsum(sched, dtype=np.int32)  # SCHEDs up to each row
            idx += np.int32(np.searchsorted(srow, a))
            idx *= np.int32(ncols)
            idx += c
            idx -= np.int32(lo)
            got = np.take(cur, idx, mode="clip")  # rows not acts may point anywhere
            del idx
            if same_nv:
                key = v.astype(np.int32)
                key *= nvc
            else:
                key = np.take(off, v, mode="clip")  # (rows not acts may hold anything)
            key += vcpu[a:b]
            got -= key
            if bool((acts & (got != 0)).any()):
                return False
        return True

    def _rows_ok_sorted(self) -> bool:
        """:meth:`_rows_ok` with one stable sort of the guest rows by vCPU (any trace size)."""
        n = len(self)
        if n == 0:
            return True
        t, kind = self.t, self.kind
        if np.any(t[1:] < t[:-1]):
            return False
        if np.any((kind < LAUNCH) | (kind > S3)):
            return False
        u = self.unmasked
        if u is not None and np.any((u < 0) | (u > MAX_EINIT_ATTEMPTS) | ((u != 0) & (kind != LAUNCH))):
            return False
        ns = kind != S3
        k, c, v, vc, s = kind[ns], self.cpu[ns], self.vm[ns], self.vcpu[ns], self.signer[ns]
        if len(k) == 0:
            return True
        if np.any((c < 0) | (c >= self.ncpus)) or np.any((v < -1) | (v >= len(self.vms))):
            return False
        launch = k == LAUNCH
        if np.any(launch & ((s < 0) | (s >= self.nsigners))):
            return False
        host = v == -1
        if np.any(host & ~launch):
            return False
        g = ~host
        if not np.any(g):
            return True
        gv, gvc, gk, gc, gs = v[g], vc[g], k[g], c[g], s[g]
        nv = np.array([m.nvcpus for m in self.vms], dtype=np.int64)
        if np.any((gvc < 0) | (gvc >= nv[gv])):
            return False
        # A guest LAUNCH/EXIT must happen on the CPU of its vCPU's latest SCHED
        # (row j), and no other SCHED may have come onto that CPU between j and
        # the act: then j is also the CPU's latest SCHED, the vCPU is current.
        # The key is one small integer per vCPU: int16 keys let numpy's stable
        # sort use radix sort, several times faster than sorting int64.
        total = int(nv.sum())
        kdt = np.int16 if total < 1 << 15 else np.int32
        off = np.concatenate(([0], np.cumsum(nv)[:-1])).astype(kdt)
        key = off[gv] + gvc.astype(kdt)
        order = np.argsort(key, kind="stable")
        ks, sched, cs = key[order], gk[order] == SCHED, gc[order]
        # No vCPU acts before its first SCHED: each vCPU's rows start with one.
        if not sched[0] or not sched[np.flatnonzero(ks[1:] != ks[:-1]) + 1].all():
            return False
        last = np.maximum.accumulate(np.where(sched, np.arange(len(ks)), -1))  # its latest SCHED
        if np.any(cs[last] != cs):
            return False
        # Every vCPU's group (in key order) starts with a SCHED, so the acts
        # after a SCHED run up to the next SCHED position; the last of them is
        # the latest. The vCPU stays current until the next SCHED onto its CPU
        # (``nxt``, per SCHED in key order): that act must come before it.
        # Only SCHED-sized arrays here (SCHED rows are few).
        P = np.flatnonzero(sched)
        jrow = order[P]  # guest-row index of each SCHED, in key order
        by_cpu = np.argsort(jrow)  # -> row order (rows are distinct) ...
        by_cpu = by_cpu[np.argsort(gc[jrow[by_cpu]], kind="stable")]  # ... -> (CPU, row) order
        nxt = np.full(len(P), len(gk), dtype=np.int64)
        if len(P) > 1:
            same = gc[jrow[by_cpu[1:]]] == gc[jrow[by_cpu[:-1]]]
            nxt[by_cpu[:-1][same]] = jrow[by_cpu[1:]][same]
        end = np.empty_like(P)
        end[:-1] = P[1:] - 1
        if len(P):
            end[-1] = len(ks) - 1
        has = end > P
        if np.any(nxt[has] < order[end[has]]):
            return False
        lewr = np.array([m.lewr for m in self.vms], dtype=bool)
        lehash = np.array([m.lehash for m in self.vms], dtype=np.int64)
        if np.any((gk == LAUNCH) & ~lewr[gv] & (gs != lehash[gv])):
            return False
        return not np.intersect1d(c[host], gc[jrow]).size

    def _validate_rows(self) -> None:
        """The rules row by row, in order (slow; names the first bad row)."""
        where: dict[tuple[int, int], int] = {}
        current: dict[int, tuple[int, int]] = {}  # CPU -> the vCPU its latest SCHED put there
        vm_cpus: set[int] = set()
        host_cpus: set[int] = set()
        for i in range(len(self)):
            k, c, v, vc, s = (
                int(self.kind[i]),
                int(self.cpu[i]),
                int(self.vm[i]),
                int(self.vcpu[i]),
                int(self.signer[i]),
            )
            if i and int(self.t[i]) < int(self.t[i - 1]):
                raise _err(i, "", int(self.t[i]), "times must not decrease")
            if k not in KIND_NAMES:
                raise _err(i, "", k, "unknown event kind")
            if self.unmasked is not None:
                u = int(self.unmasked[i])
                if not 0 <= u <= MAX_EINIT_ATTEMPTS:
                    raise _err(
                        i,
                        " unmasked",
                        u,
                        f"interrupted EINIT attempts are in [0, {MAX_EINIT_ATTEMPTS}] (Linux tries at most "
                        f"{MAX_EINIT_ATTEMPTS} times)",
                    )
                if u and k != LAUNCH:
                    raise _err(i, " unmasked", u, "only a launch has EINIT attempts to interrupt; 0 elsewhere")
            if k == S3:
                continue
            if not 0 <= c < self.ncpus:
                raise _err(i, " cpu", c, f"CPU index must be in [0, {self.ncpus})")
            if v >= len(self.vms) or v < -1:
                raise _err(i, " vm", v, f"VM index must be -1 (host) or in [0, {len(self.vms)})")
            if k == LAUNCH and not 0 <= s < self.nsigners:
                raise _err(i, " signer", s, f"signer index must be in [0, {self.nsigners})")
            if v == -1:
                if k != LAUNCH:
                    raise _err(i, "", KIND_NAMES[k], "the host only launches")
                if c in vm_cpus:
                    raise _err(i, " cpu", c, "host launches and vCPUs must use disjoint CPUs")
                host_cpus.add(c)
                continue
            spec = self.vms[v]
            if not 0 <= vc < spec.nvcpus:
                raise _err(i, " vcpu", vc, f"VM {v} has {spec.nvcpus} vCPUs")
            if k == SCHED:
                if c in host_cpus:
                    raise _err(i, " cpu", c, "host launches and vCPUs must use disjoint CPUs")
                where[(v, vc)] = c
                current[c] = (v, vc)
                vm_cpus.add(c)
                continue
            if where.get((v, vc)) != c:
                raise _err(i, "", (v, vc, c), "a vCPU acts only on the CPU it was scheduled in on")
            if current[c] != (v, vc):
                ov, ovc = current[c]
                raise _err(
                    i,
                    "",
                    (v, vc, c),
                    f"a vCPU acts only while it is current: vCPU {ovc} of VM {ov} was scheduled in on CPU {c} since",
                )
            if k == LAUNCH and not spec.lewr and s != spec.lehash:
                raise _err(i, " signer", s, f"VM {v} has no lewr: it can launch only signer {spec.lehash}")


def _signer_indices(values: object, option: str) -> tuple[int, ...]:
    """``values`` (an iterable of signer indices) as a sorted tuple without repeats."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise ConfigError(option, values, "expected a sequence of signer indices")
    out: set[int] = set()
    for x in values:
        if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, np.integer)):
            raise ConfigError(option, x, "a signer index is a whole number")
        out.add(int(x))
    return tuple(sorted(out))


def _exit_counts(values: object) -> tuple[int, ...]:
    """``values`` (an iterable of per-VM plain exit counts) as a tuple of ints, each 0 or more."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise ConfigError("trace vm_exits", values, "expected a sequence of exit counts, one per VM")
    out = []
    for x in values:
        if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, np.integer)) or x < 0:
            raise ConfigError("trace vm_exits", x, "an exit count is a whole number, 0 or more")
        out.append(int(x))
    return tuple(out)


def _err(row: int | None, what: str, value: object, reason: str) -> ConfigError:
    """A ConfigError about trace row ``row`` (``None``: the static facts), with ``.row`` set."""
    e = ConfigError(f"trace row {row}{what}" if row is not None else f"trace {what}".strip(), value, reason)
    e.row = row  # type: ignore[attr-defined]
    return e
