"""The run API (``sgxlab.run``/``compare``, Result, RunConfig) and ``sgxlab run/designs/workloads``."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from cli_in_process import sgxlab_cli as cli

import sgxlab
from sgxlab.cli import COMMANDS
from sgxlab.errors import ConfigError, EngineUnsupported
from sgxlab.host.designs import DESIGNS, AlwaysWrite, PerCpuCache
from sgxlab.sim.costs import CostModel
from sgxlab.sim.result import SUMMARY_KEYS, Result, RunConfig, flatten_summary
from sgxlab.sim.workloads import WORKLOADS

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "data" / "traces" / "example.csv"
ISSUE_KEYS = {
    "design", "workload", "seed", "engine", "launches", "einit", "failures", "retries", "wrmsr", "rdmsr",
    "schedule_ins", "encls_exits", "latency_cycles", "overhead_cycles", "bypasses",
}  # fmt: skip


def test_run_returns_a_result_with_the_contract_summary():
    r = sgxlab.run(design="read-compare", workload="workshop", params={"launches": 300}, seed=2)
    assert isinstance(r, Result)
    s = r.summary()
    assert tuple(s) == SUMMARY_KEYS and set(s) >= ISSUE_KEYS
    assert (s["design"], s["workload"], s["seed"], s["engine"]) == ("read-compare", "workshop", 2, "exact")
    assert s["launches"] == 300 and set(s["latency_cycles"]) == {"mean", "p50", "p99", "max"}
    s["launches"] = -1
    assert r.summary()["launches"] == 300  # a copy
    assert len(r.records()) == 300 and r.latencies.shape == (300,)
    text = str(r)
    assert all(len(line) <= 72 for line in text.splitlines()) and "read-compare on workshop" in text
    assert all(len(line) <= 40 for line in r.to_text(40).splitlines())
    assert r._repr_html_().startswith("<table>") and "wrmsr" in r._repr_html_()
    assert "read-compare" in repr(r)


def test_designs_by_class_name_and_variant():
    a = sgxlab.run(design=PerCpuCache, workload="host-only", params={"launches": 200}).summary()
    b = sgxlab.run(design="percpu-cache", workload="host-only", params={"launches": 200}).summary()
    assert a == b and a["design"] == "percpu-cache"
    c = sgxlab.run(design="percpu-cache:percpu", workload="host-only", params={"launches": 200})
    assert c.summary()["design"] == "percpu-cache:percpu" and c.config.design == "percpu-cache:percpu"
    # The 2019 form serialised with preempt_disable() only: per-CPU is its default, global the variant.
    r = sgxlab.run(design="percpu-cache-retry:global", workload="suspend-resume", params={"launches": 300})
    assert r.summary()["failures"] == {} and r.summary()["design"] == "percpu-cache-retry:global"
    assert sgxlab.run(design="percpu-cache-retry:percpu", workload="host-only").summary()["design"] == (
        "percpu-cache-retry"
    )
    with pytest.raises(ConfigError, match="unknown design"):
        sgxlab.run(design="nope")
    with pytest.raises(ConfigError, match="engine='warp'"):
        sgxlab.run(engine="warp")


class Paranoid(AlwaysWrite):
    """A reader's design: write, read back all four, then EINIT."""

    name = "paranoid"

    def update_lepubkeyhash(self, cpu, words):
        super().update_lepubkeyhash(cpu, words)
        for msr in (0x8C, 0x8D, 0x8E, 0x8F):
            cpu.rdmsr(msr)


def test_user_design_runs_exact_and_round_trips_its_config(tmp_path):
    r = sgxlab.run(design=Paranoid, workload="workshop", params={"launches": 200})
    s = r.summary()
    assert s["design"] == "paranoid" and s["rdmsr"] == 4 * s["einit"] == s["wrmsr"]
    assert r.config.design == f"{__name__}:Paranoid"
    saved = RunConfig.from_json(r.config.to_json())
    with pytest.raises(ConfigError, match="allow_import=True"):
        sgxlab.replay(saved)  # a config file may not import modules by itself
    again = sgxlab.replay(saved, allow_import=True)
    assert again.summary() == s
    with pytest.raises(EngineUnsupported):
        sgxlab.run(design=Paranoid, workload="workshop", params={"launches": 50}, engine="fast")


def test_costs_forms():
    base = dict(design="always-write", workload="host-only", params={"launches": 100})
    d = sgxlab.run(**base).summary()
    p = sgxlab.run(**base, costs="pessimistic-msr").summary()
    m = sgxlab.run(**base, costs={"wrmsr_lehash": 1200}).summary()
    lst = sgxlab.run(**base, costs=["wrmsr_lehash=1200"]).summary()
    obj = sgxlab.run(**base, costs=CostModel().with_overrides({"wrmsr_lehash": 1200})).summary()
    assert d["overhead_cycles"] == 100 * 4 * 400
    assert p["overhead_cycles"] == m["overhead_cycles"] == lst["overhead_cycles"] == obj["overhead_cycles"]
    assert d["wrmsr"] == p["wrmsr"]
    with pytest.raises(ConfigError, match="cost bogus"):
        sgxlab.run(**base, costs={"bogus": 1})
    with pytest.raises(ConfigError, match="unknown preset"):
        sgxlab.run(**base, costs="nope")


def test_config_round_trips_json_and_toml_and_reproduces(tmp_path):
    r = sgxlab.run(
        design="percpu-cache-retry",
        workload="mixed",
        params={"launches": 400, "s3": 2, "stay": 0.5, "policy": "host-only"},
        costs={"einit": 50_000, "cpu_ghz": 3.1},
        seed=7,
    )
    cfg = r.config
    assert cfg.params["launches"] == 400 and cfg.params["vm_cpus"] == 2  # defaults recorded too
    assert cfg.costs["einit"] == 50_000 and cfg.costs["cpu_ghz"] == 3.1
    assert RunConfig.from_json(cfg.to_json()) == cfg
    assert RunConfig.from_toml(cfg.to_toml()) == cfg
    assert tomllib.loads(cfg.to_toml())["params"]["policy"] == "host-only"
    for name in ("run.json", "run.toml"):
        path = tmp_path / name
        cfg.save(path)
        assert RunConfig.load(path) == cfg
        assert sgxlab.replay(RunConfig.load(path)).summary() == r.summary()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json", "run.toml"]  # no temp files left
    assert RunConfig.from_json(tmp_path / "run.json") == cfg and RunConfig.from_toml(str(tmp_path / "run.toml")) == cfg


def test_toml_writer_escapes_strings(tmp_path):
    cfg = RunConfig("always-write", f'trace:{tmp_path}/we"ird\\ name\t.csv', {}, {"name": "x\u007f"}, 0, "exact")
    assert RunConfig.from_toml(cfg.to_toml()) == cfg


def test_config_errors():
    with pytest.raises(ConfigError, match="config colour"):
        RunConfig.from_json('{"design": "always-write", "workload": "workshop", "colour": 1}')
    with pytest.raises(ConfigError, match="not valid JSON"):
        RunConfig.from_json("{nope")
    with pytest.raises(ConfigError, match="not valid TOML"):
        RunConfig.from_toml("design = = 1")
    with pytest.raises(ConfigError, match="config design"):
        RunConfig.from_toml('workload = "workshop"')
    with pytest.raises(ConfigError, match="config engine"):
        RunConfig("always-write", "workshop", engine="slow")
    with pytest.raises(ConfigError, match="no such file"):
        RunConfig.load("/nonexistent/run.json")
    with pytest.raises(ConfigError, match=".json or .toml"):
        RunConfig.load("run.yaml")


def test_compare_one_row_per_design():
    df = sgxlab.compare(workload="suspend-resume", params={"launches": 500, "s3": 3}, seed=1)
    assert df["design"].tolist() == list(DESIGNS)
    for col in ("latency_mean", "latency_p99", "failures_total", "wrmsr", "rdmsr", "overhead_cycles"):
        assert col in df.columns
    cols = list(df.columns)
    assert cols[cols.index("failures_total") + 1] == "failures_SGX_INVALID_EINITTOKEN"
    row = df.set_index("design")
    assert row.loc["percpu-cache", "failures_total"] > 0 and row.loc["read-compare", "failures_total"] == 0
    assert row.loc["always-write", "failures_SGX_INVALID_EINITTOKEN"] == 0
    assert row.loc["percpu-cache-retry", "retries"] > 0
    two = sgxlab.compare(["read-compare", AlwaysWrite], "host-only", {"launches": 100})
    assert two["design"].tolist() == ["read-compare", "always-write"]
    one = sgxlab.run(design="read-compare", workload="host-only", params={"launches": 100}).summary()
    assert two.iloc[0].to_dict() == flatten_summary(one)


def test_fast_engine_through_run_gives_the_same_summary():
    for d in DESIGNS:
        ex = sgxlab.run(design=d, workload="workshop", seed=3).summary()
        fa = sgxlab.run(design=d, workload="workshop", seed=3, engine="fast")
        assert {**fa.summary(), "engine": "exact"} == ex
        with pytest.raises(ConfigError, match="fast engine keeps no per-launch records"):
            fa.records()


def test_import_sgxlab_stays_light():
    code = "import sys, sgxlab; print('numpy' in sys.modules, 'pandas' in sys.modules); sgxlab.run; sgxlab.compare"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.split() == ["False", "False"]
    assert {"run", "compare", "Result", "RunConfig"} <= set(dir(sgxlab))


# --------------------------------------------------------------------------- command line


def test_cli_registers_the_commands():
    assert {"run", "designs", "workloads"} <= set(COMMANDS)


def test_cli_run_json(capsys):
    rc, out, err = cli(capsys, "run", "--design", "percpu-cache", "--workload", "suspend-resume",
                       "--param", "launches=500", "--param", "s3=3", "--seed", "4", "--json")  # fmt: skip
    assert rc == 0 and err == ""
    s = json.loads(out)
    assert tuple(s) == SUMMARY_KEYS and set(s) >= ISSUE_KEYS
    assert s["failures"]["SGX_INVALID_EINITTOKEN"] > 0 and s["seed"] == 4
    assert s == sgxlab.run(design="percpu-cache", workload="suspend-resume",
                           params={"launches": 500, "s3": 3}, seed=4).summary()  # fmt: skip


def test_cli_run_costs_and_text(capsys):
    rc, out, _ = cli(capsys, "run", "--design", "always-write", "--workload", "host-only", "--param", "launches=100",
                     "--costs", "pessimistic-msr", "--cost", "einit=1000", "--json")  # fmt: skip
    s = json.loads(out)
    assert rc == 0 and s["overhead_cycles"] == 100 * 4 * 1200
    assert s["latency_cycles"]["p50"] == 4 * 1200 + 1000
    rc, out, _ = cli(capsys, "run", "--design", "read-compare", "--workload", f"trace:{EXAMPLE}")
    assert rc == 0 and "launches" in out and "11" in out
    assert all(len(line) <= 72 for line in out.splitlines())


def test_cli_save_and_replay_config(capsys, tmp_path):
    path = tmp_path / "r.toml"
    rc, out1, _ = cli(capsys, "run", "--design", "eager-load", "--workload", "workshop", "--param", "launches=300",
                      "--cost", "wrmsr_lehash=900", "--save-config", path, "--json")  # fmt: skip
    assert rc == 0 and path.is_file()
    rc, out2, _ = cli(capsys, "run", "--config", path, "--json")
    assert rc == 0 and json.loads(out2) == json.loads(out1)
    rc, out3, _ = cli(capsys, "run", "--config", path, "--design", "always-write", "--json")
    assert json.loads(out3)["design"] == "always-write" and json.loads(out3)["launches"] == 300


def test_cli_run_fast(capsys):
    args = ("run", "--design", "percpu-cache-retry", "--workload", "workshop", "--json")
    rc, out, _ = cli(capsys, *args, "--engine", "fast")
    rc2, out2, _ = cli(capsys, *args)
    assert rc == rc2 == 0 and {**json.loads(out), "engine": "exact"} == json.loads(out2)


def test_cli_designs_and_workloads(capsys):
    rc, out, _ = cli(capsys, "designs", "--json")
    rows = json.loads(out)
    assert rc == 0 and [r["name"] for r in rows] == list(DESIGNS)
    pc = next(r for r in rows if r["name"] == "percpu-cache")
    assert pc["params"][0]["name"] == "lock" and pc["params"][0]["choices"] == ["global", "percpu"]
    assert all(r["source"] for r in rows)
    rc, out, _ = cli(capsys, "designs")
    assert rc == 0 and all(len(line) <= 72 for line in out.splitlines()) and "eager-load" in out
    rc, out, _ = cli(capsys, "workloads", "--json")
    rows = json.loads(out)
    assert rc == 0 and [r["name"] for r in rows] == [*WORKLOADS, "trace:PATH"]
    assert all({"name", "type", "default", "doc"} <= set(p) for r in rows for p in r["params"])
    rc, out, _ = cli(capsys, "workloads")
    assert rc == 0 and all(len(line) <= 72 for line in out.splitlines()) and "--param launches" in out


@pytest.mark.parametrize(
    "argv, expect",
    [
        (("--design", "nope", "--workload", "workshop"), "unknown design"),
        (("--design", "always-write", "--workload", "nope"), "unknown workload"),
        (("--design", "always-write", "--workload", "host-only", "--param", "foo=1"), "unknown parameter"),
        (("--design", "always-write", "--workload", "host-only", "--param", "cpus"), "expected NAME=VALUE"),
        (("--design", "always-write", "--workload", "host-only", "--param", "cpus=-3"), "at least 1"),
        (("--design", "always-write", "--workload", "host-only", "--cost", "wrmsr_lehash=-1"), "must not be negative"),
        (("--design", "always-write", "--workload", "host-only", "--cost", "nope=1"), "unknown cost parameter"),
        (("--design", "always-write", "--workload", "host-only", "--costs", "nope"), "unknown preset"),
        (("--design", "always-write", "--workload", "trace:/no/such.csv"), "no such file"),
        (("--workload", "workshop"), "--design"),
        (("--design", "always-write", "--workload", "host-only", "--seed", "x"), "invalid seed"),
        (("--design", "always-write", "--workload", "host-only", "--engine", "slow"), "invalid choice"),
    ],
)
def test_cli_bad_input_is_exit_2_with_one_line(capsys, argv, expect):
    rc, out, err = cli(capsys, "run", *argv)
    assert rc == 2 and out == "" and expect in err and len(err.strip().splitlines()) == 1


def test_cli_bad_csv_names_the_line(capsys, tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("t,kind,cpu,vm,vcpu,signer\n0,launch,0,,,0\n5,launch,0,,,zero\n")
    rc, out, err = cli(capsys, "run", "--design", "always-write", "--workload", f"trace:{p}")
    assert rc == 2 and "line 3, column signer='zero': not an integer" in err


def test_python_dash_m_run_subprocess():
    out = subprocess.run(
        [sys.executable, "-m", "sgxlab", "run", "--design", "read-compare", "--workload", "host-only",
         "--param", "launches=50", "--json"],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    assert out.returncode == 0 and json.loads(out.stdout)["rdmsr"] == 200
    bad = subprocess.run(
        [sys.executable, "-m", "sgxlab", "run", "--design", "x", "--workload", "host-only"],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
