"""Hardening: every bad input is a typed error naming what is wrong, never a traceback.

One section per review item: cost bounds; workload parameter bounds and the
trace-size budget; CSV trace signers and CPUs; config file I/O (decoding,
atomic writes with fsync and normal permissions, save path checked before the
run); ``module:Class`` designs only with an explicit opt-in; the command
line's error handling for every subcommand; the policy matrix's isolation
between policies and launch-enclave copies; QEMU's EPC option rules.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
import textwrap
import time
from pathlib import Path

import pytest
from cli_in_process import sgxlab_cli as cli

import sgxlab
from sgxlab.cli import COMMANDS
from sgxlab.errors import ConfigError, SgxlabError
from sgxlab.sim.costs import MAX_COST, CostModel, check_int64_budget
from sgxlab.sim.result import RunConfig, check_save_path
from sgxlab.sim.trace import LAUNCH, Trace
from sgxlab.sim.workloads import (
    MAX_GAP,
    MAX_SCHEDULE_CELLS,
    MAX_TRACE_ROWS,
    WORKLOADS,
    estimated_rows,
    make_trace,
    make_workload,
    parse_trace_csv,
)


def assert_one_line_error(rc: int, err: str, *words: str) -> None:
    assert rc == 2, err
    assert "Traceback" not in err
    assert err.endswith("\n") and err.count("\n") == 1, repr(err)
    for w in words:
        assert w in err, (w, err)


RUN = ("run", "--design", "always-write", "--workload", "host-only")


# --------------------------------------------------------------------------- 1. costs


@pytest.mark.parametrize(
    "override,name",
    [
        ("wrmsr_lehash=1e30", "wrmsr_lehash"),
        ("einit=1e18", "einit"),
        (f"lock={MAX_COST + 1}", "lock"),
        ("vm_exit=" + "9" * 5000, "vm_exit"),
    ],
)
def test_costs_are_capped_at_2_40_by_name(capsys, override, name):
    with pytest.raises(ConfigError, match=r"at most 2\*\*40") as ei:
        CostModel().with_overrides([override])
    assert ei.value.option == f"cost {name}"
    rc, out, err = cli(capsys, *RUN, "--param", "launches=10", "--cost", override)
    assert_one_line_error(rc, err, f"cost {name}", "2**40")
    assert out == ""


def test_cost_cap_boundary_and_direct_construction():
    assert CostModel().with_overrides({"einit": MAX_COST}).einit == 2**40
    with pytest.raises(ConfigError, match="cost einit"):
        CostModel(einit=2**41)
    with pytest.raises(ConfigError, match="cost einit"):
        CostModel().with_overrides({"einit": 2**40 + 1})


def test_fast_engine_no_longer_wraps_huge_costs(capsys):
    rc, _, err = cli(capsys, *RUN, "--param", "launches=10", "--cost", "einit=1e18", "--engine", "fast")
    assert_one_line_error(rc, err, "cost einit")


@pytest.mark.parametrize("ghz", ["inf", "-inf", "nan", "0", "-1", "1e400"])
def test_cpu_ghz_must_be_finite_and_positive(ghz):
    with pytest.raises(ConfigError, match="finite, positive") as ei:
        CostModel().with_overrides([f"cpu_ghz={ghz}"])
    assert ei.value.option == "cost cpu_ghz"


@pytest.mark.parametrize("ghz", [float("inf"), float("nan"), 10**400, -2.0])
def test_cpu_ghz_refused_from_python_and_files(ghz):
    with pytest.raises(ConfigError, match="cpu_ghz"):
        CostModel(cpu_ghz=ghz)
    with pytest.raises(ConfigError, match="cpu_ghz"):
        CostModel.from_dict({"cpu_ghz": ghz})


def test_int64_budget_refuses_runs_whose_sums_could_wrap():
    big = CostModel(einit=MAX_COST)
    # The cap alone cannot make 10 M saturated launches at 2**40 cycles fit int64: refused by name.
    with pytest.raises(ConfigError, match="cost einit.*past int64"):
        check_int64_budget(big, 10_000_000, 0)
    check_int64_budget(big, 1_000, 2**62)  # fine
    check_int64_budget(CostModel(), 50_000_000, 2**62)  # default costs: any trace the workloads can make
    late = Trace.from_rows([(2**63 - 1000, LAUNCH, 0, -1, -1, 0)], ncpus=1, nsigners=1)
    with pytest.raises(ConfigError, match="past int64"):
        sgxlab.sim.run.run_trace(late, "always-write")


# --------------------------------------------------------------------------- 2. workload bounds


def test_every_numeric_parameter_has_a_documented_maximum():
    for name, cls in WORKLOADS.items():
        for p in cls.params:
            if p.type in (int, float):
                assert p.min is not None and p.max is not None, (name, p.name)
                d = p.as_dict()
                assert d["max"] == p.max
    assert MAX_GAP == 2**36 and MAX_TRACE_ROWS == 50_000_000


@pytest.mark.parametrize(
    "workload,param,value,match",
    [
        ("host-only", "interval", "1e300", "at most 68,719,476,736"),
        ("host-only", "interval", 1e300, "at most"),
        ("host-only", "interval", "1e400", "at most"),
        ("host-only", "interval", "9" * 5000, "at most"),
        ("host-only", "interval", "inf", "finite"),
        ("host-only", "interval", float("inf"), "finite"),
        ("host-only", "interval", float("nan"), "finite"),
        ("host-only", "reuse", "nan", "finite"),
        ("host-only", "reuse", 10**400, "finite"),
        ("multi-tenant", "slice", "1e300", "at most"),
        ("multi-tenant", "exit_interval", 2**36 + 1, "at most"),
        ("mixed", "host_interval", "1e300", "at most"),
        ("multi-tenant", "nolewr", 65, "at most 64"),
        ("host-only", "launches", 60_000_000, "at most 50,000,000"),
    ],
)
def test_parameters_out_of_range_are_refused_by_name(workload, param, value, match):
    with pytest.raises(ConfigError, match=match) as ei:
        make_workload(workload, {param: value})
    assert ei.value.option == f"{workload} param {param}"


def test_cli_huge_times_are_refused_not_garbage(capsys):
    for argv in (
        ("--param", "interval=1e300"),
        ("--param", "interval=inf"),
    ):
        rc, _, err = cli(capsys, *RUN, *argv)
        assert_one_line_error(rc, err, "param interval")
    rc, _, err = cli(capsys, "run", "--design", "always-write", "--workload", "multi-tenant", "--param", "slice=1e300")
    assert_one_line_error(rc, err, "param slice")


def test_row_budget_refuses_before_generating_and_says_how_to_shrink():
    t0 = time.perf_counter()
    with pytest.raises(ConfigError) as ei:
        make_workload("workshop", {"slice": 2})  # ~165 M schedule-ins
    assert time.perf_counter() - t0 < 1.0, "refused without generating"
    assert ei.value.option == "workshop params slice, stay" and ei.value.value == {"slice": 2, "stay": 0.25}
    assert "rows" in ei.value.reason and "50,000,000" in ei.value.reason and "raise slice" in ei.value.reason
    # Plain exits are counted, not rows (Trace.vm_exits): 40 M of them make no row ...
    make_workload("multi-tenant", {"launches": 20_000_000})
    # ... but their offsets are still drawn, so the generator's draw budget bounds them.
    with pytest.raises(ConfigError) as ei:
        make_workload("workshop", {"exit_interval": 1})  # ~400 M exits
    assert "draw" in ei.value.reason and "exit_interval" in ei.value.reason


def test_slow_guest_workloads_are_refused_not_hung():
    # Both launch rates at the maximum gap: a naive generator plans ~10**8 slices in Python.
    t0 = time.perf_counter()
    for extra in ({}, {"exit_interval": 0}, {"exit_interval": 0, "stay": 1.0}):
        with pytest.raises(ConfigError) as ei:
            make_workload("mixed", {"host_interval": MAX_GAP, "interval": MAX_GAP, **extra})
        assert "limit" in ei.value.reason
    assert time.perf_counter() - t0 < 1.0
    with pytest.raises(ConfigError, match=f"{MAX_SCHEDULE_CELLS:,}"):
        make_workload("mixed", {"host_interval": MAX_GAP, "interval": MAX_GAP, "exit_interval": 0, "stay": 1.0})


def test_big_but_sane_workloads_still_pass_the_budget():
    make_workload("host-only", {"launches": 10_000_000})  # 10 M rows
    make_workload("suspend-resume", {"launches": 10_000_000, "s3": 1_000})
    make_workload("enclave-churn", {"launches": 10_000_000})
    make_workload("multi-tenant", {"launches": 2_000_000})  # bench size, ~6 M rows
    make_workload("workshop", {"launches": 10_000_000})
    make_workload("multi-tenant", {"vms": 64, "vcpus": 256, "cpus": 4096, "signers_per_vm": 1, "nolewr": 0})


@pytest.mark.parametrize(
    "workload,params",
    [
        ("workshop", {}),
        ("multi-tenant", {"launches": 3000}),
        ("mixed", {"launches": 3000, "stay": 0.0, "exit_interval": 50_000}),
        ("suspend-resume", {"launches": 3000}),
    ],
)
def test_size_estimate_is_close_to_the_real_trace(workload, params):
    wl = make_workload(workload, params)
    est = type(wl).estimate(wl.values)
    rows = estimated_rows(est)
    real = len(wl.trace(1))
    assert 0.6 * real <= rows <= 1.6 * real, (rows, real)


def test_ten_million_launch_host_only_trace_still_generates():
    tr = make_trace("host-only", {"launches": 10_000_000}, seed=3)
    assert tr.launches == 10_000_000 and 0 < int(tr.t[-1]) < 2**62


# --------------------------------------------------------------------------- 3. CSV traces

HEAD = "t,kind,cpu,vm,vcpu,signer\n"


def csv_error(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as ei:
        parse_trace_csv(text, source="x.csv")
    return ei.value


@pytest.mark.parametrize(
    "text,where,words",
    [
        ("#@ signers=65\n" + HEAD + "0,launch,0,,,1\n", "x.csv line 1, signers", ["64 test keys"]),
        (HEAD + "0,launch,0,,,64\n", "x.csv line 2, column signer", ["64 test keys", "key63"]),
        (HEAD + "0,launch,0,,,100\n", "x.csv line 2, column signer", ["64 test keys"]),
        ("#@ signers=8\n" + HEAD + "0,launch,0,,,1\n9,launch,0,,,70\n", "x.csv line 4, column signer", []),
        (HEAD + "0,sched,0,0,0,99\n", "x.csv line 2, column signer", []),
        (HEAD + "0,launch,,,,1\n", "x.csv line 2, column cpu", ["needs its CPU"]),
        (HEAD + "0,launch,0,,,1\n5,launch,,,,1\n", "x.csv line 3, column cpu", ["needs its CPU"]),
        (HEAD + "0,launch,-1,,,1\n", "x.csv line 2, column cpu", ["needs its CPU"]),
        ("#@ cpus=2\n" + HEAD + "0,sched,,0,0,\n", "x.csv line 3, column cpu", ["sched row"]),
        (HEAD + "0,launch,5000,,,1\n", "x.csv line 2, column cpu", ["4096 CPUs"]),
        ("#@ allowlist=0,99\n" + HEAD + "0,launch,0,,,0\n", "x.csv line 1, allowlist", ["test keys"]),
    ],
)
def test_csv_signers_and_cpus_are_blamed_on_their_line(text, where, words):
    e = csv_error(text)
    assert e.option == where, str(e)
    assert "directives: ncpus" not in str(e)
    for w in words:
        assert w in str(e)


def test_csv_s3_rows_may_leave_cpu_empty_and_64_signers_are_fine():
    tr = parse_trace_csv("#@ signers=64\n" + HEAD + "0,launch,0,,,63\n5,s3,,,,\n", source="x.csv")
    assert tr.nsigners == 64 and len(tr) == 2


def test_cli_csv_with_a_signer_past_the_keys(capsys, tmp_path):
    f = tmp_path / "t.csv"
    f.write_text(HEAD + "0,launch,0,,,1\n10,launch,0,,,200\n")
    rc, _, err = cli(capsys, "run", "--design", "always-write", "--workload", f"trace:{f}")
    assert_one_line_error(rc, err, "line 3, column signer=200")


# --------------------------------------------------------------------------- 4. config file I/O


def small_config() -> RunConfig:
    return RunConfig("always-write", "host-only", {"launches": 20}, {}, 0, "exact")


@pytest.mark.parametrize("suffix", [".json", ".toml"])
def test_config_that_is_not_utf8_is_a_config_error(tmp_path, suffix, capsys):
    f = tmp_path / f"bin{suffix}"
    f.write_bytes(b"\xff\xfe\x00design = \x81\n")
    with pytest.raises(ConfigError, match="not UTF-8") as ei:
        RunConfig.load(f)
    assert str(f) in str(ei.value)
    rc, _, err = cli(capsys, "run", "--config", f)
    assert_one_line_error(rc, err, str(f), "not UTF-8")


@pytest.mark.parametrize(
    "name,text,match",
    [
        ("bad.json", "{nope", "not valid JSON"),
        ("deep.json", "[" * 100_000, "JSON"),
        ("bad.toml", "design = = 1", "not valid TOML"),
        ("nan.json", '{"design": "always-write", "workload": "host-only", "costs": {"cpu_ghz": NaN}}', "cpu_ghz"),
        ("inf.toml", 'design = "always-write"\nworkload = "host-only"\n[costs]\neinit = inf\n', "einit"),
    ],
)
def test_config_decode_errors_name_the_file(tmp_path, capsys, name, text, match):
    f = tmp_path / name
    f.write_text(text)
    rc, _, err = cli(capsys, "run", "--config", f)
    assert_one_line_error(rc, err, match)


def test_config_that_is_a_directory(tmp_path, capsys):
    d = tmp_path / "cfg.json"
    d.mkdir()
    with pytest.raises(ConfigError, match="directory"):
        RunConfig.load(d)
    with pytest.raises(ConfigError, match="directory"):
        small_config().save(d)
    rc, _, err = cli(capsys, "run", "--config", d)
    assert_one_line_error(rc, err, "directory")


@pytest.mark.parametrize(
    "target,match",
    [
        ("some_dir.json", "is a directory"),
        ("missing/x.json", "no such folder"),
        ("run.txt", "expected a .json or .toml"),
        ("file/x.json", "no such folder"),
    ],
)
def test_save_config_is_checked_before_the_run(tmp_path, capsys, monkeypatch, target, match):
    (tmp_path / "some_dir.json").mkdir()
    (tmp_path / "file").write_text("x")

    def no_run(**kw):
        raise AssertionError("the simulation ran although the save path was bad")

    monkeypatch.setattr("sgxlab.sim.run.run", no_run)
    rc, out, err = cli(capsys, *RUN, "--save-config", tmp_path / target)
    assert_one_line_error(rc, err, match)
    assert out == ""
    with pytest.raises(ConfigError, match=match):
        check_save_path(tmp_path / target)


def test_summary_is_printed_even_if_saving_fails_afterwards(tmp_path, capsys, monkeypatch):
    def disk_full(self, path):
        raise ConfigError("config", str(path), "No space left on device")

    monkeypatch.setattr(RunConfig, "save", disk_full)
    rc, out, err = cli(capsys, *RUN, "--param", "launches=20", "--json", "--save-config", tmp_path / "r.json")
    assert_one_line_error(rc, err, "No space left")
    assert json.loads(out)["launches"] == 20


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002, 0o027])
@pytest.mark.parametrize("name", ["run.json", "run.toml"])
def test_saved_config_gets_normal_permissions(tmp_path, mask, name):
    old = os.umask(mask)
    try:
        small_config().save(tmp_path / name)
    finally:
        os.umask(old)
    mode = stat.S_IMODE((tmp_path / name).stat().st_mode)
    assert mode == 0o666 & ~mask, oct(mode)
    assert os.umask(old) == old  # the umask is left as it was
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_atomic_write_fsyncs_before_the_rename(tmp_path, monkeypatch):
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append("replace"), real_replace(a, b))[1])
    small_config().save(tmp_path / "r.json")
    assert events[:2] == ["fsync", "replace"]
    assert RunConfig.load(tmp_path / "r.json") == small_config()


def test_failed_replace_keeps_the_old_file_and_no_temp_files(tmp_path, monkeypatch):
    target = tmp_path / "r.json"
    target.write_text("old contents\n")

    def fail(a, b):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(ConfigError, match="Permission denied"):
        small_config().save(target)
    assert target.read_text() == "old contents\n"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


# --------------------------------------------------------------------------- 5. module:Class opt-in


@pytest.fixture
def user_modules(tmp_path, monkeypatch):
    """Importable modules in tmp_path; each records its import in ``imported.log``."""
    log = tmp_path / "imported.log"
    names = {
        "hard_design_ok": """
            from sgxlab.host.designs import AlwaysWrite
            class Twice(AlwaysWrite):
                name = "twice"
        """,
        "hard_design_boom": "raise RuntimeError('boom at import')",
        "hard_design_exit": "import sys; sys.exit(3)",
        "hard_design_notdesign": "class Twice: pass\nvalue = 3",
    }
    for name, body in names.items():
        (tmp_path / f"{name}.py").write_text(
            f"open({str(log)!r}, 'a').write({name!r} + '\\n')\n" + textwrap.dedent(body)
        )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield log
    for name in names:
        sys.modules.pop(name, None)


def test_module_class_design_needs_opt_in(user_modules):
    with pytest.raises(ConfigError, match="allow_import=True") as ei:
        sgxlab.run(design="hard_design_ok:Twice", workload="host-only", params={"launches": 10})
    assert "--allow-import" in str(ei.value)
    with pytest.raises(ConfigError, match="allow_import=True"):
        sgxlab.compare(["hard_design_ok:Twice"], workload="host-only", params={"launches": 10})
    cfg = RunConfig("hard_design_ok:Twice", "host-only", {"launches": 10})
    with pytest.raises(ConfigError, match="allow_import=True"):
        sgxlab.replay(cfg)
    assert not user_modules.exists(), "nothing was imported without the opt-in"
    r = sgxlab.replay(cfg, allow_import=True)
    assert r.summary()["design"] == "twice" and r.summary()["launches"] == 10
    assert user_modules.read_text() == "hard_design_ok\n"


@pytest.mark.parametrize(
    "design,match",
    [
        ("hard_design_boom:X", "RuntimeError: boom at import"),
        ("hard_design_exit:X", "SystemExit"),
        ("hard_design_ok:Nope", "has no 'Nope'"),
        ("hard_design_notdesign:Twice", "not a sgxlab.host.designs.Design subclass"),
        ("hard_design_notdesign:value", "not a sgxlab.host.designs.Design subclass"),
        ("no_such_module_xyz:X", "cannot import"),
        ("hard_design_ok:", "expected module:Class"),
        (":X", "expected module:Class"),
    ],
)
def test_opted_in_import_failures_are_config_errors(user_modules, design, match):
    with pytest.raises(ConfigError, match=match):
        sgxlab.run(design=design, workload="host-only", params={"launches": 5}, allow_import=True)


def test_cli_module_class_design_needs_allow_import(user_modules, capsys, tmp_path):
    base = ("run", "--design", "hard_design_ok:Twice", "--workload", "host-only", "--param", "launches=10")
    rc, out, err = cli(capsys, *base)
    assert_one_line_error(rc, err, "--allow-import")
    assert out == "" and not user_modules.exists()
    rc, out, err = cli(capsys, *base, "--allow-import", "--json", "--save-config", tmp_path / "c.json")
    assert rc == 0 and err == "" and json.loads(out)["design"] == "twice"
    # A saved config naming a module: replaying it needs the opt-in again.
    rc, _, err = cli(capsys, "run", "--config", tmp_path / "c.json")
    assert_one_line_error(rc, err, "--allow-import")
    rc, out, _ = cli(capsys, "run", "--config", tmp_path / "c.json", "--allow-import", "--json")
    assert rc == 0 and json.loads(out)["design"] == "twice"


def test_cli_design_this_does_not_import(capsys):
    sys.modules.pop("this", None)
    rc, out, err = cli(capsys, "run", "--design", "this:x", "--workload", "host-only")
    assert_one_line_error(rc, err, "--allow-import")
    assert out == "" and "this" not in sys.modules


# --------------------------------------------------------------------------- 6. the command line


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    from sgxlab.host.samples import signed_enclave
    from sgxlab.hw.measure import Page, write_sgxs
    from sgxlab.hw.structs import PT_TCS, SECINFO_R, SECINFO_X, Secinfo

    d = tmp_path_factory.mktemp("adversarial")
    f = {
        "sig": d / "ok.sig",
        "sgxs": d / "ok.sgxs",
        "empty": d / "empty",
        "garbage": d / "garbage.bin",
        "bin": d / "bin.json",
        "dir": d,
        "missing": d / "missing",
        "csv_nul": d / "nul.csv",
        "csv_bad": d / "bad.csv",
    }
    f["sig"].write_bytes(signed_enclave(5).sigstruct_bytes)
    f["sgxs"].write_bytes(
        write_sgxs([Page(0, Secinfo.of(SECINFO_R | SECINFO_X), b"\x90" * 4096), Page(0x1000, Secinfo.of(0, PT_TCS))])
    )
    f["empty"].write_bytes(b"")
    f["garbage"].write_bytes(bytes(range(256)) * 8)
    f["bin"].write_bytes(b"\xff\xfe\x00\x81")
    f["csv_nul"].write_bytes(b"t,kind,cpu,vm,vcpu,signer\n0,launch,0,,,\x001\n")
    f["csv_bad"].write_text("t,kind,cpu,vm,vcpu,signer\n0,launch,,,,1\n")
    return f


H64 = "ab" * 32
ADVERSARIAL: dict[str, list[tuple[tuple[str, ...], int]]] = {
    "sigstruct": [
        (("sigstruct", "{sig}"), 0),
        (("sigstruct", "{sig}", "--json"), 0),
        (("sigstruct", "{missing}"), 2),
        (("sigstruct", "{dir}"), 2),
        (("sigstruct", "{empty}"), 2),
        (("sigstruct", "{garbage}"), 2),
        (("sigstruct",), 2),
    ],
    "measure": [
        (("measure", "{sgxs}", "--json"), 0),
        (("measure", "{empty}"), 2),
        (("measure", "{garbage}"), 2),
        (("measure", "{sig}"), 2),
        (("measure", "{dir}"), 2),
        (("measure", "{missing}"), 2),
    ],
    "einit": [
        (("einit", "--sigstruct", "{sig}", "--sgxs", "{sgxs}"), 0),
        (("einit", "--sigstruct", "{sig}", "--mrenclave", H64, "--json"), 0),
        (("einit", "--sigstruct", "{garbage}", "--mrenclave", H64), 2),
        (("einit", "--sigstruct", "{sig}", "--mrenclave", "zz"), 2),
        (("einit", "--sigstruct", "{sig}", "--mrenclave", "g" * 64), 2),
        (("einit", "--sigstruct", "{sig}", "--mrenclave", H64, "--lehash", "nope"), 2),
        (("einit", "--sigstruct", "{sig}", "--mrenclave", H64, "--token", "{empty}"), 2),
        (("einit", "--sigstruct", "{sig}", "--mrenclave", H64, "--token", "{dir}"), 2),
        (("einit", "--sigstruct", "{sig}", "--mrenclave", H64, "--secs-attributes", "BOGUS/zz"), 2),
        (("einit", "--sigstruct", "{sig}", "--mrenclave", H64, "--secs-attributes", "0x" + "f" * 40), 2),
        (("einit", "--sigstruct", "{sig}", "--sgxs", "{garbage}"), 2),
        (("einit", "--sigstruct", "{sig}"), 2),
    ],
    "guest": [
        (("guest", "--sgx", "epc=64M,lewr"), 0),
        (("guest", "--sgx", "epc=99999999999999999999999999G"), 2),
        (("guest", "--sgx", "epc=" + "9" * 5000), 2),
        (("guest", "--sgx", "epc=64M,lehash=" + "x" * 64), 2),
        (("guest", "--sgx", ""), 2),
        (("guest", "--sgx", "epc=64M", "--policy", "nope"), 2),
        (("guest", "--sgx", "epc=64M", "--firmware", "nope"), 2),
        (("guest", "--sgx", "epc=64M", "--design", "this:x"), 2),
        (("guest", "--sgx", "epc=64M", "--approve", "zz"), 2),
        (("guest", "--sgx", "epc=64M", "--firmware", "locked-third-party"), 2),
        (("guest", "--sgx=-cpu host,+sgxlc -object memory-backend-epc,id=a,size=1M -M sgx-epc.0.memdev=a"), 0),
        (
            (
                "guest",
                "--sgx=-object memory-backend-epc,id=a,size=1M -object memory-backend-epc,id=a,size=1M "
                "-M sgx-epc.0.memdev=a",
            ),
            2,
        ),
        (("guest", "--sgx=-object memory-backend-epc,id=a,size=1M -M sgx-epc.0.memdev=a,sgx-epc.0.memdev=a"), 2),
        (("guest", '--sgx=-cpu "unbalanced'), 2),
    ],
    "policies": [(("policies",), 0), (("policies", "--json"), 0), (("policies", "extra"), 2)],
    "policy-matrix": [
        (("policy-matrix", "--design", "nope"), 2),
        (("policy-matrix", "--design", "this:x"), 2),
        (("policy-matrix", "--design", "percpu-cache:bogus"), 2),
        (("policy-matrix", "--bogus"), 2),
    ],
    "run": [
        (("run", "--design", "always-write", "--workload", "host-only", "--param", "launches=50"), 0),
        (("run", "--workload", "host-only"), 2),
        (("run", "--design", "always-write"), 2),
        (("run", "--design", "always-write", "--workload", "nope"), 2),
        (("run", "--design", "always-write", "--workload", "host-only", "--param", "launches"), 2),
        (("run", "--design", "always-write", "--workload", "host-only", "--param", "interval=1e300"), 2),
        (("run", "--design", "always-write", "--workload", "host-only", "--param", "reuse=nan"), 2),
        (("run", "--design", "always-write", "--workload", "workshop", "--param", "exit_interval=1"), 2),
        (("run", "--design", "always-write", "--workload", "host-only", "--cost", "wrmsr_lehash=1e30"), 2),
        (("run", "--design", "always-write", "--workload", "host-only", "--cost", "cpu_ghz=inf"), 2),
        (("run", "--design", "always-write", "--workload", "host-only", "--costs", "../../etc/passwd"), 2),
        (("run", "--design", "always-write", "--workload", "host-only", "--seed", "-1"), 2),
        (("run", "--design", "this:x", "--workload", "host-only"), 2),
        (("run", "--design", "always-write", "--workload", "trace:{missing}"), 2),
        (("run", "--design", "always-write", "--workload", "trace:{dir}"), 2),
        (("run", "--design", "always-write", "--workload", "trace:{bin}"), 2),
        (("run", "--design", "always-write", "--workload", "trace:{csv_nul}"), 2),
        (("run", "--design", "always-write", "--workload", "trace:{csv_bad}"), 2),
        (("run", "--config", "{bin}"), 2),
        (("run", "--config", "{dir}"), 2),
        (("run", "--config", "{missing}"), 2),
        (("run", "--config", "{sig}"), 2),
        (("run", "--design", "always-write", "--workload", "host-only", "--save-config", "{dir}"), 2),
        (("run", "--design", "always-write", "--workload", "host-only", "--engine", "warp"), 2),
    ],
    "compare": [
        (("compare", "--workload", "host-only", "--param", "launches=50", "--engine", "fast"), 0),
        (("compare", "--designs", "nope"), 2),
        (("compare", "--designs", ","), 2),
        (("compare", "--seeds", "-3"), 2),
        (("compare", "--seeds", "1,1"), 2),
        (("compare", "--plot", "{dir}"), 2),
        (("compare", "--plot", "x.bmp"), 2),
        (("compare", "--text", "{dir}"), 2),
        (("compare", "--cost", "einit=x"), 2),
        (("compare", "--workload", "trace:{csv_bad}"), 2),
        (("compare", "--baseline", "nope"), 2),
    ],
    "sweep": [
        (
            (
                "sweep",
                "--designs",
                "always-write",
                "--workload",
                "host-only",
                "--vary",
                "launches=20,40",
                "--workers",
                "1",
                "--no-progress",
            ),
            0,
        ),
        (("sweep", "--vary", "nope=1"), 2),
        (("sweep", "--vary", "einit=1e300"), 2),
        (("sweep", "--vary", "=1"), 2),
        (("sweep", "--executor", "bogus"), 2),
        (("sweep", "--out", "{sig}", "--vary", "einit=1"), 2),
        (("sweep", "--csv", "{dir}", "--vary", "einit=1"), 2),
    ],
    "plot": [
        (("plot", "nope", "--out", "x.png"), 2),
        (("plot", "latency", "--out", "x.gif"), 2),
        (("plot", "policy-matrix", "--out", "{dir}"), 2),
        (("plot", "overhead", "--out", "/no/such/dir/x.png"), 2),
        (("plot", "msr-traffic"), 2),
    ],
    "designs": [(("designs",), 0), (("designs", "--json"), 0), (("designs", "extra"), 2)],
    "workloads": [(("workloads",), 0), (("workloads", "--json"), 0), (("workloads", "--bogus"), 2)],
}


def test_adversarial_table_covers_every_subcommand():
    assert set(ADVERSARIAL) == set(COMMANDS)


@pytest.mark.parametrize(
    "argv,want",
    [pytest.param(argv, want, id=" ".join(argv)[:60]) for cases in ADVERSARIAL.values() for argv, want in cases],
)
def test_every_subcommand_under_adversarial_input(capsys, inputs, argv, want):
    args = [a.format(**{k: str(v) for k, v in inputs.items()}) for a in argv]
    rc, out, err = cli(capsys, *args)
    assert "Traceback" not in err and "Traceback" not in out
    if want == 0:
        assert (rc, err) == (0, ""), err
        assert out
    else:
        assert_one_line_error(rc, err)
        assert out == ""


@pytest.mark.parametrize(
    "exc,rc,words",
    [
        (PermissionError(13, "Permission denied", "/some/file"), 2, ["/some/file", "Permission denied"]),
        (OSError(28, "No space left on device"), 2, ["No space left"]),
        (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"), 2, ["not UTF-8"]),
        (ConfigError("x", 1, "line one\nline two"), 2, ["line one line two"]),
        (KeyboardInterrupt(), 130, ["interrupted"]),
    ],
)
def test_main_turns_escaping_errors_into_one_line(capsys, monkeypatch, exc, rc, words):
    def boom(args):
        raise exc

    monkeypatch.setattr("sgxlab.cli.designs.run", boom)
    got, out, err = cli(capsys, "designs")
    assert got == rc and out == ""
    assert err.count("\n") == 1 and err.startswith("sgxlab designs: ") and "Traceback" not in err
    for w in words:
        assert w in err


# --------------------------------------------------------------------------- 7. the policy matrix and QEMU options

# sha256 of json.dumps(policy_matrix_records(design), sort_keys=True), recorded before the
# per-policy Platform and LaunchEnclave.clone() change. Every design's 60 rows are unchanged
# except percpu-cache's, whose old rows 13, 49 and 50 showed state leaked from the previous
# policy's rows (CPU 0 still held the last guest's hash while the new design instance's cache
# assumed Intel's); now it matches the other token-less designs, as a fresh host must.
MATRIX_DIGEST_BEFORE = {
    "eager-load": "137617e593809ddb60d1497774a16d9a6ddc74e607dac3f7483ce334112f6dfd",
    "percpu-cache": "49f1cb2ef2de3183fc8d32e4d05ffefdef2f265316a819a0708c1828ffac80dd",
    "percpu-cache-retry": "6f6938f76538ea22a04d56ffdff38ea926e86593adc26e68238e5fafd0ddbd9e",
    "read-compare": "6f6938f76538ea22a04d56ffdff38ea926e86593adc26e68238e5fafd0ddbd9e",
    "always-write": "6f6938f76538ea22a04d56ffdff38ea926e86593adc26e68238e5fafd0ddbd9e",
}


OLD_COLUMNS = (
    "policy",
    "lewr",
    "lehash",
    "signer",
    "vm_created",
    "launched",
    "code",
    "bypass",
    "hw_consistent",
    "reason",
)


def _digest(rows) -> str:
    return hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()


def test_policy_matrix_rows_unchanged_by_the_isolation_fix():
    from sgxlab.experiments.matrix import policy_matrix_records
    from sgxlab.host.designs import DESIGNS

    def old_rows(design: str | None = None) -> list[dict]:
        """The 60 rows and 10 columns the matrix had before the PROVISIONKEY gate (issue 12) widened it."""
        rows = policy_matrix_records(design) if design else policy_matrix_records()
        return [{k: r[k] for k in OLD_COLUMNS} for r in rows if r["policy"] != "mainline" and not r["provisionkey"]]

    for name in DESIGNS:
        rows = old_rows(name)
        assert len(rows) == 60
        want = MATRIX_DIGEST_BEFORE["always-write" if name == "percpu-cache" else name]
        assert _digest(rows) == want, name
    assert _digest(old_rows()) == MATRIX_DIGEST_BEFORE["always-write"]


def test_policy_matrix_gives_each_policy_a_fresh_platform(monkeypatch):
    import sgxlab.experiments.matrix as kvm
    from sgxlab.kvm.policy import HOST_POLICY_NAMES

    made = []

    class Counting(kvm.Platform):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            made.append(self)

    monkeypatch.setattr(kvm, "Platform", Counting)
    kvm.policy_matrix_records("percpu-cache")
    assert len(made) == len(HOST_POLICY_NAMES) == len({id(p) for p in made})


@pytest.mark.parametrize("design", ["percpu-cache", "always-write", "eager-load"])
def test_policy_matrix_rows_do_not_depend_on_policy_order(monkeypatch, design):
    import sgxlab.experiments.matrix as kvm

    forward = kvm.policy_matrix_records(design)
    monkeypatch.setattr(kvm, "HOST_POLICY_NAMES", tuple(reversed(kvm.HOST_POLICY_NAMES)))
    backward = kvm.policy_matrix_records(design)
    key = lambda r: (r["policy"], r["lewr"], r["lehash"], r["signer"], r["provisionkey"], r["provision"])
    assert sorted(forward, key=key) == sorted(backward, key=key)


def test_launch_enclave_clones_have_their_own_keyid_stream():
    from sgxlab.host.le import LaunchEnclave
    from sgxlab.host.samples import signed_enclave
    from sgxlab.hw.arch import MSR_IA32_SGXLEPUBKEYHASH
    from sgxlab.hw.crypto import load_test_key
    from sgxlab.hw.platform import Platform

    key = load_test_key(6)
    app = signed_enclave(7)
    le = LaunchEnclave.create(key, allowlist=[app.mrsigner], seed=11)
    state = le._rng.getstate()

    def keyid(clone: LaunchEnclave) -> bytes:
        cpu = Platform(1, "flexible").cpu(0)
        for msr, w in zip(MSR_IA32_SGXLEPUBKEYHASH, key.mrsigner.words):
            cpu.wrmsr(msr, w)
        assert clone.launch(cpu).ok
        tok = clone.get_token(app.sigstruct, app.sigstruct.attributes).token
        assert tok is not None
        return tok.keyid

    a, b = le.clone(), le.clone()
    assert a._rng is not b._rng and a.enclave is None and a.cpu is None
    first = keyid(a)
    keyid(a)  # a second token from a moves only a's stream
    assert keyid(b) == first
    assert le._rng.getstate() == state and le.enclave is None


@pytest.mark.parametrize(
    "text,option,words",
    [
        ("epc=99999999999999999999999999G", "-sgx epc", ["1024G", "1 TiB"]),
        ("epc=1025G", "-sgx epc", ["1024G"]),
        ("epc=" + "9" * 5000, "-sgx epc", ["1024G"]),
        (
            "-object memory-backend-epc,id=a,size=1M -object memory-backend-epc,id=a,size=2M -M sgx-epc.0.memdev=a",
            "-object id",
            ["duplicate ID"],
        ),
        (
            "-object memory-backend-ram,id=a,size=1M -object memory-backend-epc,id=a,size=4K -M sgx-epc.0.memdev=a",
            "-object id",
            ["duplicate ID"],
        ),
        (
            "-object memory-backend-epc,id=a,size=1M -object memory-backend-epc,id=b,size=1M "
            "-M sgx-epc.0.memdev=a,sgx-epc.0.memdev=b",
            "sgx-epc.0.memdev",
            ["given twice"],
        ),
        (
            "-object memory-backend-epc,id=a,size=1M -object memory-backend-epc,id=b,size=1M "
            "-M sgx-epc.0.memdev=a -M sgx-epc.00.memdev=b",
            "sgx-epc.00.memdev",
            ["given twice"],
        ),
        (
            "-object memory-backend-epc,id=a,size=1M -M sgx-epc.0.memdev=a,sgx-epc.1.memdev=a",
            "sgx-epc.1.memdev",
            ["already sgx-epc.0's memdev"],
        ),
        (
            "-object memory-backend-epc,id=a,size=1M -M sgx-epc.99999999999999999999.memdev=a",
            "-M sgx-epc",
            ["without gaps", "sgx-epc.0.memdev is missing"],
        ),
        (
            "-object memory-backend-epc,id=a,size=1024G -object memory-backend-epc,id=b,size=4K "
            "-M sgx-epc.0.memdev=a,sgx-epc.1.memdev=b",
            "-M sgx-epc",
            ["add up to more than 1024G"],
        ),
    ],
)
def test_qemu_epc_rules(text, option, words):
    from sgxlab.kvm import GuestOptionError, SgxGuestConfig

    with pytest.raises(GuestOptionError) as ei:
        SgxGuestConfig.parse(text)
    assert ei.value.option == option, str(ei.value)
    for w in words:
        assert w in str(ei.value)


def test_epc_limits_accept_real_sizes():
    from sgxlab.kvm import MAX_EPC, SgxGuestConfig, parse_size

    assert parse_size("1024G") == MAX_EPC == 1 << 40
    with pytest.raises(SgxlabError, match="1024G"):
        SgxGuestConfig(epc=MAX_EPC + 4096)
    cfg = SgxGuestConfig.parse(
        "-object memory-backend-epc,id=a,size=512G -object memory-backend-epc,id=b,size=512G "
        "-M sgx-epc.1.memdev=a,sgx-epc.0.memdev=b"
    )
    assert cfg.epc == MAX_EPC
    assert SgxGuestConfig.parse(cfg.to_option()) == cfg
