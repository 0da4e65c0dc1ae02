"""The SimPy model in bench/ (the peer the benchmarks compare against) counts what the fast engine counts."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("simpy", reason="simpy is not installed (pip install -e '.[test]')")

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import simpy_model
from simref import BUILTIN_DESIGNS, random_costs, random_trace

from sgxlab.sim import fast
from sgxlab.sim.costs import CostModel
from sgxlab.sim.workloads import make_trace


@pytest.mark.parametrize("workload", ["workshop", "host-only", "multi-tenant", "suspend-resume", "mixed"])
def test_simpy_model_equals_fast_on_workloads(workload: str) -> None:
    params = (
        {}
        if workload == "workshop"
        else {"launches": 400, "s3": 2}
        if workload in ("multi-tenant", "mixed")
        else {"launches": 400}
    )
    trace = make_trace(workload, params, seed=3)
    for label, design in BUILTIN_DESIGNS:
        assert simpy_model.simulate(trace, design, CostModel()) == fast.simulate(trace, design, CostModel()), label


@pytest.mark.parametrize("seed", range(10))
def test_simpy_model_equals_fast_on_random_traces(seed: int) -> None:
    rng = np.random.default_rng(900 + seed)
    trace = random_trace(rng, nevents=int(rng.integers(0, 200)))
    costs = random_costs(rng)
    for label, design in BUILTIN_DESIGNS:
        assert simpy_model.simulate(trace, design, costs) == fast.simulate(trace, design, costs), (seed, label)


@pytest.mark.parametrize("policy", ["allowlist", "single-le", "approved-set", "host-only"])
def test_simpy_model_equals_fast_under_host_policies(policy: str) -> None:
    trace = make_trace("mixed", {"launches": 300, "s3": 2, "policy": policy, "unmasked_rate": 0.1}, seed=4)
    for label, design in BUILTIN_DESIGNS:
        assert simpy_model.simulate(trace, design, CostModel()) == fast.simulate(trace, design, CostModel()), label


@pytest.mark.parametrize("provision", ["none", "0"])
def test_simpy_model_equals_fast_under_the_provisionkey_gate(provision: str) -> None:
    params = {"launches": 300, "s3": 2, "policy": "mainline", "provisionkey": "1,3", "provision": provision}
    trace = make_trace("workshop", {**params, "unmasked_rate": 0.1}, seed=4)
    for label, design in BUILTIN_DESIGNS:
        got = fast.simulate(trace, design, CostModel())
        assert got["gate_refusals"], label
        assert simpy_model.simulate(trace, design, CostModel()) == got, label
