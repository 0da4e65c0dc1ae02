"""The PROVISIONKEY gate and the ``mainline`` policy in the workloads and both engines.

Issue 12: a sixth host policy, ``mainline`` (every signer allowed,
PROVISIONKEY gated), runs in the simulator like the other five. Here, on
every generated workload kind, with and without the permission
(``host_provision``) and the capability (each VM's ``provision``): the exact
engine, the fast engine and the reference of ``tests/simref.py`` give the
same summary; a gated launch never reaches ENCLS[EINIT], so no hash-MSR
access is counted for it (the same trace without that launch has the same
``einit``, ``wrmsr`` and ``rdmsr``); records, summary and CLI text tell a
gate refusal (``eacces``, ``ecreate-gp``) from an EINIT failure; and
``mainline`` without PROVISIONKEY signers is ``allow-all``, number for number.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cli_in_process import sgxlab_cli
from simref import BUILTIN_DESIGNS, random_costs, random_trace, reference, with_interrupts

import sgxlab
from sgxlab.errors import ConfigError
from sgxlab.host.designs import AlwaysWrite
from sgxlab.hw.arch import LeHash
from sgxlab.kvm.policy import Mainline
from sgxlab.present.text import summary_text
from sgxlab.sim import exact, fast
from sgxlab.sim.costs import CostModel
from sgxlab.sim.exact import ExactSimulation
from sgxlab.sim.hostpolicy import signer_hashes
from sgxlab.sim.result import SUMMARY_KEYS, flatten_summary
from sgxlab.sim.schema import GATE_NAMES
from sgxlab.sim.trace import LAUNCH, POLICY_NAMES, Trace, VmSpec
from sgxlab.sim.workloads import WORKLOADS, format_trace_csv, make_trace, parse_trace_csv

COSTS = CostModel()

# Every generated workload kind: (name, small parameters). Those without a policy
# parameter get mainline and the gate's facts through the trace (gated()).
CASES: list[tuple[str, dict[str, Any]]] = [
    ("host-only", {"launches": 200, "cpus": 3, "signers": 4}),
    ("enclave-churn", {"launches": 150, "signers": 6}),
    ("suspend-resume", {"launches": 200, "cpus": 2, "signers": 3, "s3": 3}),
    ("multi-tenant", {"launches": 200, "vms": 3, "nolewr": 1, "s3": 2, "unmasked_rate": 0.2}),
    ("mixed", {"launches": 200, "vms": 3, "nolewr": 1, "s3": 2}),
    ("workshop", {"launches": 250, "unmasked_rate": 0.1}),
]

# (host_provision, which VMs hold the capability): neither, both, some.
PERMISSIONS = [(False, "none"), (True, "all"), (False, "odd")]


def gated(trace: Trace, pk: tuple[int, ...], host_provision: bool, vms: str) -> Trace:
    """``trace`` under mainline with PROVISIONKEY signers ``pk`` and the given permissions."""
    specs = tuple(
        dataclasses.replace(v, provision=vms == "all" or (vms == "odd" and j % 2 == 1)) for j, v in enumerate(trace.vms)
    )
    out = dataclasses.replace(trace, vms=specs, policy="mainline", provisionkey=pk, host_provision=host_provision)
    out.validate()
    return out


def three(trace: Trace, design: Any, costs: CostModel = COSTS, policy: Any = None) -> dict[str, Any]:
    """The summary, after checking that exact, fast and the reference agree on it."""
    e = exact.simulate(trace, design, costs, policy=policy)
    f = fast.simulate(trace, design, costs, policy=policy)
    assert e == f, {k: (e[k], f[k]) for k in e if e[k] != f[k]}
    r = reference(trace, design, costs, policy)
    assert e == r, {k: (e[k], r[k]) for k in e if e[k] != r[k]}
    return e


def expected_gate(trace: Trace) -> dict[str, int]:
    """The gate refusals the contract predicts for ``trace`` (no VM refused, no policy refusal)."""
    launch = trace.kind == LAUNCH
    pk = np.isin(trace.signer, np.array(trace.provisionkey, dtype=np.int64)) & launch
    host = int(np.count_nonzero(pk & (trace.vm < 0))) if not trace.host_provision else 0
    prov = np.array([v.provision for v in trace.vms] + [True], dtype=bool)  # [-1]: the host
    guest = int(np.count_nonzero(pk & (trace.vm >= 0) & ~prov[trace.vm]))
    return {k: n for k, n in (("eacces", host), ("ecreate-gp", guest)) if n}


def without_rows(trace: Trace, drop: np.ndarray) -> Trace:
    """``trace`` without the rows of mask ``drop`` (launch rows only: the rest stays valid)."""
    out = trace.take_rows(~drop)
    out.validate()
    return out


def gate_mask(trace: Trace) -> np.ndarray:
    launch = trace.kind == LAUNCH
    pk = np.isin(trace.signer, np.array(trace.provisionkey, dtype=np.int64)) & launch
    prov = np.array([v.provision for v in trace.vms] + [trace.host_provision], dtype=bool)  # [-1]: the host
    return pk & ~prov[trace.vm]


# --------------------------------------------------------------------------- the three models agree


def test_the_cases_cover_every_workload_kind() -> None:
    assert {name for name, _ in CASES} == set(WORKLOADS)
    assert "mainline" in POLICY_NAMES


@pytest.mark.parametrize("perm", range(len(PERMISSIONS)), ids=["no-permission", "permitted", "some-vms"])
@pytest.mark.parametrize("case", range(len(CASES)), ids=[n for n, _ in CASES])
def test_engines_and_reference_agree_on_every_workload(case: int, perm: int) -> None:
    name, params = CASES[case]
    base = make_trace(name, params, seed=case)
    host_provision, vms = PERMISSIONS[perm]
    tr = gated(base, tuple(range(0, base.nsigners, 2)), host_provision, vms)
    want = expected_gate(tr)
    for label, design in BUILTIN_DESIGNS:
        s = three(tr, design)
        assert s["gate_refusals"] == want, label
        assert s["refusals"] == sum(want.values()) and s["vms_refused"] == 0 and s["bypasses"] == 0
        assert s["einit"] == s["launches"] - s["refusals"] + s["retries"]
        assert "EACCES" not in s["failures"] and "GP" not in s["failures"]
    if perm == 0:
        assert want  # every case has some launch of an even signer
    if perm == 1:
        assert not want  # the permission and the capability let everything through


@pytest.mark.parametrize("chunk", range(4))
def test_engines_and_reference_agree_on_random_gated_traces(chunk: int) -> None:
    for sub in range(8):
        seed = chunk * 8 + sub
        rng = np.random.default_rng(12_000 + seed)
        policy = "mainline" if sub % 4 else None  # now and then another policy: the facts change nothing
        tr = random_trace(rng, nevents=int(rng.integers(0, 160)), policy=policy, gate=True)
        if sub % 2:
            tr = with_interrupts(tr, rng)
        costs = random_costs(rng)
        for label, design in BUILTIN_DESIGNS:
            s = three(tr, design, costs)
            if tr.policy != "mainline":
                assert not s["gate_refusals"], (seed, label)


# --------------------------------------------------------------------------- ordering


@pytest.mark.parametrize("name", ["workshop", "mixed", "multi-tenant", "suspend-resume"])
def test_a_gated_launch_never_reaches_einit(name: str) -> None:
    """The same trace with the gated launches removed has the same EINITs and MSR accesses:
    no hash-MSR write (or read) is counted for a refused enclave, on the host or in a guest."""
    params = dict(next(p for n, p in CASES if n == name))
    base = make_trace(name, params, seed=4)
    tr = gated(base, tuple(s for s in (1, 3) if s < base.nsigners), False, "odd")
    drop = gate_mask(tr)
    assert drop.any()
    rest = without_rows(tr, drop)
    n_gp = expected_gate(tr).get("ecreate-gp", 0)
    for label, design in BUILTIN_DESIGNS:
        for engine in (exact, fast):
            a = engine.simulate(tr, design, COSTS)
            b = engine.simulate(rest, design, COSTS)
            for k in ("einit", "retries", "wrmsr", "rdmsr", "failures", "encls_exits", "msr_exits", "bypasses"):
                assert a[k] == b[k], (label, k, a[k], b[k])
            assert a["launches"] == b["launches"] + int(np.count_nonzero(drop))
            assert a["refusals"] == b["refusals"] + int(np.count_nonzero(drop))
            # the ECREATE exits are the only cycles a gated launch costs; it delays nobody
            assert a["overhead_cycles"] == b["overhead_cycles"] + n_gp * COSTS.encls_trap, label


def test_the_gate_comes_after_a_host_refusal_and_before_a_guest_policy_check() -> None:
    """A mainline that also refuses signer 1 on the host and in trapped guest EINITs: a host
    launch of signer 1 is the policy's refusal (its ioctl never gets to the gate); a guest
    launch of signer 1 in a VM without the capability is the gate's (#GP at ECREATE comes
    before the trapped EINIT the policy would refuse)."""
    h = signer_hashes(8)

    class StrictMainline(Mainline):
        name = "strict-mainline"

        def check_host_einit(self, signer: LeHash) -> str | None:
            return "signer 1 is forbidden" if signer == h[1] else None

        def check_guest_einit(self, guest: Any, signer: LeHash) -> str | None:
            return "signer 1 is forbidden" if signer == h[1] else None

    # Signers: host 0..2, VM 0 (lewr) 3..4, VM 1 (lewr) 5..6, VM 2 (no lewr) 7.
    tr = make_trace("workshop", {"launches": 300, "provisionkey": "1,3,5", "provision": "1"}, seed=3)
    pol = StrictMainline()
    sim = ExactSimulation(tr, AlwaysWrite, COSTS, records=True, policy=pol).run()
    s = three(tr, AlwaysWrite, policy=pol)
    assert sim.summary() == s
    rec = sim.records_frame()
    host1 = rec[(rec["vm"] < 0) & (rec["signer"] == 1)]
    host0 = rec[(rec["vm"] < 0) & (rec["signer"] == 0)]
    assert len(host1) and set(host1["step"]) == {"policy"} and set(host1["name"]) == {"NONE"}
    assert len(host0) and set(host0["outcome"]) == {"launched"}
    vm0 = rec[(rec["vm"] == 0) & (rec["signer"] == 3)]
    vm1 = rec[(rec["vm"] == 1) & (rec["signer"] == 5)]
    assert len(vm0) and set(vm0["step"]) == {"ecreate-gp"}  # the gate, first
    assert len(vm1) and set(vm1["outcome"]) == {"launched"}  # VM 1 holds the capability
    # Signer 1 is never a guest signer here, so the guest policy check never fires.
    assert s["encls_exits"] == int(np.count_nonzero((rec["vm"] >= 0) & (rec["step"] != "ecreate-gp")))
    assert s["gate_refusals"] == {"ecreate-gp": len(vm0)}  # host signer 1 is the policy's, not the gate's


# --------------------------------------------------------------------------- records, summary, text


def test_records_tell_a_gate_refusal_from_an_einit_failure() -> None:
    tr = make_trace("workshop", {"launches": 400, "policy": "mainline", "provisionkey": "1,3"}, seed=0)
    sim = ExactSimulation(tr, "percpu-cache", COSTS, records=True).run()
    s = sim.summary()
    rec = sim.records_frame()
    assert s["failures"] and s["gate_refusals"] == expected_gate(tr)
    assert s == fast.simulate(tr, "percpu-cache", COSTS)
    for step, name in GATE_NAMES.items():
        rows = rec[rec["step"] == step]
        assert len(rows) == s["gate_refusals"][step]
        assert set(rows["outcome"]) == {"refused"} and set(rows["name"]) == {name} and set(rows["code"]) == {-1}
        assert (rows[["rdmsr", "wrmsr", "einits", "retries", "unmasked", "lock_wait", "queue_wait"]] == 0).all().all()
        assert all("PROVISIONKEY" in r for r in rows["reason"])
        trap = COSTS.encls_trap if step == "ecreate-gp" else 0
        assert set(rows["latency"]) == {trap} and set(rows["trap_cycles"]) == {trap}
    assert set(rec.loc[rec["step"] == "eacces", "vm"]) == {-1}
    assert (rec.loc[rec["step"] == "ecreate-gp", "vm"] >= 0).all()
    failed = rec[rec["outcome"] == "failed"]
    assert len(failed) == sum(s["failures"].values())
    assert not set(failed["step"]) & set(GATE_NAMES) and (failed["einits"] > 0).all()
    assert int((rec["outcome"] == "refused").sum()) == s["refusals"]
    objs = sim.launch_records()
    assert [r.name for r in objs] == list(rec["name"]) and [r.outcome for r in objs] == list(rec["outcome"])


def test_summary_keys_flattening_and_text() -> None:
    r = sgxlab.run(
        "always-write", "workshop", {"launches": 300, "policy": "mainline", "provisionkey": "1,4"}, engine="fast"
    )
    s = r.summary()
    assert tuple(s) == SUMMARY_KEYS and SUMMARY_KEYS.index("gate_refusals") == SUMMARY_KEYS.index("refusals") + 1
    gate = s["gate_refusals"]
    assert set(gate) == {"eacces", "ecreate-gp"} and all(n > 0 for n in gate.values())
    flat = flatten_summary(s)
    assert flat["gate_refusals_total"] == sum(gate.values()) == s["refusals"]
    assert flat["gate_refusals_eacces"] == gate["eacces"] and flat["gate_refusals_ecreate-gp"] == gate["ecreate-gp"]
    text = summary_text(s)
    line = next(x for x in text.splitlines() if x.startswith("gate refusals"))
    assert f"eacces {gate['eacces']:,}" in line and f"ecreate-gp {gate['ecreate-gp']:,}" in line
    assert all(len(x) <= 72 for x in text.splitlines())
    plain = sgxlab.run("always-write", "workshop", {"launches": 300}, engine="fast").summary()
    assert plain["gate_refusals"] == {} and "gate refusals" not in summary_text(plain)
    assert flatten_summary(plain)["gate_refusals_total"] == 0
    again = sgxlab.replay(r.config)  # the parameters are saved and replayed
    assert again.summary() == s


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    rc, out, _ = sgxlab_cli(capsys, *argv)
    return rc, out


def test_cli_run_and_compare_show_the_gate(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--workload", "workshop", "--param", "launches=200", "--param", "policy=mainline"]
    rc, out = cli(capsys, "run", "--design", "read-compare", *args, "--param", "provisionkey=1", "--engine", "fast")
    assert rc == 0 and "gate refusals" in out and "eacces" in out and "ecreate-gp" not in out
    rc, out = cli(capsys, "run", "--design", "read-compare", *args, "--param", "provisionkey=1", "--json")
    assert rc == 0 and json.loads(out)["gate_refusals"]["eacces"] > 0
    rc, out = cli(capsys, "run", "--design", "read-compare", *args, "--engine", "fast")
    assert rc == 0 and "gate refusals" not in out  # no PROVISIONKEY signer: nothing gated
    rc, out = cli(
        capsys,
        "compare",
        "--designs",
        "always-write,read-compare",
        *args,
        "--param",
        "provisionkey=3",
        "--engine",
        "fast",
    )
    assert rc == 0 and "gate_refusals_total" in out and max(map(len, out.splitlines())) <= 72
    assert "provisionkey=3" in out  # the reproduce command keeps the parameter
    rc, out = cli(capsys, "compare", "--designs", "always-write,read-compare", *args, "--engine", "fast")
    assert rc == 0 and "gate_refusals_total" not in out


# --------------------------------------------------------------------------- mainline without the gate


@pytest.mark.parametrize("name", ["mixed", "workshop"])
def test_mainline_without_provisionkey_signers_is_allow_all(name: str) -> None:
    params = {"launches": 300, "s3": 2, "unmasked_rate": 0.1}
    a = make_trace(name, {**params, "policy": "allow-all"}, seed=7)
    m = make_trace(name, {**params, "policy": "mainline", "provision": "0", "host_provision": True}, seed=7)
    for label, design in BUILTIN_DESIGNS:
        assert three(m, design) == three(a, design), label


def test_the_gate_facts_change_nothing_under_the_2017_policies() -> None:
    for policy in ("allow-all", "allowlist", "host-only"):
        plain = make_trace("mixed", {"launches": 200, "policy": policy}, seed=2)
        facts = make_trace("mixed", {"launches": 200, "policy": policy, "provisionkey": "0,1,3"}, seed=2)
        for label, design in BUILTIN_DESIGNS[:2]:
            assert three(facts, design) == three(plain, design), (policy, label)


# --------------------------------------------------------------------------- workloads, traces, CSV


def test_workload_parameters_defaults_and_errors() -> None:
    base = make_trace("workshop", {"launches": 100}, seed=1)
    same = make_trace(
        "workshop", {"launches": 100, "provisionkey": "none", "provision": "", "host_provision": 0}, seed=1
    )
    assert base.provisionkey == () and not base.host_provision and not any(v.provision for v in base.vms)
    for col in ("t", "kind", "cpu", "vm", "vcpu", "signer"):
        assert np.array_equal(getattr(base, col), getattr(same, col))
    assert base.params["provisionkey"] == "none" and base.params["host_provision"] is False
    tr = make_trace("mixed", {"launches": 50, "provisionkey": [3, 1, 1], "provision": "2,0", "host_provision": "1"})
    assert (
        tr.provisionkey == (1, 3) and tr.host_provision and [v.provision for v in tr.vms] == [True, False, True, False]
    )
    assert tr.params["provisionkey"] == "1,3" and tr.params["provision"] == "0,2"
    bad = [
        ({"provisionkey": "8"}, "workshop param provisionkey"),  # workshop has signers 0..7
        ({"provisionkey": "1,x"}, "workshop param provisionkey"),
        ({"provisionkey": 1.5}, "workshop param provisionkey"),
        ({"provisionkey": [True]}, "workshop param provisionkey"),
        ({"provisionkey": "-1"}, "workshop param provisionkey"),
        ({"provision": "3"}, "workshop param provision"),  # VMs 0..2
        ({"host_provision": "maybe"}, "workshop param host_provision"),
        ({"host_provision": 2}, "workshop param host_provision"),
    ]
    for params, option in bad:
        with pytest.raises(ConfigError) as e:
            make_trace("workshop", {"launches": 10, **params})
        assert e.value.option == option, params
    with pytest.raises(ConfigError) as e:
        make_trace("host-only", {"provisionkey": "1"})  # no policy parameter, no gate parameters
    assert "provisionkey" in e.value.option


def test_trace_fields_are_checked_and_carried() -> None:
    rows = [(0, LAUNCH, 0, -1, -1, 0), (5, LAUNCH, 0, -1, -1, 1)]
    tr = Trace.from_rows(rows, ncpus=1, nsigners=2, policy="mainline", provisionkey=(1, 1), host_provision=False)
    tr.validate()
    assert tr.provisionkey == (1,)
    s = three(tr, AlwaysWrite)
    assert s["gate_refusals"] == {"eacces": 1} and s["einit"] == 1 and s["wrmsr"] == 4
    with pytest.raises(ConfigError) as e:
        Trace.from_rows(rows, ncpus=1, nsigners=2, provisionkey=(2,)).validate()
    assert "provisionkey" in e.value.option
    with pytest.raises(ConfigError) as e:
        Trace.from_rows(rows, ncpus=1, nsigners=2, provisionkey="1")  # type: ignore[arg-type]
    assert "provisionkey" in e.value.option
    with pytest.raises(ConfigError) as e:
        Trace.from_rows(rows, ncpus=1, nsigners=2, host_provision="yes")  # type: ignore[arg-type]
    assert "host_provision" in e.value.option
    g = make_trace("workshop", {"launches": 60, "policy": "mainline", "provisionkey": "2", "provision": "1"})
    w = g.without_vms([0])
    assert w.provisionkey == (2,) and w.vms[1].provision and w.policy == "mainline"


def test_csv_round_trip_and_errors(tmp_path: Path) -> None:
    tr = make_trace(
        "workshop",
        {"launches": 80, "policy": "mainline", "provisionkey": "1,3", "provision": "0,2", "host_provision": True},
        seed=5,
    )
    text = format_trace_csv(tr)
    assert "#@ provisionkey=1,3" in text and "#@ host_provision=yes" in text and " provision=yes" in text
    back = parse_trace_csv(text)
    assert back.provisionkey == tr.provisionkey and back.host_provision and back.vms == tr.vms
    assert back.policy == "mainline"
    for label, design in BUILTIN_DESIGNS[:3]:
        assert three(back, design) == three(tr, design), label
    plain = make_trace("workshop", {"launches": 40}, seed=5)
    plain_text = format_trace_csv(plain)
    assert "provision" not in plain_text  # a trace without the facts is written as before
    assert parse_trace_csv(plain_text).provisionkey == ()
    head = "t,kind,cpu,vm,vcpu,signer\n0,launch,0,,,1\n"
    implied = parse_trace_csv("#@ provisionkey=4\n#@ policy=mainline\n" + head)
    assert implied.nsigners == 5 and implied.provisionkey == (4,)
    assert fast.simulate(implied, "always-write")["gate_refusals"] == {}  # signer 1 asks for nothing
    errors = [
        ("#@ provisionkey=1,x\n", "line 1, provisionkey"),
        ("#@ provisionkey=64\n", "line 1, provisionkey"),
        ("#@ host_provision=maybe\n", "line 1, host_provision"),
        ("#@ vm=0 provision=maybe\n", "line 1, provision"),
        ("#@ signers=2\n#@ provisionkey=3\n", "directives: trace provisionkey"),
    ]
    for directive, where in errors:
        with pytest.raises(ConfigError) as e:
            parse_trace_csv(directive + head, source="f.csv")
        assert where in e.value.option, (directive, e.value.option)
    path = tmp_path / "gate.csv"
    path.write_text(text)
    s = sgxlab.run("always-write", f"trace:{path}", engine="fast").summary()
    assert s["gate_refusals"] == {} and s["refusals"] == 0  # the host and VMs 0, 2 hold it; VM 1 launches 5, 6
    assert VmSpec(1, True).provision is False
