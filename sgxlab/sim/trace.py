"""A workload as a trace: the flat, columnar event list both engines consume.

A workload generator (``sgxlab.workloads``) turns parameters and a seed into a
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

Static facts sit beside the columns: the number of physical CPUs, the number
of signers, and one :class:`VmSpec` per VM (vCPU count, lewr, the signer
index whose hash is the VM's initial ``lehash``, or -1 for Intel's).

Rules a trace obeys (``Trace.validate`` checks them):

* a guest LAUNCH or EXIT happens on the CPU where that vCPU was last
  scheduled in (a SCHED row earlier in the trace);
* host LAUNCHes happen on CPUs no vCPU is ever scheduled on (host CPUs and
  VM CPUs are disjoint, so a host launch never preempts a vCPU);
* a guest without lewr launches only enclaves of its ``lehash`` signer (its
  launch enclave's vendor), because it cannot change its virtual hash.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError

__all__ = ["Trace", "VmSpec", "LAUNCH", "SCHED", "EXIT", "S3", "KIND_NAMES"]

LAUNCH = 0
SCHED = 1
EXIT = 2
S3 = 3
KIND_NAMES = {LAUNCH: "launch", SCHED: "sched", EXIT: "exit", S3: "s3"}

_COLUMNS = (("t", np.int64), ("kind", np.int8), ("cpu", np.int16), ("vm", np.int16), ("vcpu", np.int16), ("signer", np.int16))


@dataclass(frozen=True, slots=True)
class VmSpec:
    """A guest: ``nvcpus`` vCPUs, ``lewr`` (guest may write its hash), and
    ``lehash`` = index of the signer whose hash the VM starts with (-1: Intel's)."""

    nvcpus: int
    lewr: bool
    lehash: int = -1


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

    def __post_init__(self) -> None:
        for col, dt in _COLUMNS:
            setattr(self, col, np.ascontiguousarray(getattr(self, col), dtype=dt))
        n = len(self.t)
        for col, _ in _COLUMNS:
            if len(getattr(self, col)) != n:
                raise ConfigError(f"trace.{col}", len(getattr(self, col)), f"all columns must have {n} rows")

    def __len__(self) -> int:
        return len(self.t)

    @property
    def launches(self) -> int:
        return int(np.count_nonzero(self.kind == LAUNCH))

    @classmethod
    def from_rows(
        cls,
        rows: list[tuple[int, int, int, int, int, int]],
        *,
        ncpus: int,
        nsigners: int,
        vms: tuple[VmSpec, ...] = (),
        name: str = "trace",
        params: dict[str, object] | None = None,
    ) -> Trace:
        """Build from ``(t, kind, cpu, vm, vcpu, signer)`` tuples (sorted stably by t)."""
        rows = sorted(rows, key=lambda r: r[0])
        cols = list(zip(*rows)) if rows else [()] * 6
        return cls(ncpus, nsigners, tuple(vms), *(np.array(c) for c in cols), name=name, params=dict(params or {}))

    def validate(self) -> None:
        """Check the rules in the module docstring; raise ConfigError naming the row."""
        if self.ncpus < 1:
            raise ConfigError("ncpus", self.ncpus, "at least one CPU")
        if len(self) and np.any(np.diff(self.t) < 0):
            i = int(np.argmax(np.diff(self.t) < 0)) + 1
            raise ConfigError(f"trace row {i}", int(self.t[i]), "times must not decrease")
        where: dict[tuple[int, int], int] = {}
        vm_cpus: set[int] = set()
        host_cpus: set[int] = set()
        for i in range(len(self)):
            k, c, v, vc, s = int(self.kind[i]), int(self.cpu[i]), int(self.vm[i]), int(self.vcpu[i]), int(self.signer[i])
            if k not in KIND_NAMES:
                raise ConfigError(f"trace row {i}", k, "unknown event kind")
            if k == S3:
                continue
            if not 0 <= c < self.ncpus:
                raise ConfigError(f"trace row {i} cpu", c, f"CPU index must be in [0, {self.ncpus})")
            if v >= len(self.vms) or v < -1:
                raise ConfigError(f"trace row {i} vm", v, f"VM index must be -1 (host) or in [0, {len(self.vms)})")
            if k == LAUNCH and not 0 <= s < self.nsigners:
                raise ConfigError(f"trace row {i} signer", s, f"signer index must be in [0, {self.nsigners})")
            if v == -1:
                if k != LAUNCH:
                    raise ConfigError(f"trace row {i}", KIND_NAMES[k], "the host only launches")
                host_cpus.add(c)
                continue
            spec = self.vms[v]
            if not 0 <= vc < spec.nvcpus:
                raise ConfigError(f"trace row {i} vcpu", vc, f"VM {v} has {spec.nvcpus} vCPUs")
            if k == SCHED:
                where[(v, vc)] = c
                vm_cpus.add(c)
                continue
            if where.get((v, vc)) != c:
                raise ConfigError(f"trace row {i}", (v, vc, c), "a vCPU acts only on the CPU it was scheduled in on")
            if k == LAUNCH and not spec.lewr and s != spec.lehash:
                raise ConfigError(f"trace row {i} signer", s, f"VM {v} has no lewr: it can launch only signer {spec.lehash}")
        both = host_cpus & vm_cpus
        if both:
            raise ConfigError("trace", sorted(both), "host launches and vCPUs must use disjoint CPUs")
