"""Mainline's PROVISIONKEY gate (issue 12): host -EACCES, guest #GP at the trapped ECREATE.

The host model (:mod:`sgxlab.host.provision`), the KVM layer (``Kvm.host_einit``,
``Vm.sgx_provisioning_allowed``, ``Vcpu.ecreate``), the ``mainline`` policy and
the policy catalog, QEMU's ``+sgx-provisionkey``, the policy matrix's gate rows,
the simulator's gate tables, and the ordering: a refused enclave never reaches
ENCLS[EINIT], so no hash-MSR write is counted for it, on every firmware.
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest
from cli_in_process import sgxlab_cli as run_cli

import sgxlab.kvm.vcpu as vcpu_mod
from sgxlab.errors import ConfigError, EngineUnsupported, GeneralProtection, PolicyRefusal
from sgxlab.host.designs import DESIGNS, design_class
from sgxlab.host.provision import (
    EACCES,
    EINVAL,
    GATE_EACCES,
    GATE_ECREATE_GP,
    SGX_ATTR_PROVISIONKEY,
    SGX_ATTR_UNPRIV_MASK,
    ProvisionRefusal,
    SgxEncl,
    SgxProvisionFd,
    Tenant,
    sgx_set_attribute,
)
from sgxlab.host.samples import signed_enclave
from sgxlab.hw.arch import Attr, LeHash
from sgxlab.hw.platform import FIRMWARE_NAMES, Platform
from sgxlab.hw.structs import Attributes
from sgxlab.kvm import Kvm, SgxGuestConfig
from sgxlab.kvm.config import GuestOptionError
from sgxlab.kvm.policy import (
    HOST_POLICY_NAMES,
    POLICIES,
    POLICY_CATALOG,
    POLICY_NAMES,
    AllowAll,
    Mainline,
    policy_by_name,
)
from sgxlab.sim.hostpolicy import REFUSED_POLICY, gate_rows, policy_tables, run_tables, signer_hashes

PK_ATTRS = Attributes(int(Attr.MODE64BIT | Attr.PROVISIONKEY), 0x3)
THIRD_PARTY = LeHash(bytes(range(32)))


@pytest.fixture(scope="module")
def pk_enclave():
    """Test key 01's provisioning enclave (SECS.ATTRIBUTES has PROVISIONKEY)."""
    return signed_enclave(1, tag=b"pk", attributes=PK_ATTRS)


@pytest.fixture(scope="module")
def plain_enclave():
    return signed_enclave(1, tag=b"plain")


def platform(firmware: str) -> Platform:
    return Platform(2, firmware, lehash=THIRD_PARTY if firmware == "locked-third-party" else None)


def hash_writes(p: Platform) -> int:
    return sum(r["wrmsr"] for r in p.msr_counts() if 0x8C <= r["msr"] <= 0x8F)


class CountingEinit:
    """Counts the design's EINITs (the trapped and host paths go through it)."""

    def __init__(self, kvm: Kvm) -> None:
        self.n = 0
        inner = kvm.design.einit

        def einit(*a: Any, **kw: Any) -> Any:
            self.n += 1
            return inner(*a, **kw)

        kvm.design.einit = einit  # type: ignore[method-assign]


# --------------------------------------------------------------------------- the host model


def test_attributes_mask_and_the_ioctl():
    assert SGX_ATTR_PROVISIONKEY == 0x10 and not SGX_ATTR_UNPRIV_MASK & SGX_ATTR_PROVISIONKEY
    encl = SgxEncl.sgx_encl_create(int(PK_ATTRS.flags))  # ECREATE succeeds
    assert encl.attributes_mask == SGX_ATTR_UNPRIV_MASK
    assert encl.sgx_encl_init_check() == -EACCES == -13
    assert encl.sgx_ioc_enclave_provision("not an fd") == -EINVAL
    assert encl.sgx_encl_init_check() == -EACCES
    fd = Tenant("pce", sgx_provision=True).open_sgx_provision()
    assert isinstance(fd, SgxProvisionFd) and fd.path == "/dev/sgx_provision"
    assert encl.sgx_ioc_enclave_provision(fd) == 0
    assert encl.attributes_mask & SGX_ATTR_PROVISIONKEY and encl.sgx_encl_init_check() == 0
    assert Tenant("nobody").open_sgx_provision() is None
    assert sgx_set_attribute(0, None) == (0, -EINVAL)
    assert SgxEncl.sgx_encl_create(int(Attr.MODE64BIT)).sgx_encl_init_check() == 0


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: Tenant(""), "tenant.name"),
        (lambda: Tenant("x", sgx_provision=1), "tenant.sgx_provision"),  # type: ignore[arg-type]
        (lambda: SgxEncl.sgx_encl_create(-1), "attributes"),
        (lambda: SgxEncl.sgx_encl_create(True), "attributes"),  # type: ignore[arg-type]
    ],
)
def test_bad_input_is_a_typed_error(call, field):
    with pytest.raises(ConfigError) as e:
        call()
    assert e.value.option == field


# --------------------------------------------------------------------------- the policy and the catalog


def test_catalog_lists_six_policies_once():
    names = tuple(p.name for p in POLICY_CATALOG)
    assert names == HOST_POLICY_NAMES == tuple(POLICIES) == (*POLICY_NAMES, "mainline")
    assert all(p.summary and p.source and p.cls.name == p.name for p in POLICY_CATALOG)
    assert [p.name for p in POLICY_CATALOG if p.gates_provisionkey] == ["mainline"]
    m = policy_by_name("Mainline", approved=["ab" * 32])
    assert type(m) is Mainline and m.gates_provisionkey and not m.enforcing
    assert m.permits(LeHash(bytes(32))) and m.check_host_einit(LeHash(bytes(32))) is None
    assert m.gated_attributes(int(PK_ATTRS.flags)) == 0x10 and AllowAll().gated_attributes(0x14) == 0
    with pytest.raises(ConfigError, match="mainline"):
        policy_by_name("nope")


def test_docstrings_keep_the_two_mechanisms_apart():
    import sgxlab.host.provision as prov

    for doc in (Mainline.__doc__, prov.__doc__):
        assert doc is not None and "launch enclave" in doc and "older" in doc
    assert "c82c61865024" in Mainline.source and "fe7e948837f3" in Mainline.source


# --------------------------------------------------------------------------- QEMU's flag


def test_qemu_flag_and_kai_extension_round_trip():
    c = SgxGuestConfig.parse(
        "-cpu host,+sgxlc,+sgx-provisionkey -object memory-backend-epc,id=e,size=8M -M sgx-epc.0.memdev=e"
    )
    assert c.provisionkey and c.sgxlc and "+sgx-provisionkey" in c.to_option()
    assert SgxGuestConfig.parse(c.to_option()) == c
    assert not SgxGuestConfig.parse(
        "-cpu host,sgx-provisionkey=off -object memory-backend-epc,id=e,size=8M -M sgx-epc.0.memdev=e"
    ).provisionkey
    k = SgxGuestConfig.parse("epc=64M,lewr,provisionkey")
    assert k.provisionkey and k.to_option() == "epc=64M,lewr,provisionkey" and SgxGuestConfig.parse(k.to_option()) == k
    assert k.as_json()["provisionkey"] is True
    with pytest.raises(GuestOptionError) as e:
        SgxGuestConfig.parse("epc=64M,provisionkey=on")
    assert e.value.kind == "flag-value" and e.value.option == "-sgx provisionkey"
    with pytest.raises(ConfigError):
        SgxGuestConfig(epc=8192, provisionkey="yes")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- host: -EACCES before EINIT, every firmware


@pytest.mark.parametrize("firmware", FIRMWARE_NAMES)
def test_host_without_permission_gets_eacces_and_no_msr_write(firmware, pk_enclave):
    kvm = Kvm(platform(firmware), Mainline())
    count = CountingEinit(kvm)
    enclave = pk_enclave.image.fork()
    kvm.platform.reset_counters()
    with pytest.raises(ProvisionRefusal) as e:
        kvm.host_einit(0, pk_enclave.sigstruct_bytes, enclave, tenant=Tenant("app"))
    assert isinstance(e.value, PolicyRefusal) and e.value.errno == -EACCES and e.value.gate == GATE_EACCES
    assert "-EACCES" in str(e.value) and "attributes_mask" in e.value.reason
    assert count.n == 0 and kvm.host_einits == 0 and hash_writes(kvm.platform) == 0 and not enclave.initialized
    with pytest.raises(ProvisionRefusal):
        kvm.host_einit(0, pk_enclave.sigstruct_bytes, pk_enclave.image.fork())  # default tenant: no permission


@pytest.mark.parametrize("firmware", FIRMWARE_NAMES)
def test_host_with_permission_reaches_einit(firmware, pk_enclave):
    kvm = Kvm(platform(firmware), Mainline())
    count = CountingEinit(kvm)
    kvm.platform.reset_counters()
    out = kvm.host_einit(
        0, pk_enclave.sigstruct_bytes, pk_enclave.image.fork(), tenant=Tenant("pce", sgx_provision=True)
    )
    assert kvm.host_einits == 1
    if kvm.lc_writable:
        assert count.n == 1 and out.result.code == 0 and hash_writes(kvm.platform) == 4
    else:  # EINIT runs natively against the fixed hash: the gate let it through, EINIT decided
        assert out.result.code != 0 and hash_writes(kvm.platform) == 0


@pytest.mark.parametrize("name", POLICY_NAMES)
def test_the_2017_policies_do_not_gate(name, pk_enclave):
    kvm = Kvm(platform("flexible"), policy_by_name(name, approved=[pk_enclave.key.mrsigner]))
    assert kvm.host_gate_refusal(int(PK_ATTRS.flags), Tenant("app")) is None


def test_plain_enclaves_are_not_gated(plain_enclave):
    kvm = Kvm(platform("flexible"), Mainline())
    assert kvm.host_einit(1, plain_enclave.sigstruct_bytes, plain_enclave.image.fork()).result.code == 0


# --------------------------------------------------------------------------- guest: #GP at the trapped ECREATE


def make_vm(kvm: Kvm, provision: bool, *, lewr: bool = False, name: str = "vm"):
    config = SgxGuestConfig(epc=64 << 20, lewr=lewr and kvm.lc_writable, provisionkey=True)
    return kvm.create_vm(config, name=name, tenant=Tenant("qemu", sgx_provision=provision))


@pytest.mark.parametrize("design", ["always-write", "eager-load"])
@pytest.mark.parametrize("firmware", FIRMWARE_NAMES)
def test_guest_without_capability_gets_gp_at_ecreate(firmware, design, pk_enclave, monkeypatch):
    kvm = Kvm(platform(firmware), Mainline(), design)
    count = CountingEinit(kvm)
    native: list[int] = []
    real = vcpu_mod.einit
    monkeypatch.setattr(vcpu_mod, "einit", lambda *a, **kw: native.append(1) or real(*a, **kw))
    vm = make_vm(kvm, False)
    assert not vm.sgx_provisioning_allowed and vm.intercepts_ecreate
    assert any("sgx_provision" in w for w in vm.warnings)
    v = vm.vcpus[0]
    v.load(0)
    kvm.platform.reset_counters()
    enclave = pk_enclave.image.fork()
    with pytest.raises(GeneralProtection) as e:
        v.einit(pk_enclave.sigstruct_bytes, enclave)
    assert e.value.instruction == "ECREATE" and "__handle_encls_ecreate" in e.value.reason
    assert "KVM_CAP_SGX_ATTRIBUTE" in str(e.value)
    assert v.ecreate_exits == 1 and v.encls_exits == 0 and v.gp_count == 1
    assert count.n == 0 and not native and hash_writes(kvm.platform) == 0 and not enclave.initialized
    assert kvm.counts()["ecreate_exits"] == 1


@pytest.mark.parametrize("firmware", FIRMWARE_NAMES)
def test_guest_with_capability_reaches_einit(firmware, pk_enclave):
    kvm = Kvm(platform(firmware), Mainline())
    vm = make_vm(kvm, True)
    assert vm.sgx_provisioning_allowed and not vm.intercepts_ecreate and vm.warnings == ()
    v = vm.vcpus[0]
    r = v.einit(pk_enclave.sigstruct_bytes, pk_enclave.image.fork())
    assert v.ecreate_exits == 0 and r.step != GATE_ECREATE_GP
    assert r.trapped == kvm.traps_einit and v.encls_exits == int(kvm.traps_einit)
    if firmware == "flexible":  # Intel's hash in the guest MSRs: token-less EINIT of key 01 fails at the MSR check
        assert r.code == 16 and r.step != "policy"


def test_guest_ecreate_intercepted_for_every_secs_but_faults_only_provisionkey(plain_enclave, pk_enclave):
    kvm = Kvm(platform("flexible"), Mainline())
    v = make_vm(kvm, False, lewr=True).vcpus[0]
    v.ecreate(plain_enclave.image.fork())  # trapped, and allowed
    assert v.ecreate_exits == 1 and v.gp_count == 0
    with pytest.raises(GeneralProtection):
        v.ecreate(pk_enclave.image.fork())
    assert v.ecreate_exits == 2 and v.gp_count == 1
    # A lewr guest's EINIT of the plain enclave still runs (its signer in the virtual MSRs).
    for i, w in enumerate(plain_enclave.key.mrsigner.words):
        v.wrmsr(0x8C + i, w)
    assert v.einit(plain_enclave.sigstruct_bytes, plain_enclave.image.fork()).code == 0


@pytest.mark.parametrize("name", POLICY_NAMES)
def test_guests_under_the_2017_policies_are_not_gated(name, pk_enclave):
    kvm = Kvm(platform("flexible"), policy_by_name(name, approved=[pk_enclave.key.mrsigner]))
    config = SgxGuestConfig(epc=64 << 20, lehash=pk_enclave.key.mrsigner)
    vm = kvm.create_vm(config, tenant=Tenant("qemu"))
    assert vm.sgx_provisioning_allowed and not vm.intercepts_ecreate
    r = vm.vcpus[0].einit(pk_enclave.sigstruct_bytes, pk_enclave.image.fork())
    assert vm.vcpus[0].ecreate_exits == 0 and r.step != GATE_ECREATE_GP


def test_create_vm_checks_the_tenant():
    kvm = Kvm(platform("flexible"), Mainline())
    with pytest.raises(ConfigError) as e:
        kvm.create_vm("epc=64M", tenant="root")  # type: ignore[arg-type]
    assert e.value.option == "tenant"
    with pytest.raises(ConfigError):
        kvm.host_gate_refusal(0x14, tenant="root")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- the policy matrix


@pytest.fixture(scope="module")
def matrix():
    from sgxlab.experiments.matrix import policy_matrix_records

    return policy_matrix_records()


def pick(rows, policy, lewr, lehash, provisionkey=False, provision=False, signer="approved"):
    (r,) = [
        x
        for x in rows
        if (x["policy"], x["lewr"], x["lehash"], x["signer"], x["provisionkey"], x["provision"])
        == (policy, lewr, lehash, signer, provisionkey, provision)
    ]
    return r


GATE_ROWS = {
    # (lewr, lehash, provision): (host, launched, code, step)
    (True, "intel", False): ("eacces", False, None, "ecreate-gp"),
    (True, "intel", True): ("einit", True, 0, "commit"),
    (False, "approved", False): ("eacces", False, None, "ecreate-gp"),
    (False, "approved", True): ("einit", False, 16, "tokenless-mrsigner"),  # the LE's own, older refusal
    (False, "other", False): ("eacces", False, None, "ecreate-gp"),
    (False, "other", True): ("einit", True, 0, "commit"),
}


@pytest.mark.parametrize("key", sorted(GATE_ROWS))
def test_matrix_gate_rows_are_pinned(matrix, key):
    lewr, lehash, provision = key
    r = pick(matrix, "mainline", lewr, lehash, True, provision)
    assert (r["host"], r["launched"], r["code"], r["step"]) == GATE_ROWS[key]
    assert r["vm_created"] and not r["bypass"] and r["hw_consistent"]
    if not provision:  # the gate holds on the host and in the guest alike: no little-VM bypass
        assert "#GP(0) on ECREATE" in r["reason"] and "little-VM argument does not apply" in r["reason"]
        # ECREATE comes first: no guest hash write, no launch enclave asked for a token
        assert "wrote its IA32_SGXLEPUBKEYHASH" not in r["reason"] and "token" not in r["reason"]
    if (lehash, provision) == ("approved", True):
        assert "provisioning list" in r["reason"]


def test_matrix_gate_appears_only_under_mainline(matrix):
    gated = [r for r in matrix if r["step"] == "ecreate-gp" or r["host"] == "eacces"]
    assert gated and {r["policy"] for r in gated} == {"mainline"}
    assert all(r["provisionkey"] and not r["provision"] for r in gated)
    for r in matrix:
        if r["step"] == "ecreate-gp":
            assert r["host"] == "eacces" and r["code"] is None and r["vm_created"]
    for name in POLICY_NAMES:  # no gate: the capability changes nothing
        for lewr, lehash in ((True, "intel"), (False, "approved"), (False, "other")):
            a, b = (pick(matrix, name, lewr, lehash, True, p) for p in (False, True))
            assert {k: a[k] for k in a if k not in ("provision", "reason")} == {
                k: b[k] for k in b if k not in ("provision", "reason")
            }


def test_mainline_is_allow_all_for_ordinary_enclaves(matrix):
    for r in matrix:
        if r["policy"] == "mainline" and not r["provisionkey"]:
            a = pick(matrix, "allow-all", r["lewr"], r["lehash"], signer=r["signer"])
            same = ("vm_created", "launched", "code", "step", "bypass", "hw_consistent", "host")
            assert {k: r[k] for k in same} == {k: a[k] for k in same}


# --------------------------------------------------------------------------- the simulator's tables


AW = design_class("always-write")


def test_gate_tables_by_vm_and_signer():
    vms = [(True, -1, False), (True, -1, True), (False, 0)]
    t = policy_tables(Mainline(), AW, vms, 3, provisionkey=[1], host_provision=False)
    assert t.host_gated == (False, True, False) and t.gates_anything and t.checks_anything
    assert t.guest_gated == ((False, True, False), (False, False, False), (False, True, False))
    assert t.host_refused == (False,) * 3 and not any(map(any, t.guest_refused)) and not any(t.forbidden)
    assert t.host_refusal(1) == GATE_EACCES and t.host_refusal(0) is None
    assert t.guest_refusal(0, 1, trapped=False) == GATE_ECREATE_GP  # whether or not EINIT is trapped
    assert t.guest_refusal(1, 1, trapped=True) is None
    reason = t.host_gate_reasons[1]
    assert reason is not None and "-EACCES" in reason
    assert t.guest_gate_reasons[0][1] is not None and "#GP" in t.guest_gate_reasons[0][1]
    # The KVM layer says the same thing, word for word.
    kvm = Kvm(Platform(1, "flexible"), Mainline())
    assert kvm.host_gate_refusal(SGX_ATTR_PROVISIONKEY, Tenant("host")) == reason
    t2 = policy_tables(Mainline(), AW, vms, 3, provisionkey=[1], host_provision=True)
    assert t2.host_gated == (False,) * 3
    for name in POLICY_NAMES:
        t3 = policy_tables(policy_by_name(name, approved=[signer_hashes(1)[0]]), AW, vms, 3, provisionkey=[0, 1, 2])
        assert not t3.gates_anything
    allow = policy_tables(AllowAll(), AW, [(True, -1)], 2, provisionkey=[1])
    assert allow.host_refusal(1) is None and not allow.checks_anything


def test_policy_refusal_and_gate_keep_their_codes():
    from sgxlab.kvm.policy import Allowlist

    t = policy_tables(Allowlist([signer_hashes(1)[0]]), AW, [(True, -1)], 2, provisionkey=[1])
    assert t.host_refusal(1) == REFUSED_POLICY and t.guest_refusal(0, 1, trapped=True) == REFUSED_POLICY
    assert not t.gates_anything


def test_gate_table_input_is_checked():
    with pytest.raises(ConfigError) as e:
        policy_tables(Mainline(), AW, [], 2, provisionkey=[5])
    assert e.value.option == "provisionkey"
    with pytest.raises(ConfigError):
        policy_tables(Mainline(), AW, [], 2, host_provision=1)  # type: ignore[arg-type]


def _fake_trace(**kw: Any) -> Any:
    from sgxlab.sim.trace import VmSpec

    base = dict(vms=[VmSpec(1, True, -1)], nsigners=2, policy_name="allow-all", approved=())
    base.update(kw)
    return SimpleNamespace(**base)


def test_run_tables_reads_the_trace_and_guards_engines_that_do_not_model_the_gate():
    plain = _fake_trace()
    assert not run_tables(plain, AW, Mainline()).gates_anything  # no PROVISIONKEY signer: nothing to gate
    pk = _fake_trace(provisionkey=(1,))
    with pytest.raises(EngineUnsupported, match="PROVISIONKEY"):
        run_tables(pk, AW, Mainline())
    t = run_tables(pk, AW, Mainline(), gate=True)
    assert t.host_gated == (False, True) and t.guest_gated == ((False, True),)
    assert not run_tables(pk, AW, AllowAll()).gates_anything
    t = run_tables(_fake_trace(provisionkey=(1,), host_provision=True), AW, Mainline(), gate=True)
    assert t.host_gated == (False, False) and t.guest_gated == ((False, True),)


@pytest.mark.parametrize("workload", ["workshop", "multi-tenant"])
def test_engines_run_mainline_with_no_change_and_agree(workload):
    """Today's traces have no PROVISIONKEY signers, so the unchanged engines run
    ``mainline`` and give identical numbers, equal to ``allow-all``'s."""
    from sgxlab.sim import exact, fast
    from sgxlab.sim.costs import CostModel
    from sgxlab.sim.workloads import make_trace

    tr = make_trace(workload, {"launches": 120}, seed=3)
    for design in ("always-write", "percpu-cache", "eager-load"):
        e = exact.simulate(tr, design, CostModel(), policy=Mainline())
        f = fast.simulate(tr, design, CostModel(), policy=Mainline())
        a = fast.simulate(tr, design, CostModel(), policy=AllowAll())
        assert e == f
        assert {k: v for k, v in e.items() if k != "policy"} == {k: v for k, v in a.items() if k != "policy"}


# --------------------------------------------------------------------------- the command line


def test_cli_policy_matrix_text_tells_the_gate_from_einit(capsys):
    # (the header, its columns and the 72-column width: tests/test_cli_kvm.py)
    rc, out, _ = run_cli(capsys, "policy-matrix", "--reasons")
    assert rc == 0
    lines = out.splitlines()
    rows = [ln for ln in lines if ln.split()[:1] and ln.split()[0].isdigit() and "mainline" in ln]
    gp = [ln for ln in rows if "#GP" in ln]
    assert len(gp) == 3 and all("-fd" in ln and "eacces" in ln for ln in gp)
    assert "#GP: ECREATE faulted (the gate)" in out.replace("\n", " ")


def test_cli_policy_matrix_json_gate_step(capsys):
    # (the keys and the 108 rows: tests/test_cli_kvm.py)
    rc, out, err = run_cli(capsys, "policy-matrix", "--json")
    rows = json.loads(out)
    assert rc == 0 and err == ""
    assert {r["step"] for r in rows if r["code"] is None and r["vm_created"]} == {"ecreate-gp"}


def test_cli_guest_provision(capsys):
    rc, out, _ = run_cli(capsys, "guest", "--sgx", "epc=64M,lewr,provisionkey", "--policy", "mainline", "--json")
    d = json.loads(out)
    assert rc == 0 and d["provisionkey"] and d["host"]["gates_provisionkey"]
    assert d["guest"]["sgx_provisioning_allowed"] is False and d["guest"]["ecreate_trapped"] is True
    assert any("/dev/sgx_provision" in w for w in d["warnings"])
    rc, out, _ = run_cli(
        capsys, "guest", "--sgx", "epc=64M,provisionkey", "--policy", "mainline", "--provision", "--json"
    )
    d = json.loads(out)
    assert d["guest"]["sgx_provisioning_allowed"] is True and d["warnings"] == []
    rc, out, _ = run_cli(capsys, "guest", "--sgx", "epc=64M,provisionkey", "--policy", "mainline")
    assert rc == 0 and "its ECREATE is trapped, #GP" in out and max(map(len, out.splitlines())) <= 72


def test_designs_all_run_the_gate(pk_enclave):
    for name in DESIGNS:
        kvm = Kvm(platform("flexible"), Mainline(), name)
        with pytest.raises(ProvisionRefusal):
            kvm.host_einit(0, pk_enclave.sigstruct_bytes, pk_enclave.image.fork())


def test_cli_policies_lists_the_catalog(capsys):
    rc, out, _ = run_cli(capsys, "policies", "--json")
    assert rc == 0 and [p["name"] for p in json.loads(out)] == list(HOST_POLICY_NAMES)
    rc, out, _ = run_cli(capsys, "policies")
    assert rc == 0 and "mainline (gates PROVISIONKEY)" in out and max(map(len, out.splitlines())) <= 72


def test_kvm_package_reexports_the_catalog():
    import sgxlab.kvm as kvm

    assert kvm.POLICY_CATALOG is POLICY_CATALOG and kvm.Mainline is Mainline


def test_qemu_enforce_refuses_an_unbacked_provisionkey():
    kvm = Kvm(platform("flexible"), Mainline())
    strict = SgxGuestConfig.merged("64M", provisionkey=True, enforce=True)
    ok, party, why = kvm.would_create(strict)
    assert not ok and party == "kvm" and why is not None and "sgx-provisionkey" in why
    with pytest.raises(PolicyRefusal):
        kvm.create_vm(strict)
    assert kvm.would_create(strict, Tenant("qemu", sgx_provision=True)) == (True, None, None)
    assert Kvm(platform("flexible"), AllowAll()).would_create(strict) == (True, None, None)  # no gate


def test_a_mainline_object_is_not_saved_under_a_name_traces_refuse():
    from sgxlab.sim import trace as trace_mod
    from sgxlab.sim.hostpolicy import builtin_equivalent
    from sgxlab.sim.workloads import make_trace

    tr = make_trace("workshop", {"launches": 20}, seed=1)
    want = "mainline" if "mainline" in trace_mod.POLICY_NAMES else None
    assert builtin_equivalent(Mainline(), tr) == want
    assert builtin_equivalent(AllowAll(), tr) == "allow-all"


def test_gate_rows_mask_a_trace():
    import numpy as np

    t = policy_tables(Mainline(), AW, [(True, -1, False), (False, 0, True)], 3, provisionkey=[2])
    is_launch = np.array([True, True, True, True, False])
    vm = np.array([-1, -1, 0, 1, 0])
    signer = np.array([2, 1, 2, 2, 2])
    masks = gate_rows(t, is_launch, vm, signer)
    assert masks is not None
    host, guest = masks
    assert host.tolist() == [True, False, False, False, False]
    assert guest.tolist() == [False, False, True, False, False]
    plain = policy_tables(Mainline(), AW, [(True, -1)], 3)
    assert gate_rows(plain, is_launch, vm, signer) is None


@pytest.mark.parametrize("design", sorted(DESIGNS))
def test_matrix_gate_holds_under_every_design(design):
    from sgxlab.experiments.matrix import policy_matrix_records

    rows = [r for r in policy_matrix_records(design) if r["policy"] == "mainline" and r["provisionkey"]]
    assert len(rows) == 6
    for r in rows:
        if r["provision"]:
            assert r["step"] != GATE_ECREATE_GP and r["host"] == "einit"
        else:
            assert (r["step"], r["code"], r["host"], r["bypass"]) == (GATE_ECREATE_GP, None, GATE_EACCES, False)
