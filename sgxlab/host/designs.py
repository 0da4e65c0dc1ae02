"""MSR-update designs: how a kernel makes a CPU's IA32_SGXLEPUBKEYHASH right before EINIT.

A *design* is the strategy the 2017 debate was about. It owns whatever
per-platform state it needs (a per-CPU cache, say), touches the MSRs only
through :meth:`Cpu.rdmsr` / :meth:`Cpu.wrmsr` (so every access is counted and
obeys the architectural rules), and then runs the real emulated EINIT. When a
design leaves the MSRs wrong, EINIT fails on its own, for the SDM's reason.

======================  =====================================================
``eager-load``          Kai Huang's 2017 KVM RFC: write the vCPU's four values
                        at every schedule-in (vcpu_load); guest EINIT is not
                        trapped. KVM rejected this in 2021 (commit
                        b6f084ca5538: "prohibitively expensive").
``percpu-cache``        Andy Lutomirski's proposal (LKML, 12 May 2017): a
                        per-CPU copy of the hash under a lock; WRMSR only the
                        words that differ; KVM traps EINIT and keeps guest
                        values in memory.
``percpu-cache-retry``  The form Linux carried 2018-2020 (v23, 28 Oct 2019,
                        ``sgx_update_lepubkeyhash_msrs(hash, enforce)``): on
                        SGX_INVALID_EINITTOKEN force-write all four and retry
                        once. Dropped in the v38 review (Sep 2020).
``read-compare``        Kai Huang's counter-proposal: RDMSR all four, WRMSR the
                        words that differ. No cache.
``always-write``        Mainline since 5.11 (native, commit 9d0c151b41fe) and
                        5.13 (KVM, ``sgx_update_lepubkeyhash`` in commit
                        73916b6a0c71): preemption off, WRMSR all four, EINIT.
======================  =====================================================

Add your own by subclassing :class:`Design` and overriding
:meth:`Design.update_lepubkeyhash` (and, if it must, :meth:`Design.retry`,
:meth:`Design.vcpu_load` or :meth:`Design.einit`)::

    class WriteTwice(Design):
        name = "write-twice"
        def update_lepubkeyhash(self, cpu, words):
            for _ in range(2):
                for msr, w in zip(MSR_IA32_SGXLEPUBKEYHASH, words):
                    cpu.wrmsr(msr, w)

Designs name their locking in :attr:`Design.lock` (``None``, ``"global"`` or
``"percpu"``); the simulator turns that into lock costs and contention. The
emulator layer itself has no notion of time.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, ClassVar, NamedTuple

from sgxlab.errors import ConfigError
from sgxlab.hw.arch import INTEL_LEPUBKEYHASH, MSR_IA32_SGXLEPUBKEYHASH, SgxError
from sgxlab.hw.einit import EinitResult, SigInfo, einit

if TYPE_CHECKING:
    from sgxlab.hw.measure import Enclave
    from sgxlab.hw.platform import Cpu, Platform
    from sgxlab.hw.structs import Einittoken, Sigstruct

__all__ = [
    "Design",
    "EagerLoad",
    "PerCpuCache",
    "PerCpuCacheRetry",
    "ReadCompare",
    "AlwaysWrite",
    "DESIGNS",
    "design_class",
    "design_label",
    "LaunchOutcome",
]

Words = tuple[int, int, int, int]

_H0, _H1, _H2, _H3 = MSR_IA32_SGXLEPUBKEYHASH
_INVALID_EINITTOKEN = SgxError.SGX_INVALID_EINITTOKEN


class LaunchOutcome(NamedTuple):
    """One EINIT request as a design served it: the final EINIT result, how
    many EINITs ran (``1 + retries``) and the hash-MSR accesses it made."""

    result: EinitResult
    einits: int
    retries: int
    rdmsr: int
    wrmsr: int


class Design:
    """Base class: a strategy for loading IA32_SGXLEPUBKEYHASH before EINIT.

    ``platform`` is the machine the design runs on; per-CPU state is sized
    from it. Class attributes describe the design to the simulator:

    * ``traps_einit``: KVM intercepts guest EINIT and runs it through
      :meth:`einit` with the guest's virtual values;
    * ``loads_on_schedule``: :meth:`vcpu_load` writes the vCPU's values;
    * ``lock``: ``None``, ``"global"`` (one mutex for all CPUs) or
      ``"percpu"`` (per-CPU state, preemption disabled).
    """

    name: ClassVar[str] = "design"
    lock_variant_of: ClassVar[type[Design] | None] = None
    """For a class made by :meth:`PerCpuCache.with_lock`: the design it fixes the lock of."""
    traps_einit: ClassVar[bool] = True
    loads_on_schedule: ClassVar[bool] = False
    lock: ClassVar[str | None] = None
    source: ClassVar[str] = ""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    # Hooks -----------------------------------------------------------------

    def vcpu_load(self, cpu: Cpu, words: Words) -> None:
        """A vCPU whose virtual hash is ``words`` is scheduled in on ``cpu``."""

    def update_lepubkeyhash(self, cpu: Cpu, words: Words) -> None:
        """Make ``cpu``'s hash MSRs hold ``words`` (the kernel's
        ``sgx_update_lepubkeyhash``). The base class writes all four."""
        wrmsr = cpu.wrmsr
        wrmsr(_H0, words[0])
        wrmsr(_H1, words[1])
        wrmsr(_H2, words[2])
        wrmsr(_H3, words[3])

    def on_epc_loss(self) -> None:
        """Called when the simulator *knows* of an S3/EPC loss. Real kernels
        could not reliably know (Sean Christopherson, LKML 21 Sep 2020), so the
        built-in designs ignore it."""

    # The launch ------------------------------------------------------------

    def einit(
        self,
        cpu: Cpu,
        words: Words,
        sigstruct: Sigstruct | bytes | SigInfo,
        enclave: Enclave,
        token: Einittoken | None = None,
    ) -> LaunchOutcome:
        """Load ``words`` into ``cpu``'s MSRs the design's way, then EINIT;
        on SGX_INVALID_EINITTOKEN, EINIT once more if :meth:`retry` says so."""
        r0, w0 = cpu.hash_rd, cpu.hash_wr
        self.update_lepubkeyhash(cpu, words)
        result = einit(cpu, sigstruct, enclave, token)
        retries = 0
        if result.code == _INVALID_EINITTOKEN and self.retry(cpu, words):
            result = einit(cpu, sigstruct, enclave, token)
            retries = 1
        return LaunchOutcome(result, 1 + retries, retries, cpu.hash_rd - r0, cpu.hash_wr - w0)

    def retry(self, cpu: Cpu, words: Words) -> bool:
        """EINIT just said SGX_INVALID_EINITTOKEN: repair ``cpu``'s MSRs and
        return True to run EINIT once more. The base class does not retry."""
        return False

    def __repr__(self) -> str:
        return f"<design {self.name} on {self.platform.ncpus} CPUs>"


class AlwaysWrite(Design):
    """Mainline Linux 5.11/KVM 5.13: preemption off, WRMSR all four words, EINIT.

    Source: ``sgx_update_lepubkeyhash()`` (commit 73916b6a0c71) called from
    ``sgx_encl_init()`` and ``sgx_virt_einit()``; the cache was dropped in the
    v38 review because "compared to the 60k cycles it really doesn't matter"
    (Sean Christopherson, LKML 22 Sep 2020).
    """

    name = "always-write"
    lock = None
    source = "Linux 5.11 sgx_encl_init / KVM 5.13 sgx_virt_einit (commit 73916b6a0c71)"


class ReadCompare(Design):
    """Kai Huang, LKML May 2017: "simply read old value from MSRs out and
    compare". RDMSR all four, WRMSR only the words that differ. No cache, so
    it is never stale; it pays four RDMSRs per EINIT instead."""

    name = "read-compare"
    lock = None
    source = "Kai Huang, LKML reply to Andy Lutomirski, May 2017"

    def update_lepubkeyhash(self, cpu: Cpu, words: Words) -> None:
        rdmsr, wrmsr = cpu.rdmsr, cpu.wrmsr
        for msr, w in zip(MSR_IA32_SGXLEPUBKEYHASH, words):
            if rdmsr(msr) != w:
                wrmsr(msr, w)


class PerCpuCache(Design):
    """Andy Lutomirski, LKML 12 May 2017: a per-CPU variable holding the
    current SGXLEPUBKEYHASH under a lock; compare, WRMSR only on change.

    The cache starts at Intel's reset value, the MSRs' value at boot (the 2019
    kernel's ``DEFINE_PER_CPU`` array started at zero instead, so its first
    EINIT on each CPU wrote all four words; the two differ only for a signer
    whose hash shares a word with Intel's). It is never told about S3: after
    a suspend/resume the MSRs are back at Intel's value while the cache still
    says otherwise, and EINIT fails with SGX_INVALID_EINITTOKEN (the reason
    the 2019 kernel code added a retry, and the 2020 review removed the cache).

    ``lock`` is ``"global"`` (one mutex, Andy's literal "probably just a
    mutex") or ``"percpu"`` (preemption disabled). Construct with
    ``PerCpuCache(platform, lock="percpu")`` or use :meth:`with_lock`.
    """

    name = "percpu-cache"
    lock = "global"
    source = "Andy Lutomirski, LKML 12 May 2017"

    def __init__(self, platform: Platform, *, lock: str | None = None) -> None:
        super().__init__(platform)
        if lock is not None:
            if lock not in ("global", "percpu"):
                raise ConfigError("lock", lock, "expected 'global' or 'percpu'")
            self.lock = lock  # type: ignore[misc]
        self.cache: list[list[int]] = [list(INTEL_LEPUBKEYHASH.words) for _ in range(platform.ncpus)]

    @classmethod
    def with_lock(cls, lock: str) -> type[PerCpuCache]:
        """The subclass of this design with ``lock`` fixed, for passing as
        ``design=``. The same class comes back for the same lock, and it
        carries :attr:`lock_variant_of` so engines and configs recognise it."""
        if lock not in ("global", "percpu"):
            raise ConfigError("lock", lock, "expected 'global' or 'percpu'")
        made = cls.__dict__.get("_lock_variants")
        if made is None:
            made = {}
            type.__setattr__(cls, "_lock_variants", made)
        variant = made.get(lock)
        if variant is None:
            variant = made[lock] = type(
                f"{cls.__name__}_{lock}", (cls,), {"lock": lock, "name": cls.name, "lock_variant_of": cls}
            )
        return variant

    def update_lepubkeyhash(self, cpu: Cpu, words: Words, *, enforce: bool = False) -> None:
        cache = self.cache[cpu.index]
        for i, msr in enumerate(MSR_IA32_SGXLEPUBKEYHASH):
            w = words[i]
            if enforce or cache[i] != w:
                cpu.wrmsr(msr, w)
                cache[i] = w


class PerCpuCacheRetry(PerCpuCache):
    """Linux v23 (28 Oct 2019) ``sgx_einit()``: cached update, EINIT, and on
    SGX_INVALID_EINITTOKEN force-write all four words and EINIT once more."""

    name = "percpu-cache-retry"
    source = "[PATCH v23 10/24] x86/sgx: Add sgx_einit() (Message-Id 20191028210324.12475-11-jarkko.sakkinen@linux.intel.com)"

    def retry(self, cpu: Cpu, words: Words) -> bool:
        """Force-write all four words (``enforce``), and retry once."""
        self.update_lepubkeyhash(cpu, words, enforce=True)
        return True


class EagerLoad(Design):
    """Kai Huang's 2017 KVM RFC: load the vCPU's virtual hash into the MSRs at
    every vcpu_load; guest EINIT then runs natively, untrapped.

    Host (non-VM) launches still need the MSRs right, so the host path writes
    all four before EINIT, as mainline does. KVM rejected this design in 2021:
    "Switching the LE hash MSRs on VM-Enter/VM-Exit is not a viable option as
    writing the MSRs is prohibitively expensive" (commit b6f084ca5538).
    """

    name = "eager-load"
    traps_einit = False
    loads_on_schedule = True
    lock = None
    source = "Kai Huang, [RFC PATCH 00/10] Basic KVM SGX Virtualization support, May 2017"

    def vcpu_load(self, cpu: Cpu, words: Words) -> None:
        Design.update_lepubkeyhash(self, cpu, words)


DESIGNS: Mapping[str, type[Design]] = MappingProxyType(
    {d.name: d for d in (EagerLoad, PerCpuCache, PerCpuCacheRetry, ReadCompare, AlwaysWrite)}
)
"""The built-in designs by name, in the order the debate took them up."""


def design_class(design: str | type[Design]) -> type[Design]:
    """Resolve a design name (or pass a class through), with a clear error."""
    if isinstance(design, type) and issubclass(design, Design):
        return design
    if isinstance(design, str) and design in DESIGNS:
        return DESIGNS[design]
    if isinstance(design, str) and ":" in design:
        base, _, lock = design.partition(":")
        cls = DESIGNS.get(base)
        if cls is not None and issubclass(cls, PerCpuCache):
            return cls.with_lock(lock)  # "percpu-cache:percpu", "percpu-cache-retry:global", ...
    raise ConfigError("design", design, f"unknown design; choose one of {', '.join(DESIGNS)}")


def design_label(cls: type[Design]) -> str:
    """The name a design is reported under: its ``name``, with ``:lock`` for a
    lock variant whose lock differs from its base's (``percpu-cache:percpu``)."""
    base = cls.lock_variant_of
    if base is not None and cls.lock != base.lock:
        return f"{cls.name}:{cls.lock}"
    return cls.name if cls.name != Design.name else cls.__name__
