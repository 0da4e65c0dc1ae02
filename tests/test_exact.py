"""The exact engine: the issue's properties, measured on the emulator itself.

Every count here comes from a replay through the real Platform, the real
designs and the real ENCLS[EINIT]; the expectations are computed
independently from the trace (plain Python over the rows, no engine code).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from sgxlab.errors import ConfigError
from sgxlab.host.designs import AlwaysWrite, Design, EagerLoad, PerCpuCache, ReadCompare
from sgxlab.hw.arch import INTEL_LEPUBKEYHASH, MSR_IA32_SGXLEPUBKEYHASH, SgxError
from sgxlab.hw.crypto import load_test_key
from sgxlab.hw.measure import Page, build_enclave
from sgxlab.sim import exact
from sgxlab.sim.costs import CostModel
from sgxlab.sim.exact import RECORD_COLUMNS, ExactSimulation, LaunchRecord
from sgxlab.sim.schema import LAUNCH_RECORDS
from sgxlab.sim.trace import LAUNCH, S3, SCHED, Trace, VmSpec
from sgxlab.sim.workloads import make_trace

INTEL = INTEL_LEPUBKEYHASH.words
FAULT_FREE = [
    ("host-only", {"launches": 600, "cpus": 3, "signers": 5}),
    ("multi-tenant", {"launches": 600, "nolewr": 1}),
    ("enclave-churn", {"launches": 400, "signers": 12}),
    ("mixed", {"launches": 600}),
]
WITH_S3 = [
    ("suspend-resume", {"launches": 800, "cpus": 3, "signers": 3, "s3": 6, "reuse": 0.6}),
    ("workshop", {}),
    ("mixed", {"launches": 800, "s3": 3, "vm_cpus": 3, "nolewr": 0}),
]


def summary(trace: Trace, design, costs: CostModel | None = None, **kw) -> dict:
    return ExactSimulation(trace, design, costs, **kw).run().summary()


@pytest.fixture(scope="module")
def words() -> dict[int, tuple[int, int, int, int]]:
    return {s: load_test_key(s).mrsigner.words for s in range(64)}


# --------------------------------------------------------------------------- fault-free properties


@pytest.mark.parametrize("name, params", FAULT_FREE)
def test_fault_free_properties(name, params):
    tr = make_trace(name, params, seed=11)
    pc = summary(tr, "percpu-cache")
    pcp = summary(tr, "percpu-cache:percpu")
    rc = summary(tr, "read-compare")
    aw = summary(tr, "always-write")
    assert pc["wrmsr"] == rc["wrmsr"] == pcp["wrmsr"] > 0
    assert pc["rdmsr"] == 0 and pcp["rdmsr"] == 0
    assert rc["rdmsr"] == 4 * rc["einit"] and rc["einit"] == tr.launches
    assert aw["wrmsr"] == 4 * aw["einit"] and aw["rdmsr"] == 0
    for s in (pc, pcp, rc, aw):
        assert s["failures"] == {} and s["retries"] == 0 and s["launches"] == tr.launches
    assert rc["wrmsr"] < aw["wrmsr"]
    # percpu-cache-retry never needs its retry without S3
    assert summary(tr, "percpu-cache-retry")["retries"] == 0


# --------------------------------------------------------------------------- S3: stale caches


def wanted(tr: Trace, words) -> list[tuple[int, int, tuple[int, ...]]]:
    """Per row: (kind, cpu, the words the host must load) for launches; vCPU virtual hashes tracked."""
    virt = {
        (j, k): (words[v.lehash] if v.lehash >= 0 else INTEL) for j, v in enumerate(tr.vms) for k in range(v.nvcpus)
    }
    out = []
    for k, c, v, vc, s in zip(tr.kind.tolist(), tr.cpu.tolist(), tr.vm.tolist(), tr.vcpu.tolist(), tr.signer.tolist()):
        if k == LAUNCH:
            if v < 0:
                w = words[s]
            else:
                if tr.vms[v].lewr:
                    virt[(v, vc)] = words[s]
                w = virt[(v, vc)]
            out.append((k, c, w))
        else:
            out.append((k, c, ()))
    return out


def expected_stale(tr: Trace, words, *, retry: bool) -> list[int]:
    """Indices (in launch order) of launches whose CPU's cache was stale: after the
    cached update the hardware still differs from what EINIT needs."""
    hw = {c: list(INTEL) for c in range(tr.ncpus)}
    cache = {c: list(INTEL) for c in range(tr.ncpus)}
    stale = []
    n = 0
    for k, c, w in wanted(tr, words):
        if k == S3:
            hw = {c: list(INTEL) for c in range(tr.ncpus)}
        elif k == LAUNCH:
            for i in range(4):
                if cache[c][i] != w[i]:
                    hw[c][i] = cache[c][i] = w[i]
            if hw[c] != list(w):
                stale.append(n)
                if retry:
                    hw[c] = list(w)
            n += 1
    return stale


@pytest.mark.parametrize("name, params", WITH_S3)
def test_s3_percpu_cache_fails_exactly_the_stale_launches(name, params, words):
    tr = make_trace(name, params, seed=3)
    sim = ExactSimulation(tr, "percpu-cache", records=True).run()
    failed = [i for i, r in enumerate(sim.launch_records()) if r.code]
    expect = expected_stale(tr, words, retry=False)
    assert failed == expect and len(expect) > 0
    assert sim.summary()["failures"] == {"SGX_INVALID_EINITTOKEN": len(expect)}

    retry = summary(tr, "percpu-cache-retry")
    n_retry = len(expected_stale(tr, words, retry=True))
    assert retry["failures"] == {} and retry["retries"] == n_retry > 0
    assert retry["einit"] == tr.launches + n_retry
    for d in ("read-compare", "always-write"):
        assert summary(tr, d)["failures"] == {}


def test_failures_are_real_einit_results_with_reasons():
    tr = make_trace("suspend-resume", {"launches": 400, "s3": 3, "cpus": 2, "signers": 2}, seed=1)
    res = ExactSimulation(tr, "percpu-cache", records=True).run()
    recs = [r for r in res.launch_records() if r.code]
    assert recs and all(r.code == int(SgxError.SGX_INVALID_EINITTOKEN) == 16 for r in recs)
    assert all(r.name == "SGX_INVALID_EINITTOKEN" for r in recs)
    assert all("IA32_SGXLEPUBKEYHASH" in r.reason and "token-less launch" in r.reason for r in recs)
    ok = [r for r in res.launch_records() if not r.code]
    assert all(r.name == "SUCCESS" and "initialized on CPU" in r.reason for r in ok)
    assert "SGX_INVALID_EINITTOKEN" in res.failure_examples()


def test_einit_really_checks_the_measurement():
    """Swap signer 0's image for another enclave: EINIT refuses it (MRENCLAVE ≠ ENCLAVEHASH)."""
    tr = Trace.from_rows([(0, LAUNCH, 0, -1, -1, 0), (10, LAUNCH, 0, -1, -1, 1)], ncpus=1, nsigners=2)
    sim = ExactSimulation(tr, "always-write")
    assert sim.images[0].enclave.mrenclave() == sim.platform.siginfo(sim.images[0].sigstruct).sig.enclavehash
    other = build_enclave([Page(0, data=b"not the signed image")])
    sim._fork[0] = other.fork
    s = sim.run().summary()
    assert s["failures"] == {"SGX_INVALID_MEASUREMENT": 1}
    assert "MRENCLAVE" in sim.failure_examples()["SGX_INVALID_MEASUREMENT"]


# --------------------------------------------------------------------------- eager-load


def test_eager_load_writes_grow_with_schedule_ins_not_launches():
    vms = (VmSpec(1, False, 0), VmSpec(1, False, 1))

    def trace(nsched: int, per_slice: int) -> Trace:
        rows = []
        for k in range(nsched):
            t0 = k * 1_000_000
            rows.append((t0, SCHED, 0, k % 2, 0, -1))
            rows += [(t0 + 1 + 1000 * j, LAUNCH, 0, k % 2, 0, k % 2) for j in range(per_slice)]
        return Trace.from_rows(rows, ncpus=1, nsigners=2, vms=vms)

    a = summary(trace(10, 2), "eager-load")
    b = summary(trace(10, 20), "eager-load")
    c = summary(trace(40, 2), "eager-load")
    assert a["launches"] * 10 == b["launches"] and a["wrmsr"] == b["wrmsr"] == 4 * 10
    assert c["wrmsr"] == 4 * c["schedule_ins"] == 160
    assert a["encls_exits"] == 0 and a["failures"] == {}
    # the other designs pay per launch instead
    assert summary(trace(10, 20), "always-write")["wrmsr"] == 4 * b["launches"]


def test_eager_load_counts_on_a_generated_workload():
    tr = make_trace("mixed", {"launches": 800, "nolewr": 1, "vms": 3}, seed=2)
    s = summary(tr, "eager-load")
    host = int(np.count_nonzero((tr.kind == LAUNCH) & (tr.vm == -1)))
    lewr_vms = [j for j, v in enumerate(tr.vms) if v.lewr]
    lewr_launches = int(np.count_nonzero((tr.kind == LAUNCH) & np.isin(tr.vm, lewr_vms)))
    assert s["wrmsr"] == 4 * (s["schedule_ins"] + host + lewr_launches)
    assert s["msr_exits"] == 4 * lewr_launches and s["encls_exits"] == 0
    assert s["overhead_cycles"] >= 4 * s["schedule_ins"] * CostModel().wrmsr_lehash


def test_s3_resume_reloads_the_running_vcpu():
    """S3 resets the MSRs, then the frozen vCPU thread runs again: a schedule-in
    (kvm_sched_in) that, under eager-load, writes its words back."""
    vms = (VmSpec(1, False, 1),)
    rows = [
        (0, SCHED, 0, 0, 0, -1),
        (10, LAUNCH, 0, 0, 0, 1),
        (20, S3, -1, -1, -1, -1),
        (30, LAUNCH, 0, 0, 0, 1),  # hardware holds the vCPU's words again: native EINIT succeeds
        (40, SCHED, 0, 0, 0, -1),
        (50, LAUNCH, 0, 0, 0, 1),
    ]
    tr = Trace.from_rows(rows, ncpus=1, nsigners=2, vms=vms)
    sim = ExactSimulation(tr, "eager-load", records=True).run()
    assert [r.code for r in sim.launch_records()] == [0, 0, 0]
    s = sim.summary()
    w = CostModel().wrmsr_lehash
    assert s["schedule_ins"] == 3 and s["wrmsr"] == 12 and s["overhead_cycles"] == 12 * w
    assert summary(tr, "always-write")["failures"] == {}
    # A trapping design's vcpu_load does nothing: the per-CPU cache stays stale.
    pc = summary(tr, "percpu-cache")
    assert pc["schedule_ins"] == 3 and pc["failures"] == {"SGX_INVALID_EINITTOKEN": 2}


def test_s3_reload_order_and_user_hooks():
    """The design sees s3_resume, then on_epc_loss, then one vcpu_load per CPU
    with a current vCPU, by CPU, each with that vCPU's words; a CPU whose vCPU
    moved away gets none."""
    calls: list[tuple] = []

    class Spy(AlwaysWrite):
        name = "spy"

        def vcpu_load(self, cpu, words):
            calls.append(("load", cpu.index, words))

        def on_epc_loss(self):
            calls.append(("epc",))

    vms = (VmSpec(2, True, 0), VmSpec(1, False, 1))
    rows = [
        (0, SCHED, 2, 0, 0, -1),
        (0, SCHED, 1, 1, 0, -1),
        (0, SCHED, 0, 0, 1, -1),
        (1, LAUNCH, 2, 0, 0, 2),  # vm0/0's virtual hash is now signer 2
        (2, SCHED, 3, 0, 1, -1),  # vm0/1 leaves CPU 0 for CPU 3
        (3, S3, -1, -1, -1, -1),
    ]
    tr = Trace.from_rows(rows, ncpus=4, nsigners=3, vms=vms)
    sim = ExactSimulation(tr, Spy)
    sim.step(5)
    calls.clear()
    sim.step(1)
    words = {s: img.mrsigner_words for s, img in sim.images.items()}
    assert calls == [("epc",), ("load", 1, words[1]), ("load", 2, words[2]), ("load", 3, words[0])]
    assert sim.summary()["schedule_ins"] == 4 + 3


def test_s3_reloads_survive_stepping():
    tr = make_trace("multi-tenant", {"launches": 1500, "cpus": 3, "s3": 7, "slice": 150_000}, seed=8)
    whole = summary(tr, "eager-load")
    assert whole["schedule_ins"] > int(np.count_nonzero(tr.kind == SCHED))
    sim = ExactSimulation(tr, "eager-load")
    while not sim.done:
        sim.step(13)
    assert sim.summary() == whole


# --------------------------------------------------------------------------- timing


def test_timing_queueing_and_overhead_by_hand():
    costs = CostModel()
    # two host launches on CPU 0 at the same time, one on CPU 1
    rows = [(0, LAUNCH, 0, -1, -1, 0), (0, LAUNCH, 0, -1, -1, 0), (0, LAUNCH, 1, -1, -1, 0)]
    tr = Trace.from_rows(rows, ncpus=2, nsigners=1)
    e, w = costs.einit, costs.wrmsr_lehash
    aw = ExactSimulation(tr, "always-write", records=True).run()
    s1 = 4 * w + e
    assert aw.latency_array().tolist() == [s1, 2 * s1, s1]
    assert aw.summary()["overhead_cycles"] == 3 * 4 * w  # per-CPU queueing is not overhead
    df = aw.records_frame()
    assert df["queue_wait"].tolist() == [0, s1, 0] and df["lock_wait"].tolist() == [0, 0, 0]
    # percpu-cache with a global lock: all three in one queue
    pc = ExactSimulation(tr, "percpu-cache", records=True).run()
    first = 4 * w + costs.lock + e  # cache at Intel's: 4 writes
    rest = costs.lock + e  # cache hit
    assert pc.latency_array().tolist() == [first, first + rest, first + 2 * rest + 4 * w]
    lw = pc.records_frame()["lock_wait"].tolist()
    assert lw == [0, first, first + rest]
    assert pc.summary()["overhead_cycles"] == 3 * costs.lock + 8 * w + sum(lw)
    assert pc.summary()["latency_cycles"] == {
        "mean": (3 * first + 3 * rest + 4 * w) / 3,
        "p50": first + rest,
        "p99": first + 2 * rest + 4 * w,
        "max": first + 2 * rest + 4 * w,
    }


def test_guest_launch_service_components():
    costs = CostModel().with_overrides({"encls_trap": 1000, "vm_exit": 100, "rdmsr_lehash": 7})
    vms = (VmSpec(1, True, 0),)
    tr = Trace.from_rows([(0, SCHED, 0, 0, 0, -1), (5, LAUNCH, 0, 0, 0, 1)], ncpus=1, nsigners=2, vms=vms)
    sim = ExactSimulation(tr, "read-compare", costs, records=True).run()
    (r,) = sim.launch_records()
    assert (r.trap_cycles, r.msr_exit_cycles, r.lock_cycles) == (1000, 400, 0)
    assert (r.rdmsr, r.wrmsr, r.msr_cycles) == (4, 4, 4 * 7 + 4 * 400)
    assert r.latency == 1000 + 400 + 4 * 7 + 4 * 400 + 60_000
    s = sim.summary()
    assert s["encls_exits"] == 1 and s["msr_exits"] == 4 and s["schedule_ins"] == 1
    assert s["sched_cycles"] == costs.vcpu_load + costs.context_switch
    assert s["overhead_cycles"] == r.latency - 60_000


# --------------------------------------------------------------------------- records, memory, API


def test_records_columns_and_default_limit(monkeypatch):
    tr = make_trace("workshop", {"launches": 300}, seed=4)
    sim = ExactSimulation(tr, "read-compare").run()
    df = sim.records_frame()
    assert list(df.columns) == list(RECORD_COLUMNS) == list(LAUNCH_RECORDS.names) and len(df) == 300
    assert [str(t) for t in df.dtypes] == [c.dtype for c in LAUNCH_RECORDS.columns]
    assert (df["design"] == "read-compare").all() and df["latency"].tolist() == sim.latency_array().tolist()
    assert (df["outcome"] == "launched").all() and (df["step"] == "commit").all()
    assert isinstance(sim.launch_records()[0], LaunchRecord)
    assert [f.name for f in dataclasses.fields(LaunchRecord)] == list(RECORD_COLUMNS)
    assert [dataclasses.asdict(r) for r in sim.launch_records()] == df.astype(object).to_dict("records")
    with pytest.raises(AttributeError):
        sim.launch_records()[0].cpu = 3  # type: ignore[misc]
    monkeypatch.setattr(exact, "RECORDS_DEFAULT_MAX", 100)
    big = ExactSimulation(tr, "read-compare").run()
    with pytest.raises(ConfigError, match="records=True"):
        big.records_frame()
    assert big.latency_array().dtype == np.int64 and len(big.latency_array()) == 300
    assert ExactSimulation(tr, "read-compare", records=True).run().records_frame().shape[0] == 300


def test_determinism_and_two_simulations_coexisting():
    a_tr = make_trace("workshop", seed=1)
    b_tr = make_trace("suspend-resume", {"launches": 500}, seed=2)
    alone_a = summary(a_tr, "percpu-cache")
    alone_b = summary(b_tr, "percpu-cache-retry")
    assert alone_a == summary(make_trace("workshop", seed=1), "percpu-cache")
    sa = ExactSimulation(a_tr, "percpu-cache")
    sb = ExactSimulation(b_tr, "percpu-cache-retry")
    while not (sa.done and sb.done):
        sa.step(37)
        sb.step(101)
    assert sa.summary() == alone_a and sb.summary() == alone_b
    assert sa.platform is not sb.platform and sa.design is not sb.design


def test_signature_verification_is_memoized_but_msr_checks_are_not(monkeypatch):
    import sgxlab.hw.siginfo

    tr = make_trace("host-only", {"launches": 300, "signers": 3}, seed=1)
    sim = ExactSimulation(tr, "always-write")
    other = ExactSimulation(tr, "read-compare")
    for s in sim.images:  # each signer's check is made once per process and shared
        assert sim._info[s] is other._info[s] and sim._info[s].check.ok
        assert other.images[s].enclave is not sim.images[s].enclave  # each run forks its own image

    def boom(*a):
        raise AssertionError("RSA verification during the run")

    monkeypatch.setattr(sgxlab.hw.siginfo, "verify_sigstruct", boom)
    assert sim.run().summary()["failures"] == {}
    monkeypatch.undo()
    # the MSR check runs every time: break a CPU's MSRs behind the design's back
    tr2 = Trace.from_rows([(0, LAUNCH, 0, -1, -1, 0), (1, LAUNCH, 0, -1, -1, 0)], ncpus=1, nsigners=1)

    class Sloppy(Design):
        name = "sloppy"
        first = True

        def update_lepubkeyhash(self, cpu, words):
            if self.first:
                super().update_lepubkeyhash(cpu, words)
                self.first = False
            else:
                cpu.wrmsr(MSR_IA32_SGXLEPUBKEYHASH[0], 0)

    assert summary(tr2, Sloppy)["failures"] == {"SGX_INVALID_EINITTOKEN": 1}


def test_a_user_design_in_a_few_lines():
    class WriteTwice(AlwaysWrite):
        name = "write-twice"

        def update_lepubkeyhash(self, cpu, words):
            super().update_lepubkeyhash(cpu, words)
            super().update_lepubkeyhash(cpu, words)

    tr = make_trace("workshop", {"launches": 200}, seed=2)
    s = summary(tr, WriteTwice)
    assert s["wrmsr"] == 8 * s["einit"] and s["failures"] == {}
    base = summary(tr, AlwaysWrite)
    w = CostModel().wrmsr_lehash
    assert s["overhead_cycles"] == base["overhead_cycles"] + 4 * w * s["launches"]


def test_percpu_cache_lock_variants():
    tr = make_trace("host-only", {"launches": 400, "interval": 50_000}, seed=3)
    g = ExactSimulation(tr, "percpu-cache:global", records=True).run()
    p = ExactSimulation(tr, PerCpuCache.with_lock("percpu"), records=True).run()
    assert g.design_name == "percpu-cache" and p.design_name == "percpu-cache:percpu"
    assert g.summary()["wrmsr"] == p.summary()["wrmsr"]
    assert g.records_frame()["lock_wait"].sum() > 0 and p.records_frame()["lock_wait"].sum() == 0
    assert g.summary()["latency_cycles"]["mean"] > p.summary()["latency_cycles"]["mean"]
    with pytest.raises(ConfigError, match="unknown option 'spin'"):
        ExactSimulation(tr, "percpu-cache:spin")
    with pytest.raises(ConfigError, match="lock='spin'"):
        ExactSimulation(tr, "percpu-cache:lock=spin")
    with pytest.raises(ConfigError, match="unknown design"):
        ExactSimulation(tr, "nope")


def test_bypasses_under_a_host_only_policy():
    tr = make_trace("mixed", {"launches": 400, "policy": "host-only"}, seed=5)
    s = summary(tr, "always-write")
    guest_launches = int(np.count_nonzero((tr.kind == LAUNCH) & (tr.vm >= 0)))
    assert s["bypasses"] == guest_launches > 0  # guests launch only non-host signers
    assert s["refusals"] == 0 and s["vms_refused"] == 0  # the host launches only its own signers
    assert summary(make_trace("mixed", {"launches": 400}, seed=5), "always-write")["bypasses"] == 0


def test_summary_keys_and_eager_load_and_read_compare_host_rdmsr():
    tr = make_trace("workshop", {"launches": 200}, seed=1)
    s = summary(tr, ReadCompare)
    assert list(s) == [
        "launches", "einit", "failures", "retries", "wrmsr", "rdmsr", "schedule_ins", "encls_exits",
        "msr_exits", "exits", "s3_events", "latency_cycles", "overhead_cycles", "sched_cycles",
        "exit_cycles", "bypasses", "refusals", "gate_refusals", "vms_refused",
    ]  # fmt: skip
    assert isinstance(s["latency_cycles"]["mean"], float) and isinstance(s["latency_cycles"]["p99"], int)
    assert summary(tr, EagerLoad)["rdmsr"] == 0
    empty = Trace.from_rows([], ncpus=1, nsigners=0)
    e = summary(empty, "always-write")
    assert e["launches"] == 0 and e["latency_cycles"] == {"mean": 0.0, "p50": 0, "p99": 0, "max": 0}
