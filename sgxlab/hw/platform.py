"""The machine: firmware configurations, logical CPUs and their launch-control MSRs.

A :class:`Platform` is one emulated host: N logical CPUs, the firmware that set
them up, and the per-package secrets EINIT and EGETKEY derive keys from (the
fuse key, OWNEREPOCH, CPUSVN). A :class:`Cpu` holds what the debate was about:
IA32_FEATURE_CONTROL and the four IA32_SGXLEPUBKEYHASH MSRs of one logical CPU,
with the access rules the processor enforces on RDMSR and WRMSR.

The rules
---------

*Which MSRs exist.* IA32_SGXLEPUBKEYHASH0..3 (MSR 0x8C..0x8F) hold the 256-bit
SHA-256 of the modulus that signed the launch enclave, word *n* being bits
64n+63:64n. They exist only on a CPU that enumerates both SGX1
(CPUID.(EAX=12H,ECX=0):EAX[0]) and Flexible Launch Control, SGX_LC
(CPUID.(EAX=07H,ECX=0):ECX[30]); on such a CPU a read is always allowed. A CPU
without SGX_LC still checks launch enclaves against a hash, but it is hard-wired
into the silicon and equals Intel's key, the same value that is the reset value
of the MSRs where they exist (SDM Vol. 3C ch. 35, architectural MSR rows 0x8C-0x8F,
mirrored at https://xem.github.io/minix86/manual/intel-x86-and-64-manual-vol3/o_fe12b1e2a880e0ce-1286.html;
LKML https://www.mail-archive.com/linux-kernel@vger.kernel.org/msg1979814.html).
Here a RDMSR of 0x8C..0x8F on such a CPU raises #GP, and :attr:`Cpu.lehash`
reports the hard-wired value.

*When they are writable.* The SDM row says a WRMSR is allowed when SGX1 is
enumerated and IA32_FEATURE_CONTROL (MSR 0x3A) is locked (bit 0) with bit 17,
"SGX Launch Control Enable", set. Firmware chooses: locking with bit 17 gives
the *flexible* (writable) configuration Linux requires; locking without it
freezes the hash for the life of the power cycle (SDM Vol. 3D §42.2, "Intel
SGX Launch Control Configuration"). There is one more window: the MSRs can
also be written before SGX is activated, "to allow pre-boot firmware to lock
down the LE root key with a non-Intel value" (Sean Christopherson's KVM patch,
https://www.mail-archive.com/linux-kernel@vger.kernel.org/msg1571831.html,
later KVM commit 8f102445d404). Hardware ties that window to SGX activation
(MSR 0x7A); like KVM, this emulator does not model activation and opens the
window while IA32_FEATURE_CONTROL is still unlocked, which KVM's source calls
"technically not architectural behavior, but it's close enough". So a write
of 0x8C..0x8F needs SGX1, SGX_LC and either an unlocked IA32_FEATURE_CONTROL
or one locked with bit 17 set. Values are 64-bit (EDX:EAX).

*IA32_FEATURE_CONTROL itself* is always readable and writable only until its
lock bit is set; after that every WRMSR raises #GP until the next reset. Bit 17
is valid only with SGX_LC and bit 18 ("SGX Global Enable") only with SGX;
otherwise they are reserved, and so are all bits this emulator does not model
(it models 0 Lock, 1 and 2 the VMX enables, 17 and 18). Any other MSR number
raises #GP. A refusal is a :class:`~sgxlab.errors.GeneralProtection` whose
``reason`` names the rule; a value that is not a 64-bit unsigned integer at all
cannot be encoded in EDX:EAX, so it is a caller error, :class:`~sgxlab.errors.ConfigError`.

*Reset and loss of EPC.* At power-on every CPU starts with IA32_FEATURE_CONTROL
zero and the hash MSRs at Intel's value (the value KVM hard-codes in
``setup_default_sgx_lepubkeyhash()``, :data:`~sgxlab.hw.arch.INTEL_LEPUBKEYHASH`).
Firmware then runs on each CPU: an optional pre-lock write of its own hash,
then the lock. Sean Christopherson (LKML, Message-Id
``20200921181021.GA24481@linux.intel.com``) notes that the MSRs "get reset to
Intel's default key on any loss of EPC, e.g. if the system does a
suspend/resume cycle"; S3 removes CPU power, so firmware redoes its CPU
initialisation on resume. :meth:`Platform.s3_resume` models exactly that: a
third-party hash that firmware locks in comes back, whereas a value the OS
wrote at run time on a flexible platform is gone and Intel's value is there
instead. Every loss of EPC bumps :attr:`Platform.epc_generation`: enclaves
built in an older generation no longer exist.

Counters
--------

Every successful RDMSR and WRMSR through :meth:`Cpu.rdmsr` / :meth:`Cpu.wrmsr`
is counted per MSR, and every refusal in :attr:`Cpu.gp_count`. The counters
measure the work of the OS or VMM: firmware's writes at reset and EINIT's own
look at the hash (:attr:`Cpu.lehash`) take an internal path that is not
counted, and resets do not clear the counters (:meth:`Platform.reset_counters`
does).

State
-----

There is no module-level mutable state; the constants below are read-only
mappings and tuples. Two platforms, and two CPUs, never share a mutable object.
The access methods are on a hot path (a simulator calls them millions of times),
so they use precomputed per-CPU dispatch tables and ``__slots__`` and do no
logging.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TypedDict

from sgxlab.errors import ConfigError, GeneralProtection
from sgxlab.hw.arch import (
    FEAT_CTL_LOCKED,
    FEAT_CTL_SGX_ENABLED,
    FEAT_CTL_SGX_LC_ENABLED,
    INTEL_LEPUBKEYHASH,
    MSR_IA32_FEATURE_CONTROL,
    MSR_IA32_SGXLEPUBKEYHASH,
    LeHash,
    Words,
    msr_name,
)
from sgxlab.hw.siginfo import SigInfo

__all__ = [
    "FEAT_CTL_VMX_INSIDE_SMX",
    "FEAT_CTL_VMX_OUTSIDE_SMX",
    "FIRMWARE_NAMES",
    "KNOWN_MSRS",
    "MAX_CPUS",
    "DEFAULT_CPUSVN",
    "SIGINFO_CACHE_SIZE",
    "PlatformCounts",
    "MsrCount",
    "Firmware",
    "Cpu",
    "Platform",
]

FEAT_CTL_VMX_INSIDE_SMX = 1 << 1
"""IA32_FEATURE_CONTROL bit 1 (modelled only so that ordinary firmware values are not reserved)."""

FEAT_CTL_VMX_OUTSIDE_SMX = 1 << 2
"""IA32_FEATURE_CONTROL bit 2."""

MAX_CPUS = 4096
"""Largest number of logical CPUs a :class:`Platform` accepts."""

_U64_MAX = (1 << 64) - 1

KNOWN_MSRS: tuple[int, ...] = (MSR_IA32_FEATURE_CONTROL, *MSR_IA32_SGXLEPUBKEYHASH)
"""The MSRs a :class:`Cpu` implements, in the order counters are reported."""

_HASH_SLOT: Mapping[int, int] = MappingProxyType({msr: i for i, msr in enumerate(MSR_IA32_SGXLEPUBKEYHASH)})

DEFAULT_CPUSVN = bytes([2, 6, 2, 0xFF, 1, 1]) + bytes(10)
"""The emulated CPUSVN: 16 bytes whose first six look like a real Skylake-era
value (microcode/component SVNs). Only its equality with SIGSTRUCT/EINITTOKEN
and key-request fields matters to EINIT and EGETKEY; it is not a real TCB."""

_INTEL_WORDS = INTEL_LEPUBKEYHASH.words

SIGINFO_CACHE_SIZE = 1024
"""How many distinct SIGSTRUCTs :meth:`Platform.siginfo` remembers per platform."""

# Reasons cited in #GP exceptions (tests and notebooks match on these).
_R_NO_SGX1 = "CPUID.(EAX=12H,ECX=0):EAX[0] (SGX1) is clear: the IA32_SGXLEPUBKEYHASHn MSRs do not exist"
_R_NO_LC = (
    "CPUID.(EAX=07H,ECX=0):ECX[30] (SGX_LC) is clear: this CPU has no IA32_SGXLEPUBKEYHASHn "
    "MSRs; its launch-enclave hash is hard-wired to Intel's"
)
_R_LOCKED_NO_LC = "IA32_FEATURE_CONTROL is locked with bit 17 (SGX_LC_ENABLED) clear: the LE hash MSRs are read-only"
_R_FC_LOCKED = "IA32_FEATURE_CONTROL is locked (bit 0 set): it is writable only until firmware locks it"
_R_BIT17_RESERVED = (
    "bit 17 (SGX_LC_ENABLED) of IA32_FEATURE_CONTROL is reserved without CPUID.(EAX=07H,ECX=0):ECX[30] (SGX_LC)"
)
_R_BIT18_RESERVED = "bit 18 (SGX_ENABLED) of IA32_FEATURE_CONTROL is reserved without SGX in CPUID"
_R_UNKNOWN = "MSR not implemented (this emulator models only 0x3a and 0x8c-0x8f)"


def _check_u64(option: str, value: object) -> int:
    """Return ``value`` as a plain int if it fits EDX:EAX, else raise ConfigError."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(option, value, "an MSR value is an integer")
    if not 0 <= value <= _U64_MAX:
        raise ConfigError(option, value, "an MSR value must fit in 64 bits (EDX:EAX)")
    return int(value)


def _coerce_lehash(value: LeHash | str | None) -> LeHash | None:
    return None if value is None else LeHash.coerce(value, option="lehash")


# --------------------------------------------------------------------------- firmware

FIRMWARE_NAMES: tuple[str, ...] = ("flexible", "locked-intel", "locked-third-party", "no-lc")
"""The names :meth:`Firmware.by_name` accepts."""


@dataclass(frozen=True, slots=True)
class Firmware:
    """What the BIOS/UEFI did to launch control before the OS ran.

    ``sgx_lc``: the CPU enumerates SGX_LC (CPUID.(7,0):ECX[30]), so the hash
    MSRs exist. ``lc_enabled``: firmware locks IA32_FEATURE_CONTROL with bit
    17 set, so the OS may write them. ``lehash``: a hash firmware writes into
    the MSRs before locking (``None``: leave Intel's reset value). Every
    configuration sets bit 18 (SGX enable) and the lock bit.
    """

    name: str
    sgx_lc: bool
    lc_enabled: bool
    lehash: LeHash | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError("firmware.name", self.name, "a firmware needs a name")
        for field in ("sgx_lc", "lc_enabled"):
            if not isinstance(getattr(self, field), bool):
                raise ConfigError(f"firmware.{field}", getattr(self, field), "expected a bool")
        if self.lc_enabled and not self.sgx_lc:
            raise ConfigError("firmware.lc_enabled", True, "bit 17 can only be set on a CPU with SGX_LC")
        if self.lehash is not None:
            if not isinstance(self.lehash, LeHash):
                raise ConfigError("firmware.lehash", self.lehash, "expected a LeHash or None")
            if not self.sgx_lc:
                raise ConfigError(
                    "firmware.lehash",
                    self.lehash.hex(),
                    "a CPU without SGX_LC has no hash MSRs to write; its hash is Intel's",
                )

    # named configurations ------------------------------------------------------

    @classmethod
    def flexible(cls, lehash: LeHash | str | None = None) -> Firmware:
        """SGX_LC present, locked with bit 17: the OS owns the hash at run time.

        ``lehash`` optionally makes firmware pre-write a value (it can still be
        overwritten); by default the MSRs keep Intel's reset value.
        """
        return cls("flexible", sgx_lc=True, lc_enabled=True, lehash=_coerce_lehash(lehash))

    @classmethod
    def locked_intel(cls) -> Firmware:
        """SGX_LC present, locked without bit 17: the MSRs stay at Intel's value."""
        return cls("locked-intel", sgx_lc=True, lc_enabled=False)

    @classmethod
    def locked(cls, lehash: LeHash | str) -> Firmware:
        """SGX_LC present; firmware writes a third party's hash, then locks without bit 17."""
        h = _coerce_lehash(lehash)
        if h is None:
            raise ConfigError("lehash", None, "firmware 'locked-third-party' needs the hash it locks in")
        if h == INTEL_LEPUBKEYHASH:
            raise ConfigError("lehash", h.hex(), "that is Intel's hash; use firmware 'locked-intel'")
        return cls("locked-third-party", sgx_lc=True, lc_enabled=False, lehash=h)

    @classmethod
    def no_lc(cls) -> Firmware:
        """A CPU without launch control: no SGX_LC, no hash MSRs, Intel's hash hard-wired."""
        return cls("no-lc", sgx_lc=False, lc_enabled=False)

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return FIRMWARE_NAMES

    @classmethod
    def by_name(cls, name: str, lehash: LeHash | str | None = None) -> Firmware:
        """Look up a configuration by name (case-insensitive; ``_`` may stand for ``-``).

        ``lehash`` is required by ``locked-third-party``, optional for
        ``flexible`` and refused by the others.
        """
        if not isinstance(name, str):
            raise ConfigError("firmware", name, f"expected one of {', '.join(FIRMWARE_NAMES)}")
        key = name.strip().lower().replace("_", "-")
        if key == "flexible":
            return cls.flexible(lehash)
        if key == "locked-third-party":
            if lehash is None:
                raise ConfigError("lehash", None, "firmware 'locked-third-party' needs the hash it locks in")
            return cls.locked(lehash)
        if key in ("locked-intel", "no-lc"):
            if lehash is not None:
                raise ConfigError(
                    "lehash",
                    lehash,
                    f"firmware {key!r} does not write a hash (use 'locked-third-party' or 'flexible')",
                )
            return cls.locked_intel() if key == "locked-intel" else cls.no_lc()
        raise ConfigError("firmware", name, f"unknown firmware; valid names: {', '.join(FIRMWARE_NAMES)}")

    # behaviour -------------------------------------------------------------------

    @property
    def feature_control(self) -> int:
        """The IA32_FEATURE_CONTROL value this firmware locks in."""
        v = FEAT_CTL_LOCKED | FEAT_CTL_SGX_ENABLED
        return v | FEAT_CTL_SGX_LC_ENABLED if self.lc_enabled else v

    def initialize(self, cpu: Cpu) -> None:
        """Run this firmware's launch-control setup on one freshly reset CPU.

        Goes through the architectural rules (so a pre-lock write after the lock
        would #GP) but is not counted: counters measure the OS/VMM.
        """
        if self.lehash is not None:
            for msr, word in zip(MSR_IA32_SGXLEPUBKEYHASH, self.lehash.words):
                cpu._write(msr, word)
        cpu._write(MSR_IA32_FEATURE_CONTROL, self.feature_control)

    def __str__(self) -> str:
        return self.name


# --------------------------------------------------------------------------- CPU


class Cpu:
    """One logical CPU: CPUID bits, IA32_FEATURE_CONTROL, the LE hash MSRs, counters.

    A new CPU is in its power-on state (FEATURE_CONTROL 0, unlocked; hash at
    Intel's value); a :class:`Platform` then lets firmware initialise it.
    ``platform`` is the owning :class:`Platform` (EINIT and EGETKEY read its
    fuses, OWNEREPOCH and CPUSVN through it), or ``None`` for a bare CPU.
    """

    __slots__ = (
        "index",
        "platform",
        "sgx1",
        "sgx_lc",
        "pending_event",
        "rdmsr_count",
        "wrmsr_count",
        "gp_count",
        "sgx_on",
        "hash_rd",
        "hash_wr",
        "_fc",
        "lepubkeyhash",
        "_lehash",
        "_rd_slot",
        "_wr_slot",
        "_fc_valid",
    )

    def __init__(
        self,
        index: int = 0,
        *,
        sgx1: bool = True,
        sgx_lc: bool = True,
        platform: Platform | None = None,
    ) -> None:
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise ConfigError("cpu", index, "a CPU index is a non-negative integer")
        if not isinstance(sgx1, bool) or not isinstance(sgx_lc, bool):
            raise ConfigError("cpuid", (sgx1, sgx_lc), "sgx1 and sgx_lc are bools")
        self.index = index
        self.platform = platform
        self.sgx1 = sgx1
        self.sgx_lc = sgx_lc
        self.rdmsr_count: dict[int, int] = dict.fromkeys(KNOWN_MSRS, 0)
        self.wrmsr_count: dict[int, int] = dict.fromkeys(KNOWN_MSRS, 0)
        self.gp_count = 0
        self.hash_rd = 0  # RDMSRs of 0x8C-0x8F, all four together (a fast total)
        self.hash_wr = 0  # WRMSRs of 0x8C-0x8F
        # Reads depend only on CPUID, so the read table is fixed for life.
        # Per-CPU plain dicts (a MappingProxy lookup is noticeably slower on
        # this hot path); never mutated, never shared between CPUs.
        self._rd_slot: dict[int, int] = dict(_HASH_SLOT) if (sgx1 and sgx_lc) else {}
        valid = FEAT_CTL_LOCKED | FEAT_CTL_VMX_INSIDE_SMX | FEAT_CTL_VMX_OUTSIDE_SMX
        if sgx1:
            valid |= FEAT_CTL_SGX_ENABLED
        if sgx_lc:
            valid |= FEAT_CTL_SGX_LC_ENABLED
        self._fc_valid = valid
        self.reset()

    # state ------------------------------------------------------------------------

    def reset(self) -> None:
        """Hardware reset: FEATURE_CONTROL 0 (unlocked), hash = Intel's, no pending event.

        Counters are kept.
        """
        # The hardware words hash0..hash3. Public so EINIT can compare them
        # cheaply; read it, never assign to it: writes go through wrmsr(),
        # which applies the access rules and counts.
        self.lepubkeyhash: list[int] = list(_INTEL_WORDS)
        self._lehash: LeHash | None = INTEL_LEPUBKEYHASH
        self.pending_event = False
        self._set_fc(0)

    def _set_fc(self, value: int) -> None:
        self._fc = value
        # ENCLS works only once firmware locked FEATURE_CONTROL with SGX_ENABLE.
        self.sgx_on = self.sgx1 and value & (FEAT_CTL_LOCKED | FEAT_CTL_SGX_ENABLED) == (
            FEAT_CTL_LOCKED | FEAT_CTL_SGX_ENABLED
        )
        locked = bool(value & FEAT_CTL_LOCKED)
        writable = self.sgx1 and self.sgx_lc and (not locked or bool(value & FEAT_CTL_SGX_LC_ENABLED))
        self._wr_slot: dict[int, int] = dict(_HASH_SLOT) if writable else {}

    @property
    def feature_control(self) -> int:
        """IA32_FEATURE_CONTROL (read-only here; change it with :meth:`wrmsr`)."""
        return self._fc

    @property
    def locked(self) -> bool:
        """IA32_FEATURE_CONTROL bit 0."""
        return bool(self._fc & FEAT_CTL_LOCKED)

    @property
    def sgx_enabled(self) -> bool:
        """SGX leaf functions usable: FEATURE_CONTROL locked with bit 18 (SDM §42.2.1)."""
        return self.sgx_on

    @property
    def lc_writable(self) -> bool:
        """The hash MSRs are writable at run time: SGX_LC and locked with bit 17."""
        need = FEAT_CTL_LOCKED | FEAT_CTL_SGX_LC_ENABLED
        return self.sgx1 and self.sgx_lc and self._fc & need == need

    @property
    def lehash_words(self) -> Words:
        """The four hash words EINIT compares against (uncounted; hard-wired value without LC)."""
        h = self.lepubkeyhash
        return (h[0], h[1], h[2], h[3])

    @property
    def lehash(self) -> LeHash:
        """The current launch-enclave hash as a :class:`LeHash` (uncounted, cached)."""
        h = self._lehash
        if h is None:
            h = self._lehash = LeHash.from_words(self.lepubkeyhash)
        return h

    def inject_event(self) -> None:
        """Make an interrupt/NMI/SMI pending: the next EINIT fails with SGX_UNMASKED_EVENT."""
        self.pending_event = True

    def take_event(self) -> bool:
        """Return whether an event was pending and clear it (EINIT calls this)."""
        pending = self.pending_event
        self.pending_event = False
        return pending

    # MSR access ---------------------------------------------------------------------

    def rdmsr(self, msr: int) -> int:
        """RDMSR: the value of ``msr``, or :class:`GeneralProtection`. Counted."""
        i = self._rd_slot.get(msr)
        if i is not None:
            self.rdmsr_count[msr] += 1
            self.hash_rd += 1
            return self.lepubkeyhash[i]
        if msr == 0x3A:  # IA32_FEATURE_CONTROL; a literal keeps the hot path free of lookups
            self.rdmsr_count[msr] += 1
            return self._fc
        reason = self._read_refusal(_check_msr(msr))
        self.gp_count += 1
        raise GeneralProtection(reason, msr=msr, msr_name=msr_name(msr), cpu=self.index)

    def wrmsr(self, msr: int, value: int) -> None:
        """WRMSR: store ``value`` in ``msr`` or raise :class:`GeneralProtection`. Counted.

        A value that is not an unsigned 64-bit integer raises :class:`ConfigError`.
        """
        i = self._wr_slot.get(msr)
        if i is not None and value.__class__ is int and 0 <= value <= 0xFFFF_FFFF_FFFF_FFFF:
            self.lepubkeyhash[i] = value
            self._lehash = None
            self.wrmsr_count[msr] += 1
            self.hash_wr += 1
            return
        try:
            self._write(msr, value)
        except GeneralProtection:
            self.gp_count += 1
            raise
        self.wrmsr_count[msr] += 1
        if msr in _HASH_SLOT:
            self.hash_wr += 1

    def _read_refusal(self, msr: int) -> str:
        if msr in _HASH_SLOT:
            return _R_NO_SGX1 if not self.sgx1 else _R_NO_LC
        return _R_UNKNOWN

    def _write(self, msr: int, value: int) -> None:
        """The full WRMSR rules, uncounted (firmware's path and the slow path)."""
        value = _check_u64(msr_name(_check_msr(msr)), value)
        i = _HASH_SLOT.get(msr)
        if i is not None:
            if not self.sgx1:
                reason = _R_NO_SGX1
            elif not self.sgx_lc:
                reason = _R_NO_LC
            elif not self._wr_slot:
                reason = _R_LOCKED_NO_LC
            else:
                self.lepubkeyhash[i] = value
                self._lehash = None
                return
            raise GeneralProtection(reason, msr=msr, msr_name=msr_name(msr), value=value, cpu=self.index)
        if msr == MSR_IA32_FEATURE_CONTROL:
            if self._fc & FEAT_CTL_LOCKED:
                reason = _R_FC_LOCKED
            elif value & ~self._fc_valid:
                bad = value & ~self._fc_valid
                if bad & FEAT_CTL_SGX_LC_ENABLED:
                    reason = _R_BIT17_RESERVED
                elif bad & FEAT_CTL_SGX_ENABLED:
                    reason = _R_BIT18_RESERVED
                else:
                    reason = f"reserved bits {bad:#x} of IA32_FEATURE_CONTROL set"
            else:
                self._set_fc(value)
                return
            raise GeneralProtection(reason, msr=msr, msr_name=msr_name(msr), value=value, cpu=self.index)
        raise GeneralProtection(_R_UNKNOWN, msr=msr, msr_name=msr_name(msr), value=value, cpu=self.index)

    # counters -----------------------------------------------------------------------

    def reset_counters(self) -> None:
        for msr in KNOWN_MSRS:
            self.rdmsr_count[msr] = 0
            self.wrmsr_count[msr] = 0
        self.hash_rd = 0
        self.hash_wr = 0
        self.gp_count = 0

    def __repr__(self) -> str:
        cpuid = "+".join(n for n, on in (("sgx1", self.sgx1), ("sgx_lc", self.sgx_lc)) if on)
        return (
            f"Cpu({self.index}, {cpuid or 'no-sgx'}, FEATURE_CONTROL={self._fc:#x}, "
            f"lehash={self.lehash.short()}, lc_writable={self.lc_writable})"
        )


def _check_msr(msr: object) -> int:
    """Validate an MSR number (ECX is 32 bits); slow paths only."""
    if isinstance(msr, int) and not isinstance(msr, bool) and 0 <= msr <= 0xFFFFFFFF:
        return msr
    raise ConfigError("msr", msr, "an MSR number is an integer in 0..0xffffffff")


# --------------------------------------------------------------------------- platform


class PlatformCounts(TypedDict):
    """:meth:`Platform.counts`: successful RDMSRs and WRMSRs per MSR name, their totals, and #GPs."""

    rdmsr: dict[str, int]
    wrmsr: dict[str, int]
    rdmsr_total: int
    wrmsr_total: int
    gp: int


class MsrCount(TypedDict):
    """One record of :meth:`Platform.msr_counts`: one CPU's accesses to one MSR."""

    cpu: int
    msr: int
    name: str
    rdmsr: int
    wrmsr: int


def _secret(label: bytes, seed: int) -> bytes:
    return hashlib.sha256(label + seed.to_bytes(8, "little")).digest()[:16]


class Platform:
    """An emulated host: ``ncpus`` logical CPUs set up by ``firmware``.

    ``firmware`` is a :class:`Firmware` or one of :data:`FIRMWARE_NAMES`;
    ``lehash`` goes with a name (required by ``"locked-third-party"``).
    ``seed`` (0..2**64-1) fixes the emulated secrets:

    * ``fuses`` = SHA-256(b"sgxlab-fuses" + seed as 8 little-endian bytes)[:16],
      the root key EINIT/EGETKEY derive keys from;
    * ``owner_epoch`` = SHA-256(b"sgxlab-owner-epoch" + the same 8 bytes)[:16];
    * ``cpusvn`` = :data:`DEFAULT_CPUSVN` unless given.

    Construction performs :meth:`power_on_reset`.
    """

    __slots__ = (
        "firmware",
        "seed",
        "fuses",
        "owner_epoch",
        "cpusvn",
        "cpus",
        "epc_generation",
        "_siginfo",
    )

    def __init__(
        self,
        ncpus: int = 4,
        firmware: Firmware | str = "flexible",
        *,
        seed: int = 0,
        lehash: LeHash | str | None = None,
        cpusvn: bytes | None = None,
    ) -> None:
        if not isinstance(ncpus, int) or isinstance(ncpus, bool) or not 1 <= ncpus <= MAX_CPUS:
            raise ConfigError("ncpus", ncpus, f"expected an integer in 1..{MAX_CPUS}")
        if isinstance(firmware, Firmware):
            if lehash is not None and _coerce_lehash(lehash) != firmware.lehash:
                raise ConfigError(
                    "lehash",
                    lehash,
                    "give the hash inside the Firmware object, not beside it",
                )
            fw = firmware
        else:
            fw = Firmware.by_name(firmware, lehash)
        if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= _U64_MAX:
            raise ConfigError("seed", seed, "expected an integer in 0..2**64-1")
        if cpusvn is None:
            cpusvn = DEFAULT_CPUSVN
        elif not isinstance(cpusvn, (bytes, bytearray)) or len(cpusvn) != 16:
            raise ConfigError("cpusvn", cpusvn, "CPUSVN is exactly 16 bytes")
        self.firmware: Firmware = fw
        self.seed: int = seed
        self.fuses: bytes = _secret(b"sgxlab-fuses", seed)
        self.owner_epoch: bytes = _secret(b"sgxlab-owner-epoch", seed)
        self.cpusvn: bytes = bytes(cpusvn)
        self.cpus: list[Cpu] = [Cpu(i, sgx1=True, sgx_lc=fw.sgx_lc, platform=self) for i in range(ncpus)]
        self._siginfo: dict[bytes, SigInfo] = {}
        self.epc_generation: int = -1
        self.power_on_reset()

    # ----------------------------------------------------------------------------

    @property
    def ncpus(self) -> int:
        return len(self.cpus)

    def cpu(self, i: int) -> Cpu:
        """Logical CPU ``i`` (ConfigError for a bad index)."""
        if isinstance(i, int) and not isinstance(i, bool) and 0 <= i < len(self.cpus):
            return self.cpus[i]
        raise ConfigError("cpu", i, f"no such logical CPU; this platform has CPUs 0..{len(self.cpus) - 1}")

    def power_on_reset(self) -> None:
        """Cold reset: every CPU back to its reset state, then firmware runs on each.

        The EPC is lost, so ``epc_generation`` increases (it is 0 after construction).
        """
        fw = self.firmware
        for c in self.cpus:
            c.reset()
            fw.initialize(c)
        self.epc_generation += 1

    def s3_resume(self) -> None:
        """Suspend to RAM and resume, or any other loss of EPC.

        The hash MSRs of every CPU return to Intel's value and firmware redoes its
        CPU initialisation (S3 removes CPU power, so FEATURE_CONTROL is unlocked
        again until firmware locks it). A locked-third-party platform therefore
        gets its hash back while a run-time write on a flexible one is lost.
        """
        self.power_on_reset()

    lose_epc = s3_resume

    @property
    def lc_writable(self) -> bool:
        """Launch control is writable on every CPU of the host."""
        return all(c.lc_writable for c in self.cpus)

    def siginfo(self, sigstruct: bytes) -> SigInfo:
        """:class:`sgxlab.hw.einit.SigInfo` of a SIGSTRUCT's bytes, memoized per platform.

        What EINIT learns from the bytes alone (format problems, signature
        verdict, MRSIGNER) never changes, so a simulation that launches the same
        enclave millions of times verifies its RSA signature once. The MSR
        comparisons are never cached. At most :data:`SIGINFO_CACHE_SIZE`
        entries are kept (oldest dropped first).
        """
        cache = self._siginfo
        info = cache.get(sigstruct)
        if info is None:
            info = SigInfo.of(sigstruct)
            if len(cache) >= SIGINFO_CACHE_SIZE:
                del cache[next(iter(cache))]
            cache[sigstruct] = info
        return info

    # counters -------------------------------------------------------------------

    def counts(self) -> PlatformCounts:
        """Platform totals: ``{"rdmsr": {name: n}, "wrmsr": {name: n}, "rdmsr_total",
        "wrmsr_total", "gp"}``, names as :func:`~sgxlab.hw.arch.msr_name` spells them."""
        rd = dict.fromkeys(KNOWN_MSRS, 0)
        wr = dict.fromkeys(KNOWN_MSRS, 0)
        gp = 0
        for c in self.cpus:
            for msr in KNOWN_MSRS:
                rd[msr] += c.rdmsr_count[msr]
                wr[msr] += c.wrmsr_count[msr]
            gp += c.gp_count
        return {
            "rdmsr": {msr_name(m): n for m, n in rd.items()},
            "wrmsr": {msr_name(m): n for m, n in wr.items()},
            "rdmsr_total": sum(rd.values()),
            "wrmsr_total": sum(wr.values()),
            "gp": gp,
        }

    def msr_counts(self) -> list[MsrCount]:
        """One flat record per CPU and known MSR: ``{cpu, msr, name, rdmsr, wrmsr}``.

        Every pair appears, zeros included, so ``pandas.DataFrame(records)`` has a
        fixed shape.
        """
        return [
            {
                "cpu": c.index,
                "msr": msr,
                "name": msr_name(msr),
                "rdmsr": c.rdmsr_count[msr],
                "wrmsr": c.wrmsr_count[msr],
            }
            for c in self.cpus
            for msr in KNOWN_MSRS
        ]

    def reset_counters(self) -> None:
        for c in self.cpus:
            c.reset_counters()

    def __repr__(self) -> str:
        fw = self.firmware.name
        if self.firmware.lehash is not None:
            fw += f" lehash={self.firmware.lehash.short()}"
        return (
            f"<Platform {self.ncpus} CPU{'s' if self.ncpus != 1 else ''}, firmware {fw}, "
            f"seed={self.seed}, epc_generation={self.epc_generation}, "
            f"LC {'writable' if self.lc_writable else 'read-only'}>"
        )
