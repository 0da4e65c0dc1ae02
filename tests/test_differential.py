"""Differential tests: the exact and fast engines give identical summaries.

Issue 5 ("Two engines, one answer"): on the same workload and seed the fast
(numpy) engine must return the very same summary metrics as the exact
(event-by-event, real EINIT) engine. Here every generated workload kind, with
small randomly varied parameters, seeds and cost models, runs through every
built-in design on both engines. The hand-written reference of
``tests/simref.py`` is the third voice on the adversarial random traces.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from simref import BUILTIN_DESIGNS, random_costs, random_trace, reference

from sgxlab.sim import exact, fast
from sgxlab.sim.costs import CostModel
from sgxlab.sim.trace import POLICY_NAMES
from sgxlab.sim.workloads import WORKLOADS, make_trace, workload_params

ROOT = Path(__file__).resolve().parent.parent
WORKLOAD_NAMES = list(WORKLOADS)


def draw_params(rng: np.random.Generator, workload: str) -> dict[str, Any]:
    """Small random parameters for ``workload`` (only the ones it takes)."""
    names = {p["name"] for p in workload_params(workload)}
    vms = int(rng.integers(1, 5))
    cand: dict[str, Any] = {
        "launches": int(rng.integers(0, 260)),
        "cpus": int(rng.integers(1, 5)),
        "signers": int(rng.integers(1, 9)),
        "reuse": float(rng.choice([0.0, 0.5, 0.9])),
        "interval": int(rng.choice([20_000, 100_000, 400_000])),
        "vms": vms,
        "vcpus": int(rng.integers(1, 4)),
        "nolewr": int(rng.integers(0, vms + 1)),
        "signers_per_vm": int(rng.integers(1, 4)),
        "exit_interval": int(rng.choice([0, 50_000, 200_000])),
        "slice": int(rng.choice([150_000, 2_000_000])),
        "stay": float(rng.choice([0.0, 0.25, 0.9])),
        "s3": int(rng.integers(0, 4)),
        "policy": str(rng.choice(POLICY_NAMES)),
        "host_cpus": int(rng.integers(1, 3)),
        "host_signers": int(rng.integers(1, 4)),
        "host_interval": int(rng.choice([50_000, 400_000])),
        "vm_cpus": int(rng.integers(1, 4)),
        "unmasked_rate": float(rng.choice([0.0, 0.0, 0.0, 0.1, 0.5])),  # interrupts during EINIT
    }
    return {k: v for k, v in cand.items() if k in names}


def assert_same(trace, design, costs, label: str) -> dict[str, Any]:
    want = exact.simulate(trace, design, costs)
    got = fast.simulate(trace, design, costs)
    assert got == want, (label, {k: (got[k], want[k]) for k in want if got.get(k) != want[k]})
    return got


@pytest.mark.parametrize("workload", WORKLOAD_NAMES)
@pytest.mark.parametrize("chunk", range(5))
def test_engines_agree_on_random_workloads(workload: str, chunk: int) -> None:
    for sub in range(8):
        seed = chunk * 8 + sub
        rng = np.random.default_rng([WORKLOAD_NAMES.index(workload), seed])
        params = draw_params(rng, workload)
        trace = make_trace(workload, params, seed=seed)
        costs = random_costs(rng)
        for label, design in BUILTIN_DESIGNS:
            assert_same(trace, design, costs, f"{workload} {params} seed={seed} {label}")


@pytest.mark.parametrize("workload", WORKLOAD_NAMES)
def test_engines_agree_on_default_workloads(workload: str) -> None:
    params = {"launches": 1500} if workload != "workshop" else {}
    trace = make_trace(workload, params, seed=11)
    out = {label: assert_same(trace, d, CostModel(), f"{workload} {label}") for label, d in BUILTIN_DESIGNS}
    if workload == "workshop":  # the workshop shows every effect at once
        assert out["percpu-cache:global"]["failures"] and out["percpu-cache-retry"]["retries"]
        assert out["eager-load"]["schedule_ins"] > 0 and out["always-write"]["s3_events"] == 1


def test_engines_agree_with_a_host_only_policy() -> None:
    trace = make_trace("mixed", {"launches": 800, "policy": "host-only", "s3": 2}, seed=5)
    assert trace.policy == "host-only" and trace.allowlist == (0, 1, 2)
    out = {label: assert_same(trace, d, CostModel(), label) for label, d in BUILTIN_DESIGNS}
    assert out["always-write"]["bypasses"] > 0


@pytest.mark.parametrize("policy", POLICY_NAMES)
def test_engines_agree_under_every_policy_parameter(policy: str) -> None:
    """(More in tests/test_sim_policy.py: policy objects on every workload kind.)"""
    trace = make_trace("mixed", {"launches": 600, "policy": policy, "s3": 2, "unmasked_rate": 0.1}, seed=6)
    out = {label: assert_same(trace, d, CostModel(), label) for label, d in BUILTIN_DESIGNS}
    s = out["always-write"]
    refuses = s["refusals"] + s["vms_refused"] > 0
    # mainline refuses only PROVISIONKEY enclaves, and this trace has none: it is allow-all
    assert refuses == (policy not in ("allow-all", "host-only", "mainline"))
    assert (s["bypasses"] > 0) == (policy == "host-only") and not s["gate_refusals"]


def test_engines_agree_on_the_example_csv() -> None:
    path = ROOT / "data" / "traces" / "example.csv"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    trace = make_trace(f"trace:{path}")
    for label, design in BUILTIN_DESIGNS:
        assert_same(trace, design, CostModel(), label)


@pytest.mark.parametrize("chunk", range(8))
def test_exact_fast_and_reference_agree_on_adversarial_traces(chunk: int) -> None:
    """Hand-rolled traces (allowlists, vCPUs displaced and scheduled in again,
    S3 reloads, ties, zero costs) through all three: exact, fast and the reference loop."""
    for seed in range(chunk * 10, chunk * 10 + 10):
        rng = np.random.default_rng(7_000 + seed)
        trace = random_trace(rng, nevents=int(rng.integers(0, 200)))
        costs = random_costs(rng)
        for label, design in BUILTIN_DESIGNS:
            got = assert_same(trace, design, costs, f"random seed={seed} {label}")
            assert got == reference(trace, design, costs), (seed, label)
