"""Host launch policies in the simulator, and the one guest model.

Both engines take the KVM layer's :class:`~sgxlab.kvm.policy.HostPolicy`
objects (``docs/simulator.md``, "Host launch policy"): a refused VM never
exists, a refused host launch costs nothing, a refused trapped guest EINIT
costs an ENCLS exit, a single-LE host launches with its LE's hash and real
EINITTOKENs, and a guest that runs what the host may not is a bypass. Here:
the two engines and the reference agree under all five policies on every
workload kind, hand-checked counts on small traces, CSV traces naming a
policy, the run API's policy argument and config, records that tell a
refusal from a failure, and the exact engine's use of
:class:`sgxlab.kvm.guest.GuestLc`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from simref import BUILTIN_DESIGNS, random_costs, random_trace, reference, with_interrupts

import sgxlab
from sgxlab.errors import ConfigError, GeneralProtection
from sgxlab.host.designs import DESIGNS
from sgxlab.host.le import LaunchEnclave
from sgxlab.hw.arch import FEAT_CTL_LOCKED, INTEL_LEPUBKEYHASH, MSR_IA32_SGXLEPUBKEYHASH, SgxError
from sgxlab.hw.crypto import load_test_key
from sgxlab.hw.einit import einit
from sgxlab.hw.platform import Platform
from sgxlab.kvm import policy as kvm_policy
from sgxlab.kvm.guest import GuestLc
from sgxlab.kvm.policy import AllowAll, Allowlist, ApprovedSet, HostAllowlist, HostPolicy, SingleLE
from sgxlab.kvm.vcpu import POLICY_REFUSAL_CODE
from sgxlab.sim import exact, fast
from sgxlab.sim import run as simrun
from sgxlab.sim import trace as trace_mod
from sgxlab.sim.costs import CostModel
from sgxlab.sim.exact import ExactSimulation, signer_image
from sgxlab.sim.hostpolicy import builtin_equivalent, run_policy, run_tables, signer_hashes
from sgxlab.sim.result import RunConfig
from sgxlab.sim.trace import EXIT, LAUNCH, S3, SCHED, Trace, VmSpec
from sgxlab.sim.workloads import WORKLOADS, format_trace_csv, make_trace, parse_trace_csv

H = signer_hashes(64)
COSTS = CostModel()
FIVE = kvm_policy.POLICY_NAMES


def h(s: int):
    return H[s]


def both(trace: Trace, design: Any, policy: HostPolicy | None = None, costs: CostModel = COSTS) -> dict[str, Any]:
    """The summary, after checking that the exact and fast engines give the same one."""
    e = exact.simulate(trace, design, costs, policy=policy)
    f = fast.simulate(trace, design, costs, policy=policy)
    assert e == f, {k: (e[k], f[k]) for k in e if e[k] != f[k]}
    return e


def policy_for(trace: Trace, name: str) -> HostPolicy:
    """A policy of kind ``name`` that, on ``trace``, refuses some things and admits others:
    approved = signers 0 and 1 plus the lehash of every VM without lewr (the LE of
    single-le is the first such lehash, else signer 0)."""
    fixed = [v.lehash for v in trace.vms if not v.lewr and v.lehash >= 0]
    approved = sorted({s for s in (0, 1) if s < trace.nsigners} | set(fixed))
    if name == "single-le":
        le = fixed[0] if fixed else 0
        return SingleLE(h(le), [h(s) for s in approved])
    return kvm_policy.policy_by_name(name, [h(s) for s in approved])


WORKLOAD_CASES: list[tuple[str, dict[str, Any]]] = [
    ("host-only", {"launches": 300, "cpus": 3, "signers": 5}),
    ("enclave-churn", {"launches": 200, "signers": 6}),
    ("suspend-resume", {"launches": 300, "cpus": 2, "signers": 3, "s3": 3}),
    ("multi-tenant", {"launches": 300, "vms": 3, "nolewr": 1, "s3": 2, "unmasked_rate": 0.2}),
    ("mixed", {"launches": 300, "vms": 3, "nolewr": 1, "s3": 2}),
    ("workshop", {"launches": 300, "unmasked_rate": 0.1}),
]


def test_the_cases_cover_every_workload_kind():
    assert {name for name, _ in WORKLOAD_CASES} == set(WORKLOADS)


def test_policy_names_agree_with_the_kvm_layer():
    assert trace_mod.POLICY_NAMES == kvm_policy.HOST_POLICY_NAMES == (*kvm_policy.POLICY_NAMES, "mainline")


# --------------------------------------------------------------------------- the engines agree


@pytest.mark.parametrize("policy", FIVE)
@pytest.mark.parametrize("case", range(len(WORKLOAD_CASES)), ids=[n for n, _ in WORKLOAD_CASES])
def test_engines_agree_under_every_policy_on_every_workload(case: int, policy: str):
    name, params = WORKLOAD_CASES[case]
    tr = make_trace(name, params, seed=case)
    pol = policy_for(tr, policy)
    out = {label: both(tr, d, pol) for label, d in BUILTIN_DESIGNS}
    aw = out["always-write"]
    if policy == "allow-all":
        assert aw["refusals"] == aw["vms_refused"] == aw["bypasses"] == 0
    if policy in ("allowlist", "host-only", "approved-set", "single-le") and name != "multi-tenant":
        assert aw["refusals"] > 0  # some host (or guest) launches of unapproved signers
    if policy in ("approved-set", "single-le") and tr.vms:
        assert 0 < aw["vms_refused"] < len(tr.vms)  # the lewr VMs go, VM 2 (its LE approved) stays
    if policy == "host-only" and tr.vms:
        assert aw["bypasses"] > 0


@pytest.mark.parametrize("policy", FIVE)
def test_engines_agree_under_the_workload_parameter(policy: str):
    tr = make_trace("workshop", {"launches": 300, "policy": policy, "s3": 2}, seed=9)
    out = {label: both(tr, d) for label, d in BUILTIN_DESIGNS}
    s = out["read-compare"]
    if policy in ("approved-set", "single-le"):  # the tenants bring their own LEs: no VM is approved
        assert s["vms_refused"] == 3 and s["launches"] == int(np.count_nonzero((tr.kind == LAUNCH) & (tr.vm < 0)))
    if policy == "allowlist":  # every guest launch is of a tenant's signer: refused after a trap
        guests = int(np.count_nonzero((tr.kind == LAUNCH) & (tr.vm >= 0)))
        assert s["refusals"] == guests and s["encls_exits"] == guests
        assert out["eager-load"]["vms_refused"] == 3  # untrapped: the VMs are refused instead


@pytest.mark.parametrize("chunk", range(6))
def test_exact_fast_and_reference_agree_with_policies_on_random_traces(chunk: int):
    for sub in range(6):
        seed = chunk * 6 + sub
        rng = np.random.default_rng(31_000 + seed)
        tr = random_trace(rng, nevents=int(rng.integers(0, 160)), policy=FIVE[seed % 5])
        if sub % 2:
            tr = with_interrupts(tr, rng)
        costs = random_costs(rng)
        for label, d in BUILTIN_DESIGNS:
            got = both(tr, d, costs=costs)
            assert got == reference(tr, d, costs), (seed, label)


# --------------------------------------------------------------------------- hand-checked counts

# Host CPU 0; CPU 1 runs VM 0 (lewr, lehash 1), CPU 2 runs VM 1 (no lewr, lehash 2).
_ROWS = [
    (0, SCHED, 1, 0, 0, -1),
    (0, SCHED, 2, 1, 0, -1),
    (10, LAUNCH, 0, -1, -1, 0),
    (20, LAUNCH, 1, 0, 0, 3),
    (30, LAUNCH, 2, 1, 0, 2),
    (40, EXIT, 1, 0, 0, -1),
    (50, LAUNCH, 0, -1, -1, 1),
    (60, LAUNCH, 1, 0, 0, 1),
    (70, EXIT, 2, 1, 0, -1),
]
_VMS = (VmSpec(1, True, 1), VmSpec(1, False, 2))


def hand_trace(**kw: Any) -> Trace:
    return Trace.from_rows(_ROWS, ncpus=3, nsigners=4, vms=_VMS, **kw)


def test_a_refused_vm_never_exists():
    tr = hand_trace()
    pol = ApprovedSet([h(0), h(2)])  # VM 0 has lewr: refused; VM 1's lehash is approved
    s = both(tr, "always-write", pol)
    assert s["vms_refused"] == 1
    assert s["launches"] == 3 and s["schedule_ins"] == 1 and s["exits"] == 1  # VM 0's rows are gone
    assert s["refusals"] == 1 and s["einit"] == 2 and s["msr_exits"] == 0  # host signer 1 is refused
    sim = ExactSimulation(tr, "always-write", records=True, policy=pol).run()
    assert len(sim.rows) == len(tr) - 4 and sim.trace is tr
    assert [(r.vm, r.signer, r.outcome) for r in sim.launch_records()] == [
        (-1, 0, "launched"),
        (1, 2, "launched"),
        (-1, 1, "refused"),
    ]
    assert sim.tables.vm_reasons[0] is not None and "lewr" in sim.tables.vm_reasons[0]


def test_a_refused_host_launch_costs_nothing():
    rows = [(0, LAUNCH, 0, -1, -1, 0), (0, LAUNCH, 0, -1, -1, 1), (0, LAUNCH, 0, -1, -1, 0)]
    tr = Trace.from_rows(rows, ncpus=1, nsigners=2)
    for design in DESIGNS:
        allowed = both(tr, design, HostAllowlist([h(0)]))
        alone = both(Trace.from_rows([rows[0], rows[2]], ncpus=1, nsigners=2), design)
        assert allowed["refusals"] == 1 and allowed["launches"] == 3
        for k in ("einit", "wrmsr", "rdmsr", "overhead_cycles", "encls_exits", "failures"):
            assert allowed[k] == alone[k], (design, k)
        assert allowed["latency_cycles"]["max"] == alone["latency_cycles"]["max"]  # nobody waited for it
        assert allowed["latency_cycles"]["mean"] * 3 == pytest.approx(alone["latency_cycles"]["mean"] * 2)
    sim = ExactSimulation(tr, "percpu-cache", records=True, policy=Allowlist([h(0)])).run()
    refused = sim.records_frame().iloc[1]
    assert (refused.outcome, refused.code, refused["name"], refused.step) == ("refused", -1, "NONE", "policy")
    assert (refused.einits, refused.wrmsr, refused.latency, refused.lock_wait) == (0, 0, 0, 0)
    assert "allowlist" in refused.reason and h(1).short() in refused.reason
    assert sim.latency_array().tolist()[1] == 0


def test_a_refused_trapped_guest_einit_costs_a_trap():
    costs = CostModel().with_overrides({"encls_trap": 1000, "vm_exit": 100})
    tr = hand_trace()
    pol = Allowlist([h(0), h(1), h(2)])  # VM 0's launch of signer 3 is refused
    s = both(tr, "read-compare", pol, costs)
    base = both(hand_trace(), "read-compare", AllowAll(), costs)
    assert s["refusals"] == 1 and s["failures"] == {} and s["bypasses"] == 0
    assert s["einit"] == base["einit"] - 1 and s["encls_exits"] == base["encls_exits"]
    assert s["msr_exits"] == base["msr_exits"] == 8  # the guest wrote its MSRs before its ENCLS
    sim = ExactSimulation(tr, "read-compare", costs, records=True, policy=pol)
    sim.step(4)
    assert sim.guests[0][0].words == load_test_key(3).mrsigner.words  # the guest's writes happened
    r = sim.run().launch_records()[1]
    assert (r.vm, r.signer, r.outcome, r.step) == (0, 3, "refused", "policy")
    assert (r.code, r.name) == (int(POLICY_REFUSAL_CODE), "SGX_INVALID_EINITTOKEN")
    assert (r.einits, r.retries, r.rdmsr, r.wrmsr, r.lock_cycles) == (0, 0, 0, 0, 0)
    assert (r.trap_cycles, r.msr_exit_cycles, r.latency) == (1000, 400, 1400)
    assert "refused the trapped EINIT" in r.reason and "KVM reflected SGX_INVALID_EINITTOKEN (16)" in r.reason
    # Eager-load does not trap: no policy sees the guest's EINIT, and the allowlist
    # refuses the lewr VM at creation instead.
    e = both(tr, "eager-load", pol)
    assert e["vms_refused"] == 1 and e["refusals"] == 0 and e["encls_exits"] == 0


def test_a_refused_guest_einit_is_one_attempt_whatever_the_interrupts():
    rows = [(0, SCHED, 0, 0, 0, -1, 0), (5, LAUNCH, 0, 0, 0, 1, 7), (9, LAUNCH, 0, 0, 0, 0, 3)]
    tr = Trace.from_rows(rows, ncpus=1, nsigners=2, vms=(VmSpec(1, True, 0),))
    s = both(tr, "always-write", Allowlist([h(0)]))
    assert s["refusals"] == 1 and s["encls_exits"] == 1 + 4 and s["msr_exits"] == 4 * 5
    assert s["einit"] == 4 and s["retries"] == 3 and s["einit"] == s["launches"] - s["refusals"] + s["retries"]


def test_bypasses_under_host_only():
    tr = hand_trace()
    s = both(tr, "always-write", HostAllowlist([h(0), h(1)]))
    # guests ran signers 3 and 2 (not approved) and 1 (approved): two bypasses; host signer 0 and 1 fine
    assert (s["bypasses"], s["refusals"], s["vms_refused"]) == (2, 0, 0)
    assert both(tr, "always-write", Allowlist([h(0), h(1)]))["bypasses"] == 0  # trapped: refused instead
    assert both(tr, "eager-load", HostAllowlist([h(0), h(1)]))["bypasses"] == 2  # untrapped: nobody looks


def test_counting_identities_hold_on_workloads():
    for policy in FIVE:
        tr = make_trace("workshop", {"launches": 400, "policy": policy, "unmasked_rate": 0.3}, seed=2)
        for label, d in BUILTIN_DESIGNS:
            s = both(tr, d)
            assert s["einit"] == s["launches"] - s["refusals"] + s["retries"], (policy, label)
            refused = run_tables(tr, d).vm_refused
            assert s["launches"] == tr.without_vms([v for v, r in enumerate(refused) if r]).launches
            assert s["vms_refused"] == sum(refused)


# --------------------------------------------------------------------------- a host with one launch enclave


def test_single_le_host_launches_use_the_les_words_and_tokens():
    rows = [(i * 10**6, LAUNCH, 0, -1, -1, s) for i, s in enumerate([0, 1, 2, 1, 3])]
    tr = Trace.from_rows(rows, ncpus=1, nsigners=4)
    pol = SingleLE(h(2), [h(0), h(1)])  # the LE is signer 2; tokens for 0 and 1 (and its own signer)
    sim = ExactSimulation(tr, "read-compare", records=True, policy=pol).run()
    recs = sim.launch_records()
    assert [r.outcome for r in recs] == ["launched", "launched", "launched", "launched", "refused"]
    assert [r.wrmsr for r in recs] == [4, 0, 0, 0, 0]  # every launch wants the LE's hash: written once
    assert all("launched with an EINITTOKEN" in r.reason for r in recs[:4])
    assert "gave no EINITTOKEN" in recs[4].reason and "allowlist" in recs[4].reason
    assert sim.platform.cpus[0].lehash_words == h(2).words
    assert sim.host_le is not None and sim.host_le.mrsigner == h(2)
    assert sim.tables.host_le == 2 and sim.tables.host_refused[:4] == (False, False, False, True)
    s = sim.summary()
    assert (s["refusals"], s["einit"], s["rdmsr"], s["wrmsr"]) == (1, 4, 16, 4)  # the setup is not counted
    assert s == fast.simulate(tr, "read-compare", policy=pol)


def test_single_le_tokens_check_the_msrs_so_a_stale_cache_fails_them():
    """With a token EINIT skips the MRSIGNER comparison but derives the launch key
    from the MSRs: a per-CPU cache left stale by S3 fails every LE-token launch."""
    rows = [(0, LAUNCH, 0, -1, -1, 0), (10, S3, -1, -1, -1, -1), (20, LAUNCH, 0, -1, -1, 1), (30, LAUNCH, 0, -1, -1, 0)]
    tr = Trace.from_rows(rows, ncpus=1, nsigners=3)
    pol = SingleLE(h(2), [h(0), h(1)])
    sim = ExactSimulation(tr, "percpu-cache", records=True, policy=pol).run()
    recs = sim.launch_records()
    assert [r.code for r in recs] == [0, 16, 16]  # stays stale: the wanted words never change
    assert all(r.step == "token-mac" for r in recs[1:])
    assert both(tr, "percpu-cache", pol)["failures"] == {"SGX_INVALID_EINITTOKEN": 2}
    retry = both(tr, "percpu-cache-retry", pol)
    assert retry["failures"] == {} and retry["retries"] == 1  # the forced rewrite repairs it once
    for d in ("read-compare", "always-write"):
        assert both(tr, d, pol)["failures"] == {}


def test_le_tokens_survive_s3_but_need_the_les_hash_in_the_msrs():
    p = Platform(1, "flexible")
    key = load_test_key(5)
    le = LaunchEnclave.create(key, allowlist=[h(0)])
    cpu = p.cpus[0]
    for msr, w in zip(MSR_IA32_SGXLEPUBKEYHASH, key.mrsigner.words):
        cpu.wrmsr(msr, w)
    assert le.launch(cpu).ok
    img = signer_image(0)
    token = le.get_token(p.siginfo(img.sigstruct).sig).token
    assert token is not None
    p.s3_resume()  # the EPC (and the LE) is gone; the MSRs hold Intel's hash again
    r = einit(cpu, img.sigstruct, img.enclave.fork(), token)
    assert r.code == SgxError.SGX_INVALID_EINITTOKEN and r.check == "token-mac"
    for msr, w in zip(MSR_IA32_SGXLEPUBKEYHASH, key.mrsigner.words):
        cpu.wrmsr(msr, w)
    assert einit(cpu, img.sigstruct, img.enclave.fork(), token).ok  # the same token, after S3
    assert le.get_token(p.siginfo(img.sigstruct).sig).token is None  # a new one needs a new LE


def test_single_le_needs_its_le_among_the_runs_signers():
    tr = Trace.from_rows([(0, LAUNCH, 0, -1, -1, 0)], ncpus=1, nsigners=2)
    with pytest.raises(ConfigError, match="launch enclave must be one of the run's signers"):
        exact.simulate(tr, "always-write", policy=SingleLE(h(9)))
    with pytest.raises(ConfigError, match="single-le needs its launch enclave"):
        Trace.from_rows([], ncpus=1, nsigners=2, policy="single-le").validate()


# --------------------------------------------------------------------------- traces, CSV, run API


def test_csv_round_trip_keeps_the_policy():
    for policy in FIVE:
        tr = make_trace("workshop", {"launches": 150, "policy": policy, "unmasked_rate": 0.1}, seed=3)
        back = parse_trace_csv(format_trace_csv(tr))
        assert (back.policy, back.allowlist, back.vms, back.ncpus, back.nsigners) == (
            policy, (0, 1, 2), tr.vms, tr.ncpus, tr.nsigners,
        )  # fmt: skip
        for col in ("t", "kind", "cpu", "vm", "vcpu", "signer", "unmasked"):
            assert (getattr(back, col) == getattr(tr, col)).all(), col
        for label, d in BUILTIN_DESIGNS[:3]:
            assert both(back, d) == both(tr, d), (policy, label)


def test_csv_policy_lines_and_the_legacy_allowlist():
    head = "t,kind,cpu,vm,vcpu,signer\n"
    body = "0,launch,0,,,0\n10,launch,0,,,1\n"
    legacy = parse_trace_csv("#@ allowlist=0\n" + head + body)  # before policies had names
    assert (legacy.policy, legacy.approved) == ("host-only", (0,))
    assert both(legacy, "always-write")["refusals"] == 1  # the host may launch signer 1; it is refused
    named = parse_trace_csv("#@ policy=Approved_Set\n#@ allowlist=1\n" + head + body)
    assert (named.policy, named.approved, named.nsigners) == ("approved-set", (1,), 2)
    assert parse_trace_csv(head + body).policy == "allow-all"
    le = parse_trace_csv("#@ policy=single-le\n#@ allowlist=3,0\n" + head + body)
    assert le.nsigners == 4 and run_policy(le).host_lehash == h(3)  # signers= defaults past the LE
    with pytest.raises(ConfigError, match="line 1, policy='nope': unknown host policy"):
        parse_trace_csv("#@ policy=nope\n" + head)
    with pytest.raises(ConfigError, match="directive given twice"):
        parse_trace_csv("#@ policy=allowlist\n#@ policy=host-only\n" + head)


def test_run_trace_takes_a_policy_object_and_records_it_when_it_can():
    tr = make_trace("mixed", {"launches": 200, "s3": 1}, seed=1)
    by_param = sgxlab.run(
        design="read-compare", workload="mixed", params={"launches": 200, "s3": 1, "policy": "allowlist"}, seed=1
    )
    pol = Allowlist([h(0), h(1), h(2)])  # the workload's own approved set: nameable
    r = simrun.run_trace(tr, "read-compare", policy=pol, seed=1)
    assert builtin_equivalent(pol, tr) == "allowlist" and r.config.params["policy"] == "allowlist"
    assert r.summary() == by_param.summary()
    assert sgxlab.replay(RunConfig.from_json(r.config.to_json())).summary() == r.summary()
    f = simrun.run_trace(tr, "read-compare", policy="allowlist", engine="fast", seed=1)
    assert {**f.summary(), "engine": "exact"} == r.summary()
    # Another approved set: no workload parameter can say it, so the config refuses to be saved.
    odd = simrun.run_trace(tr, "read-compare", policy=Allowlist([h(0), h(4)]))
    assert odd.config.unsaved is not None and "not the built-in" in odd.config.unsaved
    with pytest.raises(ConfigError, match="cannot be saved or replayed"):
        odd.config.to_json()
    with pytest.raises(ConfigError, match="cannot be saved or replayed"):
        sgxlab.replay(odd.config)
    # The trace's own policy changes nothing; a CSV trace has no policy parameter.
    same = simrun.run_trace(tr, "read-compare", policy=AllowAll())
    assert same.config.unsaved is None and same.config.params == dict(tr.params)
    csv = parse_trace_csv(format_trace_csv(tr))
    named = simrun.run_trace(csv, "read-compare", policy="host-only")
    assert named.config.unsaved is not None and "no policy parameter" in named.config.unsaved


def test_summary_text_tells_refusals_from_failures():
    r = sgxlab.run(design="percpu-cache", workload="workshop", params={"launches": 300, "policy": "allowlist"})
    text = str(r)
    s = r.summary()
    assert s["refusals"] > 0 and f"{s['refusals']:,} launches (not failures)" in text
    assert "policy refused" in text and all(len(line) <= 72 for line in text.splitlines())
    df = r.records()
    assert set(df["outcome"]) >= {"launched", "refused"}
    assert (df["outcome"] == "refused").sum() == s["refusals"]
    assert (df["outcome"] == "failed").sum() == sum(s["failures"].values())


# --------------------------------------------------------------------------- the one guest model


def test_the_exact_engine_uses_the_kvm_guest_model():
    tr = hand_trace()
    sim = ExactSimulation(tr, "always-write").run()
    assert all(isinstance(g, GuestLc) for vm in sim.guests for g in vm)
    g0, g1 = sim.guests[0][0], sim.guests[1][0]
    assert g0.hash_writable and not g1.hash_writable and g0.sgx_enabled and g1.sgx_enabled
    assert g0.wrote and not g1.wrote
    assert sim.vwords == [[load_test_key(1).mrsigner.words], [load_test_key(2).mrsigner.words]]
    intel = ExactSimulation(Trace.from_rows([], ncpus=1, nsigners=1, vms=(VmSpec(2, True, -1),)))
    assert intel.vwords == [[INTEL_LEPUBKEYHASH.words] * 2]


@pytest.mark.parametrize("design", ["always-write", "eager-load"])
@pytest.mark.parametrize("interrupted", [False, True])
def test_a_faulting_guest_stops_the_run(design: str, interrupted: bool):
    """The guest model's checks come with it: a trace's VMs never trip them, a
    hand-changed FEATURE_CONTROL does, and the engine stops with the #GP."""
    rows = [(0, SCHED, 0, 0, 0, -1), (5, LAUNCH, 0, 0, 0, 1)]
    if interrupted:
        rows = [(*r, 2 if r[1] == LAUNCH else 0) for r in rows]
    tr = Trace.from_rows(rows, ncpus=1, nsigners=2, vms=(VmSpec(1, True, 0),))
    sim = ExactSimulation(tr, design)
    sim.guests[0][0].feature_control = FEAT_CTL_LOCKED | (1 << 18)  # locked without bit 17
    with pytest.raises(GeneralProtection, match="without bit 17.*vcpu 0 of vm0|vcpu 0 of vm0.*without bit 17"):
        sim.run()
    sim = ExactSimulation(tr, design)
    sim.guests[0][0].feature_control = 0  # unlocked: hash writes pass, but SGX is not enabled
    with pytest.raises(GeneralProtection, match="SGX is not enabled in the guest"):
        sim.run()
    assert ExactSimulation(tr, design).run().summary()["failures"] == {}


def test_refusals_take_the_general_loop_only_where_they_are(monkeypatch: pytest.MonkeyPatch):
    """Chunks without a refused launch run the plain loop; chunking changes nothing."""
    tr = make_trace("mixed", {"launches": 300, "s3": 2, "vms": 3, "nolewr": 1}, seed=4)
    pol = policy_for(tr, "allowlist")
    for label, d in BUILTIN_DESIGNS:
        whole = ExactSimulation(tr, d, policy=pol).run()
        parts = ExactSimulation(tr, d, policy=pol)
        while not parts.step(7):
            pass
        assert parts.summary() == whole.summary() and whole.summary()["refusals"] > 0, label
    general: list[tuple[int, int]] = []
    real = ExactSimulation._replay_general

    def spy(self: ExactSimulation, lo: int, hi: int) -> None:
        general.append((lo, hi))
        real(self, lo, hi)

    monkeypatch.setattr(ExactSimulation, "_replay_general", spy)
    ExactSimulation(tr, "always-write", policy=HostAllowlist([h(0), h(1), h(2)])).run()
    assert general == []  # nothing refused: the plain loop throughout
    sim = ExactSimulation(tr, "always-write", policy=pol)
    while not sim.step(4):
        pass
    assert 0 < len(general) < -(-len(sim.rows) // 4)  # some chunks, not all
    assert sim._refused is not None and all(sim._refused[lo:hi].any() for lo, hi in general)
