"""Workloads: deterministic, documented, valid traces; CSV replay with line-numbered errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sgxlab.errors import ConfigError
from sgxlab.sim.costs import CostModel
from sgxlab.sim.run import run
from sgxlab.sim.trace import EXIT, LAUNCH, POLICY_NAMES, S3, SCHED, Trace, VmSpec
from sgxlab.sim.workloads import (
    MAX_SIGNERS,
    WORKLOADS,
    describe_workloads,
    format_trace_csv,
    make_trace,
    parse_trace_csv,
    workload_names,
    workload_params,
    write_trace_csv,
)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "data" / "traces" / "example.csv"
COLS = ("t", "kind", "cpu", "vm", "vcpu", "signer")


def same(a: Trace, b: Trace) -> bool:
    return all(np.array_equal(getattr(a, c), getattr(b, c)) for c in COLS) and a.vms == b.vms


@pytest.mark.parametrize("name", list(WORKLOADS))
def test_every_workload_is_deterministic_valid_and_exact_in_size(name):
    a = make_trace(name, {"launches": 700}, seed=5)
    b = make_trace(name, {"launches": 700}, seed=5)
    c = make_trace(name, {"launches": 700}, seed=6)
    assert same(a, b) and not same(a, c)
    assert a.launches == 700 and a.name == name and a.params["launches"] == 700
    a.validate()
    assert np.all(np.diff(a.t) >= 0)
    assert make_trace(name, {"launches": 0}).launches == 0


def test_global_random_state_is_not_used():
    np.random.seed(1)
    a = make_trace("workshop", seed=3)
    np.random.seed(2)
    import random

    random.seed(9)
    assert same(a, make_trace("workshop", seed=3))


def test_every_parameter_is_documented():
    listed = {w["name"]: w for w in describe_workloads()}
    assert list(listed) == workload_names() and "trace:PATH" in listed
    for name in WORKLOADS:
        params = workload_params(name)
        assert params and params[0]["name"] == "launches"
        for p in params:
            assert set(p) >= {"name", "type", "default", "doc"}
            assert p["type"] in ("int", "float", "bool", "str") and len(p["doc"]) > 10
        assert WORKLOADS[name].__doc__ and listed[name]["summary"]
    assert workload_params("trace:whatever.csv") == []


def test_parameter_errors_name_the_parameter():
    with pytest.raises(ConfigError, match="workload='nope': unknown workload; choose one of host-only"):
        make_trace("nope")
    with pytest.raises(ConfigError, match="host-only param foo.*unknown parameter; host-only takes launches"):
        make_trace("host-only", {"foo": 1})
    with pytest.raises(ConfigError, match="host-only param cpus='x': expected a whole number"):
        make_trace("host-only", {"cpus": "x"})
    with pytest.raises(ConfigError, match="param cpus=0: must be at least 1"):
        make_trace("host-only", {"cpus": 0})
    with pytest.raises(ConfigError, match="param signers=65: must be at most 64"):
        make_trace("host-only", {"signers": 65})
    with pytest.raises(ConfigError, match="param reuse=1.5"):
        make_trace("host-only", {"reuse": 1.5})
    with pytest.raises(ConfigError, match="param launches=2.5"):
        make_trace("host-only", {"launches": 2.5})
    with pytest.raises(ConfigError, match="param cpus=True"):
        make_trace("host-only", {"cpus": True})
    with pytest.raises(ConfigError, match="param nolewr=5: at most vms=4"):
        make_trace("multi-tenant", {"nolewr": 5})
    with pytest.raises(ConfigError, match="only 64 test keys"):
        make_trace("mixed", {"vms": 40, "signers_per_vm": 2})
    with pytest.raises(
        ConfigError,
        match="param policy='strict': expected one of allow-all, allowlist, single-le, approved-set, host-only",
    ):
        make_trace("mixed", {"policy": "strict"})
    with pytest.raises(ConfigError, match="seed=-1"):
        make_trace("host-only", seed=-1)
    with pytest.raises(ConfigError, match="params"):
        make_trace("host-only", ["launches=3"])  # type: ignore[arg-type]


def test_command_line_strings_are_converted():
    t = make_trace("mixed", {"launches": "1_000", "stay": "0.5", "policy": "host-only", "vms": "0x2"})
    assert t.launches == 1000 and len(t.vms) == 2 and t.allowlist == (0, 1, 2)
    assert make_trace("host-only", {"launches": "1e3"}).launches == 1000


def test_host_only_shape_and_signer_reuse():
    t = make_trace("host-only", {"launches": 20_000, "cpus": 3, "signers": 5, "reuse": 0.9}, seed=1)
    assert set(np.unique(t.cpu).tolist()) == {0, 1, 2} and set(np.unique(t.signer).tolist()) == set(range(5))
    assert np.all(t.kind == LAUNCH) and np.all(t.vm == -1) and t.vms == ()
    # with reuse 0.9 the previous launch on the same CPU usually has the same signer
    repeats = 0
    last: dict[int, int] = {}
    for c, s in zip(t.cpu.tolist(), t.signer.tolist()):
        repeats += last.get(c) == s
        last[c] = s
    assert repeats / len(t) > 0.85
    u = make_trace("host-only", {"launches": 20_000, "cpus": 3, "signers": 5, "reuse": 0.0}, seed=1)
    assert abs(np.mean(np.diff(u.t)) - 400_000 / 3) < 10_000  # mean gap interval/cpus


def test_host_only_scales_to_millions_vectorised():
    t = make_trace("host-only", {"launches": 1_000_000, "cpus": 16, "signers": 64}, seed=2)
    assert t.launches == 1_000_000 and t.t.dtype == np.int64 and t.cpu.dtype == np.int16


def running_map_is_consistent(t: Trace) -> tuple[int, int]:
    """Replay SCHEDs (those at one instant together): no vCPU runs on two CPUs at
    once. Returns (vCPUs that ran on more than one CPU, vCPUs seen)."""
    on: dict[int, tuple[int, int]] = {}
    sched = np.flatnonzero(t.kind == SCHED)
    seen: dict[tuple[int, int], set[int]] = {}
    for when in np.unique(t.t[sched]).tolist():
        for i in sched[t.t[sched] == when].tolist():
            key = (int(t.vm[i]), int(t.vcpu[i]))
            on[int(t.cpu[i])] = key
            seen.setdefault(key, set()).add(int(t.cpu[i]))
        running = list(on.values())
        assert len(running) == len(set(running)), f"a vCPU runs on two CPUs at t={when}"
    return sum(len(s) > 1 for s in seen.values()), len(seen)


def test_multi_tenant_overcommits_migrates_and_respects_lewr():
    t = make_trace("multi-tenant", {"launches": 3000, "vms": 4, "vcpus": 2, "cpus": 3, "nolewr": 2}, seed=4)
    assert len(t.vms) == 4 and len({v.lehash for v in t.vms}) == 4  # each its own lehash
    assert [v.lewr for v in t.vms] == [True, True, False, False]
    migrated, vcpus = running_map_is_consistent(t)
    assert vcpus == 8 > t.ncpus and migrated > 0
    assert t.exits > 0 == np.count_nonzero(t.kind == EXIT) and np.count_nonzero(t.kind == S3) == 0  # exits counted
    for j, spec in enumerate(t.vms):
        launched = set(t.signer[(t.kind == LAUNCH) & (t.vm == j)].tolist())
        if spec.lewr:
            assert spec.lehash in launched and len(launched) == 2
        else:
            assert launched == {spec.lehash}
    none = make_trace("multi-tenant", {"launches": 500, "exit_interval": 0}, seed=1)
    assert np.count_nonzero(none.kind == EXIT) == 0
    stay = make_trace("multi-tenant", {"launches": 2000, "stay": 1.0, "vms": 2, "vcpus": 2, "cpus": 4}, seed=1)
    assert np.count_nonzero(stay.kind == SCHED) == 4  # never rescheduled


def test_launches_only_inside_running_slices():
    t = make_trace("multi-tenant", {"launches": 2000, "slice": 100_000, "interval": 20_000}, seed=9)
    t.validate()  # rule: a vCPU acts only on the CPU it was last scheduled on
    sl = t.params["slice"]
    acts = (t.kind == LAUNCH) | (t.kind == EXIT)
    assert np.all(t.t[acts] % sl != 0)  # strictly inside a slice
    assert np.all(t.t[t.kind == SCHED] % sl == 0)


def test_enclave_churn_uses_a_new_signer_almost_every_time():
    t = make_trace("enclave-churn", {"launches": 6400}, seed=3)
    assert t.nsigners == MAX_SIGNERS and set(np.unique(t.signer).tolist()) == set(range(64))
    counts = np.bincount(t.signer, minlength=64)
    assert counts.min() == counts.max() == 100  # round-robin, shuffled per round
    assert np.mean(t.signer[1:] == t.signer[:-1]) < 0.05


def test_suspend_resume_and_mixed_and_workshop():
    sr = make_trace("suspend-resume", {"launches": 1000, "s3": 7}, seed=1)
    s3 = np.flatnonzero(sr.kind == S3)
    assert len(s3) == 7 and np.all(sr.cpu[s3] == -1) and sr.t[0] <= sr.t[s3[0]]
    mx = make_trace("mixed", {"launches": 3000, "host_cpus": 2, "vm_cpus": 3, "s3": 2}, seed=2)
    host = set(mx.cpu[mx.vm == -1].tolist()) - {-1}
    guests = set(mx.cpu[mx.vm >= 0].tolist())
    assert host == {0, 1} and guests == {2, 3, 4} and np.count_nonzero(mx.kind == S3) == 2
    ws = make_trace("workshop")
    assert ws.launches == 2000 and np.count_nonzero(ws.kind == S3) == 1 and len(ws.vms) >= 3
    assert any(not v.lewr for v in ws.vms) and running_map_is_consistent(ws)[0] > 0
    s3t = int(ws.t[ws.kind == S3][0])
    lt = ws.t[ws.kind == LAUNCH]
    assert lt[len(lt) // 5] < s3t < lt[-len(lt) // 5]  # in the middle of the run
    assert WORKLOADS["workshop"].__doc__.count(".") >= 1


def test_host_policies_name_the_hosts_own_signers():
    t = make_trace("mixed", {"launches": 500, "policy": "host-only", "host_signers": 2}, seed=1)
    assert (t.policy, t.allowlist) == ("host-only", (0, 1))
    assert set(t.signer[(t.kind == LAUNCH) & (t.vm == -1)].tolist()) <= {0, 1}
    plain = make_trace("mixed", {"launches": 50})
    assert (plain.policy, plain.approved) == ("allow-all", (0, 1, 2))
    for name in POLICY_NAMES:  # the policy changes no event: the engines apply it
        p = make_trace("mixed", {"launches": 50, "policy": name})
        assert p.policy == name and p.approved == (0, 1, 2) and (p.t == plain.t).all()
    assert make_trace("multi-tenant", {"launches": 20}).policy == "allow-all"
    with pytest.raises(ConfigError, match="expected one of allow-all, allowlist, single-le"):
        make_trace("workshop", {"policy": "strict"})


# --------------------------------------------------------------------------- CSV traces


def test_example_csv_replays():
    t = make_trace(f"trace:{EXAMPLE}")
    assert t.name == f"trace:{EXAMPLE}" and t.ncpus == 3 and t.nsigners == 4
    assert t.vms == (VmSpec(2, True, 1), VmSpec(1, False, 3))
    assert t.launches == 11 and np.count_nonzero(t.kind == S3) == 1
    import pandas as pd

    df = pd.read_csv(EXAMPLE, comment="#")
    assert list(df.columns) == list(COLS) and len(df) == len(t)


HEAD = "t,kind,cpu,vm,vcpu,signer\n"


def csv_error(text: str) -> str:
    with pytest.raises(ConfigError) as e:
        parse_trace_csv(text, source="x.csv")
    return str(e.value)


@pytest.mark.parametrize(
    "text, expect",
    [
        ("t,kind,cpu,vm,vcpu,signer,colour\n", "x.csv line 1='colour': unknown column"),
        ("t,kind,cpu,vm,signer\n", "line 1=.*missing column\\(s\\) vcpu"),
        ("t,kind,cpu,cpu,vm,vcpu,signer\n", "line 1='cpu': column named twice"),
        (HEAD + "0,launch,0,,,0\n10,boot,0,,,0\n", "x.csv line 3, column kind='boot': unknown kind"),
        (HEAD + "0,launch,0,,,0\nten,launch,0,,,0\n", "x.csv line 3, column t='ten': not an integer"),
        (HEAD + "0,launch,0,,,1.5\n", "x.csv line 2, column signer='1.5': not an integer"),
        (HEAD + "0,launch,0,,\n", "x.csv line 2=.*expected 6 cells, got 5"),
        (HEAD + "5,launch,0,,,0\n\n# note\n3,launch,0,,,0\n", "x.csv line 5=3: times must not decrease"),
        (
            "#@ cpus=1\n" + HEAD + "0,launch,0,,,0\n1,launch,7,,,0\n",
            "x.csv line 4 cpu=7: CPU index must be in \\[0, 1\\)",
        ),
        ("#@ cpus=2\n" + HEAD + "0,sched,1,0,0,\n5,launch,0,0,0,0\n", "line 4=\\(0, 0, 0\\): a vCPU acts only on"),
        (
            HEAD + "0,sched,0,0,0,\n1,sched,0,1,0,\n# VM 0's vCPU was displaced\n5,exit,0,0,0,\n",
            "x.csv line 5=\\(0, 0, 0\\): a vCPU acts only while it is current: vCPU 0 of VM 1",
        ),
        ("#@ cpus=2\n" + HEAD + "0,sched,0,0,0,\n5,launch,0,,,0\n", "line 4 cpu=0: .*disjoint"),
        (
            "#@ vm=0 vcpus=1 lewr=no lehash=1\n#@ signers=3\n" + HEAD + "0,sched,0,0,0,\n1,launch,0,0,0,2\n",
            "x.csv line 5 signer=2: VM 0 has no lewr",
        ),
        (HEAD + "0,exit,0,,,\n", "line 2='exit': the host only launches"),
        ("#@ colour=red\n" + HEAD, "x.csv line 1='colour': unknown directive"),
        ("#@ cpus=many\n" + HEAD, "x.csv line 1, cpus='many': not an integer"),
        ("#@ vm=0 vcpus=2 fast=yes\n" + HEAD, "x.csv line 1='fast': unknown VM key"),
        ("#@ vm=0 vcpus=2 exits=-1\n" + HEAD, "x.csv line 1, exits=-1: must be in \\[0, "),
        ("#@ vm=0 vcpus=2 exits=many\n" + HEAD, "x.csv line 1, exits='many': not an integer"),
        ("#@ policy=strict\n" + HEAD, "x.csv line 1, policy='strict': unknown host policy; valid names: allow-all"),
        ("#@ policy=single-le\n" + HEAD + "0,launch,0,,,0\n", "directives: trace allowlist.*single-le needs"),
        ("# only a comment\n", "no header line"),
    ],
)
def test_csv_errors_name_the_line_and_problem(text, expect):
    import re

    msg = csv_error(text)
    assert re.search(expect, msg), msg


def test_csv_defaults_and_kind_numbers(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("signer,vcpu,vm,cpu,kind,t\n,0,0,1,1,0\n2,0,0,1,0,10\n,,,,s3,20\n1,,,0,LAUNCH,30\n")
    t = make_trace(f"trace:{p}")
    assert t.ncpus == 2 and t.nsigners == 3 and t.vms == (VmSpec(1, True, -1),)
    assert t.kind.tolist() == [SCHED, LAUNCH, S3, LAUNCH]
    with pytest.raises(ConfigError, match="no such file"):
        make_trace(f"trace:{tmp_path / 'missing.csv'}")
    with pytest.raises(ConfigError, match="trace:PATH"):
        make_trace("trace:")
    with pytest.raises(ConfigError, match="unknown parameter"):
        make_trace(f"trace:{p}", {"launches": 3})


def test_csv_counted_exits_round_trip_and_are_run(tmp_path):
    text = "#@ vm=1 vcpus=1 exits=7\n" + HEAD + "0,sched,0,0,0,\n5,exit,0,0,0,\n9,launch,0,0,0,0\n"
    t = parse_trace_csv(text, source="x.csv")
    assert t.vm_exits == (0, 7) and t.exits == 8 and len(t.vms) == 2  # VM 0 from the rows, VM 1 declared
    back = parse_trace_csv(format_trace_csv(t))
    assert back.vm_exits == t.vm_exits and back.t.tolist() == t.t.tolist()
    assert parse_trace_csv(HEAD + "0,sched,0,0,0,\n").vm_exits == ()  # no line counts any
    path = write_trace_csv(t, tmp_path / "t.csv")
    for engine in ("fast", "exact"):
        s = run("always-write", f"trace:{path}", engine=engine).summary()
        assert s["exits"] == 8 and s["exit_cycles"] == 8 * CostModel().vm_exit, engine


def test_guest_workloads_count_their_exits_per_vm():
    t = make_trace("multi-tenant", {"launches": 3000, "vms": 3}, seed=2)
    assert np.count_nonzero(t.kind == EXIT) == 0 and len(t.vm_exits) == 3 and min(t.vm_exits) > 0
    assert make_trace("multi-tenant", {"launches": 3000, "exit_interval": 0}, seed=2).vm_exits == ()
    assert make_trace("host-only", {"launches": 100}, seed=2).vm_exits == ()


# --------------------------------------------------------------------------- vectorised validation


def _random_rows(rng: np.random.Generator) -> Trace:
    n = int(rng.integers(1, 25))
    vms = tuple(VmSpec(int(rng.integers(1, 3)), bool(rng.integers(0, 2)), int(rng.integers(-1, 3))) for _ in range(2))
    rows = []
    t = 0
    for _ in range(n):
        t += int(rng.integers(-1, 3)) if rng.random() < 0.1 else int(rng.integers(0, 3))
        k = int(rng.choice([0, 0, 1, 1, 2, 3, 5]))
        rows.append(
            (
                t,
                k,
                int(rng.integers(-1, 5)),
                int(rng.integers(-2, 3)),
                int(rng.integers(-1, 3)),
                int(rng.integers(-1, 4)),
            )
        )
    cols = list(zip(*rows))
    allow = None if rng.random() < 0.5 else (0, 1)
    return Trace(4, 3, vms, *(np.array(c) for c in cols), allowlist=allow)


def test_vectorised_validation_agrees_with_the_row_walk():
    rng = np.random.default_rng(12)
    outcomes = {True: 0, False: 0}
    for _ in range(3000):
        tr = _random_rows(rng)
        try:
            tr._validate_rows()
            slow = True
        except ConfigError as e:
            slow = False
            assert isinstance(e.row, int)
        assert tr._rows_ok() == slow
        outcomes[slow] += 1
    assert outcomes[True] > 20 and outcomes[False] > 1000


def test_vectorised_validation_agrees_on_mutated_generated_traces():
    rng = np.random.default_rng(3)
    base = [make_trace(w, {"launches": 40}, seed=s) for w in ("workshop", "multi-tenant", "mixed") for s in range(3)]
    bad = 0
    for _ in range(600):
        src = base[int(rng.integers(len(base)))]
        cols = {c: getattr(src, c).copy() for c in COLS}
        col = str(rng.choice(["t", "cpu", "vm", "vcpu", "signer", "kind"]))
        i = int(rng.integers(len(src)))
        cols[col][i] = cols[col][i] + int(rng.choice([-2, -1, 1, 2]))
        tr = Trace(src.ncpus, src.nsigners, src.vms, *(cols[c] for c in COLS), allowlist=src.allowlist)
        try:
            tr._validate_rows()
            slow = True
        except ConfigError:
            slow = False
            bad += 1
        assert tr._rows_ok() == slow, (col, i)
    assert 100 < bad < 600
