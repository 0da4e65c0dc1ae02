"""Exports (sgxlab.present.export): reproducible figure files, 72-column text, timelines, CSV and JSON.

Byte-identity is checked twice in this process and once against a fresh
interpreter; metadata is read back from each format (PNG text chunks with
the standard library, SVG and PDF by searching the bytes).
"""

from __future__ import annotations

import argparse
import hashlib
import html
import json
import os
import shlex
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pandas as pd
import pytest

import sgxlab
from sgxlab.cli import main as cli_main
from sgxlab.errors import ConfigError
from sgxlab.present import export
from sgxlab.present.export import (
    CompareSpec,
    compare_command,
    export_csv,
    export_json,
    parse_seeds,
    run_command,
    save_figure,
    split_designs,
)
from sgxlab.present.result import compare, compare_seeds, run
from sgxlab.present.text import compare_table, join_command, race_table, wrap_command

ROOT = Path(__file__).resolve().parent.parent

# The same figures, built the same way here and in a fresh interpreter.
FIGURES = """
import numpy as np
import pandas as pd
from sgxlab.present import plots
from sgxlab.present.result import compare
c = compare(["read-compare", "always-write"], "workshop", {"launches": 200}, engine="fast")
n = np.arange(300)
lat = {"read-compare": 60000 + (n * 7919) % 90000, "always-write": 61000 + (n * 104729) % 70000}
parts = {"einit": [6e4, 6e4], "msr": [9e2, 16e2], "lock": [3e3, 2e3], "trap": [5e2, 5e2]}
from sgxlab.present.result import run, sweep
sw = sweep(["read-compare", "always-write"], "workshop", {"wrmsr_lehash": [100, 400, 1600], "rdmsr_lehash": [50, 400]},
           params={"launches": 200}, seeds=2, progress=False)
FIGS = {
    "msr": c.plot_msr_traffic(),
    "latency": plots.plot_latency(lat, pd.DataFrame(parts, index=list(lat)), caption=c.caption()),
    "timeline": run("percpu-cache", "suspend-resume", {"launches": 300}).plot_timeline(),
    "crossover": sw.plot_crossover("wrmsr_lehash", at={"rdmsr_lehash": 50}),
    "winner": sw.plot_winner("wrmsr_lehash", "rdmsr_lehash"),
}
"""
DIGESTS = """
def digests(figs):
    import hashlib
    from sgxlab.present import export

    formats = {
        "msr": ("png", "svg", "pdf"),
        "latency": ("svg",),
        "timeline": ("png", "svg"),
        "crossover": ("svg", "pdf"),
        "winner": ("png",),
    }
    return {
        f"{name}.{fmt}": hashlib.sha256(export.figure_bytes(figs[name], fmt, export.provenance_of(figs[name]))).hexdigest()
        for name, fmts in formats.items()
        for fmt in fmts
    }
"""


def _figures() -> dict:
    ns: dict = {}
    exec(FIGURES, ns)
    return ns["FIGS"]


def _digests(figs: dict) -> dict[str, str]:
    ns: dict = {}
    exec(DIGESTS, ns)
    return ns["digests"](figs)


@pytest.fixture(scope="module")
def figs() -> dict:
    return _figures()


def _png_text(data: bytes) -> dict[str, str]:
    """The tEXt, zTXt and iTXt chunks of a PNG, read with the standard library."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    out: dict[str, str] = {}
    pos = 8
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + n]
        pos += 12 + n
        if kind == b"tEXt":
            k, _, v = body.partition(b"\0")
            out[k.decode("latin-1")] = v.decode("latin-1")
        elif kind == b"zTXt":
            k, _, v = body.partition(b"\0")
            out[k.decode("latin-1")] = zlib.decompress(v[1:]).decode("latin-1")
        elif kind == b"iTXt":
            k, _, rest = body.partition(b"\0")
            comp, _method, rest = rest[0], rest[1], rest[2:]
            _lang, _, rest = rest.partition(b"\0")
            _tkey, _, text = rest.partition(b"\0")
            out[k.decode("latin-1")] = (zlib.decompress(text) if comp else text).decode("utf-8")
    return out


# --------------------------------------------------------------------------- figures


@pytest.fixture(scope="module")
def fresh_process(tmp_path_factory):
    """The digests of the same figures made and saved in a fresh interpreter, which also
    checks that sgxlab never imports pyplot nor changes the backend (started first, so
    it runs while this process builds its own figures)."""
    code = (
        "import json, sys, matplotlib\n"
        "backend = dict.__getitem__(matplotlib.rcParams, 'backend')\n"
        + FIGURES
        + DIGESTS
        + "\nassert 'matplotlib.pyplot' not in sys.modules, 'sgxlab imported pyplot'\n"
        "assert dict.__getitem__(matplotlib.rcParams, 'backend') == backend, 'backend changed'\n"
        "print(json.dumps(digests(FIGS)))\n"
    )
    env = {**os.environ, "SOURCE_DATE_EPOCH": "1700000000", "PYTHONHASHSEED": "123"}
    cwd = tmp_path_factory.mktemp("fresh")
    p = subprocess.Popen(
        [sys.executable, "-c", code], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    yield p
    if p.poll() is None:
        p.kill()
        p.communicate()


def test_figures_are_byte_identical_here_and_in_a_fresh_process(fresh_process, figs, tmp_path):
    here = _digests(figs)
    out, err = fresh_process.communicate(timeout=300)
    assert fresh_process.returncode == 0, err[-3000:]
    assert json.loads(out) == here
    # Saved again, through save_figure: the same bytes.
    for name, fmt in (
        ("msr", "png"),
        ("msr", "svg"),
        ("msr", "pdf"),
        ("latency", "svg"),
        ("timeline", "png"),
        ("crossover", "pdf"),
        ("winner", "png"),
    ):
        data = save_figure(figs[name], tmp_path / f"{name}.{fmt}").read_bytes()
        assert hashlib.sha256(data).hexdigest() == here[f"{name}.{fmt}"], f"{name}.{fmt}"


def test_metadata_in_every_format(figs, tmp_path):
    fig = figs["msr"]
    prov = export.provenance_of(fig)
    spec = json.loads(prov.config)
    assert spec["designs"] == ["read-compare", "always-write"] and spec["params"]["launches"] == 200
    cmd = " ".join(shlex.quote(a) for a in prov.command)
    assert cmd.startswith("sgxlab compare --designs read-compare,always-write --workload workshop")

    png = save_figure(fig, tmp_path / "f.png").read_bytes()
    chunks = _png_text(png)
    assert chunks["sgxlab-version"] == sgxlab.__version__
    assert json.loads(chunks["sgxlab-config"]) == spec
    assert chunks["sgxlab-command"] == cmd
    assert chunks["Software"].startswith(f"sgxlab {sgxlab.__version__}")
    assert not any("time" in k.lower() or "date" in k.lower() for k in chunks)

    svg = html.unescape(save_figure(fig, tmp_path / "f.svg").read_text())
    assert "<dc:description>" in svg.replace("<dc:description>\n", "<dc:description>")
    assert f"sgxlab {sgxlab.__version__}" in svg and f"reproduce: {cmd}" in svg
    assert json.dumps(spec, indent=2) in svg
    assert "<dc:date>" not in svg

    pdf = save_figure(fig, tmp_path / "f.pdf").read_bytes()
    assert b"/Subject" in pdf and b"/Keywords" in pdf
    assert f"sgxlab {sgxlab.__version__}".encode() in pdf and b"reproduce: sgxlab compare" in pdf
    assert b"/CreationDate" not in pdf and b"/ModDate" not in pdf


def test_bad_paths_are_config_errors_and_nothing_is_clobbered(figs, tmp_path, monkeypatch):
    fig = figs["msr"]
    with pytest.raises(ConfigError, match=r"figure=.*f\.jpg.*expected a \.png or \.svg or \.pdf"):
        save_figure(fig, tmp_path / "f.jpg")
    with pytest.raises(ConfigError, match="no-such-dir"):
        save_figure(fig, tmp_path / "no-such-dir" / "f.png")
    (tmp_path / "d.png").mkdir()
    with pytest.raises(ConfigError, match="is a directory"):
        save_figure(fig, tmp_path / "d.png")
    # A render that fails halfway leaves the previous file as it was, and no temporary file.
    target = tmp_path / "keep.png"
    target.write_bytes(b"old")

    def boom(*a, **k):
        raise RuntimeError("renderer crashed")

    monkeypatch.setattr(fig, "savefig", boom)
    with pytest.raises(RuntimeError):
        save_figure(fig, target)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.png", "keep.png"]


# --------------------------------------------------------------------------- commands


def _cli_parser() -> argparse.ArgumentParser:
    """The ``sgxlab compare`` options the reproduce command uses (the CLI's contract)."""
    p = argparse.ArgumentParser(prog="sgxlab compare")
    p.add_argument("--designs")
    p.add_argument("--workload", required=True)
    p.add_argument("--param", action="append", default=[])
    p.add_argument("--costs")
    p.add_argument("--cost", action="append", default=[])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--seeds")
    p.add_argument("--engine", default="exact")
    p.add_argument("--baseline")
    p.add_argument("--allow-import", action="store_true")
    return p


def _spec_from_argv(argv: list[str]) -> CompareSpec:
    assert argv[:2] == ["sgxlab", "compare"]
    a = _cli_parser().parse_args(argv[2:])
    from sgxlab.sim.run import cost_model

    costs = cost_model(a.costs) if a.costs else cost_model(None)
    if a.cost:
        costs = costs.with_overrides(a.cost)
    params = dict(x.split("=", 1) for x in a.param)
    designs = split_designs(a.designs) if a.designs else None
    return CompareSpec.build(
        designs, a.workload, params, costs, parse_seeds(a.seeds, a.seed), a.engine, a.baseline, a.allow_import
    )


@pytest.mark.parametrize(
    "designs, seeds, baseline, costs",
    [
        (None, (0,), None, None),
        (["percpu-cache:percpu,initial=intel", "read-compare"], (3, 4, 5), "read-compare", "pessimistic-msr"),
        (["always-write", "percpu-cache-retry:global"], (1, 5, 9), None, ["wrmsr_lehash=1234", "cpu_ghz=2.5"]),
    ],
)
def test_compare_command_reproduces_the_spec(designs, seeds, baseline, costs):
    spec = CompareSpec.build(designs, "suspend-resume", {"s3": 3, "reuse": 0.25}, costs, seeds, "fast", baseline)
    argv = compare_command(spec)
    back = _spec_from_argv(argv)
    assert back.designs == spec.designs and back.seeds == spec.seeds and back.baseline == spec.baseline
    assert back.params == spec.params and back.engine == spec.engine
    assert {k: v for k, v in back.costs.items() if k != "name"} == {k: v for k, v in spec.costs.items() if k != "name"}
    # Wrapped at 72 columns with backslash-newlines, it reads back the same, and a real shell agrees.
    lines = wrap_command(argv, 72)
    assert max(len(x) for x in lines) <= 72 and join_command(lines) == argv
    script = f"{shlex.quote(sys.executable)} -c 'import json,sys; print(json.dumps(sys.argv[1:]))' " + "\n".join(lines)
    p = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True)
    assert json.loads(p.stdout) == argv


def test_run_command_replays_through_the_cli(capsys):
    r = run("read-compare", "host-only", {"launches": 50, "cpus": 2}, costs="skylake-2021", seed=7, engine="exact")
    argv = run_command(r.config)
    assert argv[:2] == ["sgxlab", "run"] and "--costs" in argv and "launches=50" in argv
    assert cli_main([*argv[1:], "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == r.summary()


def test_split_designs_and_parse_seeds():
    assert split_designs("percpu-cache:percpu,initial=intel,read-compare,percpu-cache-retry:global") == [
        "percpu-cache:percpu,initial=intel",
        "read-compare",
        "percpu-cache-retry:global",
    ]
    assert split_designs("a.mod:Cls,always-write") == ["a.mod:Cls", "always-write"]
    with pytest.raises(ConfigError, match="empty design"):
        split_designs("read-compare,,always-write")
    assert parse_seeds(None, 4) == (4,)
    assert parse_seeds("3", 2) == (2, 3, 4)
    assert parse_seeds("1,5,9") == (1, 5, 9)
    for bad in ("0", "x", "1,1"):
        with pytest.raises(ConfigError):
            parse_seeds(bad)


# --------------------------------------------------------------------------- text


@pytest.fixture(scope="module")
def seeds3():
    return compare_seeds(
        ["always-write", "percpu-cache", "percpu-cache:percpu,initial=intel"],
        "suspend-resume",
        {"launches": 300, "s3": 2},
        costs="pessimistic-msr",
        seeds=3,
        engine="fast",
    )


def test_compare_seeds_is_one_tidy_table(seeds3):
    assert len(seeds3) == 9
    assert seeds3["seed"].tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert seeds3["design"].tolist()[:3] == ["always-write", "percpu-cache", "percpu-cache:percpu,initial=intel"]
    fails = [c for c in seeds3.columns if c.startswith("failures_") and c != "failures_total"]
    assert fails and all(seeds3[c].dtype == "int64" for c in fails)
    assert seeds3.spec.seeds == (0, 1, 2) and seeds3.spec.baseline == "always-write"
    one = sgxlab.compare(["percpu-cache"], "suspend-resume", {"launches": 300, "s3": 2}, "pessimistic-msr", 1, "fast")
    row = seeds3[(seeds3["seed"] == 1) & (seeds3["design"] == "percpu-cache")].iloc[0]
    assert row[one.columns].tolist() == one.iloc[0].tolist()


def test_mailing_list_text(seeds3):
    text = seeds3.to_mailing_list()
    lines = text.splitlines()
    assert max(len(x) for x in lines) <= 72
    head = " ".join(lines[:4])
    for token in (
        f"sgxlab={sgxlab.__version__}",
        "workload=suspend-resume",
        "costs=pessimistic-msr",
        "engine=fast",
        "seeds=0-2",
        "runs=3",
        "launches=300",
        "s3=2",
    ):
        assert token in head, token
    assert "mean ± stddev over 3 seeds; %change against always-write" in text
    assert "%change" in text and "percpu-cache:percpu,initial=intel" in text
    wr = [x for x in lines if x.endswith("  wrmsr")]
    assert len(wr) == 2 and wr[0].split()[:3] == ["1200", "±", "0"]  # always-write: 4 per launch
    i = lines.index("to reproduce:")
    cmd = join_command(lines[i + 1 :])
    assert cmd == compare_command(seeds3.spec)
    assert _spec_from_argv(cmd).designs == seeds3.spec.designs
    ascii_text = seeds3.to_mailing_list(ascii=True)
    assert "±" not in ascii_text and "+-" in ascii_text
    narrow = seeds3.to_mailing_list(width=50)
    assert max(len(x) for x in narrow.splitlines()) <= 50


def test_compare_table_packs_blocks_and_falls_back_to_a_list():
    metrics = ["wrmsr", "rdmsr"]
    others = [(f"design-{i}", ["400 ± 0", "1600 ± 12"], ["-75.0%", "+1.2%"]) for i in range(3)]
    t = compare_table(metrics, ("always-write", ["1600 ± 0", "0 ± 0"]), others)
    assert max(len(x) for x in t.splitlines()) <= 72
    assert t.count("always-write") == 2 and t.splitlines()[0].split() == ["always-write", "design-0", "design-1"]
    long = [("x" * 80, ["1"] * 2, ["n/a"] * 2)]
    t = compare_table(metrics, ("base", ["1", "2"]), long, width=40)
    assert max(len(x) for x in t.splitlines()) <= 40 and "wrmsr" in t.splitlines()[0]


def test_timeline_tells_the_stale_cache_story():
    r = run("percpu-cache", "suspend-resume", {"launches": 200, "s3": 2}, records=True)
    text = r.timeline_text()
    lines = text.splitlines()
    assert max(len(x) for x in lines) <= 72
    assert any("CPU 0" in x and "| CPU 1" in x for x in lines)
    assert any("S3: every CPU's hash MSRs := Intel's" in x for x in lines)
    s3 = next(i for i, x in enumerate(lines) if "S3:" in x)
    before, after = "\n".join(lines[:s3]), "\n".join(lines[s3:])
    assert "cache: signer 3" in before and "MSRs: signer 3" in before
    assert "-> SGX_INVALID_EINITTOKEN" in after and "MSRs: Intel's" in after and "cache: signer 3" in after
    assert "cache hit: no RDMSR/WRMSR" in after
    assert "its per-CPU cache still said signer 3" in text
    # always-write on the same trace writes again after S3, and says so.
    aw = run("always-write", "suspend-resume", {"launches": 200, "s3": 2}, records=True).timeline_text()
    assert "SGX_INVALID_EINITTOKEN" not in aw and "WRMSR x4" in aw and "No launch failed" in aw
    with pytest.raises(ConfigError, match="timeline=.fast.*engine='exact'"):
        run("percpu-cache", "suspend-resume", {"launches": 50}, engine="fast").timeline_text()


def test_comparison_timeline_picks_the_failing_design():
    c = compare(["always-write", "percpu-cache"], "suspend-resume", {"launches": 200, "s3": 2}, engine="fast")
    text = c.timeline_text()
    assert text.startswith("percpu-cache on suspend-resume (seed 0, exact engine)")


def test_race_table_stays_in_its_columns():
    t = race_table(("cycles", "CPU 0", "CPU 1"), [("1", "a " * 40, ""), ("2", "S3 " * 30), ("3", "", "b")], width=60)
    assert max(len(x) for x in t.splitlines()) <= 60


# --------------------------------------------------------------------------- CSV and JSON


def test_csv_and_json_of_a_run(tmp_path):
    r = run("read-compare", "workshop", {"launches": 100}, records=True)
    p = export_csv(r, tmp_path / "rec.csv")
    back = pd.read_csv(p)
    assert len(back) == 100 and back["latency"].tolist() == r.records()["latency"].tolist()
    s = pd.read_csv(export_csv(r, tmp_path / "sum.csv", what="summary"))
    assert s.loc[0, "wrmsr"] == r["wrmsr"] and s.loc[0, "latency_p99"] == r["latency_cycles"]["p99"]
    obj = json.loads(r.export_json(tmp_path / "run.json").read_text())
    assert obj["sgxlab"] == sgxlab.__version__ and obj["summary"] == r.summary()
    assert sgxlab.RunConfig.from_dict(obj["config"]) == r.config and len(obj["records"]) == 100
    fast = run("read-compare", "workshop", {"launches": 100}, engine="fast")
    assert "records" not in json.loads(export_json(fast, tmp_path / "f.json").read_text())
    with pytest.raises(ConfigError, match="fast engine keeps no per-launch records"):
        export_csv(fast, tmp_path / "f.csv", what="records")
    with pytest.raises(ConfigError, match=r"csv=.*x\.txt"):
        export_csv(r, tmp_path / "x.txt")
    assert not list(tmp_path.glob(".*tmp"))


def test_csv_and_json_of_a_comparison(seeds3, tmp_path):
    back = pd.read_csv(seeds3.export_csv(tmp_path / "c.csv"))
    assert back.shape == seeds3.shape and back["wrmsr"].tolist() == seeds3["wrmsr"].tolist()
    obj = json.loads(seeds3.export_json(tmp_path / "c.json").read_text())
    assert obj["comparison"] == seeds3.spec.as_dict() and obj["command"] == compare_command(seeds3.spec)
    assert len(obj["rows"]) == 9 and obj["rows"][0]["design"] == "always-write"
    # Same inputs, same bytes.
    again = seeds3.export_json(tmp_path / "c2.json").read_bytes()
    assert again == (tmp_path / "c.json").read_bytes()
