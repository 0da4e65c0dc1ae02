"""Warm ``compare``: small generated traces are memoised, frozen and shared; nothing else is."""

from __future__ import annotations

import numpy as np
import pytest

from sgxlab.sim.run import TRACE_MEMO_ROWS, _prepare


def test_a_small_generated_trace_is_shared_and_frozen():
    a, va, _ = _prepare("workshop", {"launches": 300}, 1)
    b, vb, _ = _prepare("workshop", {"launches": 300}, 1)
    assert a is b and va == vb
    with pytest.raises(ValueError):
        a.t[0] = 5  # read-only: no caller can change what another sees
    c, _, _ = _prepare("workshop", {"launches": 300}, 2)
    d, _, _ = _prepare("workshop", {"launches": 301}, 1)
    assert c is not a and d is not a


def test_memoised_and_fresh_traces_are_equal():
    from sgxlab.sim.workloads import make_trace

    a, _, _ = _prepare("multi-tenant", {"launches": 500}, 3)
    fresh = make_trace("multi-tenant", {"launches": 500}, 3)
    for col in ("t", "kind", "cpu", "vm", "vcpu", "signer"):
        assert np.array_equal(getattr(a, col), getattr(fresh, col))


def test_big_traces_and_csv_traces_are_not_memoised(tmp_path):
    big = {"launches": TRACE_MEMO_ROWS + 1}
    a, _, _ = _prepare("host-only", big, 0)
    b, _, _ = _prepare("host-only", big, 0)
    assert a is not b
    f = tmp_path / "t.csv"
    f.write_text("t,kind,cpu,vm,vcpu,signer\n0,launch,0,-1,-1,0\n")
    c, _, _ = _prepare(f"trace:{f}", None, 0)
    d, _, _ = _prepare(f"trace:{f}", None, 0)
    assert c is not d
