"""The cost model: defaults with sources, presets, overrides and refusals."""

from __future__ import annotations

import pytest

from sgxlab.errors import ConfigError
from sgxlab.sim.costs import COST_PARAMS, CostModel, preset_names


def test_published_defaults_and_marked_assumptions():
    c = CostModel()
    assert (c.wrmsr_lehash, c.einit, c.encls_trap) == (400, 60_000, 1_500)
    assert not COST_PARAMS["wrmsr_lehash"].assumption and "b6f084ca5538" in COST_PARAMS["wrmsr_lehash"].source
    assert not COST_PARAMS["einit"].assumption
    assert COST_PARAMS["rdmsr_lehash"].assumption, "no published RDMSR figure: must be marked"
    for p in ("vm_exit", "vcpu_load", "lock", "context_switch"):
        assert COST_PARAMS[p].assumption
    assert all(p.unit == "cycles" and p.source for p in COST_PARAMS.values())
    assert c.ns(2000) == 1000.0


def test_presets():
    assert {"skylake-2021", "pessimistic-msr"} <= set(preset_names())
    assert CostModel.preset("skylake-2021").as_dict() | {"name": "default"} == CostModel().as_dict()
    p = CostModel.preset("pessimistic-msr")
    assert (p.wrmsr_lehash, p.rdmsr_lehash) == (3 * 400, 3 * 100)
    with pytest.raises(ConfigError, match="unknown preset; choose one of"):
        CostModel.preset("nope")
    with pytest.raises(ConfigError):
        CostModel.preset("../../etc/passwd")


def test_overrides_from_python_and_command_line():
    c = CostModel().with_overrides({"wrmsr_lehash": 1200})
    assert c.wrmsr_lehash == 1200 and c.einit == 60_000
    d = CostModel().with_overrides(["wrmsr_lehash=1200", "einit=6_000", "cpu_ghz=3.5"])
    assert (d.wrmsr_lehash, d.einit, d.cpu_ghz) == (1200, 6000, 3.5)
    assert CostModel.from_dict(d.as_dict()) == d


@pytest.mark.parametrize(
    "bad,match",
    [
        (["nope=1"], "unknown cost parameter"),
        (["einit=-1"], "must not be negative"),
        (["einit=abc"], "is not a number"),
        (["einit"], "expected NAME=VALUE"),
        (["einit=1.5"], "whole number"),
        ({"einit": True}, "not a boolean"),
        ({"einit": [1]}, "must be a number"),
        (["cpu_ghz=0"], "positive"),
    ],
)
def test_bad_overrides_are_refused_by_name(bad, match):
    with pytest.raises(ConfigError, match=match) as ei:
        CostModel().with_overrides(bad)
    assert ei.value.option.startswith(("cost", "--cost"))
