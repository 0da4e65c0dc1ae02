"""Tests of sgxlab.kvm.policy: the built-in host launch policies and their hooks."""

from __future__ import annotations

import hashlib

import pytest

from sgxlab.errors import ConfigError, PolicyRefusal
from sgxlab.hw.arch import INTEL_LEPUBKEYHASH, LeHash
from sgxlab.hw.platform import Platform
from sgxlab.kvm import Kvm, SgxGuestConfig
from sgxlab.kvm.policy import (
    ENFORCING_POLICIES,
    POLICIES,
    POLICY_NAMES,
    AllowAll,
    Allowlist,
    ApprovedSet,
    HostAllowlist,
    HostPolicy,
    SingleLE,
    policy_by_name,
)


def h(label: str) -> LeHash:
    return LeHash(hashlib.sha256(label.encode()).digest())


LE, OK, BAD, OTHER = h("approved LE"), h("approved signer"), h("forbidden signer"), h("other LE")
APPROVED = (LE, OK)


def kvm(policy: HostPolicy, design: str = "always-write", firmware: str = "flexible") -> Kvm:
    return Kvm(Platform(2, firmware), policy, design)


def cfg(lehash: LeHash | None = None, lewr: bool = False) -> SgxGuestConfig:
    return SgxGuestConfig(epc=64 << 20, lehash=lehash, lewr=lewr)


def test_names_and_sources():
    assert POLICY_NAMES == ("allow-all", "allowlist", "single-le", "approved-set", "host-only")
    assert ENFORCING_POLICIES == ("allowlist", "single-le", "approved-set")
    for name, cls in POLICIES.items():
        assert cls.name == name
        assert cls.source and cls.__doc__ and len(cls.__doc__) > 80
    assert "Lutomirski" in Allowlist.source and "option 2" in Allowlist.source
    assert "option 1" in AllowAll.source and "mainline" in AllowAll.source.lower()
    assert "Huang" in SingleLE.source and "Huang" in ApprovedSet.source


@pytest.mark.parametrize("name", POLICY_NAMES)
def test_policy_by_name(name):
    p = policy_by_name(name, approved=APPROVED)
    assert p.name == name and isinstance(p, POLICIES[name])
    assert policy_by_name(name.upper().replace("-", "_"), approved=APPROVED).name == name
    assert name in repr(p)


def test_policy_by_name_errors():
    with pytest.raises(ConfigError, match="valid names: allow-all, allowlist, single-le, approved-set, host-only"):
        policy_by_name("deny-all")
    with pytest.raises(ConfigError):
        policy_by_name(3)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="single LE"):
        policy_by_name("single-le")
    with pytest.raises(ConfigError):
        Allowlist(["not hex"])
    with pytest.raises(ConfigError):
        Allowlist([3])  # type: ignore[list-item]
    # Hex strings, raw digests and LeHash all work.
    assert Allowlist([OK.hex(), OK.digest, OK]).signers == frozenset({OK})
    single = policy_by_name("single-le", approved=APPROVED)
    assert isinstance(single, SingleLE) and single.lehash == LE and single.signers == frozenset(APPROVED)


def test_allow_all():
    p = AllowAll()
    k = kvm(p)
    for c in (cfg(), cfg(OTHER, True)):
        assert p.check_vm(c, k) is None
    assert p.check_host_einit(BAD) is None and p.permits(BAD)
    assert p.host_lehash is None and not p.enforcing


def test_allowlist_checks_host_and_every_trapped_guest_einit():
    p = Allowlist([OK])
    k = kvm(p)
    vm = k.create_vm(cfg(OTHER, lewr=True))  # a trapping host creates any VM
    assert p.check_host_einit(OK) is None
    assert "not in the host's allowlist" in p.check_host_einit(BAD)
    assert p.check_guest_einit(vm, OK) is None
    assert BAD.short() in p.check_guest_einit(vm, BAD)
    assert p.permits(OK) and not p.permits(BAD)


def test_allowlist_refuses_what_it_could_not_police_without_trapping():
    p = Allowlist(APPROVED)
    k = kvm(p, design="eager-load")
    assert not k.traps_einit
    with pytest.raises(PolicyRefusal, match="lewr refused: guest EINIT is not trapped") as ei:
        k.create_vm(cfg(lewr=True))
    assert ei.value.policy == "allowlist"
    with pytest.raises(PolicyRefusal, match="not an allowed signer"):
        k.create_vm(cfg(OTHER))
    assert k.create_vm(cfg(LE)).initial_lehash == LE
    # Same on a host whose LC is locked: the guest's hash is the host's.
    locked = kvm(Allowlist([INTEL_LEPUBKEYHASH]), firmware="locked-intel")
    assert locked.create_vm(cfg()).initial_lehash == INTEL_LEPUBKEYHASH
    with pytest.raises(PolicyRefusal):
        kvm(Allowlist(APPROVED), firmware="locked-intel").create_vm(cfg())


def test_single_le():
    p = SingleLE(LE, [OK])
    k = kvm(p)
    assert p.host_lehash == LE and p.enforcing
    with pytest.raises(PolicyRefusal, match="lewr refused") as ei:
        k.create_vm(cfg(LE, lewr=True))
    assert "bit 17 clear" in ei.value.reason
    with pytest.raises(PolicyRefusal, match=f"give lehash={LE.hex()}"):
        k.create_vm(cfg())  # KVM's default would be Intel's hash
    with pytest.raises(PolicyRefusal, match="single LE hash"):
        k.create_vm(cfg(OTHER))
    v = k.create_vm(cfg(LE)).vcpus[0]
    # From the guest's view: bit 17 clear, hash MSRs readable and fixed at the host's LE.
    assert not v.feature_control & (1 << 17)
    assert v.rdmsr(0x8C) == LE.words[0]
    assert p.permits(LE) and p.permits(OK) and not p.permits(BAD)
    assert SingleLE(LE).permits(BAD)  # no token policy given: the LE decides
    merged = SgxGuestConfig.merged("64M", sgxlc=True)
    with pytest.raises(PolicyRefusal, match="sgxlc refused"):
        k.create_vm(merged)


def test_approved_set():
    p = ApprovedSet(APPROVED)
    k = kvm(p)
    with pytest.raises(PolicyRefusal, match="lewr refused"):
        k.create_vm(cfg(LE, lewr=True))
    with pytest.raises(PolicyRefusal, match="not in the host-approved set"):
        k.create_vm(cfg(OTHER))
    with pytest.raises(PolicyRefusal, match="acb77012"):
        k.create_vm(cfg())
    assert k.create_vm(cfg(LE)).vcpus[0].lehash == LE
    assert k.create_vm(cfg(OK)).vcpus[0].lehash == OK
    assert p.check_host_einit(OK) is None and p.check_host_einit(BAD)
    assert p.check_guest_einit(k.vms[0], BAD) is None  # enforced at VM creation, not EINIT


def test_host_only_checks_only_the_host():
    p = HostAllowlist([OK])
    k = kvm(p)
    vm = k.create_vm(cfg(lewr=True))
    assert p.check_host_einit(BAD)
    assert p.check_guest_einit(vm, BAD) is None
    assert not p.permits(BAD) and not p.enforcing


def test_policies_are_pluggable():
    class SmallEpcOnly(HostPolicy):
        """Refuse guests with more than 16 MiB of EPC."""

        name = "small-epc"
        source = "a test"

        def check_vm(self, config, host):
            return None if config.epc <= 16 << 20 else f"EPC {config.epc} bytes is over 16 MiB"

    k = kvm(SmallEpcOnly())
    assert k.create_vm("epc=16M")
    with pytest.raises(PolicyRefusal, match="over 16 MiB") as ei:
        k.create_vm("epc=32M")
    assert ei.value.policy == "small-epc"
    assert k.would_create("epc=32M")[:2] == (False, "small-epc")


def test_kvm_accepts_policy_names():
    k = Kvm(Platform(1, "flexible"), "allow-all")
    assert isinstance(k.policy, AllowAll)
    with pytest.raises(ConfigError):
        Kvm(Platform(1, "flexible"), object())  # type: ignore[arg-type]


def test_policy_judges_the_vm_qemu_creates():
    """On a host without writable LC, QEMU drops +sgxlc: the policy sees a guest without it."""
    merged = SgxGuestConfig.merged("64M", sgxlc=True)
    k = kvm(SingleLE(INTEL_LEPUBKEYHASH), firmware="locked-intel")
    assert k.effective_config(merged) == SgxGuestConfig.merged("64M", sgxlc=False)
    vm = k.create_vm(merged)  # not "sgxlc refused": the guest gets bit 17 clear anyway
    assert vm.config == merged and vm.warnings and not vm.cpuid_sgx_lc
    with pytest.raises(PolicyRefusal, match="must be the host's single LE hash"):
        kvm(SingleLE(LE), firmware="locked-intel").create_vm(merged)
    # With enforce=on QEMU refuses first; the policy is not asked.
    enforced = SgxGuestConfig.merged("64M", sgxlc=True, enforce=True)
    assert k.would_create(enforced)[:2] == (False, "kvm")
    # Where the host can give SGX_LC, the policy sees sgxlc as asked.
    with pytest.raises(PolicyRefusal, match="sgxlc refused"):
        kvm(SingleLE(INTEL_LEPUBKEYHASH)).create_vm(merged)
