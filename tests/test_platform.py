"""Tests of sgxlab.hw.platform: MSR access rules, firmware configurations, reset/S3, counters."""

from __future__ import annotations

import hashlib

import pytest

from sgxlab.errors import ConfigError, GeneralProtection
from sgxlab.hw.arch import (
    FEAT_CTL_LOCKED,
    FEAT_CTL_SGX_ENABLED,
    FEAT_CTL_SGX_LC_ENABLED,
    INTEL_LEPUBKEYHASH,
    MSR_IA32_FEATURE_CONTROL,
    MSR_IA32_SGXLEPUBKEYHASH,
    LeHash,
)
from sgxlab.hw.platform import (
    DEFAULT_CPUSVN,
    FIRMWARE_NAMES,
    KNOWN_MSRS,
    Cpu,
    Firmware,
    Platform,
)

FC = MSR_IA32_FEATURE_CONTROL
HASH = MSR_IA32_SGXLEPUBKEYHASH
INTEL_WORDS = (0xA6053E051270B7AC, 0x6CFBE8BA8B3B413D, 0xC4916D99F2B3735D, 0xD4F8C05909F9BB3B)
THIRD = LeHash(hashlib.sha256(b"third-party LE signer").digest())
OTHER = LeHash(hashlib.sha256(b"some enclave signer").digest())


def make(name: str, ncpus: int = 2, **kw) -> Platform:
    lehash = THIRD if name == "locked-third-party" else None
    return Platform(ncpus, name, lehash=lehash, **kw)


# --------------------------------------------------------------------------- truth table

# (firmware, state) -> (RDMSR 0x8C-0x8F, WRMSR 0x8C-0x8F, RDMSR 0x3A, WRMSR 0x3A)
# "unlocked" is a CPU right after hardware reset, before firmware locked it.
TRUTH = {
    ("flexible", "locked"): (True, True, True, False),
    ("flexible", "unlocked"): (True, True, True, True),
    ("locked-intel", "locked"): (True, False, True, False),
    ("locked-intel", "unlocked"): (True, True, True, True),
    ("locked-third-party", "locked"): (True, False, True, False),
    ("locked-third-party", "unlocked"): (True, True, True, True),
    ("no-lc", "locked"): (False, False, True, False),
    ("no-lc", "unlocked"): (False, False, True, True),
}


def test_truth_table_covers_every_firmware() -> None:
    assert {fw for fw, _ in TRUTH} == set(FIRMWARE_NAMES)


@pytest.mark.parametrize(("fw", "state"), sorted(TRUTH))
def test_msr_truth_table(fw: str, state: str) -> None:
    rd_hash, wr_hash, rd_fc, wr_fc = TRUTH[(fw, state)]
    p = make(fw)
    cpu = p.cpu(1)
    if state == "unlocked":
        cpu.reset()
        assert cpu.feature_control == 0 and not cpu.locked
    else:
        assert cpu.locked
    fc_before = cpu.feature_control

    for msr in HASH:
        if rd_hash:
            assert isinstance(cpu.rdmsr(msr), int)
        else:
            with pytest.raises(GeneralProtection):
                cpu.rdmsr(msr)
        if wr_hash:
            cpu.wrmsr(msr, 0x1122334455667788 + msr)
            assert cpu.rdmsr(msr) == 0x1122334455667788 + msr
        else:
            before = cpu.lehash_words
            with pytest.raises(GeneralProtection):
                cpu.wrmsr(msr, 0x1122334455667788)
            assert cpu.lehash_words == before

    if rd_fc:
        assert cpu.rdmsr(FC) == fc_before
    value = FEAT_CTL_LOCKED | FEAT_CTL_SGX_ENABLED
    if wr_fc:
        cpu.wrmsr(FC, value)
        assert cpu.rdmsr(FC) == value
    else:
        with pytest.raises(GeneralProtection, match="locked"):
            cpu.wrmsr(FC, value)
        assert cpu.rdmsr(FC) == fc_before
    # The other CPU was not touched.
    assert p.cpu(0).feature_control == p.firmware.feature_control


@pytest.mark.parametrize("fw", FIRMWARE_NAMES)
def test_firmware_feature_control_and_lc_writable(fw: str) -> None:
    p = make(fw)
    expected = FEAT_CTL_LOCKED | FEAT_CTL_SGX_ENABLED
    if fw == "flexible":
        expected |= FEAT_CTL_SGX_LC_ENABLED
    for c in p.cpus:
        assert c.feature_control == expected
        assert c.sgx_enabled
        assert c.lc_writable is (fw == "flexible")
        assert c.sgx_lc is (fw != "no-lc")
        assert c.sgx1
    assert p.lc_writable is (fw == "flexible")


def test_locked_without_bit17_reason_names_the_rule() -> None:
    p = make("locked-intel")
    with pytest.raises(GeneralProtection) as ei:
        p.cpu(0).wrmsr(HASH[2], 5)
    e = ei.value
    assert e.reason == (
        "IA32_FEATURE_CONTROL is locked with bit 17 (SGX_LC_ENABLED) clear: the LE hash MSRs are read-only"
    )
    assert e.msr == 0x8E and e.value == 5 and e.cpu == 0
    assert e.instruction == "WRMSR"
    assert "IA32_SGXLEPUBKEYHASH2" in str(e) and "0x8e" in str(e)


def test_rdmsr_gp_on_cpu_without_lc() -> None:
    p = make("no-lc", ncpus=3)
    with pytest.raises(GeneralProtection) as ei:
        p.cpu(2).rdmsr(0x8C)
    e = ei.value
    assert e.msr == 0x8C and e.value is None and e.cpu == 2
    assert e.instruction == "RDMSR"
    assert "SGX_LC" in e.reason


def test_cpu_without_sgx1() -> None:
    cpu = Cpu(0, sgx1=False, sgx_lc=True)
    with pytest.raises(GeneralProtection, match="SGX1"):
        cpu.rdmsr(0x8C)
    with pytest.raises(GeneralProtection, match="SGX1"):
        cpu.wrmsr(0x8C, 1)
    with pytest.raises(GeneralProtection, match="bit 18"):
        cpu.wrmsr(FC, FEAT_CTL_SGX_ENABLED)
    assert not cpu.sgx_enabled and not cpu.lc_writable


def test_unknown_msr_gp() -> None:
    cpu = make("flexible").cpu(0)
    with pytest.raises(GeneralProtection) as ei:
        cpu.rdmsr(0x10)
    assert ei.value.msr == 0x10 and "not implemented" in ei.value.reason
    with pytest.raises(GeneralProtection) as ei:
        cpu.wrmsr(0x90, 7)
    assert ei.value.msr == 0x90 and ei.value.value == 7


def test_feature_control_bit17_reserved_without_lc() -> None:
    cpu = Cpu(0, sgx_lc=False)
    with pytest.raises(GeneralProtection) as ei:
        cpu.wrmsr(FC, FEAT_CTL_LOCKED | FEAT_CTL_SGX_LC_ENABLED | FEAT_CTL_SGX_ENABLED)
    assert "bit 17" in ei.value.reason and "reserved" in ei.value.reason
    assert cpu.feature_control == 0
    with pytest.raises(GeneralProtection, match="reserved bits 0x20"):
        cpu.wrmsr(FC, 1 << 5)
    # VMX bits 1/2 as real firmware sets them are accepted.
    cpu.wrmsr(FC, 0x40005)
    assert cpu.feature_control == 0x40005 and cpu.sgx_enabled


def test_prelock_write_then_lock_is_the_third_party_recipe() -> None:
    """Sean's pre-lock window: write while unlocked, lock without bit 17, hash frozen."""
    cpu = Cpu(7)
    for msr, w in zip(HASH, THIRD.words):
        cpu.wrmsr(msr, w)
    cpu.wrmsr(FC, FEAT_CTL_LOCKED | FEAT_CTL_SGX_ENABLED)
    assert cpu.lehash == THIRD
    with pytest.raises(GeneralProtection):
        cpu.wrmsr(HASH[0], 0)
    with pytest.raises(GeneralProtection, match="locked"):
        cpu.wrmsr(FC, 0)
    assert cpu.lehash == THIRD


# --------------------------------------------------------------------------- reset values


def test_reset_values_are_intels() -> None:
    assert INTEL_WORDS == (
        0xA6053E051270B7AC,
        0x6CFBE8BA8B3B413D,
        0xC4916D99F2B3735D,
        0xD4F8C05909F9BB3B,
    )
    cpu = Cpu(0)
    assert cpu.feature_control == 0
    assert tuple(cpu.rdmsr(m) for m in HASH) == INTEL_WORDS
    for fw in ("flexible", "locked-intel"):
        p = make(fw, ncpus=4)
        for c in p.cpus:
            assert tuple(c.rdmsr(m) for m in HASH) == INTEL_WORDS
            assert c.lehash == INTEL_LEPUBKEYHASH
            assert c.lehash_words == INTEL_WORDS


def test_no_lc_hash_is_hardwired_intel() -> None:
    p = make("no-lc")
    assert p.cpu(0).lehash == INTEL_LEPUBKEYHASH
    assert p.cpu(0).lehash_words == INTEL_WORDS


def test_third_party_firmware_hash_at_boot() -> None:
    p = make("locked-third-party", ncpus=3)
    for c in p.cpus:
        assert c.lehash == THIRD
        assert tuple(c.rdmsr(m) for m in HASH) == THIRD.words


def test_cpu_reset_restores_power_on_state() -> None:
    p = make("locked-third-party")
    cpu = p.cpu(0)
    cpu.inject_event()
    cpu.reset()
    assert cpu.feature_control == 0
    assert cpu.lehash == INTEL_LEPUBKEYHASH
    assert not cpu.pending_event


# --------------------------------------------------------------------------- S3 / EPC loss


def test_third_party_hash_survives_s3() -> None:
    p = make("locked-third-party", ncpus=4)
    assert p.epc_generation == 0
    p.s3_resume()
    assert p.epc_generation == 1
    for c in p.cpus:
        assert c.lehash == THIRD
        assert c.feature_control == p.firmware.feature_control


def test_runtime_write_on_flexible_is_lost_after_s3() -> None:
    p = make("flexible", ncpus=2)
    for c in p.cpus:
        for msr, w in zip(HASH, OTHER.words):
            c.wrmsr(msr, w)
        assert c.lehash == OTHER
    p.s3_resume()
    for c in p.cpus:
        assert c.lehash == INTEL_LEPUBKEYHASH
        assert c.lc_writable
    assert p.epc_generation == 1
    p.lose_epc()
    assert p.epc_generation == 2


def test_power_on_reset_reruns_firmware_and_keeps_counters() -> None:
    p = make("flexible", ncpus=1)
    c = p.cpu(0)
    c.wrmsr(HASH[0], 1)
    c.inject_event()
    p.power_on_reset()
    assert c.lehash == INTEL_LEPUBKEYHASH
    assert not c.pending_event
    assert c.wrmsr_count[HASH[0]] == 1
    assert p.epc_generation == 1


def test_lehash_cache_tracks_writes() -> None:
    c = make("flexible").cpu(0)
    assert c.lehash == INTEL_LEPUBKEYHASH
    c.wrmsr(HASH[3], 0)
    assert c.lehash.words == INTEL_WORDS[:3] + (0,)
    assert c.lehash_words == INTEL_WORDS[:3] + (0,)


# --------------------------------------------------------------------------- counters


def test_firmware_writes_are_not_counted() -> None:
    for fw in FIRMWARE_NAMES:
        p = make(fw, ncpus=3)
        p.s3_resume()
        totals = p.counts()
        assert totals["rdmsr_total"] == 0 and totals["wrmsr_total"] == 0 and totals["gp"] == 0


def test_counters_per_cpu_and_per_msr() -> None:
    p = make("flexible", ncpus=3)
    c0, c1, c2 = p.cpus
    for _ in range(3):
        c0.wrmsr(0x8C, 1)
    c0.wrmsr(0x8F, 2)
    c1.rdmsr(0x8D)
    c1.rdmsr(FC)
    c1.rdmsr(FC)
    _ = c2.lehash, c2.lehash_words  # EINIT's look is not an RDMSR
    with pytest.raises(GeneralProtection):
        c2.wrmsr(FC, 0)
    with pytest.raises(GeneralProtection):
        c2.rdmsr(0x1234)

    assert c0.wrmsr_count[0x8C] == 3 and c0.wrmsr_count[0x8F] == 1
    assert c0.wrmsr_count[0x8D] == 0 and sum(c0.rdmsr_count.values()) == 0
    assert c1.rdmsr_count[0x8D] == 1 and c1.rdmsr_count[FC] == 2
    assert sum(c2.rdmsr_count.values()) == 0 and sum(c2.wrmsr_count.values()) == 0
    assert c2.gp_count == 2 and c0.gp_count == 0

    t = p.counts()
    assert t["wrmsr"]["IA32_SGXLEPUBKEYHASH0"] == 3
    assert t["wrmsr"]["IA32_SGXLEPUBKEYHASH3"] == 1
    assert t["rdmsr"]["IA32_FEATURE_CONTROL"] == 2
    assert t["rdmsr"]["IA32_SGXLEPUBKEYHASH1"] == 1
    assert t["wrmsr_total"] == 4 and t["rdmsr_total"] == 3 and t["gp"] == 2

    recs = p.msr_counts()
    assert len(recs) == 3 * len(KNOWN_MSRS)
    assert set(recs[0]) == {"cpu", "msr", "name", "rdmsr", "wrmsr"}
    row = next(r for r in recs if r["cpu"] == 0 and r["msr"] == 0x8C)
    assert row == {"cpu": 0, "msr": 0x8C, "name": "IA32_SGXLEPUBKEYHASH0", "rdmsr": 0, "wrmsr": 3}

    p.reset_counters()
    assert p.counts()["wrmsr_total"] == 0 and p.counts()["gp"] == 0
    assert all(r["rdmsr"] == 0 and r["wrmsr"] == 0 for r in p.msr_counts())


def test_refused_and_invalid_accesses_are_not_counted_as_success() -> None:
    c = make("locked-intel").cpu(0)
    with pytest.raises(GeneralProtection):
        c.wrmsr(0x8C, 1)
    with pytest.raises(ConfigError):
        c.wrmsr(0x8C, 1 << 64)
    assert c.wrmsr_count[0x8C] == 0
    assert c.gp_count == 1  # a ConfigError is a caller bug, not a #GP


def test_msr_counts_is_a_dataframe() -> None:
    pd = pytest.importorskip("pandas")
    p = make("flexible", ncpus=2)
    p.cpu(1).wrmsr(0x8E, 9)
    df = pd.DataFrame(p.msr_counts())
    assert df.shape == (10, 5)
    assert df.groupby("name")["wrmsr"].sum()["IA32_SGXLEPUBKEYHASH2"] == 1


# --------------------------------------------------------------------------- events


def test_event_flag() -> None:
    c = Cpu(0)
    assert c.take_event() is False
    c.inject_event()
    assert c.pending_event
    assert c.take_event() is True
    assert c.take_event() is False


# --------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize("n", [0, -1, 4097, True, 2.0, "4"])
def test_bad_ncpus(n) -> None:
    with pytest.raises(ConfigError) as ei:
        Platform(n)
    assert ei.value.option == "ncpus"


def test_ncpus_bounds_accepted() -> None:
    assert Platform(1).ncpus == 1
    assert len(Platform(4096).cpus) == 4096


def test_bad_firmware_name_lists_valid_names() -> None:
    with pytest.raises(ConfigError) as ei:
        Platform(2, "permissive")
    msg = str(ei.value)
    assert ei.value.option == "firmware"
    for name in FIRMWARE_NAMES:
        assert name in msg


@pytest.mark.parametrize("value", [1 << 64, -1, 2**65 + 3, 1.0, "0x1", None, True])
def test_bad_msr_values(value) -> None:
    c = make("flexible").cpu(0)
    with pytest.raises(ConfigError):
        c.wrmsr(0x8C, value)
    with pytest.raises(ConfigError):
        c.wrmsr(FC, value)
    assert c.lehash == INTEL_LEPUBKEYHASH


def test_max_u64_value_accepted() -> None:
    c = make("flexible").cpu(0)
    c.wrmsr(0x8D, (1 << 64) - 1)
    assert c.rdmsr(0x8D) == (1 << 64) - 1


@pytest.mark.parametrize("msr", [-1, 1 << 32, "0x8c", 1.5])
def test_bad_msr_numbers(msr) -> None:
    c = make("flexible").cpu(0)
    with pytest.raises(ConfigError):
        c.rdmsr(msr)
    with pytest.raises(ConfigError):
        c.wrmsr(msr, 0)
    assert c.gp_count == 0


@pytest.mark.parametrize("i", [-1, 4, True, "0", None])
def test_bad_cpu_index(i) -> None:
    p = Platform(4)
    with pytest.raises(ConfigError) as ei:
        p.cpu(i)
    assert "0..3" in str(ei.value)


def test_firmware_lehash_rules() -> None:
    with pytest.raises(ConfigError):
        Platform(2, "locked-third-party")
    with pytest.raises(ConfigError):
        Firmware.by_name("locked-intel", lehash=THIRD)
    with pytest.raises(ConfigError):
        Firmware.by_name("no-lc", lehash=THIRD)
    with pytest.raises(ConfigError):
        Firmware.locked(INTEL_LEPUBKEYHASH)
    with pytest.raises(ConfigError):
        Firmware("odd", sgx_lc=False, lc_enabled=False, lehash=THIRD)
    with pytest.raises(ConfigError):
        Firmware("odd", sgx_lc=False, lc_enabled=True)
    with pytest.raises(ConfigError):
        Platform(2, Firmware.flexible(), lehash=THIRD)
    with pytest.raises(ConfigError):
        Platform(2, "flexible", lehash="not hex")


def test_firmware_constructors_and_registry() -> None:
    assert Firmware.flexible() == Firmware("flexible", True, True, None)
    assert Firmware.locked_intel() == Firmware("locked-intel", True, False, None)
    assert Firmware.locked(THIRD) == Firmware("locked-third-party", True, False, THIRD)
    assert Firmware.no_lc() == Firmware("no-lc", False, False, None)
    assert Firmware.by_name("LOCKED_INTEL") == Firmware.locked_intel()
    assert Firmware.by_name("locked-third-party", THIRD.hex()) == Firmware.locked(THIRD)
    assert Firmware.names() == FIRMWARE_NAMES
    for name in FIRMWARE_NAMES:
        fw = Firmware.by_name(name, THIRD if name == "locked-third-party" else None)
        assert fw.name == name
        assert fw.feature_control & (FEAT_CTL_LOCKED | FEAT_CTL_SGX_ENABLED) == 0x40001
    with pytest.raises(AttributeError):
        Firmware.flexible().name = "x"  # type: ignore[misc]
    # Flexible firmware may pre-write a hash, which the OS can still replace.
    p = Platform(1, Firmware.flexible(THIRD))
    assert p.cpu(0).lehash == THIRD
    p.cpu(0).wrmsr(0x8C, 0)
    assert p.cpu(0).rdmsr(0x8C) == 0


def test_platform_accepts_firmware_object() -> None:
    fw = Firmware.locked(THIRD)
    p = Platform(2, fw, lehash=THIRD)
    assert p.firmware is fw and p.cpu(1).lehash == THIRD


# --------------------------------------------------------------------------- independence


def test_platforms_are_independent() -> None:
    a = Platform(2, "flexible")
    b = Platform(2, "flexible")
    a.cpu(0).wrmsr(0x8C, 42)
    a.cpu(0).inject_event()
    assert b.cpu(0).rdmsr(0x8C) == INTEL_WORDS[0]
    assert not b.cpu(0).pending_event
    assert b.counts()["wrmsr_total"] == 0 and b.counts()["rdmsr_total"] == 1
    assert a.cpu(1).lehash == INTEL_LEPUBKEYHASH  # CPUs within a platform too
    a.s3_resume()
    assert b.epc_generation == 0
    assert a.cpus is not b.cpus
    assert a.cpu(0).rdmsr_count is not b.cpu(0).rdmsr_count


def test_fuses_depend_on_seed() -> None:
    a, b, c = Platform(1, seed=0), Platform(1, seed=1), Platform(1, seed=0)
    assert a.fuses != b.fuses and a.owner_epoch != b.owner_epoch
    assert a.fuses == c.fuses and a.owner_epoch == c.owner_epoch
    assert a.fuses != a.owner_epoch
    assert len(a.fuses) == 16 and len(a.owner_epoch) == 16
    assert a.fuses == hashlib.sha256(b"sgxlab-fuses" + (0).to_bytes(8, "little")).digest()[:16]
    assert a.cpusvn == DEFAULT_CPUSVN == bytes([2, 6, 2, 0xFF, 1, 1]) + bytes(10)
    assert Platform(1, cpusvn=bytes(16)).cpusvn == bytes(16)
    for bad in (-1, 1 << 64, "0", 1.0):
        with pytest.raises(ConfigError):
            Platform(1, seed=bad)
    with pytest.raises(ConfigError):
        Platform(1, cpusvn=b"short")


def test_reprs() -> None:
    p = make("locked-third-party", ncpus=2)
    r = repr(p)
    assert "2 CPUs" in r and "locked-third-party" in r and "read-only" in r
    assert "writable" in repr(Platform(1))
    cr = repr(p.cpu(1))
    assert cr.startswith("Cpu(1, sgx1+sgx_lc") and "0x40001" in cr and "lc_writable=False" in cr


def test_cpus_know_their_platform() -> None:
    p = Platform(3)
    assert all(c.platform is p for c in p.cpus)
    assert Cpu(0).platform is None


def test_siginfo_is_memoized_per_platform() -> None:
    pytest.importorskip("sgxlab.hw.einit")
    data = bytes(1808)  # all zero: malformed, but EINIT must still see it
    a, b = Platform(1), Platform(1)
    info = a.siginfo(data)
    assert a.siginfo(data) is info
    assert b.siginfo(data) is not info
    assert info.problems  # a zero SIGSTRUCT has format problems
