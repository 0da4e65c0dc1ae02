"""The VM builder's model: an SGX guest as Kai Huang's ``-sgx epc=…,lehash=…,lewr`` asks for it.

Set ``lewr``, an ``lehash`` (a preset or typed), the EPC size, the host's
firmware and launch policy; :meth:`VmBuilderModel.view` says what QEMU is
asked (the ``-sgx`` option and the QEMU 6.2 equivalent) and what the guest
sees: CPUID SGX_LC, FEATURE_CONTROL, its initial hash words, whether its
WRMSR is allowed, and whether the host creates it. No widgets here.
"""

from __future__ import annotations

from dataclasses import dataclass

from sgxlab.errors import ConfigError
from sgxlab.experiments.matrix import default_approved
from sgxlab.hw.arch import FEAT_CTL_LOCKED, FEAT_CTL_SGX_ENABLED, FEAT_CTL_SGX_LC_ENABLED, INTEL_LEPUBKEYHASH, LeHash
from sgxlab.hw.platform import FIRMWARE_NAMES, Platform
from sgxlab.kvm import policy as kvm_policy
from sgxlab.kvm.config import SgxGuestConfig, format_size, parse_size
from sgxlab.kvm.guest import GuestLc
from sgxlab.kvm.vcpu import Kvm

__all__ = ["VmBuilderModel", "GuestSees", "LEHASH_PRESETS", "feature_control_text", "policy_names", "policy_summary"]

LEHASH_PRESETS = ("KVM default", "intel", "host-approved", "custom")
"""``KVM default``: no lehash (KVM's default hash); ``host-approved``: the host's approved LE (test key 00)."""


def policy_names() -> tuple[str, ...]:
    """Every built-in host launch policy, read from the KVM layer's registry at each call
    (``HOST_POLICY_NAMES``, the names of ``POLICY_CATALOG``; ``POLICY_NAMES`` where
    there is no catalogue), so a policy added there appears in every app."""
    names = getattr(kvm_policy, "HOST_POLICY_NAMES", None) or kvm_policy.POLICY_NAMES
    return tuple(str(n) for n in names)


def policy_summary(name: str) -> str:
    """The registry's one-line summary of a policy and its source (empty if unknown)."""
    for info in getattr(kvm_policy, "POLICY_CATALOG", ()):
        if info.name == name:
            return f"{info.summary} Source: {info.source}"
    cls = kvm_policy.POLICIES.get(name)
    return cls.source if cls is not None else ""


def feature_control_text(fc: int) -> str:
    bits = ["locked" if fc & FEAT_CTL_LOCKED else "unlocked", "SGX on" if fc & FEAT_CTL_SGX_ENABLED else "SGX off"]
    bits.append("bit 17 set" if fc & FEAT_CTL_SGX_LC_ENABLED else "bit 17 clear")
    return f"{fc:#x} ({', '.join(bits)})"


@dataclass(frozen=True, slots=True)
class GuestSees:
    """What QEMU is asked and what the guest sees (see the module docstring)."""

    option: str
    qemu62: str
    qemu62_note: str
    cpuid_sgx_lc: bool
    feature_control: int
    initial_words: tuple[int, int, int, int]
    initial_hash: str
    wrmsr_allowed: bool
    wrmsr_refusal: str | None
    einit_trapped: bool
    created: bool
    refused_by: str | None
    reason: str | None
    warnings: tuple[str, ...]


class VmBuilderModel:
    """One guest configuration on one host; every setter validates before it changes anything."""

    def __init__(self) -> None:
        self.approved: tuple[LeHash, ...] = tuple(default_approved())
        self.lewr = True
        self.lehash_preset = "KVM default"
        self.custom_lehash: LeHash = self.approved[0]
        self.epc = 64 << 20
        self.firmware = "flexible"
        self.policy = "allow-all"
        self.design = "always-write"

    # -- setters --------------------------------------------------------------------

    def set(
        self,
        *,
        lewr: bool | None = None,
        lehash_preset: str | None = None,
        lehash: str | None = None,
        epc: str | int | None = None,
        firmware: str | None = None,
        policy: str | None = None,
    ) -> GuestSees:
        """Change some settings (all checked first; a bad one changes nothing) and return :meth:`view`.
        Typing an ``lehash`` selects the ``custom`` preset."""
        if lewr is not None and not isinstance(lewr, bool):
            raise ConfigError("lewr", lewr, "expected true or false")
        if lehash_preset is not None and lehash_preset not in LEHASH_PRESETS:
            raise ConfigError("lehash preset", lehash_preset, f"expected one of {', '.join(LEHASH_PRESETS)}")
        h = LeHash.parse(lehash, option="lehash") if lehash is not None else None
        size = parse_size(epc.strip() if isinstance(epc, str) else epc, "epc") if epc is not None else None
        if firmware is not None:
            Platform(1, firmware, lehash=self._firmware_lehash(firmware))  # ConfigError for a bad name
        if policy is not None and policy not in policy_names():
            raise ConfigError("policy", policy, f"expected one of {', '.join(policy_names())}")
        if lewr is not None:
            self.lewr = lewr
        if lehash_preset is not None:
            self.lehash_preset = lehash_preset
        if h is not None:
            self.custom_lehash = h
            if lehash_preset is None:
                self.lehash_preset = "custom"
        if size is not None:
            self.epc = size
        if firmware is not None:
            self.firmware = firmware
        if policy is not None:
            self.policy = policy
        return self.view()

    def _firmware_lehash(self, firmware: str) -> LeHash | None:
        """A locked-third-party host locks in the host-approved LE's hash (test key 00)."""
        return self.approved[0] if firmware.strip().lower().replace("_", "-") == "locked-third-party" else None

    @property
    def lehash(self) -> LeHash | None:
        """The configured ``lehash`` (``None``: KVM's default)."""
        if self.lehash_preset == "intel":
            return INTEL_LEPUBKEYHASH
        if self.lehash_preset == "host-approved":
            return self.approved[0]
        if self.lehash_preset == "custom":
            return self.custom_lehash
        return None

    def config(self) -> SgxGuestConfig:
        return SgxGuestConfig(epc=self.epc, lehash=self.lehash, lewr=self.lewr)

    def kvm(self) -> Kvm:
        platform = Platform(1, self.firmware, lehash=self._firmware_lehash(self.firmware))
        return Kvm(platform, kvm_policy.policy_by_name(self.policy, approved=self.approved), self.design)

    # -- the view ---------------------------------------------------------------------

    def view(self) -> GuestSees:
        config = self.config()
        kvm = self.kvm()
        created, party, reason = kvm.would_create(config)
        cpuid = kvm.guest_cpuid_sgx_lc(config)
        fc = kvm.guest_feature_control(config)
        initial = kvm.initial_lehash(config)
        refusal = GuestLc(initial.words, cpuid, fc).hash_write_refusal()
        merged = SgxGuestConfig.merged(config.epc, sgxlc=self.lewr)
        if config.lehash is not None:
            note = (
                "QEMU 6.2 has no lehash: the guest starts with KVM's default hash "
                f"({kvm.sgx_pubkey_hash.short()})" + (" and writes its own (sgxlc)" if self.lewr else "")
            )
        else:
            note = "sgxlc is QEMU 6.2's lewr: guest firmware sets FEATURE_CONTROL bit 17 iff the CPUID has SGX_LC"
        return GuestSees(
            option=f"-sgx {config.to_option()}",
            qemu62=merged.to_option(),
            qemu62_note=note,
            cpuid_sgx_lc=cpuid,
            feature_control=fc,
            initial_words=initial.words,
            initial_hash=initial.hex(),
            wrmsr_allowed=refusal is None,
            wrmsr_refusal=refusal,
            einit_trapped=kvm.traps_einit,
            created=created,
            refused_by=party,
            reason=reason,
            warnings=tuple(kvm.qemu_warnings(config)),
        )

    @staticmethod
    def firmware_names() -> tuple[str, ...]:
        return FIRMWARE_NAMES

    def epc_text(self) -> str:
        return format_size(self.epc)
