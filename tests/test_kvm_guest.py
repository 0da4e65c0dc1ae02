"""Tests of sgxlab.kvm.guest: the one guest launch-control model (GuestLc and the host's side),
host-initiated FEATURE_CONTROL writes, vCPU reset and the reload after S3."""

from __future__ import annotations

import hashlib
import itertools

import pytest

from sgxlab.errors import GeneralProtection
from sgxlab.host.designs import DESIGNS, Design
from sgxlab.host.samples import signed_enclave
from sgxlab.hw.arch import (
    FEAT_CTL_LOCKED,
    FEAT_CTL_SGX_ENABLED,
    FEAT_CTL_SGX_LC_ENABLED,
    INTEL_LEPUBKEYHASH,
    MSR_IA32_FEATURE_CONTROL,
    MSR_IA32_SGXLEPUBKEYHASH,
    LeHash,
)
from sgxlab.hw.platform import FEAT_CTL_VMX_INSIDE_SMX, FEAT_CTL_VMX_OUTSIDE_SMX, Platform
from sgxlab.kvm import GuestLc, Kvm, SgxGuestConfig, guest
from sgxlab.kvm.guest import (
    FEAT_CTL_LMCE_ENABLED,
    KVM_SUPPORTED_FEATURE_CONTROL,
    SGX_ENABLED_IN_BIOS,
    firmware_feature_control,
    passes_through,
    schedule_in_hook,
    traps_einit,
)

FC = MSR_IA32_FEATURE_CONTROL
HASH = MSR_IA32_SGXLEPUBKEYHASH
THIRD = LeHash(hashlib.sha256(b"third-party LE signer").digest())
OTHER = LeHash(hashlib.sha256(b"another signer").digest())
LOCKED_17 = SGX_ENABLED_IN_BIOS | FEAT_CTL_SGX_LC_ENABLED


def host(firmware: str = "flexible", ncpus: int = 2) -> Platform:
    return Platform(ncpus, firmware, lehash=THIRD if firmware == "locked-third-party" else None)


# --------------------------------------------------------------------------- GuestLc on its own


def test_guest_lc_starts_as_firmware_left_it():
    w = THIRD.words
    g = GuestLc(w, True, LOCKED_17)
    assert g.words is w and g.initial is w
    assert g.feature_control == LOCKED_17 and not g.wrote
    assert GuestLc(THIRD.words, True, LOCKED_17, firmware=False).feature_control == 0
    assert "SGX_LC" in repr(g) and THIRD.short() in repr(g)


@pytest.mark.parametrize(
    "sgx_lc,fc,hash_write",
    [
        (True, 0, True),  # unlocked: KVM lets firmware write before locking
        (True, FEAT_CTL_SGX_LC_ENABLED, True),
        (True, SGX_ENABLED_IN_BIOS, False),  # locked without bit 17
        (True, LOCKED_17, True),
        (False, LOCKED_17, False),  # no SGX_LC: never
        (False, 0, False),
    ],
)
def test_guest_lc_hash_rules(sgx_lc, fc, hash_write):
    """vmx_get_msr/vmx_set_msr: read needs SGX_LC; write needs SGX_LC and unlocked-or-bit-17."""
    g = GuestLc(INTEL_LEPUBKEYHASH.words, sgx_lc, fc)
    assert (g.read_refusal(HASH[0]) is None) is sgx_lc
    assert (g.write_refusal(HASH[1], 5) is None) is hash_write
    assert (g.hash_write_refusal() is None) is hash_write
    for msr in (*HASH, FC):  # host-initiated reads and hash writes skip every check
        assert g.read_refusal(msr, host_initiated=True) is None
    assert g.write_refusal(HASH[2], 5, host_initiated=True) is None
    # lewr (four WRMSRs) follows the same rule, all or nothing.
    words = OTHER.words
    why = g.lewr(words)
    assert (why is None) is hash_write
    if hash_write:
        assert g.words is words and g.wrote  # the tuple itself: no copy on the hot path
    else:
        assert g.words == INTEL_LEPUBKEYHASH.words and not g.wrote
        assert why == g.hash_write_refusal()


def test_guest_lc_single_word_write_and_passthrough():
    platform = host()
    cpu = platform.cpus[1]
    platform.reset_counters()
    g = GuestLc(INTEL_LEPUBKEYHASH.words, True, LOCKED_17)
    assert g.wrmsr(HASH[2], 0x1234) is None
    assert g.words == (*INTEL_LEPUBKEYHASH.words[:2], 0x1234, INTEL_LEPUBKEYHASH.words[3])
    assert g.read(HASH[2]) == 0x1234 and g.wrote
    assert platform.counts()["wrmsr_total"] == 0  # memory only
    assert g.wrmsr(HASH[0], 7, through=cpu) is None
    assert cpu.lehash_words[0] == 7 and platform.counts()["wrmsr_total"] == 1
    assert g.lewr(THIRD.words, through=cpu) is None
    assert cpu.lehash == THIRD and platform.counts()["wrmsr_total"] == 5
    # A refused write changes nothing, hardware included.
    locked = GuestLc(THIRD.words, True, SGX_ENABLED_IN_BIOS)
    assert locked.lewr(OTHER.words, through=cpu) is not None
    assert locked.wrmsr(HASH[0], 1, through=cpu) is not None
    assert cpu.lehash == THIRD and platform.counts()["wrmsr_total"] == 5 and locked.words == THIRD.words
    # Host-initiated hash writes do not count as the guest's own.
    h = GuestLc(INTEL_LEPUBKEYHASH.words, False, SGX_ENABLED_IN_BIOS)
    assert h.wrmsr(HASH[3], 9, host_initiated=True) is None and not h.wrote and h.words[3] == 9


def test_guest_lc_feature_control_rules():
    g = GuestLc(INTEL_LEPUBKEYHASH.words, True, 0, firmware=False)
    assert g.guest_feature_control_valid_bits == LOCKED_17
    assert g.write_refusal(FC, FEAT_CTL_LMCE_ENABLED) == "reserved bits 0x100000 of the guest's IA32_FEATURE_CONTROL"
    assert g.wrmsr(FC, LOCKED_17) is None and g.feature_control == LOCKED_17
    assert "locked" in g.write_refusal(FC, LOCKED_17)
    nolc = GuestLc(INTEL_LEPUBKEYHASH.words, False, 0, firmware=False)
    assert "bit 17" in nolc.write_refusal(FC, LOCKED_17)
    assert nolc.write_refusal(0x10, 0) == nolc.read_refusal(0x10) == guest.R_UNKNOWN


@pytest.mark.parametrize("fc", [0, FEAT_CTL_LOCKED, FEAT_CTL_SGX_ENABLED, SGX_ENABLED_IN_BIOS, LOCKED_17])
def test_encls_needs_sgx_enabled_in_guest_bios(fc):
    g = GuestLc(INTEL_LEPUBKEYHASH.words, True, fc)
    assert (g.encls_refusal() is None) is (fc & SGX_ENABLED_IN_BIOS == SGX_ENABLED_IN_BIOS)


# --------------------------------------------------------------------------- C: host-initiated FEATURE_CONTROL


def test_kvm_supported_feature_control_is_kvms_set():
    """vmx.c KVM_SUPPORTED_FEATURE_CONTROL: LOCK, VMX in/outside SMX, SGX_LC, SGX, LMCE."""
    assert FEAT_CTL_LMCE_ENABLED == 1 << 20
    assert KVM_SUPPORTED_FEATURE_CONTROL == (
        FEAT_CTL_LOCKED
        | FEAT_CTL_VMX_INSIDE_SMX
        | FEAT_CTL_VMX_OUTSIDE_SMX
        | FEAT_CTL_SGX_LC_ENABLED
        | FEAT_CTL_SGX_ENABLED
        | FEAT_CTL_LMCE_ENABLED
    )
    assert KVM_SUPPORTED_FEATURE_CONTROL == 0x160007


@pytest.mark.parametrize("bit", range(64))
def test_host_initiated_feature_control_accepts_exactly_kvm_supported_bits(bit):
    """Sean Christopherson, June 2022 (Message-Id 20220607232353.3375324-2): a
    host-initiated write ignores the lock and may set any supported bit, LMCE included,
    whatever the guest's CPUID; nothing else."""
    kvm = Kvm(host())
    v = kvm.create_vm(SgxGuestConfig.merged(4096, sgxlc=False)).vcpus[0]  # no SGX_LC, locked by firmware
    assert v.feature_control & FEAT_CTL_LOCKED
    value = FEAT_CTL_LOCKED | (1 << bit)
    if (1 << bit) & KVM_SUPPORTED_FEATURE_CONTROL:
        v.wrmsr(FC, value, host_initiated=True)
        assert v.rdmsr(FC, host_initiated=True) == value
    else:
        with pytest.raises(GeneralProtection, match="KVM_SUPPORTED_FEATURE_CONTROL"):
            v.wrmsr(FC, value, host_initiated=True)
        assert v.feature_control == SGX_ENABLED_IN_BIOS
    assert v.msr_exits == 0


def test_lmce_host_initiated_but_not_by_the_guest():
    kvm = Kvm(host())
    v = kvm.create_vm("epc=4M,lewr", guest_firmware=False).vcpus[0]
    with pytest.raises(GeneralProtection, match="reserved bits 0x100000"):
        v.wrmsr(FC, LOCKED_17 | FEAT_CTL_LMCE_ENABLED)  # the modelled guest has no MCG_LMCE_P
    v.wrmsr(FC, LOCKED_17 | FEAT_CTL_LMCE_ENABLED, host_initiated=True)
    assert v.feature_control == LOCKED_17 | FEAT_CTL_LMCE_ENABLED
    v.wrmsr(FC, 0, host_initiated=True)  # the lock does not stop QEMU
    assert v.feature_control == 0


# --------------------------------------------------------------------------- the host's side


@pytest.mark.parametrize("name", list(DESIGNS))
@pytest.mark.parametrize("writable", [True, False])
def test_trap_passthrough_and_schedule_in_decisions(name, writable):
    cls = DESIGNS[name]
    design = cls(host())
    assert traps_einit(writable, design) is traps_einit(writable, cls) is (writable and cls.traps_einit)
    assert passes_through(writable, design) is (writable and cls.loads_on_schedule)
    hook = schedule_in_hook(writable, design)
    does_something = writable and (cls.loads_on_schedule or cls.vcpu_load is not Design.vcpu_load)
    assert (hook is not None) is does_something
    if hook is not None:
        assert hook == design.vcpu_load
    # Only eager-load passes through, and it is the one that does not trap.
    assert passes_through(True, design) is (name == "eager-load") is (not traps_einit(True, design))


def test_kvm_uses_the_shared_decisions():
    for fw in ("flexible", "locked-intel", "no-lc"):
        for name in DESIGNS:
            kvm = Kvm(host(fw), design=name)
            assert kvm.traps_einit is traps_einit(kvm.lc_writable, kvm.design)


@pytest.mark.parametrize(
    "config,writable,lc,fc",
    [
        (SgxGuestConfig.parse("epc=4M,lewr"), True, True, LOCKED_17),
        (SgxGuestConfig.parse("epc=4M"), True, True, SGX_ENABLED_IN_BIOS),
        (SgxGuestConfig.parse("epc=4M"), False, False, SGX_ENABLED_IN_BIOS),
        (SgxGuestConfig.merged("4M", True), True, True, LOCKED_17),
        (SgxGuestConfig.merged("4M", True), False, False, SGX_ENABLED_IN_BIOS),  # filtered by QEMU
        (SgxGuestConfig.merged("4M", False), True, False, SGX_ENABLED_IN_BIOS),
    ],
)
def test_guest_cpuid_and_firmware_feature_control(config, writable, lc, fc):
    assert guest.guest_cpuid_sgx_lc(config, writable) is lc
    assert guest.guest_feature_control(config, lc) == fc
    assert firmware_feature_control(bool(fc & FEAT_CTL_SGX_LC_ENABLED)) == fc


def test_initial_words_and_default():
    assert guest.vcpu_initial_words(INTEL_LEPUBKEYHASH.words, None) == INTEL_LEPUBKEYHASH.words
    assert guest.vcpu_initial_words(INTEL_LEPUBKEYHASH.words, THIRD.words) == THIRD.words
    assert guest.initial_lehash(SgxGuestConfig(epc=4096, lehash=THIRD), INTEL_LEPUBKEYHASH) == THIRD
    assert guest.initial_lehash(SgxGuestConfig(epc=4096), THIRD) == THIRD
    p = host("locked-third-party")
    p.reset_counters()
    assert guest.setup_default_sgx_lepubkeyhash(False, p.cpus[0]) == THIRD
    assert p.counts()["rdmsr_total"] == 4
    assert guest.setup_default_sgx_lepubkeyhash(False, host("no-lc").cpus[0]) == INTEL_LEPUBKEYHASH
    assert guest.setup_default_sgx_lepubkeyhash(True, host().cpus[0]) == INTEL_LEPUBKEYHASH


def test_qemu_filter_helpers():
    on = SgxGuestConfig.merged("4M", True)
    assert guest.qemu_filtered_features(on, True) == ()
    assert guest.qemu_filtered_features(on, False) == ("sgxlc",)
    assert guest.qemu_filtered_features(SgxGuestConfig.merged("4M", False), False) == ()
    assert guest.qemu_filtered_features(SgxGuestConfig.parse("epc=4M,lewr"), False) == ()  # no CPU flags
    assert guest.qemu_enforce_refusal(on, False) is None
    enforced = SgxGuestConfig.merged("4M", True, enforce=True)
    assert guest.qemu_enforce_refusal(enforced, True) is None
    assert guest.qemu_enforce_refusal(enforced, False) == "Host doesn't support requested features"
    assert "CPUID.07H:ECX.sgxlc [bit 30]" in guest.qemu_filter_warning("sgxlc")


# --------------------------------------------------------------------------- D: vCPU reset


@pytest.mark.parametrize("design", ["always-write", "eager-load"])
def test_reset_gives_back_intels_hash_after_a_lewr_write(design):
    """Linux 5.16+: __vmx_vcpu_reset -> vcpu_setup_sgx_lepubkeyhash; QEMU writes nothing else."""
    platform = host()
    kvm = Kvm(platform, design=design)
    v = kvm.create_vm("epc=4M,lewr").vcpus[0]
    v.load(1)
    for msr, w in zip(HASH, OTHER.words):
        v.wrmsr(msr, w)
    assert v.lehash == OTHER and v.wrote_lehash
    exits = v.msr_exits
    v.reset()
    assert v.pcpu is None  # QEMU kicked it out of KVM_RUN
    assert v.lehash == INTEL_LEPUBKEYHASH and not v.wrote_lehash
    assert v.rdmsr(HASH[0]) == INTEL_LEPUBKEYHASH.words[0]
    assert v.feature_control == LOCKED_17  # guest firmware locked it again
    assert v.msr_exits == exits + 1  # counters are kept
    for msr, w in zip(HASH, OTHER.words):  # and bit 17 lets the guest write again
        v.wrmsr(msr, w)
    assert v.lehash == OTHER


def test_reset_gives_back_the_configured_lehash():
    kvm = Kvm(host())
    v = kvm.create_vm(SgxGuestConfig(epc=4096, lehash=THIRD, lewr=True)).vcpus[0]
    for msr, w in zip(HASH, OTHER.words):
        v.wrmsr(msr, w)
    v.reset()
    assert v.lehash == THIRD and v.view().words == THIRD.words and not v.view().wrote


def test_reset_on_a_locked_host_keeps_the_hosts_hash():
    kvm = Kvm(host("locked-third-party"))
    vm = kvm.create_vm("epc=4M", nvcpus=2)
    vm.reset()
    for v in vm.vcpus:
        assert v.lehash == THIRD and v.feature_control == SGX_ENABLED_IN_BIOS and not v.cpuid_sgx_lc


def test_reset_without_guest_firmware_unlocks_feature_control():
    kvm = Kvm(host())
    v = kvm.create_vm("epc=4M,lewr", guest_firmware=False).vcpus[0]
    v.wrmsr(FC, LOCKED_17)
    v.reset()
    assert v.feature_control == 0  # the caller plays firmware again
    v.wrmsr(FC, LOCKED_17)
    assert v.feature_control == LOCKED_17


def test_vm_reset_resets_every_vcpu_and_eager_load_reloads_at_the_next_run():
    e = signed_enclave(1)
    platform = host()
    kvm = Kvm(platform, design="eager-load")
    vm = kvm.create_vm("epc=4M,lewr", nvcpus=2)
    a, b = vm.vcpus
    a.load(0)
    b.load(1)
    for v in vm.vcpus:
        for msr, w in zip(HASH, e.mrsigner.words):
            v.wrmsr(msr, w)
    assert platform.cpus[0].lehash == e.mrsigner  # passed through while loaded
    vm.reset()
    assert all(v.lehash == INTEL_LEPUBKEYHASH and v.pcpu is None for v in vm.vcpus)
    # The next EINIT schedules the vCPU in (KVM_RUN): eager-load writes Intel's hash, so a
    # token-less launch of e now fails, as it would on hardware reset to Intel's hash.
    r = a.einit(e.sigstruct, e.fresh())
    assert r.code == 16 and r.hw_consistent and platform.cpus[0].lehash == INTEL_LEPUBKEYHASH


def test_reset_of_a_destroyed_vm_is_refused():
    kvm = Kvm(host())
    vm = kvm.create_vm("epc=4M")
    kvm.destroy_vm(vm)
    with pytest.raises(Exception, match="destroyed"):
        vm.reset()


# --------------------------------------------------------------------------- S3


@pytest.mark.parametrize("design", list(DESIGNS))
def test_kvm_s3_resume_reloads_loaded_vcpus_in_cpu_order(design):
    platform = host(ncpus=3)
    kvm = Kvm(platform, design=design)
    vm = kvm.create_vm("epc=4M,lewr", nvcpus=3)
    a, b, c = vm.vcpus
    words = {a: OTHER.words, b: THIRD.words}
    for v, w in words.items():
        for msr, x in zip(HASH, w):
            v.wrmsr(msr, x)
    b.load(2)
    a.load(0)  # c is never loaded
    calls: list[int] = []
    real = kvm.design.vcpu_load

    def spy(cpu, w):
        calls.append(cpu.index)
        real(cpu, w)

    kvm.design.vcpu_load = spy  # type: ignore[method-assign]
    before = (a.schedule_ins, b.schedule_ins, c.schedule_ins)
    assert kvm.s3_resume() == 2
    assert (a.schedule_ins, b.schedule_ins, c.schedule_ins) == (before[0] + 1, before[1] + 1, before[2])
    assert a.pcpu is platform.cpus[0] and b.pcpu is platform.cpus[2] and c.pcpu is None
    if DESIGNS[design].loads_on_schedule:
        assert calls == [0, 2]  # CPU order
        assert platform.cpus[0].lehash == OTHER and platform.cpus[2].lehash == THIRD
        assert platform.cpus[1].lehash == INTEL_LEPUBKEYHASH
    else:
        assert calls == []
        assert all(cpu.lehash == INTEL_LEPUBKEYHASH for cpu in platform.cpus)


def test_guest_s3_resume_counts_what_it_wrote():
    platform = host(ncpus=2)
    design = DESIGNS["eager-load"](platform)
    platform.reset_counters()
    n, rd, wr = guest.s3_resume(platform, design, [(1, THIRD.words), (0, OTHER.words)])
    assert (n, rd, wr) == (2, 0, 8)
    assert platform.cpus[0].lehash == OTHER and platform.cpus[1].lehash == THIRD
    always = DESIGNS["always-write"](platform)
    assert guest.s3_resume(platform, always, [(0, THIRD.words)]) == (1, 0, 0)
    assert platform.cpus[0].lehash == INTEL_LEPUBKEYHASH


def test_s3_resume_matches_the_manual_replay():
    """Kvm.s3_resume is what tests/test_engine_vs_kvm.py does by hand at an S3 row."""
    results = []
    for manual in (False, True):
        platform = host(ncpus=2)
        kvm = Kvm(platform, design="eager-load")
        vm = kvm.create_vm("epc=4M,lewr", nvcpus=2)
        for v, cpu in zip(vm.vcpus, (1, 0)):
            v.load(cpu)
            for msr, x in zip(HASH, (OTHER if cpu else THIRD).words):
                v.wrmsr(msr, x)
        platform.reset_counters()
        if manual:
            platform.s3_resume()
            for v in sorted((x for x in vm.vcpus if x.pcpu is not None), key=lambda x: x.pcpu.index):
                v.load(v.pcpu.index)
        else:
            kvm.s3_resume()
        results.append(
            (platform.counts(), kvm.counts(), [c.lehash_words for c in platform.cpus], [v.pcpu for v in vm.vcpus])
        )
    assert results[0][:3] == results[1][:3]
    assert [p.index for p in results[0][3]] == [p.index for p in results[1][3]]


# --------------------------------------------------------------------------- Vcpu delegates to GuestLc


def test_vcpu_state_is_its_guest_lc():
    kvm = Kvm(host())
    v = kvm.create_vm("epc=4M,lewr").vcpus[0]
    assert isinstance(v.lc, GuestLc)
    v.lc.lewr(THIRD.words)
    assert v.lehash == THIRD and v.msr_ia32_sgxlepubkeyhash == THIRD.words and v.wrote_lehash
    assert v.msr_ia32_feature_control is v.lc.feature_control
    with pytest.raises(TypeError):
        v.msr_ia32_sgxlepubkeyhash[0] = 1  # type: ignore[index]  # a tuple: write through wrmsr


def test_vcpu_and_guest_lc_agree_on_every_access():
    """Every (CPUID, FEATURE_CONTROL, MSR, host-initiated) combination: Vcpu faults iff GuestLc refuses."""
    kvm = Kvm(host())
    states = [0, FEAT_CTL_SGX_LC_ENABLED, SGX_ENABLED_IN_BIOS, LOCKED_17]
    for n, (sgx_lc, fc, msr, hi) in enumerate(itertools.product([True, False], states, (*HASH, FC, 0x10), [0, 1])):
        cfg = SgxGuestConfig(epc=4096) if sgx_lc else SgxGuestConfig.merged(4096, sgxlc=False)
        v = kvm.create_vm(cfg, name=f"v{n}", guest_firmware=False).vcpus[0]
        v.wrmsr(FC, fc, host_initiated=True)
        ref = GuestLc(v.lehash_words, sgx_lc, fc)
        value = SGX_ENABLED_IN_BIOS if msr == FC else 0x55
        for op in ("read", "write"):
            want = ref.read_refusal(msr, bool(hi)) if op == "read" else ref.write_refusal(msr, value, bool(hi))
            try:
                v.rdmsr(msr, host_initiated=bool(hi)) if op == "read" else v.wrmsr(msr, value, host_initiated=bool(hi))
            except GeneralProtection as e:
                assert want is not None and want in str(e)
            else:
                assert want is None


def test_hot_path_flags_follow_every_change():
    """hash_writable and sgx_enabled are derived, whatever changes the state."""
    g = GuestLc(INTEL_LEPUBKEYHASH.words, True, SGX_ENABLED_IN_BIOS, firmware=False)
    assert g.hash_writable and not g.sgx_enabled  # unlocked: firmware may still write
    assert g.wrmsr(FC, SGX_ENABLED_IN_BIOS) is None
    assert not g.hash_writable and g.sgx_enabled
    assert g.wrmsr(FC, LOCKED_17, host_initiated=True) is None
    assert g.hash_writable and g.sgx_enabled
    g.cpuid_sgx_lc = False
    assert not g.hash_writable and g.lewr(THIRD.words) == guest.R_NO_LC
    g.cpuid_sgx_lc = True
    g.feature_control = 0
    assert g.hash_writable and not g.sgx_enabled and g.encls_refusal() == guest.R_SGX_OFF
    g.reset()
    assert not g.hash_writable and g.sgx_enabled and g.lewr(THIRD.words) == guest.R_LOCKED
