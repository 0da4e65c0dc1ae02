"""Three faithfulness corrections, in both engines with identical numbers.

1. The 2019 per-CPU cache started at zero (``[PATCH v23 10/24]``, Message-Id
   20191028210324.12475-11-jarkko.sakkinen@linux.intel.com: an uninitialised
   ``DEFINE_PER_CPU(u64 [4], sgx_lepubkeyhash_cache)``), so a word equal to 0
   is never written; ``initial=intel`` is the alternative.
2. percpu-cache-retry has no global lock (v23 and v35 ``sgx_einit`` use
   ``preempt_disable()`` only); Andy's 2017 percpu-cache keeps its mutex.
3. The host retries EINIT on SGX_UNMASKED_EVENT (``sgx_encl_init``: 20 tries x
   50 passes, MSRs rewritten before each); KVM's ``sgx_virt_einit`` does not,
   the guest's own driver loop does, one trapped EINIT per try.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import simref
from simref import BUILTIN_DESIGNS, random_costs, random_trace, reference, with_interrupts

from sgxlab.errors import ConfigError
from sgxlab.host.designs import (
    AlwaysWrite,
    EagerLoad,
    PerCpuCache,
    PerCpuCacheRetry,
    ReadCompare,
    design_class,
)
from sgxlab.hw.arch import INTEL_LEPUBKEYHASH
from sgxlab.hw.platform import Platform
from sgxlab.sim import exact, fast
from sgxlab.sim.costs import CostModel, check_int64_budget
from sgxlab.sim.exact import ExactSimulation
from sgxlab.sim.result import RunConfig
from sgxlab.sim.run import design_ref, replay, resolve_design, run
from sgxlab.sim.trace import LAUNCH, MAX_EINIT_ATTEMPTS, S3, SCHED, Trace, VmSpec
from sgxlab.sim.workloads import WORKLOADS, make_trace, parse_trace_csv, workload_params

INTEL = INTEL_LEPUBKEYHASH.words
C = CostModel()
CACHE_VARIANTS = [
    "percpu-cache",
    "percpu-cache:percpu",
    "percpu-cache:initial=intel",
    "percpu-cache:lock=percpu,initial=intel",
    "percpu-cache-retry",
    "percpu-cache-retry:global",
    "percpu-cache-retry:initial=intel",
]


def both(trace: Trace, design, costs: CostModel | None = None) -> dict:
    """Exact and fast must agree; return the summary."""
    want = exact.simulate(trace, design, costs)
    got = fast.simulate(trace, design, costs)
    assert got == want, {k: (got[k], want[k]) for k in want if got.get(k) != want[k]}
    return got


# --------------------------------------------------------------------------- 1. the cache starts at zero


def test_a_zero_word_is_never_written_and_the_first_einit_sees_intels_word():
    p = Platform(1)
    cpu = p.cpu(0)
    zero = PerCpuCache(p)
    zero.update_lepubkeyhash(cpu, (0, 2, 0, 4))
    assert cpu.hash_wr == 2 and cpu.lehash_words == (INTEL[0], 2, INTEL[2], 4)
    q = Platform(1)
    PerCpuCache.variant(initial="intel")(q).update_lepubkeyhash(q.cpu(0), (0, 2, 0, 4))
    assert q.cpu(0).hash_wr == 4 and q.cpu(0).lehash_words == (0, 2, 0, 4)


def _fake_keys(monkeypatch, fake):
    def fake_key(i):
        return SimpleNamespace(mrsigner=SimpleNamespace(words=fake[i]))

    monkeypatch.setattr(fast, "signer_words", lambda n: list(fake[:n]))
    monkeypatch.setattr(simref, "load_test_key", fake_key)


def test_fast_engine_models_the_zero_cache_word_by_word(monkeypatch):
    """A signer with zero words (test keys have none; the model handles it anyway)."""
    _fake_keys(monkeypatch, [(0, 2, 0, INTEL[3]), (5, 6, 7, 8)])
    rows = [(0, LAUNCH, 0, -1, -1, 0), (10**6, LAUNCH, 0, -1, -1, 0), (2 * 10**6, LAUNCH, 0, -1, -1, 1)]
    tr = Trace.from_rows(rows, ncpus=1, nsigners=2)
    out = {d: fast.simulate(tr, d) for d in CACHE_VARIANTS}
    for d, s in out.items():
        assert s == reference(tr, design_class(d), C), d
    # zero cache: words 0 and 2 are never written, so H keeps Intel's words there
    assert out["percpu-cache"]["wrmsr"] == 2 + 0 + 4
    assert out["percpu-cache"]["failures"] == {"SGX_INVALID_EINITTOKEN": 2}, "and the cache never learns"
    rt = out["percpu-cache-retry"]
    assert (rt["wrmsr"], rt["retries"], rt["einit"], rt["failures"]) == (2 + 4 + 0 + 4, 1, 4, {})
    # Intel-initialised cache: word 3 already "right", words 0-2 written
    assert out["percpu-cache:initial=intel"]["wrmsr"] == 3 + 0 + 4
    assert out["percpu-cache:initial=intel"]["failures"] == {}


def test_test_keys_have_no_zero_word_so_workshop_numbers_do_not_move():
    words = [w for ws in fast.signer_words(64) for w in ws]
    assert 0 not in words and not set(words) & set(INTEL)
    tr = make_trace("workshop", seed=0)
    for d in ("percpu-cache", "percpu-cache-retry"):
        zero, intel = both(tr, d), both(tr, design_class(d).variant(initial="intel"))
        assert zero == intel, d


# --------------------------------------------------------------------------- 2. no global lock in 2019


def test_percpu_cache_retry_queues_per_cpu_and_its_global_variant_does_not():
    rows = [(0, LAUNCH, 0, -1, -1, 0), (0, LAUNCH, 1, -1, -1, 1)]
    tr = Trace.from_rows(rows, ncpus=2, nsigners=2)
    s1 = C.lock + 4 * C.wrmsr_lehash + C.einit
    per = both(tr, "percpu-cache-retry")
    glob = both(tr, "percpu-cache-retry:global")
    assert per["latency_cycles"]["max"] == s1 and glob["latency_cycles"]["max"] == 2 * s1
    assert glob["overhead_cycles"] == per["overhead_cycles"] + s1, "a global lock's wait is overhead"
    assert both(tr, "percpu-cache")["latency_cycles"]["max"] == 2 * s1, "Andy's 2017 mutex stays"


# --------------------------------------------------------------------------- variants round-trip


@pytest.mark.parametrize("name", CACHE_VARIANTS)
def test_variants_round_trip_through_run_config(name, tmp_path):
    cls = resolve_design(name)
    assert resolve_design(design_ref(cls)) is cls
    r = run(design=name, workload="suspend-resume", params={"launches": 150}, engine="fast")
    path = tmp_path / "run.toml"
    r.config.save(path)
    cfg = RunConfig.load(path)
    assert resolve_design(cfg.design) is cls
    again = replay(cfg)
    assert again.summary() == r.summary()
    assert r.summary()["design"] == design_ref(cls)


# --------------------------------------------------------------------------- 3. interrupts during EINIT


def test_host_launch_attempts_by_hand():
    rows = [
        (0, LAUNCH, 0, -1, -1, 0, 2),  # two tries interrupted, the third runs through
        (10**7, LAUNCH, 0, -1, -1, 0, 0),
        (2 * 10**7, LAUNCH, 0, -1, -1, 1, MAX_EINIT_ATTEMPTS),  # every try interrupted
    ]
    tr = Trace.from_rows(rows, ncpus=1, nsigners=2)
    aw = both(tr, AlwaysWrite)
    assert (aw["einit"], aw["retries"], aw["wrmsr"]) == (3 + 1 + 1000, 2 + 0 + 999, 4 * 1004)
    assert aw["failures"] == {"SGX_UNMASKED_EVENT": 1}
    assert aw["latency_cycles"]["p50"] == 3 * C.einit + 12 * C.wrmsr_lehash
    assert aw["latency_cycles"]["max"] == 1000 * (C.einit + 4 * C.wrmsr_lehash)
    assert aw["overhead_cycles"] == 4 * 1004 * C.wrmsr_lehash, "interrupted EINITs are EINIT, not overhead"
    rc = both(tr, ReadCompare)
    assert (rc["rdmsr"], rc["wrmsr"]) == (4 * 1004, 4 + 0 + 4), "every try reads; only the first writes"
    pc = both(tr, PerCpuCache)
    assert (pc["wrmsr"], pc["einit"]) == (8, 1004)
    assert pc["overhead_cycles"] == 1004 * C.lock + 8 * C.wrmsr_lehash, "the lock is taken on every try"
    for label, d in BUILTIN_DESIGNS:
        assert both(tr, d) == reference(tr, d, C), label


def test_interrupts_and_a_stale_cache():
    """The 2019 retry runs on the try that got through; a launch whose every try
    was interrupted never reaches the token check, so it does not repair the MSRs."""
    rows = [
        (0, LAUNCH, 0, -1, -1, 0, 0),
        (10**7, S3, -1, -1, -1, -1, 0),
        (2 * 10**7, LAUNCH, 0, -1, -1, 0, 2),  # stale: tries 1-2 interrupted, 3 says 16, forced retry
        (3 * 10**7, S3, -1, -1, -1, -1, 0),
        (4 * 10**7, LAUNCH, 0, -1, -1, 0, MAX_EINIT_ATTEMPTS),  # stale, but cut short: 128
        (5 * 10**7, LAUNCH, 0, -1, -1, 0, 0),  # still stale: the retry repairs it now
    ]
    tr = Trace.from_rows(rows, ncpus=1, nsigners=1)
    rt = both(tr, PerCpuCacheRetry)
    assert rt["failures"] == {"SGX_UNMASKED_EVENT": 1}
    assert (rt["einit"], rt["retries"], rt["wrmsr"]) == (1 + 4 + 1000 + 2, 2 + 1 + 999 + 1, 4 + 4 + 0 + 4)
    pc = both(tr, PerCpuCache)
    assert pc["failures"] == {"SGX_INVALID_EINITTOKEN": 2, "SGX_UNMASKED_EVENT": 1}
    for label, d in BUILTIN_DESIGNS:
        assert both(tr, d) == reference(tr, d, C), label
    recs = ExactSimulation(tr, PerCpuCacheRetry, records=True).run().launch_records()
    assert [(r.einits, r.retries, r.unmasked, r.code) for r in recs] == [
        (1, 0, 0, 0),
        (4, 3, 2, 0),  # the design's own retry is retries - unmasked = 1
        (1000, 999, 1000, 128),
        (2, 1, 0, 0),
    ]


def test_guest_attempts_are_trapped_einits_and_rewrites():
    vms = (VmSpec(1, lewr=True, lehash=-1), VmSpec(1, lewr=False, lehash=1))
    rows = [
        (0, SCHED, 0, 0, 0, -1, 0),
        (0, SCHED, 1, 1, 0, -1, 0),
        (10, LAUNCH, 0, 0, 0, 0, 2),  # lewr guest: 3 passes of its driver loop
        (20, LAUNCH, 1, 1, 0, 1, 1),  # no lewr: 2 passes, no guest WRMSR
    ]
    tr = Trace.from_rows(rows, ncpus=2, nsigners=2, vms=vms)
    aw = both(tr, AlwaysWrite)
    assert (aw["encls_exits"], aw["msr_exits"], aw["einit"], aw["retries"]) == (5, 12, 5, 3)
    assert aw["wrmsr"] == 4 * 5 and aw["failures"] == {}
    lewr_latency = 3 * (C.encls_trap + 4 * C.vm_exit + 4 * C.wrmsr_lehash + C.einit)
    assert aw["latency_cycles"]["max"] == lewr_latency
    eg = both(tr, EagerLoad)
    assert (eg["encls_exits"], eg["msr_exits"], eg["einit"]) == (0, 12, 5)
    assert eg["wrmsr"] == 4 * 2 + 4 * 3, "two schedule-ins, and the passthrough on each of the 3 passes"
    for label, d in BUILTIN_DESIGNS:
        assert both(tr, d) == reference(tr, d, C), label


@pytest.mark.parametrize("workload", list(WORKLOADS))
@pytest.mark.parametrize("rate", [0.05, 0.4, 0.9])
def test_engines_agree_with_interrupts_on_every_workload(workload, rate):
    names = {p["name"] for p in workload_params(workload)}
    params = {"launches": 120, "unmasked_rate": rate}
    if "s3" in names:
        params["s3"] = 2
    tr = make_trace(workload, params, seed=3)
    assert tr.interrupted
    rng = np.random.default_rng(int(rate * 100))
    costs = random_costs(rng)
    for label, d in BUILTIN_DESIGNS:
        got = both(tr, d, costs)
        assert got["einit"] == got["launches"] - got["refusals"] + got["retries"], label
        assert got["refusals"] == 0  # every workload's default policy is allow-all
        assert got["retries"] >= tr.interrupted_attempts() - 999 * got["failures"].get("SGX_UNMASKED_EVENT", 0)


def test_engines_agree_when_every_attempt_is_interrupted():
    tr = make_trace("workshop", {"launches": 12, "unmasked_rate": 1.0}, seed=2)
    assert set(tr.unmasked[tr.kind == LAUNCH].tolist()) == {MAX_EINIT_ATTEMPTS}
    for label, d in BUILTIN_DESIGNS:
        s = both(tr, d)
        assert s["failures"] == {"SGX_UNMASKED_EVENT": 12} and s["einit"] == 12_000, label
        assert s["bypasses"] == 0


@pytest.mark.parametrize("chunk", range(4))
def test_exact_fast_and_reference_agree_on_adversarial_traces_with_interrupts(chunk):
    for seed in range(chunk * 8, chunk * 8 + 8):
        rng = np.random.default_rng(31_000 + seed)
        tr = with_interrupts(random_trace(rng, nevents=int(rng.integers(0, 120))), rng)
        costs = random_costs(rng)
        for label, d in BUILTIN_DESIGNS:
            assert both(tr, d, costs) == reference(tr, d, costs), (seed, label)


def test_exact_engine_switches_loops_per_chunk():
    """Rows without interrupts run the plain loop; the answer does not depend on chunking."""
    tr = make_trace("mixed", {"launches": 300, "unmasked_rate": 0.02, "s3": 2}, seed=4)
    for label, d in BUILTIN_DESIGNS:
        whole = ExactSimulation(tr, d).run()
        parts = ExactSimulation(tr, d)
        while not parts.step(7):
            pass
        assert parts.summary() == whole.summary(), label


# --------------------------------------------------------------------------- workloads and traces


def test_rate_zero_leaves_the_trace_as_it_was_and_a_rate_only_adds_the_column():
    for name in WORKLOADS:
        plain = make_trace(name, {"launches": 200}, seed=9)
        zero = make_trace(name, {"launches": 200, "unmasked_rate": 0.0}, seed=9)
        some = make_trace(name, {"launches": 200, "unmasked_rate": 0.3}, seed=9)
        assert plain.unmasked is None and zero.unmasked is None and some.unmasked is not None
        for col in ("t", "kind", "cpu", "vm", "vcpu", "signer"):
            assert np.array_equal(getattr(plain, col), getattr(some, col)), (name, col)
        assert np.all(some.unmasked[some.kind != LAUNCH] == 0)
        again = make_trace(name, {"launches": 200, "unmasked_rate": 0.3}, seed=9)
        assert np.array_equal(some.unmasked, again.unmasked), "deterministic"
        assert plain.params["unmasked_rate"] == 0.0


def test_the_draws_are_geometric():
    tr = make_trace("host-only", {"launches": 50_000, "unmasked_rate": 0.25}, seed=1)
    u = tr.unmasked[tr.kind == LAUNCH]
    assert abs(u.mean() - 0.25 / 0.75) < 0.02 and abs((u == 0).mean() - 0.75) < 0.01


def test_the_rate_is_a_documented_bounded_parameter():
    for name in WORKLOADS:
        (p,) = [p for p in workload_params(name) if p["name"] == "unmasked_rate"]
        assert p["default"] == 0.0 and p["min"] == 0.0 and p["max"] == 1.0 and "SGX_UNMASKED_EVENT" in p["doc"]
    with pytest.raises(ConfigError, match="unmasked_rate=1.5: must be at most 1"):
        make_trace("host-only", {"unmasked_rate": 1.5})
    with pytest.raises(ConfigError, match="unmasked_rate=-0.1: must be at least 0"):
        make_trace("host-only", {"unmasked_rate": -0.1})


CSV = """#@ cpus=2
#@ vm=0 vcpus=1 lewr=yes
t,kind,cpu,vm,vcpu,signer,unmasked
0,sched,1,0,0,,
10,launch,0,,,0,3
20,launch,1,0,0,1,
30,s3,,,,,0
"""


OLD_CSV = """#@ cpus=2
t,kind,cpu,vm,vcpu,signer
0,sched,1,0,0,
10,launch,0,,,0
20,launch,1,0,0,1
30,s3,,,,
"""


def test_csv_traces_may_carry_the_column():
    tr = parse_trace_csv(CSV)
    assert tr.unmasked is not None and tr.unmasked.tolist() == [0, 3, 0, 0]
    for label, d in BUILTIN_DESIGNS:
        assert both(tr, d)["einit"] == 2 + 3, label
    old = parse_trace_csv(OLD_CSV)
    assert old.unmasked is None and old.launches == 2
    with pytest.raises(ConfigError, match=r"line 4 unmasked=2: only a launch"):
        parse_trace_csv(CSV.replace("0,sched,1,0,0,,", "0,sched,1,0,0,,2"))
    with pytest.raises(ConfigError, match=r"line 5, column unmasked=1001: must be in \[0, 1000\]"):
        parse_trace_csv(CSV.replace("10,launch,0,,,0,3", "10,launch,0,,,0,1001"))
    with pytest.raises(ConfigError, match="unknown column; .*optionally unmasked"):
        parse_trace_csv(CSV.replace("unmasked", "interrupts"))


def test_trace_rules_for_the_column():
    rows = [(0, LAUNCH, 0, -1, -1, 0, 1), (5, S3, -1, -1, -1, -1, 0)]
    Trace.from_rows(rows, ncpus=1, nsigners=1).validate()
    with pytest.raises(ConfigError, match="row 1 unmasked"):
        Trace.from_rows([rows[0], (5, S3, -1, -1, -1, -1, 1)], ncpus=1, nsigners=1).validate()
    with pytest.raises(ConfigError, match="row 0 unmasked"):
        Trace.from_rows([(0, LAUNCH, 0, -1, -1, 0, -1)], ncpus=1, nsigners=1).validate()
    with pytest.raises(ConfigError, match="every row 7"):
        Trace.from_rows([rows[0], (5, S3, -1, -1, -1, -1)], ncpus=1, nsigners=1)
    tr = Trace.from_rows(rows, ncpus=1, nsigners=1)
    tr.validate()
    with pytest.raises(ValueError):
        tr.unmasked[0] = 3  # frozen with the other columns


def test_int64_budget_counts_the_interrupted_attempts():
    big = CostModel(einit=2**40)
    check_int64_budget(big, 1000, 0)
    with pytest.raises(ConfigError, match="too large"):
        check_int64_budget(big, 1000, 0, interrupted=10_000_000)


# --------------------------------------------------------------------------- the SimPy peer


@pytest.mark.parametrize("seed", range(3))
def test_simpy_peer_agrees_with_interrupts(seed):
    pytest.importorskip("simpy", reason="simpy is not installed (pip install -e '.[test]')")
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    import simpy_model

    rng = np.random.default_rng(77 + seed)
    tr = with_interrupts(random_trace(rng, nevents=int(rng.integers(20, 150))), rng)
    costs = random_costs(rng)
    for label, d in BUILTIN_DESIGNS:
        assert simpy_model.simulate(tr, d, costs) == fast.simulate(tr, d, costs), (seed, label)
    wl = make_trace("mixed", {"launches": 150, "s3": 2, "unmasked_rate": 0.3}, seed=seed)
    for label, d in BUILTIN_DESIGNS:
        assert simpy_model.simulate(wl, d) == fast.simulate(wl, d), (seed, label)
