"""Tests of sgxlab.kvm: guest configuration, virtual MSRs, trapped EINIT, consistency, the matrix."""

from __future__ import annotations

import hashlib
import time

import pytest

from sgxlab.errors import ConfigError, GeneralProtection, PolicyRefusal, SgxlabError
from sgxlab.experiments.matrix import MATRIX_COLUMNS, policy_matrix_records
from sgxlab.host.le import LaunchEnclave
from sgxlab.hw.arch import (
    FEAT_CTL_LOCKED,
    FEAT_CTL_SGX_ENABLED,
    FEAT_CTL_SGX_LC_ENABLED,
    INTEL_LEPUBKEYHASH,
    MSR_IA32_FEATURE_CONTROL,
    MSR_IA32_SGXLEPUBKEYHASH,
    LeHash,
    SgxError,
)
from sgxlab.hw.crypto import load_test_key, sign_sigstruct
from sgxlab.hw.measure import Page, build_enclave
from sgxlab.hw.platform import Platform
from sgxlab.hw.structs import PT_TCS, SECINFO_R, SECINFO_X, Secinfo, Sigstruct
from sgxlab.kvm import (
    POLICY_REFUSAL_CODE,
    POLICY_REFUSAL_CODE_LE,
    GuestOptionError,
    GuestView,
    Kvm,
    SgxGuestConfig,
    format_size,
    hardware_consistent,
    launch_le_in_guest,
    parse_size,
)
from sgxlab.kvm.policy import (
    ENFORCING_POLICIES,
    HOST_POLICY_NAMES,
    POLICY_NAMES,
    Allowlist,
    HostAllowlist,
    SingleLE,
    policy_by_name,
)

FC = MSR_IA32_FEATURE_CONTROL
HASH = MSR_IA32_SGXLEPUBKEYHASH
MSRS = (*HASH, FC)
HEX = "ab" * 32
THIRD = LeHash(hashlib.sha256(b"third-party LE signer").digest())
FIRMWARES = ("flexible", "locked-intel", "locked-third-party", "no-lc")


# --------------------------------------------------------------------------- fixtures


class Signed:
    """A built enclave image and its SIGSTRUCT bytes under one key."""

    def __init__(self, key_index: int) -> None:
        self.key = load_test_key(key_index)
        self.image = build_enclave(
            [
                Page(0x0, Secinfo.of(SECINFO_R | SECINFO_X), b"test_kvm enclave"),
                Page(0x1000, Secinfo.of(0, PT_TCS)),
            ]
        )
        unsigned = Sigstruct.new(enclavehash=self.image.mrenclave(), attributes=self.image.secs.attributes)
        self.sigstruct = sign_sigstruct(self.key, unsigned)
        self.sig = self.sigstruct.to_bytes()
        self.signer = self.key.mrsigner

    def enclave(self):
        return self.image.fork()


@pytest.fixture(scope="module")
def ok() -> Signed:
    return Signed(1)


@pytest.fixture(scope="module")
def bad() -> Signed:
    return Signed(2)


@pytest.fixture(scope="module")
def le_key():
    return load_test_key(0)


def host(firmware: str = "flexible", ncpus: int = 2, **kw) -> Platform:
    lehash = THIRD if firmware == "locked-third-party" else None
    return Platform(ncpus, firmware, lehash=kw.pop("lehash", lehash), **kw)


def write_words(vcpu, words) -> None:
    for msr, w in zip(HASH, words):
        vcpu.wrmsr(msr, w)


# --------------------------------------------------------------------------- option strings


def test_parse_kai_option_string_exactly():
    c = SgxGuestConfig.parse(f"epc=64M,lehash={HEX},lewr")
    assert c == SgxGuestConfig(epc=64 << 20, lehash=LeHash(bytes.fromhex(HEX)), lewr=True)
    assert c.mode == "rfc2017" and not c.sgxlc and c.lc_enabled
    # Quotes as in Kai's mail (lehash='SHA-256 hash'), both kinds, and the -sgx prefix.
    assert SgxGuestConfig.parse(f"epc=64M,lehash='{HEX}',lewr") == c
    assert SgxGuestConfig.parse(f'-sgx epc=64M,lehash="{HEX}",lewr') == c
    assert SgxGuestConfig.parse(f"lewr,lehash={HEX.upper()},epc=65536K") == c
    plain = SgxGuestConfig.parse("epc=8192")
    assert plain.epc == 8192 and plain.lehash is None and not plain.lewr and not plain.lc_enabled


@pytest.mark.parametrize(
    "text,size",
    [("4K", 4096), ("4k", 4096), ("64M", 64 << 20), ("1G", 1 << 30), ("2g", 2 << 30), ("12288", 12288)],
)
def test_parse_size(text, size):
    assert parse_size(text) == size
    assert parse_size(format_size(size)) == size


@pytest.mark.parametrize(
    "text,kind",
    [
        ("epc=64M,foo=1", "unknown-key"),
        ("epc=64M,LEWR", "unknown-key"),
        ("epc=64M, lewr", "unknown-key"),
        ("epc=64M,epc=32M", "duplicate-key"),
        (f"epc=64M,lehash={HEX},lehash={HEX}", "duplicate-key"),
        ("epc=64M,lewr,lewr", "duplicate-key"),
        ("epc=64M,lewr=on", "flag-value"),
        ("epc=64M,lewr=", "flag-value"),
        ("epc=64M,,lewr", "empty-item"),
        ("epc=64M,", "empty-item"),
        (",epc=64M", "empty-item"),
        ("epc=", "missing-value"),
        ("epc", "missing-value"),
        ("epc=64M,lehash=", "missing-value"),
        (f"lehash={HEX},lewr", "missing-epc"),
        ("", "missing-epc"),
        ("epc=64X", "bad-size"),
        ("epc=64MB", "bad-size"),
        ("epc=4.5M", "bad-size"),
        ("epc=-4K", "bad-size"),
        ("epc=0", "bad-size"),
        ("epc=1000", "bad-size"),
        ("epc=6K", "bad-size"),
        ("epc=64M,lehash=" + "zz" * 32, "bad-hex"),
        ("epc=64M,lehash=0x" + "ab" * 31, "wrong-length"),  # 0x is allowed (one hash parser); 62 digits are not
        ("epc=64M,lehash=" + "ab" * 31 + "g1", "bad-hex"),
        ("epc=64M,lehash=" + "ab" * 15 + " " + "ab" * 16, "bad-hex"),
        ("epc=64M,lehash=abc", "wrong-length"),
        ("epc=64M,lehash=" + "a" * 63, "wrong-length"),
        ("epc=64M,lehash=" + "a" * 65, "wrong-length"),
        ("epc=64M,lehash=''", "wrong-length"),
        (f"epc=64M,lehash='{HEX}", "bad-quote"),
        (f"epc=64M,lehash={HEX}'", "bad-quote"),
        (f"epc=64M,lehash='{HEX}\"", "bad-quote"),
    ],
)
def test_option_errors_are_precise(text, kind):
    with pytest.raises(GuestOptionError) as ei:
        SgxGuestConfig.parse(text)
    e = ei.value
    assert e.kind == kind
    assert isinstance(e, ConfigError) and isinstance(e, SgxlabError)
    assert e.option.startswith("-sgx") and e.reason


def test_option_error_messages_name_the_problem():
    with pytest.raises(GuestOptionError, match=r"unknown key 'foo'; valid keys: epc, lehash, lewr"):
        SgxGuestConfig.parse("epc=64M,foo=1")
    with pytest.raises(GuestOptionError, match="given twice"):
        SgxGuestConfig.parse("epc=64M,epc=64M")
    with pytest.raises(GuestOptionError, match="multiple of 4 KiB"):
        SgxGuestConfig.parse("epc=1000")
    with pytest.raises(GuestOptionError, match="expected 64 hex digits.*got 3"):
        SgxGuestConfig.parse("epc=64M,lehash=abc")
    with pytest.raises(GuestOptionError, match="'z' at position 0"):
        SgxGuestConfig.parse("epc=64M,lehash=" + "z" * 64)
    with pytest.raises(GuestOptionError, match="takes no value"):
        SgxGuestConfig.parse("epc=64M,lewr=1")
    with pytest.raises(GuestOptionError) as ei:
        SgxGuestConfig.parse(123)  # type: ignore[arg-type]
    assert ei.value.kind == "not-a-string"


@pytest.mark.parametrize(
    "config",
    [
        SgxGuestConfig(epc=64 << 20),
        SgxGuestConfig(epc=4096, lewr=True),
        SgxGuestConfig(epc=3 << 30, lehash=THIRD),
        SgxGuestConfig(epc=12288, lehash=INTEL_LEPUBKEYHASH, lewr=True),
        SgxGuestConfig.merged(epc="64M", sgxlc=True),
        SgxGuestConfig.merged(epc=8192, sgxlc=False),
    ],
)
def test_to_option_round_trips(config):
    assert SgxGuestConfig.parse(config.to_option()) == config


def test_merged_mode_is_qemu_62():
    c = SgxGuestConfig.parse_qemu(
        "-enable-kvm -cpu host,+sgx-provisionkey,+sgxlc "
        "-object memory-backend-epc,id=mem1,size=64M,prealloc=on "
        "-object memory-backend-epc,id=mem2,size=28M "
        "-M q35,sgx-epc.0.memdev=mem1,sgx-epc.1.memdev=mem2"
    )
    assert c == SgxGuestConfig(epc=92 << 20, mode="merged", sgxlc=True, provisionkey=True)
    assert c.lehash is None and not c.lewr and c.lc_enabled and c.lc_option == "sgxlc"
    assert SgxGuestConfig.merged("64M") == SgxGuestConfig(epc=64 << 20, mode="merged", sgxlc=True)
    off = SgxGuestConfig.parse("-cpu host,sgxlc=off -object memory-backend-epc,id=m,size=4M -M sgx-epc.0.memdev=m")
    assert not off.sgxlc and not off.lc_enabled


@pytest.mark.parametrize(
    "text,match",
    [
        ("-cpu host,+sgxlc", "no EPC section"),
        ("-cpu host -M sgx-epc.0.memdev=nope", "no -object memory-backend-epc"),
        ("-cpu host,+lewr -object memory-backend-epc,id=m,size=4M -M sgx-epc.0.memdev=m", "never landed"),
        ("-cpu host,-sgx -object memory-backend-epc,id=m,size=4M -M sgx-epc.0.memdev=m", "not an SGX guest"),
        ("-cpu host,sgxlc=maybe -object memory-backend-epc,id=m,size=4M -M sgx-epc.0.memdev=m", "on or off"),
        ("-object memory-backend-epc,id=m -M sgx-epc.0.memdev=m", "size="),
        ("-cpu", "needs an argument"),
        ("-cpu 'host", "cannot split"),
    ],
)
def test_merged_mode_errors(text, match):
    with pytest.raises(GuestOptionError, match=match) as ei:
        SgxGuestConfig.parse(text)
    assert ei.value.kind in ("qemu-syntax", "bad-size")


def test_config_dataclass_validates():
    with pytest.raises(ConfigError, match="QEMU 6.2 has no lehash"):
        SgxGuestConfig(epc=4096, lehash=THIRD, mode="merged")
    with pytest.raises(ConfigError, match="QEMU 6.2 has no lehash/lewr"):
        SgxGuestConfig(epc=4096, lewr=True, mode="merged")
    with pytest.raises(ConfigError, match="belongs to mode 'merged'"):
        SgxGuestConfig(epc=4096, sgxlc=True)
    with pytest.raises(ConfigError, match="mode"):
        SgxGuestConfig(epc=4096, mode="2021")
    with pytest.raises(GuestOptionError):
        SgxGuestConfig(epc=100)
    with pytest.raises(ConfigError):
        SgxGuestConfig(epc=4096, lewr=1)  # type: ignore[arg-type]
    assert SgxGuestConfig(epc="8K", lehash=HEX).lehash == LeHash(bytes.fromhex(HEX))  # type: ignore[arg-type]
    with pytest.raises(AttributeError):
        SgxGuestConfig(epc=4096).lewr = True  # type: ignore[misc]


# --------------------------------------------------------------------------- guest setup


@pytest.mark.parametrize(
    "firmware,expected",
    [
        ("flexible", INTEL_LEPUBKEYHASH),  # host LC writable: Intel's, guest may write
        ("no-lc", INTEL_LEPUBKEYHASH),  # RDMSR faults: Intel's hash is fused in
        ("locked-intel", INTEL_LEPUBKEYHASH),  # locked: what firmware locked (Intel's here)
        ("locked-third-party", THIRD),  # locked: the host's third-party value
    ],
)
def test_initial_virtual_hash_follows_kvm(firmware, expected):
    kvm = Kvm(host(firmware))
    assert kvm.sgx_pubkey_hash == expected
    vm = kvm.create_vm(SgxGuestConfig(epc=4096), nvcpus=3)
    for v in vm.vcpus:
        assert v.lehash == expected
        assert v.rdmsr(HASH[0], host_initiated=True) == expected.words[0]
    # lehash, if given, wins wherever the host can honour it.
    given = expected if firmware != "flexible" else THIRD
    vm2 = kvm.create_vm(SgxGuestConfig(epc=4096, lehash=given))
    assert vm2.vcpus[0].lehash == given


def test_lehash_the_host_cannot_honour_is_refused():
    for fw in ("no-lc", "locked-intel", "locked-third-party"):
        kvm = Kvm(host(fw))
        other = LeHash(hashlib.sha256(fw.encode()).digest())
        with pytest.raises(PolicyRefusal, match="cannot be honoured") as ei:
            kvm.create_vm(SgxGuestConfig(epc=4096, lehash=other))
        assert ei.value.policy == "kvm"


QEMU_SGXLC = "-cpu host,+sgxlc{} -object memory-backend-epc,id=m,size=4M -M sgx-epc.0.memdev=m"


@pytest.mark.parametrize("firmware", ["no-lc", "locked-intel", "locked-third-party"])
@pytest.mark.parametrize(
    "config,match",
    [
        ("epc=64M,lewr", r"never merged.*qemu-sgx#14"),  # Kai's 2017 form: still refused
        (QEMU_SGXLC.format(",enforce=on"), r"Host doesn't support requested features \(enforce=on"),
    ],
)
def test_lc_cannot_be_offered_on_a_host_without_writable_lc(firmware, config, match):
    kvm = Kvm(host(firmware))
    with pytest.raises(PolicyRefusal, match=match) as ei:
        kvm.create_vm(config)
    assert ei.value.policy == "kvm"
    assert not kvm.vms


@pytest.mark.parametrize("firmware", ["no-lc", "locked-intel", "locked-third-party"])
def test_qemu_drops_sgxlc_with_a_warning_on_a_host_without_writable_lc(firmware):
    """QEMU 6.2 without enforce: x86_cpu_filter_features drops +sgxlc, warns, starts the VM."""
    kvm = Kvm(host(firmware))
    cfg = SgxGuestConfig.parse(QEMU_SGXLC.format(""))
    assert kvm.would_create(cfg) == (True, None, None)
    (warning,) = kvm.qemu_warnings(cfg)
    assert warning == "host doesn't support requested feature: CPUID.07H:ECX.sgxlc [bit 30]"
    vm = kvm.create_vm(cfg)
    assert vm.config == cfg and vm.warnings == (warning,)
    v = vm.vcpus[0]
    assert not v.cpuid_sgx_lc and v.feature_control == FEAT_CTL_LOCKED | FEAT_CTL_SGX_ENABLED
    with pytest.raises(GeneralProtection, match="SGX_LC"):
        v.rdmsr(HASH[0])
    assert v.lehash == kvm.sgx_pubkey_hash
    # The same flag on a host that can give it: no warning, SGX_LC and bit 17.
    flex = Kvm(host()).create_vm(cfg)
    assert flex.warnings == () and flex.vcpus[0].cpuid_sgx_lc
    assert flex.vcpus[0].feature_control & FEAT_CTL_SGX_LC_ENABLED


def test_guest_cpuid_and_feature_control():
    flex = Kvm(host("flexible"))
    locked = Kvm(host("locked-intel"))
    cases = [
        (flex, "epc=4M,lewr", True, FEAT_CTL_LOCKED | FEAT_CTL_SGX_ENABLED | FEAT_CTL_SGX_LC_ENABLED),
        (flex, "epc=4M", True, FEAT_CTL_LOCKED | FEAT_CTL_SGX_ENABLED),
        (
            flex,
            SgxGuestConfig.merged("4M", True),
            True,
            FEAT_CTL_LOCKED | FEAT_CTL_SGX_ENABLED | FEAT_CTL_SGX_LC_ENABLED,
        ),
        (flex, SgxGuestConfig.merged("4M", False), False, FEAT_CTL_LOCKED | FEAT_CTL_SGX_ENABLED),
        (locked, "epc=4M", False, FEAT_CTL_LOCKED | FEAT_CTL_SGX_ENABLED),
    ]
    for kvm, cfg, lc, fc in cases:
        v = kvm.create_vm(cfg).vcpus[0]
        assert v.cpuid_sgx_lc is lc
        assert v.feature_control == fc
        assert v.rdmsr(FC) == fc


def test_create_vm_argument_errors():
    kvm = Kvm(host())
    kvm.create_vm("epc=4M", name="a")
    with pytest.raises(ConfigError, match="exists"):
        kvm.create_vm("epc=4M", name="a")
    for n in (0, -1, True, 2000):
        with pytest.raises(ConfigError):
            kvm.create_vm("epc=4M", nvcpus=n)
    with pytest.raises(GuestOptionError):
        kvm.create_vm("epc=4M,bogus")
    with pytest.raises(ConfigError):
        Kvm("flexible")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        Kvm(host(), design="no-such-design")
    assert Kvm(host()).refusal_code is None
    with pytest.raises(ConfigError):
        Kvm(host(), refusal_code=0)
    with pytest.raises(ConfigError):
        Kvm(host(), refusal_code=3)


# --------------------------------------------------------------------------- the MSR truth table

FC_STATES = {
    "unlocked": 0,
    "unlocked+17": FEAT_CTL_SGX_LC_ENABLED,
    "locked": FEAT_CTL_LOCKED | FEAT_CTL_SGX_ENABLED,
    "locked+17": FEAT_CTL_LOCKED | FEAT_CTL_SGX_ENABLED | FEAT_CTL_SGX_LC_ENABLED,
}


def expected_allowed(sgx_lc: bool, state: str, op: str, msr: int) -> bool:
    locked = state.startswith("locked")
    bit17 = state.endswith("+17")
    if msr == FC:
        return op == "read" or not locked
    if op == "read":
        return sgx_lc
    return sgx_lc and (not locked or bit17)


@pytest.mark.parametrize("msr", MSRS, ids=[f"{m:#x}" for m in MSRS])
@pytest.mark.parametrize("op", ["read", "write"])
@pytest.mark.parametrize("state", list(FC_STATES))
@pytest.mark.parametrize("sgx_lc", [True, False], ids=["SGX_LC", "no-SGX_LC"])
def test_guest_msr_truth_table(sgx_lc, state, op, msr):
    platform = host("flexible")
    kvm = Kvm(platform)
    cfg = SgxGuestConfig(epc=4096) if sgx_lc else SgxGuestConfig.merged(4096, sgxlc=False)
    vm = kvm.create_vm(cfg, name="tt", guest_firmware=False)
    v = vm.vcpus[0]
    assert v.cpuid_sgx_lc is sgx_lc
    v.wrmsr(FC, FC_STATES[state], host_initiated=True)  # QEMU/KVM_SET_MSRS sets the state
    v.load(1)
    platform.reset_counters()
    hw_before = platform.cpus[1].lehash_words
    before_words = v.lehash_words
    allowed = expected_allowed(sgx_lc, state, op, msr)
    value = 0x1122334455667788 if msr != FC else FEAT_CTL_LOCKED | FEAT_CTL_SGX_ENABLED
    if allowed:
        if op == "read":
            got = v.rdmsr(msr)
            assert got == (FC_STATES[state] if msr == FC else before_words[HASH.index(msr)])
        else:
            v.wrmsr(msr, value)
            if msr == FC:
                assert v.feature_control == value
            else:
                assert v.msr_ia32_sgxlepubkeyhash[HASH.index(msr)] == value
                assert v.wrote_lehash
        assert v.gp_count == 0
    else:
        with pytest.raises(GeneralProtection) as ei:
            v.rdmsr(msr) if op == "read" else v.wrmsr(msr, value)
        gp = ei.value
        assert gp.cpu == "vcpu 0 of tt"
        assert gp.msr == msr
        assert gp.instruction == ("RDMSR" if op == "read" else "WRMSR")
        assert "on vcpu 0 of tt" in str(gp)
        assert v.gp_count == 1
        assert v.lehash_words == before_words and v.feature_control == FC_STATES[state]
    assert v.msr_exits == 1  # every guest access is an exit, refused or not
    # Memory only: no hardware access at all on any physical CPU.
    counts = platform.counts()
    assert counts["rdmsr_total"] == 0 and counts["wrmsr_total"] == 0 and counts["gp"] == 0
    assert platform.cpus[1].lehash_words == hw_before


def test_guest_gp_reasons_cite_the_rule():
    kvm = Kvm(host())
    nolc = kvm.create_vm(SgxGuestConfig.merged(4096, sgxlc=False), name="n").vcpus[0]
    with pytest.raises(GeneralProtection, match="SGX_LC"):
        nolc.rdmsr(HASH[0])
    locked = kvm.create_vm("epc=4K", name="l").vcpus[0]
    with pytest.raises(GeneralProtection, match="locked without bit 17"):
        locked.wrmsr(HASH[2], 1)
    with pytest.raises(GeneralProtection, match="is locked"):
        locked.wrmsr(FC, 0)
    fresh = kvm.create_vm(SgxGuestConfig.merged(4096, sgxlc=False), name="f", guest_firmware=False).vcpus[0]
    with pytest.raises(GeneralProtection, match="bit 17 .* reserved"):
        fresh.wrmsr(FC, FEAT_CTL_LOCKED | FEAT_CTL_SGX_LC_ENABLED)
    with pytest.raises(GeneralProtection, match="reserved bits"):
        fresh.wrmsr(FC, 1 << 5)
    with pytest.raises(GeneralProtection, match="not emulated"):
        fresh.rdmsr(0x10)
    with pytest.raises(ConfigError):
        locked.wrmsr(HASH[0], -1)
    with pytest.raises(ConfigError):
        locked.wrmsr(HASH[0], 1 << 64)


def test_guest_firmware_flow_then_lock():
    """A guest firmware writing a hash before locking, as KVM allows while unlocked."""
    kvm = Kvm(host())
    v = kvm.create_vm("epc=4K", guest_firmware=False).vcpus[0]
    write_words(v, THIRD.words)
    v.wrmsr(FC, FEAT_CTL_LOCKED | FEAT_CTL_SGX_ENABLED)
    assert v.lehash == THIRD
    with pytest.raises(GeneralProtection):
        v.wrmsr(HASH[0], 0)
    assert v.msr_exits == 6


def test_host_initiated_accesses_skip_checks_and_exits():
    kvm = Kvm(host())
    v = kvm.create_vm(SgxGuestConfig.merged(4096, sgxlc=False)).vcpus[0]
    v.wrmsr(HASH[0], 7, host_initiated=True)
    assert v.rdmsr(HASH[0], host_initiated=True) == 7
    v.wrmsr(FC, FEAT_CTL_LOCKED, host_initiated=True)  # even though locked
    assert v.msr_exits == 0 and not v.wrote_lehash


# --------------------------------------------------------------------------- writes, loads, counters


def test_accepted_writes_update_memory_only(ok):
    platform = host()
    kvm = Kvm(platform)
    v = kvm.create_vm("epc=4M,lewr").vcpus[0]
    v.load(0)
    hw = platform.cpus[0].lehash_words
    platform.reset_counters()
    write_words(v, ok.signer.words)
    assert v.lehash == ok.signer
    assert platform.cpus[0].lehash_words == hw  # hardware untouched
    assert platform.counts()["wrmsr_total"] == 0 and platform.counts()["rdmsr_total"] == 0
    assert v.msr_exits == 4


def test_eager_load_writes_on_schedule_and_passes_guest_writes_through(ok):
    platform = host()
    kvm = Kvm(platform, design="eager-load")
    v = kvm.create_vm("epc=4M,lewr").vcpus[0]
    platform.reset_counters()
    v.load(1)
    assert platform.cpus[1].lehash == INTEL_LEPUBKEYHASH
    assert platform.counts()["wrmsr_total"] == 4 and v.schedule_ins == 1
    write_words(v, ok.signer.words)
    assert platform.cpus[1].lehash == ok.signer  # Kai's RFC: written through while loaded
    assert platform.counts()["wrmsr_total"] == 8
    v.put()
    write_words(v, THIRD.words)  # not loaded: memory only
    assert platform.cpus[1].lehash == ok.signer and platform.counts()["wrmsr_total"] == 8
    v.load(0)
    assert platform.cpus[0].lehash == THIRD and v.schedule_ins == 2


def test_load_puts_the_previous_vcpu_and_always_write_loads_nothing():
    platform = host()
    kvm = Kvm(platform)
    a, b = kvm.create_vm("epc=4M", nvcpus=2).vcpus
    platform.reset_counters()
    a.load(1)
    b.load(1)
    assert a.pcpu is None and b.pcpu is platform.cpus[1]
    b.load(0)
    assert b.pcpu is platform.cpus[0]
    assert (a.schedule_ins, b.schedule_ins) == (1, 2)
    assert platform.counts()["wrmsr_total"] == 0
    assert kvm.counts()["schedule_ins"] == 3


# --------------------------------------------------------------------------- guest EINIT


@pytest.mark.parametrize("firmware", FIRMWARES)
def test_trapped_iff_host_lc_writable(firmware, ok):
    platform = host(firmware)
    kvm = Kvm(platform)
    assert kvm.traps_einit is (firmware == "flexible")
    cfg = "epc=4M,lewr" if firmware == "flexible" else "epc=4M"
    v = kvm.create_vm(cfg).vcpus[0]
    if firmware == "flexible":
        write_words(v, ok.signer.words)
    v.load(1)
    platform.reset_counters()
    r = v.einit(ok.sig, ok.enclave())
    assert r.trapped is (firmware == "flexible")
    assert r.cpu == 1 and r.vcpu == v.label
    if firmware == "flexible":
        # handle_encls_einit -> sgx_virt_einit: the 4 guest words go to CPU 1, then EINIT.
        assert r.code == 0 and not r.zf and r.step == "commit"
        assert v.encls_exits == 1
        assert platform.cpus[1].lehash == ok.signer
        assert platform.cpus[1].wrmsr_count[HASH[0]] == 1 and platform.counts()["wrmsr_total"] == 4
        assert r.outcome is not None and r.outcome.wrmsr == 4
    else:
        # Native EINIT against the fixed hash: a token-less launch cannot work.
        assert r.code == SgxError.SGX_INVALID_EINITTOKEN and r.zf and r.step == "tokenless-mrsigner"
        assert v.encls_exits == 0 and r.outcome is None
        assert platform.counts()["wrmsr_total"] == 0
    assert r.hw_consistent and not r.policy_refused and not r.bypass


def test_eager_load_does_not_trap(ok):
    platform = host()
    kvm = Kvm(platform, design="eager-load")
    assert not kvm.traps_einit and "eager-load" in kvm.why_untrapped()
    v = kvm.create_vm("epc=4M,lewr").vcpus[0]
    v.load(0)
    write_words(v, ok.signer.words)
    r = v.einit(ok.sig, ok.enclave())
    assert r.launched and not r.trapped and v.encls_exits == 0


def test_eager_load_after_host_einit_reloads(ok, bad):
    """A host EINIT preempts the vCPU; the guest's next EINIT schedules it back in."""
    platform = host()
    kvm = Kvm(platform, design="eager-load")
    v = kvm.create_vm("epc=4M,lewr").vcpus[0]
    v.load(0)
    write_words(v, ok.signer.words)
    out = kvm.host_einit(0, bad.sig, bad.enclave())
    assert out.result.ok and platform.cpus[0].lehash == bad.signer
    assert v.pcpu is None
    r = v.einit(ok.sig, ok.enclave())
    assert r.launched and v.schedule_ins == 2 and r.cpu == 0


def test_trap_counter_counts_every_trapped_einit(ok, bad):
    kvm = Kvm(host())
    vm = kvm.create_vm("epc=4M,lewr", nvcpus=2)
    a, b = vm.vcpus
    write_words(a, ok.signer.words)
    a.einit(ok.sig, ok.enclave())
    a.einit(bad.sig, bad.enclave())  # fails (16) but still trapped
    b.einit(ok.sig, ok.enclave())
    assert (a.encls_exits, b.encls_exits, vm.encls_exits) == (2, 1, 3)
    assert kvm.counts()["encls_exits"] == 3
    assert vm.msr_exits == 4


def test_einit_on_initialized_enclave_faults(ok):
    kvm = Kvm(host())
    v = kvm.create_vm("epc=4M,lewr").vcpus[0]
    write_words(v, ok.signer.words)
    e = ok.enclave()
    assert v.einit(ok.sig, e).launched
    with pytest.raises(GeneralProtection, match="already initialized") as ei:
        v.einit(ok.sig, e)
    assert ei.value.cpu == v.label


def test_sigstruct_forms_accepted(ok):
    kvm = Kvm(host())
    v = kvm.create_vm("epc=4M,lewr").vcpus[0]
    write_words(v, ok.signer.words)
    assert v.einit(ok.sigstruct, ok.enclave()).launched
    assert v.einit(ok.sig, ok.enclave()).launched
    with pytest.raises(ConfigError):
        v.einit("nope", ok.enclave())  # type: ignore[arg-type]


def test_destroyed_vm_cannot_run(ok):
    kvm = Kvm(host())
    vm = kvm.create_vm("epc=4M")
    kvm.destroy_vm(vm)
    assert vm not in kvm.vms
    with pytest.raises(SgxlabError, match="destroyed"):
        vm.vcpus[0].einit(ok.sig, ok.enclave())


# --------------------------------------------------------------------------- host EINIT


def test_host_einit_applies_policy_then_design(ok, bad):
    platform = host()
    kvm = Kvm(platform, Allowlist([ok.signer]))
    platform.reset_counters()
    out = kvm.host_einit(1, ok.sig, ok.enclave())
    assert out.result.ok and out.wrmsr == 4 and platform.cpus[1].lehash == ok.signer
    with pytest.raises(PolicyRefusal, match="not in the host's allowlist") as ei:
        kvm.host_einit(1, bad.sig, bad.enclave())
    assert ei.value.policy == "allowlist"
    assert platform.counts()["wrmsr_total"] == 4  # the refusal wrote nothing
    assert kvm.host_einits == 1


def test_host_with_a_single_le_keeps_its_hash(ok, le_key):
    platform = host()
    kvm = Kvm(platform, SingleLE(le_key.mrsigner, [ok.signer]))
    out = kvm.host_einit(0, ok.sig, ok.enclave())  # token-less: hardware refuses
    assert out.result.code == SgxError.SGX_INVALID_EINITTOKEN
    assert platform.cpus[0].lehash == le_key.mrsigner
    le = LaunchEnclave.create(le_key, allowlist=[ok.signer])
    assert le.launch(platform.cpus[0]).ok
    tok = le.get_token(ok.sigstruct, ok.image.secs.attributes)
    assert kvm.host_einit(0, ok.sig, ok.enclave(), tok.token).result.ok


# --------------------------------------------------------------------------- policies in action


def test_bypass_under_host_only(ok, bad):
    """Andy's little VM: a host that forbids `bad` on itself lets a lewr guest run it."""
    kvm = Kvm(host(), HostAllowlist([ok.signer]))
    with pytest.raises(PolicyRefusal):
        kvm.host_einit(0, bad.sig, bad.enclave())
    v = kvm.create_vm("epc=64M,lewr").vcpus[0]
    write_words(v, bad.signer.words)
    r = v.einit(bad.sig, bad.enclave())
    assert r.trapped and r.launched and not r.policy_refused
    assert r.bypass and "POLICY BYPASS" in r.reason
    assert r.hw_consistent
    assert r.as_json()["bypass"] is True
    # An allowed signer in the same guest is no bypass.
    write_words(v, ok.signer.words)
    assert not v.einit(ok.sig, ok.enclave()).bypass


def test_same_attempt_refused_under_allowlist(ok, bad):
    platform = host()
    kvm = Kvm(platform, Allowlist([ok.signer]))
    v = kvm.create_vm("epc=64M,lewr").vcpus[0]
    write_words(v, bad.signer.words)
    v.load(0)
    platform.reset_counters()
    r = v.einit(bad.sig, bad.enclave())
    # What the guest saw: RAX 16, ZF set, at the host's policy step.
    assert r.trapped and r.policy_refused and not r.launched and not r.bypass
    assert r.code == POLICY_REFUSAL_CODE == SgxError.SGX_INVALID_EINITTOKEN
    assert r.zf and r.step == "policy" and r.name == "SGX_INVALID_EINITTOKEN"
    assert "allowlist" in r.reason and bad.signer.short() in r.reason
    assert r.outcome is None and platform.counts()["wrmsr_total"] == 0  # no hardware EINIT ran
    assert v.encls_exits == 1
    # Kai's objection: bit 17 set, WRMSR accepted, MSRs hold the signer, yet EINIT fails.
    assert r.raw_code == 0 and not r.hw_consistent
    assert "bit 17 set" in r.consistency and "written by the guest" in r.consistency


def test_same_attempt_refused_under_single_le_and_approved_set(bad, le_key):
    for policy in (SingleLE(le_key.mrsigner), policy_by_name("approved-set", [le_key.mrsigner])):
        kvm = Kvm(host(), policy)
        with pytest.raises(PolicyRefusal, match="lewr refused") as ei:
            kvm.create_vm("epc=64M,lewr")
        assert ei.value.policy == policy.name
        assert "bit 17 clear" in ei.value.reason


def test_refusal_code_is_configurable(bad):
    kvm = Kvm(host(), Allowlist([]), refusal_code=SgxError.SGX_INVALID_ATTRIBUTE)
    v = kvm.create_vm("epc=64M,lewr").vcpus[0]
    write_words(v, bad.signer.words)
    r = v.einit(bad.sig, bad.enclave())
    assert r.code == 2 and r.step == "policy" and "SGX_INVALID_ATTRIBUTE" in r.reason


def test_policy_refusal_of_a_launch_enclave_shows_invalid_attribute(le_key):
    """Refusing an LE mimics launch control for it: the controlled-attribute check, code 2."""
    other = LeHash(hashlib.sha256(b"approved LE").digest())
    kvm = Kvm(host(), Allowlist([other]))
    v = kvm.create_vm(SgxGuestConfig(epc=4096, lehash=other)).vcpus[0]
    r = launch_le_in_guest(v, LaunchEnclave.create(le_key))
    assert r.policy_refused and r.code == POLICY_REFUSAL_CODE_LE == SgxError.SGX_INVALID_ATTRIBUTE
    # Hardware with the guest's hash (not the LE's) would refuse it with the same code.
    assert r.raw_code == 2 and r.hw_consistent


def test_policy_refusal_consistent_when_hardware_would_refuse_too(bad):
    """A guest that could not have launched anyway sees nothing odd."""
    kvm = Kvm(host(), Allowlist([]))
    v = kvm.create_vm("epc=64M").vcpus[0]  # locked at Intel's hash, no lewr
    r = v.einit(bad.sig, bad.enclave())
    assert r.policy_refused and r.code == 16 and r.raw_code == 16 and r.hw_consistent


# --------------------------------------------------------------------------- hardware consistency


def view(lc=True, fc=FEAT_CTL_LOCKED | FEAT_CTL_SGX_ENABLED | FEAT_CTL_SGX_LC_ENABLED, words=THIRD.words, wrote=True):
    return GuestView(SgxGuestConfig(epc=4096, lewr=True), lc, fc, words, wrote)


def test_hardware_consistent_function():
    assert hardware_consistent(view(), 0, 0)[0]
    assert hardware_consistent(view(), 16, 16)[0]
    assert hardware_consistent(view(), 0, 128)[0]  # an interrupt may abort any EINIT
    okay, why = hardware_consistent(view(), 0, 16)
    assert not okay and "would return SUCCESS (0)" in why and "saw SGX_INVALID_EINITTOKEN (16)" in why
    locked = view(fc=FEAT_CTL_LOCKED | FEAT_CTL_SGX_ENABLED)
    assert not hardware_consistent(locked, 0, 0)[0]  # an accepted write under a lock is impossible
    assert not hardware_consistent(view(lc=False), 16, 16)[0]
    assert hardware_consistent(view(lc=False, wrote=False), 16, 16)[0]
    assert view(lc=False).reference_words == INTEL_LEPUBKEYHASH.words
    assert view().reference_words == THIRD.words


def test_locked_third_party_token_flow_end_to_end(ok, le_key):
    """Host firmware locked in a test key's hash: the guest launches via that key's LE."""
    platform = Platform(2, "locked-third-party", lehash=le_key.mrsigner)
    kvm = Kvm(platform)
    assert not kvm.traps_einit
    with pytest.raises(PolicyRefusal, match="qemu-sgx#14"):
        kvm.create_vm("epc=64M,lewr")
    v = kvm.create_vm("epc=64M").vcpus[0]
    assert v.lehash == le_key.mrsigner and not v.cpuid_sgx_lc
    with pytest.raises(GeneralProtection):
        v.rdmsr(HASH[0])
    v.load(1)
    platform.reset_counters()
    # Token-less launch: hardware compares MRSIGNER with the locked hash.
    r0 = v.einit(ok.sig, ok.enclave())
    assert r0.code == SgxError.SGX_INVALID_EINITTOKEN and r0.step == "tokenless-mrsigner" and not r0.trapped
    # The LE signed by the locked key runs natively and issues a token.
    le = LaunchEnclave.create(le_key, allowlist=[ok.signer])
    rle = launch_le_in_guest(v, le)
    assert rle.launched and not rle.trapped and le.cpu is platform.cpus[1]
    tok = le.get_token(ok.sigstruct, ok.image.secs.attributes)
    assert tok.granted
    r1 = v.einit(ok.sig, ok.enclave(), tok.token)
    assert r1.launched and r1.step == "commit" and "EINITTOKEN" in r1.reason
    assert v.encls_exits == 0 and platform.counts()["wrmsr_total"] == 0
    # KVM hides SGX_LC here, yet the hash is not Intel's: no real CPU looks like that.
    assert not rle.hw_consistent and "no SGX_LC" in rle.consistency
    assert not r1.hw_consistent


def test_locked_third_party_le_from_another_key_fails(ok, bad, le_key):
    platform = Platform(2, "locked-third-party", lehash=le_key.mrsigner)
    v = Kvm(platform).create_vm("epc=64M").vcpus[0]
    wrong = LaunchEnclave.create(bad.key, allowlist=[ok.signer])
    r = launch_le_in_guest(v, wrong)
    # The controlled-attribute check (EINITTOKEN_KEY) refuses it before the MRSIGNER check.
    assert r.code == SgxError.SGX_INVALID_ATTRIBUTE and r.step == "controlled-attributes"
    assert wrong.enclave is None


def test_guest_le_under_trapped_host(ok, le_key):
    """On a flexible host a guest locked to its LE's hash launches through that LE (trapped)."""
    kvm = Kvm(host())
    v = kvm.create_vm(SgxGuestConfig(epc=64 << 20, lehash=le_key.mrsigner)).vcpus[0]
    le = LaunchEnclave.create(le_key, allowlist=[ok.signer])
    r = launch_le_in_guest(v, le)
    assert r.trapped and r.launched and r.hw_consistent
    tok = le.get_token(ok.sigstruct, ok.image.secs.attributes)
    r2 = v.einit(ok.sig, ok.enclave(), tok.token)
    assert r2.launched and r2.trapped and r2.hw_consistent and v.encls_exits == 2


# --------------------------------------------------------------------------- the matrix


@pytest.fixture(scope="module")
def records():
    return policy_matrix_records()


def test_no_enforcing_policy_can_be_bypassed(records):
    assert set(ENFORCING_POLICIES) == {"allowlist", "single-le", "approved-set"}
    for r in records:
        if r["policy"] in ENFORCING_POLICIES:
            assert not r["bypass"], r
    # ... while the naive host is bypassed, and allow-all forbids nothing to bypass.
    assert any(r["bypass"] for r in records if r["policy"] == "host-only")
    assert not any(r["bypass"] for r in records if r["policy"] == "allow-all")


@pytest.mark.parametrize("design", ["eager-load", "percpu-cache", "read-compare", "percpu-cache-retry"])
def test_no_enforcing_policy_bypassed_under_any_design(design):
    for r in policy_matrix_records(design):
        if r["policy"] in ENFORCING_POLICIES:
            assert not r["bypass"], r


def test_matrix_rows_tell_the_story(records):
    def row(policy, lewr, lehash, signer):
        (r,) = [
            x
            for x in records
            if (x["policy"], x["lewr"], x["lehash"], x["signer"], x["provisionkey"])
            == (policy, lewr, lehash, signer, False)
        ]
        return r

    r = row("host-only", True, "intel", "forbidden")
    assert r["launched"] and r["code"] == 0 and r["bypass"] and r["hw_consistent"]
    r = row("allowlist", True, "intel", "forbidden")
    assert not r["launched"] and r["code"] == 16 and not r["hw_consistent"] and "policy" in r["reason"]
    r = row("allowlist", True, "intel", "approved")
    assert r["launched"] and r["hw_consistent"]
    for p in ("single-le", "approved-set"):
        r = row(p, True, "approved", "approved")
        assert not r["vm_created"] and r["code"] is None and "lewr" in r["reason"]
        r = row(p, False, "approved", "approved")
        assert r["launched"] and r["hw_consistent"]
        r = row(p, False, "approved", "forbidden")
        assert not r["launched"] and r["code"] == 16 and r["hw_consistent"]
        r = row(p, False, "other", "forbidden")
        assert not r["vm_created"]
    r = row("host-only", False, "other", "forbidden")
    assert r["launched"] and r["bypass"] and "token" in r["reason"]
    r = row("allow-all", False, "intel", "approved")
    assert r["code"] == 16 and "Intel" in r["reason"]


def test_matrix_every_combination_once(records):
    keys = [(r["policy"], r["lewr"], r["lehash"], r["signer"], r["provisionkey"], r["provision"]) for r in records]
    assert len(keys) == len(set(keys)) == 108
    assert {k[0] for k in keys} == set(HOST_POLICY_NAMES) == set(POLICY_NAMES) | {"mainline"}
    assert {k[2] for k in keys} == {"intel", "approved", "other"}
    assert {k[3] for k in keys} == {"approved", "forbidden"}
    assert sum(1 for k in keys if not k[4]) == 72
    for r in records:
        assert tuple(r) == MATRIX_COLUMNS
        assert (r["code"] is None) == (not r["vm_created"] or r["step"] == "ecreate-gp")
        if r["launched"]:
            assert r["code"] == 0


def test_policy_matrix_dataframe_shape_and_types():
    import pandas  # noqa: F401  (imported first: the timing is the matrix's, not pandas' import)

    import sgxlab

    t0 = time.perf_counter()
    df = sgxlab.policy_matrix()
    elapsed = time.perf_counter() - t0
    assert df.shape == (108, 14)
    assert list(df.columns) == list(MATRIX_COLUMNS)
    for col in ("lewr", "provisionkey", "provision", "vm_created", "launched", "bypass", "hw_consistent"):
        assert df[col].dtype == bool, col
    assert str(df["code"].dtype) == "Int64"
    assert df["code"].isna().tolist() == ((~df["vm_created"]) | (df["step"] == "ecreate-gp")).tolist()
    assert set(df["code"].dropna().unique()) <= {0, 16}
    for col in ("policy", "lehash", "signer", "reason", "host", "step"):
        assert all(isinstance(x, str) and x for x in df[col]), col
    assert elapsed < 5, f"policy_matrix took {elapsed:.2f}s"


def test_import_sgxlab_stays_light():
    import subprocess
    import sys

    code = (
        "import sys, sgxlab; "
        "assert 'pandas' not in sys.modules and 'sgxlab.kvm' not in sys.modules; "
        "f = sgxlab.policy_matrix; assert 'sgxlab.kvm' in sys.modules and 'pandas' not in sys.modules; "
        "print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"


def test_guest_einit_faults_until_guest_firmware_enables_sgx():
    """handle_encls: #GP unless the guest BIOS locked FEATURE_CONTROL with SGX_ENABLE."""
    from sgxlab.errors import GeneralProtection
    from sgxlab.host.samples import signed_enclave
    from sgxlab.hw.platform import Platform
    from sgxlab.kvm import Kvm, SgxGuestConfig

    e = signed_enclave(1)
    kvm = Kvm(Platform(2, "flexible"))
    vm = kvm.create_vm(SgxGuestConfig.parse("epc=64M,lewr"), guest_firmware=False)
    vcpu = vm.vcpus[0]
    vcpu.load(0)
    with pytest.raises(GeneralProtection, match="not enabled in the guest"):
        vcpu.einit(e.sigstruct, e.fresh())
    vcpu.wrmsr(0x3A, 0x60001)  # the guest's firmware locks it, SGX and LC enabled
    for i, w in enumerate(e.mrsigner.words):
        vcpu.wrmsr(0x8C + i, w)
    assert vcpu.einit(e.sigstruct, e.fresh()).code == 0


def test_set_policy_and_set_design_keep_live_vms_legal():
    from sgxlab.host.provision import Tenant
    from sgxlab.kvm.policy import Mainline

    signer = load_test_key(1).mrsigner
    kvm = Kvm(Platform(2, "flexible"), "allow-all")
    vm = kvm.create_vm(SgxGuestConfig(epc=64 << 20, lewr=True, provisionkey=True), tenant=Tenant("q"))
    assert vm.sgx_provisioning_allowed  # allow-all gates nothing
    with pytest.raises(PolicyRefusal) as e:
        kvm.set_policy(policy_by_name("approved-set", [signer]))  # refuses lewr VMs
    assert e.value.policy == "approved-set" and kvm.policy.name == "allow-all"
    kvm.set_policy(Mainline())
    assert kvm.policy.name == "mainline" and not vm.sgx_provisioning_allowed
    kvm.set_policy(Allowlist([signer]))
    with pytest.raises(PolicyRefusal) as e:
        kvm.set_design("eager-load")  # untrapped: the allowlist could not see the lewr guest
    assert e.value.policy == "allowlist" and kvm.design.name == "always-write"
    kvm.set_design("read-compare")
    assert kvm.design.name == "read-compare" and kvm.traps_einit
    with pytest.raises(ConfigError):
        kvm.set_policy(42)  # type: ignore[arg-type]
