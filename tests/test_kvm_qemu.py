"""QEMU 6.2's command line in sgxlab.kvm.config: the enforce property, the parse steps, and
what a host without writable launch control does with +sgxlc (warn and start, or refuse)."""

from __future__ import annotations

import pytest

from sgxlab.errors import ConfigError, PolicyRefusal
from sgxlab.hw.arch import FEAT_CTL_LOCKED, FEAT_CTL_SGX_ENABLED, FEAT_CTL_SGX_LC_ENABLED
from sgxlab.hw.platform import Platform
from sgxlab.kvm import GuestOptionError, Kvm, SgxGuestConfig
from sgxlab.kvm import config as cfgmod

EPC = "-object memory-backend-epc,id=m,size=4M -M sgx-epc.0.memdev=m"


@pytest.mark.parametrize(
    "cpu,sgxlc,enforce",
    [
        ("host,+sgxlc", True, False),
        ("host,+sgxlc,enforce=on", True, True),
        ("host,+sgxlc,enforce", True, True),
        ("host,+sgxlc,+enforce", True, True),
        ("host,enforce=true,sgxlc=on", True, True),
        ("host,+sgxlc,enforce=off", True, False),
        ("host,enforce,-enforce,+sgxlc", True, False),  # sgxlab: a later spelling overrides
        ("host,-sgxlc,enforce=on", False, True),
        ("host,phys-bits=39,model-id=Skylake,+sgxlc", True, False),  # non-boolean properties are ignored
    ],
)
def test_cpu_flags_and_enforce(cpu, sgxlc, enforce):
    c = SgxGuestConfig.parse(f"-cpu {cpu} {EPC}")
    assert (c.mode, c.sgxlc, c.enforce, c.epc) == ("merged", sgxlc, enforce, 4 << 20)
    assert SgxGuestConfig.parse(c.to_option()) == c
    assert c.as_json()["enforce"] is enforce


def test_enforce_round_trips_and_validates():
    c = SgxGuestConfig.merged("8M", True, enforce=True)
    assert "enforce=on" in c.to_option() and SgxGuestConfig.parse(c.to_option()) == c
    assert "enforce" not in SgxGuestConfig.merged("8M").to_option()
    with pytest.raises(ConfigError, match="enforce is a -cpu property"):
        SgxGuestConfig(epc=4096, enforce=True)
    with pytest.raises(ConfigError, match="expected a bool"):
        SgxGuestConfig(epc=4096, mode="merged", enforce=1)  # type: ignore[arg-type]
    with pytest.raises(GuestOptionError, match="on or off"):
        SgxGuestConfig.parse(f"-cpu host,+sgxlc,enforce=maybe {EPC}")


def test_parse_steps_are_named_functions():
    argv = cfgmod._qemu_argv(f"-enable-kvm -cpu host,+sgxlc {EPC} -m 2G")
    pairs = cfgmod._qemu_options(argv, "")
    assert pairs == [
        ("-cpu", "host,+sgxlc"),
        ("-object", "memory-backend-epc,id=m,size=4M"),
        ("-M", "sgx-epc.0.memdev=m"),
    ]
    flags = cfgmod._CpuFlags()
    cfgmod._cpu_flags("host,+sgxlc,enforce=on", flags)
    assert flags.sgxlc and flags.enforce
    backends: dict[str, int] = {}
    cfgmod._epc_backend("memory-backend-epc,id=m,size=4M", backends, set())
    assert backends == {"m": 4 << 20}
    sections = cfgmod._epc_sections("q35,sgx-epc.0.memdev=m,accel=kvm")
    assert sections == [("0", "m")]
    assert cfgmod._epc_total(sections, backends, "") == 4 << 20


@pytest.mark.parametrize("firmware", ["no-lc", "locked-intel", "locked-third-party"])
def test_sgxlc_is_filtered_with_a_warning_unless_enforce(firmware):
    kvm = Kvm(Platform(1, firmware, lehash="cd" * 32 if firmware == "locked-third-party" else None))
    warned = SgxGuestConfig.parse(f"-cpu host,+sgxlc {EPC}")
    assert kvm.guest_cpuid_sgx_lc(warned) is False
    assert kvm.guest_feature_control(warned) == FEAT_CTL_LOCKED | FEAT_CTL_SGX_ENABLED
    assert kvm.effective_config(warned) == SgxGuestConfig.merged("4M", False)
    assert kvm.hardware_refusal(warned) is None
    vm = kvm.create_vm(warned)
    assert vm.warnings and "sgxlc" in vm.warnings[0]
    enforced = SgxGuestConfig.parse(f"-cpu host,+sgxlc,enforce=on {EPC}")
    assert kvm.qemu_warnings(enforced) == vm.warnings  # QEMU warns, then refuses
    ok, party, why = kvm.would_create(enforced)
    assert not ok and party == "kvm" and "Host doesn't support requested features" in why
    with pytest.raises(PolicyRefusal, match="enforce=on"):
        kvm.create_vm(enforced)
    # Without sgxlc there is nothing to filter, enforce or not.
    assert kvm.would_create(f"-cpu host,-sgxlc,enforce=on {EPC}") == (True, None, None)


def test_flexible_host_gives_sgxlc_even_with_enforce():
    kvm = Kvm(Platform(1, "flexible"))
    vm = kvm.create_vm(f"-cpu host,+sgxlc,enforce=on {EPC}")
    assert vm.warnings == () and vm.cpuid_sgx_lc
    assert vm.vcpus[0].feature_control == FEAT_CTL_LOCKED | FEAT_CTL_SGX_ENABLED | FEAT_CTL_SGX_LC_ENABLED
    assert kvm.effective_config(vm.config) is vm.config


def test_kais_lewr_is_still_refused_on_a_locked_host():
    kvm = Kvm(Platform(1, "locked-intel"))
    ok, party, why = kvm.would_create("epc=64M,lewr")
    assert not ok and party == "kvm" and "never merged" in why and "qemu-sgx#14" in why
    assert kvm.qemu_warnings(SgxGuestConfig.parse("epc=64M,lewr")) == ()
