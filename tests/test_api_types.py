"""Typed errors from the Python API: a wrong type or value names the argument.

Each row is one bad call to a public function (``run``, ``compare``,
``compare_seeds``, ``sweep``, ``make_trace``, ``Trace``, ``RunConfig``,
``run_trace``, ``replay``, ``policy_matrix``). It must raise a
:class:`~sgxlab.errors.SgxlabError` whose message names the argument at
fault, never a raw TypeError, AttributeError, IndexError, KeyError,
OverflowError or ValueError.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import sgxlab
from sgxlab.errors import SgxlabError
from sgxlab.sim.result import RunConfig
from sgxlab.sim.trace import Trace
from sgxlab.sim.workloads import make_trace

SMALL = {"launches": 20}


def _trace() -> Trace:
    return make_trace("workshop", SMALL, 0)


BAD: list[tuple[str, Callable[[], Any], str]] = [
    # run
    ("run design int", lambda: sgxlab.run(3, "workshop", SMALL, engine="fast"), "design"),
    ("run design empty", lambda: sgxlab.run("", "workshop", SMALL, engine="fast"), "design"),
    ("run workload int", lambda: sgxlab.run("always-write", 3, SMALL, engine="fast"), "workload"),  # type: ignore[arg-type]
    ("run workload unknown", lambda: sgxlab.run("always-write", "nope", engine="fast"), "workload"),
    ("run params str", lambda: sgxlab.run("always-write", "workshop", "launches=3", engine="fast"), "params"),  # type: ignore[arg-type]
    ("run params list", lambda: sgxlab.run("always-write", "workshop", [1, 2], engine="fast"), "params"),  # type: ignore[arg-type]
    ("run param value", lambda: sgxlab.run("always-write", "workshop", {"launches": "abc"}, engine="fast"), "launches"),
    ("run param unknown", lambda: sgxlab.run("always-write", "workshop", {"bogus": 1}, engine="fast"), "bogus"),
    ("run costs int", lambda: sgxlab.run("always-write", "workshop", SMALL, costs=3, engine="fast"), "cost"),  # type: ignore[arg-type]
    (
        "run cost value",
        lambda: sgxlab.run("always-write", "workshop", SMALL, costs={"einit": "x"}, engine="fast"),
        "einit",
    ),
    ("run seed str", lambda: sgxlab.run("always-write", "workshop", SMALL, seed="1", engine="fast"), "seed"),  # type: ignore[arg-type]
    ("run seed negative", lambda: sgxlab.run("always-write", "workshop", SMALL, seed=-1, engine="fast"), "seed"),
    ("run seed float", lambda: sgxlab.run("always-write", "workshop", SMALL, seed=1.5, engine="fast"), "seed"),  # type: ignore[arg-type]
    ("run seed huge", lambda: sgxlab.run("always-write", "workshop", SMALL, seed=2**200, engine="fast"), "seed"),
    ("run engine", lambda: sgxlab.run("always-write", "workshop", SMALL, engine="gpu"), "engine"),
    ("run engine int", lambda: sgxlab.run("always-write", "workshop", SMALL, engine=3), "engine"),  # type: ignore[arg-type]
    # compare
    ("compare designs int", lambda: sgxlab.compare(3, "workshop", SMALL, engine="fast"), "designs"),  # type: ignore[arg-type]
    ("compare designs [int]", lambda: sgxlab.compare([3], "workshop", SMALL, engine="fast"), "design"),  # type: ignore[list-item]
    ("compare designs empty", lambda: sgxlab.compare([], "workshop", SMALL, engine="fast"), "designs"),
    (
        "compare designs dup",
        lambda: sgxlab.compare(["always-write", "always-write"], "workshop", SMALL, engine="fast"),
        "design",
    ),
    (
        "compare baseline",
        lambda: sgxlab.compare(["always-write"], "workshop", SMALL, engine="fast", baseline="nope"),
        "baseline",
    ),
    ("compare params", lambda: sgxlab.compare(None, "workshop", 5, engine="fast"), "params"),  # type: ignore[arg-type]
    # compare_seeds
    ("seeds zero", lambda: sgxlab.compare_seeds(["always-write"], "workshop", SMALL, seeds=0, engine="fast"), "seeds"),
    ("seeds str", lambda: sgxlab.compare_seeds(["always-write"], "workshop", SMALL, seeds="x", engine="fast"), "seeds"),  # type: ignore[arg-type]
    (
        "seeds list",
        lambda: sgxlab.compare_seeds(["always-write"], "workshop", SMALL, seeds=[1, "a"], engine="fast"),
        "seed",
    ),  # type: ignore[list-item]
    # sweep
    ("sweep vary str", lambda: sgxlab.sweep(["always-write"], "workshop", vary="einit=1"), "vary"),  # type: ignore[arg-type]
    ("sweep vary value", lambda: sgxlab.sweep(["always-write"], "workshop", vary={"einit": ["x"]}), "einit"),
    ("sweep vary unknown", lambda: sgxlab.sweep(["always-write"], "workshop", vary={"bogus": [1]}), "bogus"),
    ("sweep vary empty", lambda: sgxlab.sweep(["always-write"], "workshop", vary={"einit": []}), "einit"),
    ("sweep designs int", lambda: sgxlab.sweep(3, "workshop", vary={"einit": [1]}), "design"),  # type: ignore[arg-type]
    # make_trace
    ("make_trace name", lambda: make_trace(3), "workload"),  # type: ignore[arg-type]
    ("make_trace params", lambda: make_trace("workshop", [1]), "params"),  # type: ignore[arg-type]
    ("make_trace seed", lambda: make_trace("workshop", SMALL, "a"), "seed"),  # type: ignore[arg-type]
    # Trace
    (
        "Trace ncpus",
        lambda: Trace("x", 1, (), *(np.zeros(1, np.int64) for _ in range(6))),  # type: ignore[arg-type]
        "ncpus",
    ),
    (
        "Trace columns",
        lambda: Trace(1, 1, (), *("abc" for _ in range(6))),  # type: ignore[arg-type]
        "t",
    ),
    # RunConfig
    ("RunConfig design", lambda: RunConfig(design=3, workload="workshop"), "design"),  # type: ignore[arg-type]
    ("RunConfig params", lambda: RunConfig(design="always-write", workload="workshop", params=3), "params"),  # type: ignore[arg-type]
    ("RunConfig seed", lambda: RunConfig(design="always-write", workload="workshop", seed="a"), "seed"),  # type: ignore[arg-type]
    ("RunConfig.from_dict", lambda: RunConfig.from_dict([1]), "config"),  # type: ignore[arg-type]
    # run_trace / replay
    ("run_trace trace", lambda: sgxlab.run_trace("x", "always-write", engine="fast"), "trace"),  # type: ignore[arg-type]
    ("run_trace design", lambda: sgxlab.run_trace(_trace(), "nope", engine="fast"), "design"),
    ("run_trace policy", lambda: sgxlab.run_trace(_trace(), "always-write", engine="fast", policy=3), "policy"),  # type: ignore[arg-type]
    ("replay config", lambda: sgxlab.replay("x"), "config"),  # type: ignore[arg-type]
    # policy_matrix
    ("policy_matrix design", lambda: sgxlab.policy_matrix(3), "design"),  # type: ignore[arg-type]
    ("policy_matrix unknown", lambda: sgxlab.policy_matrix("nope"), "design"),
]


@pytest.mark.parametrize("call,arg", [(c, a) for _, c, a in BAD], ids=[n for n, _, _ in BAD])
def test_bad_call_is_a_typed_error_naming_the_argument(call: Callable[[], Any], arg: str) -> None:
    with pytest.raises(SgxlabError) as ei:
        call()
    assert arg in str(ei.value), str(ei.value)
    assert len(str(ei.value)) < 400


def test_a_vm_with_more_vcpus_than_the_column_holds_is_a_typed_error() -> None:
    from sgxlab.sim.trace import VmSpec

    t = Trace(1, 1, (VmSpec(40_000, False),), *(np.zeros(0, np.int64) for _ in range(6)))
    with pytest.raises(SgxlabError, match="nvcpus"):
        t.validate()


def test_a_single_design_name_is_one_design() -> None:
    """``compare("always-write")`` compares that one design; it does not walk the letters."""
    c = sgxlab.compare("always-write", "workshop", SMALL, engine="fast")
    assert c.designs == ["always-write"]
