"""Trace validation is remembered, and cannot go stale."""

from __future__ import annotations

import numpy as np
import pytest

from sgxlab.errors import ConfigError
from sgxlab.sim.trace import LAUNCH, SCHED, Trace, VmSpec


def _trace() -> Trace:
    rows = [(0, SCHED, 1, 0, 0, -1), (10, LAUNCH, 1, 0, 0, 0), (20, LAUNCH, 0, -1, -1, 1)]
    return Trace.from_rows(rows, ncpus=2, nsigners=2, vms=(VmSpec(1, True, -1),))


def test_a_validated_trace_is_frozen():
    tr = _trace()
    tr.validate()
    with pytest.raises(ValueError):
        tr.cpu[1] = 0  # read-only after validation
    tr.validate()  # remembered: no work


def test_replacing_a_column_makes_it_unchecked_again():
    tr = _trace()
    tr.validate()
    cpu = tr.cpu.copy()
    cpu[1] = 0  # the guest launch moves to a CPU its vCPU is not on
    tr.cpu = cpu
    with pytest.raises(ConfigError, match="row 1"):
        tr.validate()
    assert tr.cpu.flags.writeable


def test_changing_static_facts_revalidates():
    tr = _trace()
    tr.validate()
    tr.vms = (VmSpec(1, False, 1),)  # no lewr, may only launch signer 1
    with pytest.raises(ConfigError):
        tr.validate()
    assert np.all(tr.kind >= 0)
