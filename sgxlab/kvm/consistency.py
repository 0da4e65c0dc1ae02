"""Hardware consistency: could real hardware have shown a guest what it saw?

A :class:`GuestView` is what a guest can know about its launch control when
it runs EINIT; :func:`reference_einit` runs the same EINIT on a scratch CPU
set up like the guest, and :func:`hardware_consistent` compares the two codes
(Kai Huang's objection in the 2017 thread: a guest must see behaviour that
hardware could give).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sgxlab.hw.arch import (
    FEAT_CTL_LOCKED,
    FEAT_CTL_SGX_ENABLED,
    FEAT_CTL_SGX_LC_ENABLED,
    INTEL_LEPUBKEYHASH,
    MSR_IA32_FEATURE_CONTROL,
    MSR_IA32_SGXLEPUBKEYHASH,
    LeHash,
    SgxError,
    Words,
)
from sgxlab.hw.einit import EinitResult, SigInfo, einit
from sgxlab.hw.platform import Cpu, Platform
from sgxlab.hw.structs import Einittoken, Sigstruct
from sgxlab.kvm.config import SgxGuestConfig

if TYPE_CHECKING:
    from sgxlab.hw.measure import Enclave


SigArg = Sigstruct | bytes | SigInfo

_HASH = MSR_IA32_SGXLEPUBKEYHASH


# --------------------------------------------------------------------------- consistency


@dataclass(frozen=True, slots=True)
class GuestView:
    """What a guest can know about its launch control when it runs EINIT.

    ``cpuid_sgx_lc`` and ``feature_control`` are what it was given, ``words``
    its (virtual) IA32_SGXLEPUBKEYHASH0..3 and ``wrote`` whether one of its
    own WRMSRs to them was accepted: a snapshot of a
    :class:`~sgxlab.kvm.guest.GuestLc` (:meth:`sgxlab.kvm.vcpu.Vcpu.view`).
    """

    config: SgxGuestConfig
    cpuid_sgx_lc: bool
    feature_control: int
    words: Words
    wrote: bool = False

    @property
    def lc_enabled(self) -> bool:
        return bool(self.feature_control & FEAT_CTL_SGX_LC_ENABLED)

    @property
    def locked(self) -> bool:
        return bool(self.feature_control & FEAT_CTL_LOCKED)

    @property
    def reference_words(self) -> Words:
        """The hash a real CPU with this CPUID would check: the MSRs, or Intel's hard-wired one."""
        return self.words if self.cpuid_sgx_lc else INTEL_LEPUBKEYHASH.words

    def describe(self) -> str:
        cpuid = "SGX_LC" if self.cpuid_sgx_lc else "no SGX_LC"
        bit17 = "bit 17 set" if self.lc_enabled else "bit 17 clear"
        lock = "locked" if self.locked else "unlocked"
        h = LeHash.from_words(self.reference_words).short()
        src = "written by the guest" if self.wrote else ("as configured" if self.cpuid_sgx_lc else "hard-wired")
        return f"CPUID {cpuid}, FEATURE_CONTROL {self.feature_control:#x} ({lock}, {bit17}), hash {h} ({src})"


def reference_einit(
    platform: Platform,
    view: GuestView,
    sigstruct: SigArg,
    enclave: Enclave,
    token: Einittoken | None = None,
    *,
    cpu_index: int = 0,
) -> EinitResult:
    """EINIT as raw hardware with the guest's CPUID and hash would run it.

    A scratch :class:`~sgxlab.hw.platform.Cpu` shares ``platform``'s secrets (so
    tokens made there verify), enumerates SGX_LC as the guest's CPUID does and
    holds :attr:`GuestView.reference_words`; EINIT runs on a fork of
    ``enclave``, which is left untouched. The platform's CPUs and counters are
    not used.
    """
    cpu = Cpu(cpu_index, sgx1=True, sgx_lc=view.cpuid_sgx_lc, platform=platform)
    if view.cpuid_sgx_lc:
        for msr, w in zip(_HASH, view.words):
            cpu.wrmsr(msr, w)  # firmware's pre-lock write of the guest's values
    # Then firmware locks FEATURE_CONTROL with SGX enabled, as the guest's did.
    cpu.wrmsr(MSR_IA32_FEATURE_CONTROL, FEAT_CTL_LOCKED | FEAT_CTL_SGX_ENABLED)
    return einit(cpu, sigstruct, enclave.fork(), token)


def hardware_consistent(view: GuestView, raw: int, seen: int) -> tuple[bool, str]:
    """Could real hardware set up as ``view`` have shown the guest ``seen``?

    ``raw`` is the code raw hardware would return (:func:`reference_einit`),
    ``seen`` the code the guest got. Returns ``(consistent, explanation)``.
    """
    if view.wrote and not view.cpuid_sgx_lc:
        return False, "a guest WRMSR of IA32_SGXLEPUBKEYHASH was accepted although CPUID has no SGX_LC"
    if view.wrote and view.locked and not view.lc_enabled:
        return False, (
            "a guest WRMSR of IA32_SGXLEPUBKEYHASH was accepted although FEATURE_CONTROL is locked without bit 17"
        )
    raw_e, seen_e = SgxError(raw), SgxError(seen)
    if raw_e == seen_e:
        return True, f"hardware with {view.describe()} returns {raw_e.name} ({int(raw_e)}) too"
    if seen_e == SgxError.SGX_UNMASKED_EVENT:
        return True, "an interrupt can abort any EINIT with SGX_UNMASKED_EVENT"
    return False, (
        f"hardware with {view.describe()} would return {raw_e.name} ({int(raw_e)}), "
        f"but the guest saw {seen_e.name} ({int(seen_e)})"
    )
