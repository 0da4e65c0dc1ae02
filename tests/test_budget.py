"""Issue 11's bounded resources: one budget (``sgxlab.sim.budget``) for all the work a run will do.

The known offenders (a generator drawing far more than its trace, S3 events x
CPUs, VMs x vCPUs declared by a small CSV, a huge CSV cell, a CSV past the row
cap) are refused before anything big is allocated: the command-line ones run
in a child process capped at 1 GiB of address space, each exiting with status 2
and one stderr line naming the parameter. A raised budget lets a larger run
through; the defaults change no existing workload's default run.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import sgxlab
from sgxlab.errors import ConfigError
from sgxlab.sim import fast
from sgxlab.sim.budget import DEFAULT_BUDGET, Budget, check_trace, csv_lines
from sgxlab.sim.exact import ExactSimulation
from sgxlab.sim.run import run_trace
from sgxlab.sim.trace import LAUNCH, SCHED, Trace, VmSpec
from sgxlab.sim.workloads import WORKLOADS, make_trace, make_workload, parse_trace_csv, read_trace_csv

HEAD = "t,kind,cpu,vm,vcpu,signer\n"

CHILD = textwrap.dedent(
    """
    import contextlib, io, json, resource, sys
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
    from sgxlab.cli import main
    out = []
    for argv in json.loads(sys.argv[1]):
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                rc = main(argv)
            except SystemExit as e:
                rc = e.code
        out.append([rc, err.getvalue()])
    print(json.dumps(out))
    """
)


def offender_files(tmp: Path) -> dict[str, Path]:
    """Small CSV files that ask for huge work."""
    vms = tmp / "vms.csv"
    decl = "".join(f"#@ vm={j} vcpus=32767\n" for j in range(32768))
    vms.write_text("#@ cpus=2\n" + decl + HEAD + "0,sched,0,0,0,\n5,launch,0,0,0,0\n")
    cell = tmp / "cell.csv"
    cell.write_text(HEAD + '"' + "1" * 140_000 + '",launch,0,,,0\n')
    return {"vms": vms, "cell": cell}


RUN = ["run", "--design", "always-write"]


def test_offenders_are_refused_in_a_small_child_process(tmp_path):
    files = offender_files(tmp_path)
    cases = [
        (["--workload", "multi-tenant", "--param", "interval=1", "--param", f"slice={2**36}"], "param slice"),
        (["--workload", "mixed", "--param", "host_cpus=4096", "--param", "host_interval=1"], "host_cpus"),
        (["--workload", "suspend-resume", "--param", "s3=1000000", "--param", "cpus=4096"], "param s3"),
        (["--workload", "suspend-resume", "--param", "s3=1000000", "--param", "cpus=4096", "--engine", "fast"], "s3"),
        (
            ["--workload", "multi-tenant", "--param", "s3=1000000", "--param", "cpus=4096", "--engine", "fast"],
            "param s3",
        ),
        (["--workload", f"trace:{files['vms']}"], "line 34, vcpus"),
        (["--workload", f"trace:{files['cell']}"], "line 2"),
    ]
    argvs = [RUN + argv for argv, _ in cases]
    got = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(argvs)], capture_output=True, text=True, timeout=600, check=False
    )
    assert got.returncode == 0, got.stderr[-2000:]
    results = json.loads(got.stdout)
    for (rc, err), (argv, word) in zip(results, cases):
        assert rc == 2, (argv, err)
        assert err.count("\n") == 1 and "Traceback" not in err, (argv, err)
        assert word in err and "at most" in err and "Budget." in err, (argv, err)


@pytest.mark.parametrize(
    "workload,params,option,field",
    [
        ("multi-tenant", {"interval": 1, "slice": 2**36}, "multi-tenant param slice", "Budget.draws"),
        ("mixed", {"host_cpus": 4096, "host_interval": 1}, "mixed param slice", "Budget.draws"),
        ("suspend-resume", {"s3": 1_000_000, "cpus": 4096}, "suspend-resume param s3", "Budget.s3_cpus"),
        (
            "multi-tenant",
            {"s3": 100_000, "cpus": 16, "vms": 8, "vcpus": 4},
            "multi-tenant param s3",
            "Budget.reloads",
        ),
    ],
)
def test_workload_offenders_are_refused_before_generating(workload, params, option, field):
    with pytest.raises(ConfigError) as ei:
        make_workload(workload, params)
    assert ei.value.option == option
    assert field in ei.value.reason and "at most" in ei.value.reason
    assert "\n" not in str(ei.value)


def test_offending_traces_are_refused_at_both_engines():
    # 40 VMs of 32,767 vCPUs: the exact engine would build 1.3 M guest models.
    vms = tuple(VmSpec(32767, True) for _ in range(40))
    big = Trace.from_rows([(0, SCHED, 0, 0, 0, -1), (5, LAUNCH, 0, 0, 0, 0)], ncpus=1, nsigners=1, vms=vms)
    for run in (lambda b: ExactSimulation(big, budget=b), lambda b: fast.simulate(big, "always-write", budget=b)):
        with pytest.raises(ConfigError, match=r"Budget\.vcpus") as ei:
            run(None)
        assert ei.value.option == "trace vms"
        run(DEFAULT_BUDGET.raised(vcpus=2_000_000))  # a power user's raised budget runs it
    with pytest.raises(ConfigError, match=r"run_trace|Budget\.vcpus"):
        run_trace(big, "always-write")


def test_trace_rows_launches_and_s3_work_are_checked():
    rows = [(i, LAUNCH, 0, -1, -1, 0) for i in range(10)]
    tr = Trace.from_rows(rows, ncpus=4, nsigners=1)
    check_trace(tr)
    with pytest.raises(ConfigError, match=r"Budget\.rows"):
        check_trace(tr, Budget(rows=9))
    with pytest.raises(ConfigError, match=r"Budget\.launches"):
        check_trace(tr, Budget(launches=9))
    s3 = Trace.from_rows([*rows, (20, 3, -1, -1, -1, -1), (21, 3, -1, -1, -1, -1)], ncpus=4, nsigners=1)
    with pytest.raises(ConfigError, match=r"S3 events x 4 CPUs 8; at most 7") as ei:
        check_trace(s3, Budget(s3_cpus=7))
    assert ei.value.option == "trace s3"


def test_csv_rows_are_counted_while_streaming():
    text = HEAD + "".join(f"{i},launch,0,,,0\n" for i in range(20))
    assert len(parse_trace_csv(text, source="x.csv")) == 20
    with pytest.raises(ConfigError, match=r"at most 5 \(split the trace, or raise Budget\.rows\)") as ei:
        parse_trace_csv(text, source="x.csv", budget=Budget(rows=5))
    assert ei.value.option == "x.csv line 7"
    with pytest.raises(ConfigError, match=r"Budget\.csv_bytes"):
        parse_trace_csv(text, source="x.csv", budget=Budget(csv_bytes=100))


def test_csv_file_over_the_byte_budget_is_refused_before_reading(tmp_path):
    f = tmp_path / "t.csv"
    f.write_text(HEAD + "0,launch,0,,,0\n" * 50)
    assert len(read_trace_csv(f)) == 50
    with pytest.raises(ConfigError, match="at most 200 are read"):
        read_trace_csv(f, budget=Budget(csv_bytes=200))


def test_long_csv_lines_and_bad_quotes_are_one_line_errors():
    long_t = "0" * 4200 + "7"  # (int() reads at most 4,300 digits)
    text = HEAD + f"{long_t},launch,0,,,0\n"
    with pytest.raises(ConfigError, match=r"Budget\.csv_line") as ei:
        parse_trace_csv(text, source="x.csv")
    assert ei.value.option == "x.csv line 2"
    tr = parse_trace_csv(text, source="x.csv", budget=Budget().raised(csv_line=8192))
    assert int(tr.t[0]) == 7
    # Past the csv module's own 128 KiB field limit: a ConfigError naming the line, not _csv.Error.
    huge = HEAD + '"' + "1" * 140_000 + '",launch,0,,,0\n'
    with pytest.raises(ConfigError, match="x.csv line 2"):
        parse_trace_csv(huge, source="x.csv", budget=Budget(csv_line=200_000))


def test_declared_vcpus_are_refused_on_the_line_that_goes_over():
    decl = "".join(f"#@ vm={j} vcpus=1000\n" for j in range(5))
    with pytest.raises(ConfigError, match=r"Budget\.vcpus") as ei:
        parse_trace_csv(decl + HEAD, source="x.csv", budget=Budget(vcpus=3500))
    assert ei.value.option == "x.csv line 4, vcpus"
    assert len(parse_trace_csv(decl + HEAD, source="x.csv", budget=Budget(vcpus=5000)).vms) == 5


def test_csv_rows_use_the_highest_vcpu_per_vm():
    text = "#@ vm=2 vcpus=9\n" + HEAD + "0,sched,0,0,3,\n1,sched,1,1,0,\n2,launch,0,0,3,0\n3,sched,0,0,1,\n"
    tr = parse_trace_csv(text)
    assert [v.nvcpus for v in tr.vms] == [4, 1, 9]


def test_csv_lines_match_splitlines_at_every_block_size():
    text = "\ufeffa,b\r\nc\rd\n\ne\x0bf\u2028g\r\n\r\nh"
    want = text[1:].splitlines()
    for block in (1, 2, 3, 5, 8, 100):
        assert list(csv_lines(text, block)) == want, block
    assert list(csv_lines("")) == []


def test_budget_values_and_raised():
    b = Budget()
    assert b == DEFAULT_BUDGET and b.launches == b.rows == 50_000_000
    assert b.raised(draws=10**9).draws == 10**9 and b.draws == 100_000_000
    with pytest.raises(ConfigError, match="unknown limit"):
        b.raised(memory=1)
    for bad in (0, -1, 1.5, True, "9"):
        with pytest.raises(ConfigError, match="Budget.rows"):
            Budget(rows=bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="budget"):
        make_trace("host-only", {"launches": 5}, budget=object())  # type: ignore[arg-type]


def test_a_raised_budget_accepts_a_larger_run():
    params = {"launches": 200, "cpus": 4096, "s3": 20_000}  # 8.2e7 S3 x CPUs
    with pytest.raises(ConfigError, match=r"Budget\.s3_cpus"):
        make_trace("suspend-resume", params)
    more = Budget().raised(s3_cpus=100_000_000)
    tr = make_trace("suspend-resume", params, budget=more)
    res = run_trace(tr, "read-compare", engine="fast", budget=more)
    assert res.summary()["s3_events"] == 20_000
    with pytest.raises(ConfigError, match=r"Budget\.s3_cpus"):
        run_trace(tr, "read-compare", engine="fast")
    # The generator's draws: refused by default, accepted (not generated here) when raised.
    wide = {"interval": 1, "slice": 2**24, "launches": 10}
    with pytest.raises(ConfigError, match=r"Budget\.draws"):
        make_workload("multi-tenant", wide)
    make_workload("multi-tenant", wide, budget=Budget().raised(draws=10**9))


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_defaults_leave_every_workload_unchanged(name):
    small = make_trace(name, seed=5)
    roomy = Budget().raised(draws=10**12, s3_cpus=10**12, reloads=10**12, vcpus=10**9)
    same = make_trace(name, seed=5, budget=roomy)
    for col in ("t", "kind", "cpu", "vm", "vcpu", "signer"):
        assert np.array_equal(getattr(small, col), getattr(same, col)), col
    assert sgxlab.run("always-write", name, engine="fast", seed=5).summary()["launches"] == small.launches


@pytest.mark.parametrize("name", ["workshop", "suspend-resume", "mixed", "multi-tenant"])
def test_no_launches_means_no_s3_event(name):
    params = {"launches": 0} if name in ("workshop", "suspend-resume") else {"launches": 0, "s3": 3}
    tr = make_trace(name, params)
    assert len(tr) == 0
    for engine in ("fast", "exact"):
        assert sgxlab.run("always-write", name, params, engine=engine).summary()["s3_events"] == 0


def test_host_workloads_draw_their_launches():
    with pytest.raises(ConfigError, match=r"Budget\.draws") as ei:
        make_workload("host-only", {"launches": 1000}, budget=Budget(draws=500))
    assert ei.value.option == "host-only param launches"
    assert make_workload("host-only", {"launches": 500}, budget=Budget(draws=500)).values["launches"] == 500


@pytest.mark.parametrize(
    "call",
    [
        lambda b: sgxlab.run("always-write", "host-only", {"launches": 300}, engine="fast", budget=b),
        lambda b: sgxlab.compare(["always-write"], "host-only", {"launches": 300}, engine="fast", budget=b),
        lambda b: sgxlab.compare_seeds(
            ["always-write"], "host-only", {"launches": 300}, seeds=2, engine="fast", budget=b
        ),
        lambda b: sgxlab.sweep(
            ["always-write"], "host-only", {"cpus": [1, 2]}, params={"launches": 300}, progress=False, budget=b
        ),
        lambda b: sgxlab.run_trace(make_trace("host-only", {"launches": 300}), "always-write", engine="fast", budget=b),
    ],
    ids=["run", "compare", "compare_seeds", "sweep", "run_trace"],
)
def test_every_public_entry_takes_the_budget(call):
    """The top-level API passes ``budget=`` down (docs/simulator.md, "Limits"): a budget
    below the run is refused by name, and the default one runs it."""
    with pytest.raises(ConfigError, match="launches"):
        call(Budget(launches=100))
    call(None)
