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
                        per-CPU copy of the hash under a lock ("probably just
                        a mutex": ``global`` by default); WRMSR only the words
                        that differ; KVM traps EINIT and keeps guest values in
                        memory.
``percpu-cache-retry``  The form Linux carried 2018-2020 (v23, 28 Oct 2019,
                        ``sgx_update_lepubkeyhash_msrs(hash, enforce)``): on
                        SGX_INVALID_EINITTOKEN force-write all four and retry
                        once; no global lock, only preemption disabled
                        (``percpu``). Dropped in the v38 review (Sep 2020).
``read-compare``        Kai Huang's counter-proposal: RDMSR all four, WRMSR the
                        words that differ. No cache.
``always-write``        Mainline since 5.11 (native, commit 9d0c151b41fe) and
                        5.13 (KVM, ``sgx_update_lepubkeyhash`` in commit
                        73916b6a0c71): preemption off, WRMSR all four, EINIT.
======================  =====================================================

Variants of the cache designs
-----------------------------

The two cache designs take two options, fixed per class by
:meth:`PerCpuCache.variant` (memoised: the same options give the same class)
and spelled after a colon in a design name:

* ``lock``: ``global`` (one mutex for all CPUs, Andy's literal words; the
  default of ``percpu-cache``) or ``percpu`` (per-CPU state, preemption
  disabled, as the 2019 code did; the default of ``percpu-cache-retry``);
* ``initial``: what the per-CPU cache holds before a CPU's first EINIT,
  ``zero`` (the 2019 code's uninitialised ``DEFINE_PER_CPU`` array, the
  default) or ``intel`` (Intel's reset value, what the MSRs hold at boot).

Grammar: ``NAME[:OPTION[,OPTION]]`` where an OPTION is ``key=value``, and a
lock may be given by its value alone (``global``/``percpu``, the historical
spelling). So ``percpu-cache:percpu`` = ``percpu-cache:lock=percpu``, and
``percpu-cache:initial=intel``, ``percpu-cache:lock=percpu,initial=intel``
and ``percpu-cache-retry:global`` are all variants. A variant is reported
(:func:`design_label`) under the options that differ from its design's
defaults, the lock by value and the initial value as ``initial=...``:
``percpu-cache:percpu,initial=intel``; options equal to the defaults give the
design itself (``percpu-cache:global`` *is* ``percpu-cache``).

EINIT's retry on SGX_UNMASKED_EVENT
-----------------------------------

An interrupt that arrives while EINIT verifies the signature aborts it with
SGX_UNMASKED_EVENT (128). Linux's ``sgx_encl_init`` (tip commit
9d0c151b41fe, 5.11) then tries again: up to :data:`SGX_EINIT_SPIN_COUNT` (20)
tries per pass and :data:`SGX_EINIT_SLEEP_COUNT` (50) passes with a sleep
(``SGX_EINIT_SLEEP_TIME``, 20 ms) between passes, updating the hash MSRs
before every try. sgxlab gives every design that loop (the 2019 driver called
its cached ``sgx_einit()`` from a loop of the same shape; that detail is from
memory, not from the reference notes). :meth:`Design.einit` is that host
path: it makes up to :data:`EINIT_MAX_ATTEMPTS` (1,000) tries, calling
:meth:`Design.update_lepubkeyhash` before each (the sleeps take no emulated
time). KVM does *not* retry: ``sgx_virt_einit`` runs one EINIT and
``handle_encls_einit`` reflects the code to the guest, whose own driver loop
retries with a new, trapped EINIT; that path calls
``design.einit(..., retry_unmasked=False)``.

Add your own by subclassing :class:`Design` and overriding
:meth:`Design.update_lepubkeyhash` (and, if it must, :meth:`Design.retry`,
:meth:`Design.vcpu_load` or :meth:`Design.einit`; an ``einit`` override
must take the keywords ``retry_unmasked`` and ``interrupts``)::

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
from sgxlab.hw.arch import INTEL_LEPUBKEYHASH, MSR_IA32_SGXLEPUBKEYHASH, SgxError, Words
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
    "LOCKS",
    "INITIAL_VALUES",
    "SGX_EINIT_SPIN_COUNT",
    "SGX_EINIT_SLEEP_COUNT",
    "EINIT_MAX_ATTEMPTS",
]


_H0, _H1, _H2, _H3 = MSR_IA32_SGXLEPUBKEYHASH
_INVALID_EINITTOKEN = SgxError.SGX_INVALID_EINITTOKEN
_UNMASKED_EVENT = SgxError.SGX_UNMASKED_EVENT

SGX_EINIT_SPIN_COUNT = 20
"""EINIT tries per pass of Linux's ``sgx_encl_init`` loop (``driver.h``, tip commit 9d0c151b41fe)."""
SGX_EINIT_SLEEP_COUNT = 50
"""Passes of that loop; between passes the task sleeps ``SGX_EINIT_SLEEP_TIME`` (20 ms)."""
EINIT_MAX_ATTEMPTS = SGX_EINIT_SPIN_COUNT * SGX_EINIT_SLEEP_COUNT
"""The most EINITs one launch makes while interrupts keep aborting it (1,000)."""

LOCKS = ("global", "percpu")
"""The ``lock`` values of the cache designs' variants."""
INITIAL_VALUES = ("zero", "intel")
"""The ``initial`` values of the cache designs' variants (see :class:`PerCpuCache`)."""

_ZERO_WORDS = (0, 0, 0, 0)


class LaunchOutcome(NamedTuple):
    """One EINIT request as a design served it.

    ``result`` is the final EINIT result and ``einits`` how many EINITs ran:
    ``1 + retries + unmasked_retries``. ``retries`` counts the design's own
    re-runs after SGX_INVALID_EINITTOKEN (:meth:`Design.retry`;
    percpu-cache-retry's), ``unmasked_retries`` the host loop's re-runs after
    SGX_UNMASKED_EVENT (0 on KVM's guest path, which does not retry).
    ``rdmsr``/``wrmsr`` are the hash-MSR accesses the request made.
    """

    result: EinitResult
    einits: int
    retries: int
    rdmsr: int
    wrmsr: int
    unmasked_retries: int = 0


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
    variant_of: ClassVar[type[Design] | None] = None
    """For a class made by :meth:`PerCpuCache.variant`: the design it fixes options of."""
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
        *,
        retry_unmasked: bool = True,
        interrupts: int = 0,
    ) -> LaunchOutcome:
        """Load ``words`` into ``cpu``'s MSRs the design's way, then EINIT.

        On SGX_INVALID_EINITTOKEN, EINIT once more if :meth:`retry` says so.
        On SGX_UNMASKED_EVENT, with ``retry_unmasked`` (the host's
        ``sgx_encl_init`` loop), update the MSRs and EINIT again, up to
        :data:`EINIT_MAX_ATTEMPTS` tries in all; the last try's result is
        returned. KVM's guest path passes ``retry_unmasked=False``: mainline
        ``sgx_virt_einit`` tries once and the guest sees the code.

        ``interrupts``: the first ``interrupts`` tries find an interrupt
        pending (:meth:`Cpu.inject_event` just before their EINIT), the
        simulator's way of replaying interrupts drawn in a trace.
        """
        r0, w0 = cpu.hash_rd, cpu.hash_wr
        self.update_lepubkeyhash(cpu, words)
        if interrupts > 0:
            cpu.inject_event()
        result = einit(cpu, sigstruct, enclave, token)
        einits = 1
        retries = unmasked = 0
        if result[0]:  # failures only: the success path stays short
            tries = 1
            while True:
                code = result[0]
                if code == _INVALID_EINITTOKEN and self.retry(cpu, words):
                    result = einit(cpu, sigstruct, enclave, token)
                    einits += 1
                    retries += 1
                    code = result[0]
                if code != _UNMASKED_EVENT or not retry_unmasked or tries >= EINIT_MAX_ATTEMPTS:
                    break
                # sgx_encl_init tries again (sleeping 20 ms after every SGX_EINIT_SPIN_COUNT tries).
                self.update_lepubkeyhash(cpu, words)
                if tries < interrupts:
                    cpu.inject_event()
                result = einit(cpu, sigstruct, enclave, token)
                tries += 1
                einits += 1
                unmasked += 1
        return LaunchOutcome(result, einits, retries, cpu.hash_rd - r0, cpu.hash_wr - w0, unmasked)

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

    ``lock`` is ``"global"`` by default (one mutex, Andy's literal "probably
    just a mutex"); the ``percpu`` variant disables preemption instead.

    ``initial`` is what the cache holds before a CPU's first EINIT. The
    default, ``"zero"``, is the code Linux carried in 2019: ``[PATCH v23
    10/24]`` (Message-Id 20191028210324.12475-11-jarkko.sakkinen@linux.intel.com)
    declares ``DEFINE_PER_CPU(u64 [4], sgx_lepubkeyhash_cache)`` with no
    initialiser and never resets it, and intel/kvm-sgx's ``sgx_virt_einit``
    (commit 019906e55bdb) uses the same cache, so the first EINIT on each CPU
    writes every word that is not zero. ``"intel"`` starts it at Intel's reset
    value instead, which is what the MSRs hold at boot *unless firmware wrote
    another hash*: then the cache wrongly believes Intel's hash is loaded.

    The cache is never told about S3: after a suspend/resume the MSRs are back
    at Intel's value while the cache still says otherwise, and EINIT fails
    with SGX_INVALID_EINITTOKEN (the reason the 2019 kernel code added a
    retry, and the 2020 review removed the cache).

    Fix the options with :meth:`variant` (or a name such as
    ``percpu-cache:lock=percpu,initial=intel``; see the module docstring).
    """

    name = "percpu-cache"
    lock = "global"
    initial: ClassVar[str] = "zero"
    source = "Andy Lutomirski, LKML 12 May 2017"

    def __init__(self, platform: Platform) -> None:
        super().__init__(platform)
        if self.initial not in INITIAL_VALUES:
            raise ConfigError("initial", self.initial, f"expected one of {', '.join(INITIAL_VALUES)}")
        start = _ZERO_WORDS if self.initial == "zero" else INTEL_LEPUBKEYHASH.words
        self.cache: list[list[int]] = [list(start) for _ in range(platform.ncpus)]

    @classmethod
    def variant(cls, *, lock: str | None = None, initial: str | None = None) -> type[PerCpuCache]:
        """The class of this design with ``lock`` and/or ``initial`` fixed, for ``design=``.

        Options left ``None`` keep this class's values; options equal to the
        design's defaults give the design itself. Otherwise the same options
        always give the same class (memoised on the design), which carries
        :attr:`variant_of` so the engines and saved configs recognise it.
        """
        base = cls.__dict__.get("variant_of") or cls
        lock = cls.lock if lock is None else lock
        initial = cls.initial if initial is None else initial
        if lock not in LOCKS:
            raise ConfigError("lock", lock, f"expected {' or '.join(map(repr, LOCKS))}")
        if initial not in INITIAL_VALUES:
            raise ConfigError("initial", initial, f"expected {' or '.join(map(repr, INITIAL_VALUES))}")
        if (lock, initial) == (base.lock, base.initial):
            return base
        made = base.__dict__.get("_variants")
        if made is None:
            made = {}
            type.__setattr__(base, "_variants", made)
        made_cls = made.get((lock, initial))
        if made_cls is None:
            title = f"{base.__name__}_{lock}_{initial}"
            made_cls = made[(lock, initial)] = type(
                title,
                (base,),
                {
                    "lock": lock,
                    "initial": initial,
                    "name": base.name,
                    "variant_of": base,
                    "__qualname__": title,
                    "__module__": base.__module__,
                },
            )
        return made_cls

    @classmethod
    def with_lock(cls, lock: str) -> type[PerCpuCache]:
        """Shorthand for :meth:`variant` with ``lock`` only."""
        return cls.variant(lock=lock)

    def update_lepubkeyhash(self, cpu: Cpu, words: Words, *, enforce: bool = False) -> None:
        cache = self.cache[cpu.index]
        for i, msr in enumerate(MSR_IA32_SGXLEPUBKEYHASH):
            w = words[i]
            if enforce or cache[i] != w:
                cpu.wrmsr(msr, w)
                cache[i] = w


class PerCpuCacheRetry(PerCpuCache):
    """Linux v23 (28 Oct 2019) ``sgx_einit()``: cached update, EINIT, and on
    SGX_INVALID_EINITTOKEN force-write all four words and EINIT once more.

    Its lock is ``"percpu"``: v23 and v35 (Message-Id
    20200707033747.142828-15-jarkko.sakkinen@linux.intel.com) serialise
    ``sgx_einit()`` with ``preempt_disable()`` only, with no global mutex (the
    one mutex on that path is the enclave's own ``encl->lock``). The
    ``global`` variant adds one. The cache starts at zero, as there.
    """

    name = "percpu-cache-retry"
    lock = "percpu"
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

_OPTION_HELP = (
    "options are lock=global|percpu (or just global/percpu) and initial=zero|intel, comma-separated, "
    "e.g. percpu-cache:percpu or percpu-cache:lock=percpu,initial=intel"
)


def _parse_options(design: str, text: str) -> dict[str, str]:
    """``lock=..,initial=..`` (a lock may be given by value alone) as variant() keywords."""
    out: dict[str, str] = {}
    for raw in text.split(","):
        item = raw.strip()
        if "=" in item:
            key, _, value = (x.strip() for x in item.partition("="))
        elif item in LOCKS:
            key, value = "lock", item
        elif item in INITIAL_VALUES:
            raise ConfigError("design", design, f"write the initial value as initial={item}; {_OPTION_HELP}")
        else:
            raise ConfigError("design", design, f"unknown option {item!r}; {_OPTION_HELP}")
        if key not in ("lock", "initial"):
            raise ConfigError("design", design, f"unknown option {key!r}; {_OPTION_HELP}")
        if key in out:
            raise ConfigError("design", design, f"option {key} given twice; {_OPTION_HELP}")
        allowed = LOCKS if key == "lock" else INITIAL_VALUES
        if value not in allowed:
            raise ConfigError("design", design, f"{key}={value!r} is not one of {', '.join(allowed)}; {_OPTION_HELP}")
        out[key] = value
    return out


def design_class(design: str | type[Design]) -> type[Design]:
    """Resolve a design name (or pass a class through), with a clear error.

    A cache design's name may carry options after a colon (module docstring):
    ``percpu-cache:percpu``, ``percpu-cache-retry:lock=global,initial=intel``.
    """
    if isinstance(design, type) and issubclass(design, Design):
        return design
    if isinstance(design, str) and design in DESIGNS:
        return DESIGNS[design]
    if isinstance(design, str) and ":" in design:
        base, _, opts = design.partition(":")
        cls = DESIGNS.get(base)
        if cls is not None:
            if not issubclass(cls, PerCpuCache):
                caches = ", ".join(n for n, c in DESIGNS.items() if issubclass(c, PerCpuCache))
                raise ConfigError("design", design, f"{base} takes no options (only {caches} do)")
            return cls.variant(**_parse_options(design, opts))
    raise ConfigError("design", design, f"unknown design; choose one of {', '.join(DESIGNS)}")


def design_label(cls: type[Design]) -> str:
    """The name a design is reported under: its ``name``, plus the options of
    a :meth:`PerCpuCache.variant` that differ from its design's defaults (the
    lock by value, the initial value as ``initial=...``), e.g.
    ``percpu-cache:percpu`` or ``percpu-cache:percpu,initial=intel``.
    :func:`design_class` reads every label back to the same class."""
    base = cls.__dict__.get("variant_of")
    if base is not None and issubclass(cls, PerCpuCache):
        parts = []
        if cls.lock != base.lock:
            parts.append(str(cls.lock))
        if cls.initial != base.initial:
            parts.append(f"initial={cls.initial}")
        return f"{cls.name}:{','.join(parts)}" if parts else cls.name
    return cls.name if cls.name != Design.name else cls.__name__
