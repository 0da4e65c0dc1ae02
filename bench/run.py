"""Benchmarks of issue 5 ("Performance"): every figure, measured in one run, with its ratio to SimPy.

Run ``make bench`` (``.venv/bin/python bench/run.py``), or ``--quick`` for a
short run with smaller workloads (the figures are then indicative only).

Figures (targets from issue 5):

a. the ``workshop`` comparison of all five designs on the fast engine
   (target < 0.3 s): trace generation plus five engine runs, the engine runs
   alone, and ``sgxlab.compare(workload="workshop", engine="fast")`` (the
   DataFrame a widget would show);
b. fast-engine launches/s on ``host-only`` (target >= 5 M/s) and
   ``multi-tenant`` (>= 1 M/s), the slowest of the five designs;
c. exact-engine launches/s (>= 200 k/s), the slowest design, at the engine's
   defaults (per-launch records are off for runs above 200 000 launches);
d. on the same workload, with identical counts, fast >= 50x and exact >= 2x
   faster than the SimPy model (all five designs; SimPy, exact and fast must
   return equal summaries, or the benchmark fails);
e. peak memory of a 10 M-launch fast run (< 1 GB): the peak resident set
   (VmHWM) of a child process that imports sgxlab, generates the ``host-only``
   trace and runs all five designs.

"Ratio to SimPy" is the SimPy model's time divided by the engine's on the
same work (for a and d), or the engine's launches/s divided by SimPy's
launches/s on the same workload kind measured in this run (b, c), or SimPy's
bytes per launch divided by the fast engine's (e). The fast engine is timed as
``sgxlab.sim.fast.simulate(trace, design, costs)`` with its default trace
validation, which is free for a trace the workload generator already
validated (the verdict is remembered); the ``validate=False`` figure is
printed beside it as a check.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

import numpy as np
from benchargs import parser

from sgxlab.host.designs import DESIGNS
from sgxlab.sim import exact, fast
from sgxlab.sim.costs import CostModel
from sgxlab.sim.workloads import make_trace

try:
    import simpy_model
except ImportError:  # pragma: no cover
    simpy_model = None  # type: ignore[assignment]

FIVE = list(DESIGNS.items())  # the five designs of the debate


def machine() -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import simpy

    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "simpy": simpy.__version__,
    }


def timed(fn: Callable[[], Any], repeat: int = 1) -> tuple[float, Any]:
    """Best wall time of ``repeat`` calls, and the last result."""
    best = float("inf")
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def five(engine: Callable[..., dict[str, Any]], trace: Any, costs: CostModel, **kw: Any) -> list[dict[str, Any]]:
    return [engine(trace, d, costs, **kw) for _, d in FIVE]


def check_equal(label: str, a: list[dict[str, Any]], b: list[dict[str, Any]], names: tuple[str, str]) -> None:
    for (dname, _), x, y in zip(FIVE, a, b):
        if x != y:
            diff = {k: (x[k], y[k]) for k in x if x[k] != y.get(k)}
            raise SystemExit(f"{label}: {names[0]} and {names[1]} disagree on {dname}: {diff}")


# --------------------------------------------------------------------------- memory child


def peak_rss_mb() -> float:
    """Peak resident set of this process in MB: VmHWM (Linux; per address space, so a
    fresh child does not inherit its parent's peak as ``ru_maxrss`` does across exec),
    else ``ru_maxrss``."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory_child(engine: str, workload: str, launches: int) -> None:
    """Generate the trace, run the five designs, print peak RSS (MB) and tracemalloc peaks as JSON."""
    base = peak_rss_mb()
    trace = make_trace(workload, {"launches": launches}, seed=1)
    after_trace = peak_rss_mb()
    costs = CostModel()
    peaks = []
    if engine == "fast":
        for _, d in FIVE:
            tracemalloc.start()
            fast.simulate(trace, d, costs)
            peaks.append(tracemalloc.get_traced_memory()[1])
            tracemalloc.stop()
    else:
        for _, d in FIVE:
            simpy_model.simulate(trace, d, costs)
    peak = peak_rss_mb()
    print(json.dumps({
        "launches": trace.launches,
        "rss_start_mb": base,
        "rss_after_trace_mb": after_trace,
        "rss_peak_mb": peak,
        "engine_tracemalloc_peak_mb": max(peaks) / 2**20 if peaks else None,
    }))  # fmt: skip


def run_child(engine: str, workload: str, launches: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--memory-child", engine, workload, str(launches)],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- the benchmark


def main(argv: list[str] | None = None) -> int:
    ap = parser(__doc__)
    ap.add_argument("--quick", action="store_true", help="small workloads, a few seconds (figures indicative only)")
    ap.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    ap.add_argument("--memory-child", nargs=3, metavar=("ENGINE", "WORKLOAD", "LAUNCHES"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.memory_child:
        eng, wl, n = args.memory_child
        memory_child(eng, wl, int(n))
        return 0
    if simpy_model is None:
        print("simpy is not installed: pip install -e '.[test]'", file=sys.stderr)
        return 2

    q = args.quick
    sizes = {
        "fast_host": 1_000_000 if q else 10_000_000,
        "fast_mt": 200_000 if q else 2_000_000,
        "exact": 30_000 if q else 300_000,
        "peer": 10_000 if q else 100_000,
        "mem_fast": 1_000_000 if q else 10_000_000,
        "mem_simpy": 50_000 if q else 1_000_000,
    }
    rep = 1 if q else 3
    costs = CostModel()
    info = machine()
    cmd = ".venv/bin/python bench/run.py" + (" --quick" if q else "")
    print(f"sgxlab benchmarks ({'quick' if q else 'full'} run): {cmd}")
    print(f"machine: {info['nproc']} CPUs, {info['cpu']}; Python {info['python']}, numpy {info['numpy']}, "
          f"simpy {info['simpy']}; one core used")  # fmt: skip
    print()
    fig: dict[str, Any] = {"machine": info, "command": cmd, "quick": q, "sizes": sizes}

    # (d) first: the same workloads on SimPy, exact and fast, counts checked -----------------
    peer: dict[str, dict[str, float]] = {}
    for wl in ("host-only", "multi-tenant"):
        tr = make_trace(wl, {"launches": sizes["peer"]}, seed=1)
        n = tr.launches * len(FIVE)
        t_simpy, r_simpy = timed(lambda: five(simpy_model.simulate, tr, costs))
        t_exact, r_exact = timed(lambda: five(exact.simulate, tr, costs))
        t_fast, r_fast = timed(lambda: five(fast.simulate, tr, costs), rep)
        t_fast_nv, _ = timed(lambda: five(fast.simulate, tr, costs, validate=False), rep)
        check_equal(wl, r_simpy, r_fast, ("SimPy", "fast"))
        check_equal(wl, r_exact, r_fast, ("exact", "fast"))
        peer[wl] = {
            "launches": tr.launches,
            "simpy_s": t_simpy,
            "exact_s": t_exact,
            "fast_s": t_fast,
            "fast_prevalidated_s": t_fast_nv,
            "simpy_lps": n / t_simpy,
            "exact_lps": n / t_exact,
            "fast_lps": n / t_fast,
            "fast_over_simpy": t_simpy / t_fast,
            "fast_prevalidated_over_simpy": t_simpy / t_fast_nv,
            "exact_over_simpy": t_simpy / t_exact,
        }
    fig["same_workload"] = peer

    # (a) workshop -----------------------------------------------------------------------------
    def workshop_e2e() -> list[dict[str, Any]]:
        tr = make_trace("workshop", {}, seed=0)
        return five(fast.simulate, tr, costs)

    t_ws, r_ws = timed(workshop_e2e, 5)
    try:
        from sgxlab import compare

        compare(engine="fast")  # warm up pandas
        t_ws_compare, _ = timed(lambda: compare(workload="workshop", engine="fast"), 5)
    except (ImportError, AttributeError):  # pragma: no cover - before sgxlab.compare existed
        t_ws_compare = float("nan")
    ws = make_trace("workshop", {}, seed=0)
    t_ws_engine, _ = timed(lambda: five(fast.simulate, ws, costs), 5)
    t_ws_simpy, r_ws_simpy = timed(lambda: five(simpy_model.simulate, ws, costs))
    check_equal("workshop", r_ws_simpy, r_ws, ("SimPy", "fast"))
    fig["workshop"] = {"launches": ws.launches, "fast_s": t_ws, "fast_engine_only_s": t_ws_engine,
                       "sgxlab_compare_s": t_ws_compare,
                       "simpy_s": t_ws_simpy, "fast_over_simpy": t_ws_simpy / t_ws}  # fmt: skip

    # (b) fast engine throughput -----------------------------------------------------------------
    thr: dict[str, Any] = {}
    for wl, key in (("host-only", "fast_host"), ("multi-tenant", "fast_mt")):
        tr = make_trace(wl, {"launches": sizes[key]}, seed=1)
        per = {}
        per_nv = {}
        for name, d in FIVE:
            t, _ = timed(lambda: fast.simulate(tr, d, costs), rep)
            per[name] = tr.launches / t
            t, _ = timed(lambda: fast.simulate(tr, d, costs, validate=False), rep)
            per_nv[name] = tr.launches / t
        thr[wl] = {"launches": tr.launches, "per_design_lps": per, "min_lps": min(per.values()),
                   "prevalidated_min_lps": min(per_nv.values()),
                   "over_simpy": min(per.values()) / peer[wl]["simpy_lps"]}  # fmt: skip
        del tr
    fig["fast_throughput"] = thr

    # (c) exact engine throughput ------------------------------------------------------------------
    ex: dict[str, Any] = {}
    for wl in ("host-only", "multi-tenant"):
        tr = make_trace(wl, {"launches": sizes["exact"]}, seed=2)
        per = {}
        for name, d in FIVE:
            t, _ = timed(lambda: exact.simulate(tr, d, costs))
            per[name] = tr.launches / t
        ex[wl] = {"launches": tr.launches, "per_design_lps": per, "min_lps": min(per.values()),
                  "over_simpy": min(per.values()) / peer[wl]["simpy_lps"]}  # fmt: skip
    fig["exact_throughput"] = ex

    # (e) memory ---------------------------------------------------------------------------------
    mem_fast = run_child("fast", "host-only", sizes["mem_fast"])
    mem_simpy = run_child("simpy", "host-only", sizes["mem_simpy"])

    def per_launch(m: dict[str, Any]) -> float:
        return (m["rss_peak_mb"] - m["rss_start_mb"]) * 2**20 / m["launches"]

    fig["memory"] = {"fast": mem_fast, "simpy": mem_simpy,
                     "simpy_over_fast_bytes_per_launch": per_launch(mem_simpy) / per_launch(mem_fast)}  # fmt: skip

    # report ---------------------------------------------------------------------------------------
    rows: list[tuple[str, str, str, bool, str, str]] = []
    M = 1e6

    def row(name: str, value: str, target: str, ok: bool, simpy: str, ratio: float) -> None:
        rows.append((name, value, target, ok, simpy, f"{ratio:,.0f}x" if ratio >= 10 else f"{ratio:.1f}x"))

    w = fig["workshop"]
    row(f"(a) workshop, 5 designs, fast ({w['launches']:,} launches; engine only {w['fast_engine_only_s'] * 1e3:.1f} ms, "
        f"sgxlab.compare DataFrame {w['sgxlab_compare_s'] * 1e3:.1f} ms)",
        f"{w['fast_s'] * 1e3:.1f} ms", "< 300 ms", w["fast_s"] < 0.3, f"{w['simpy_s'] * 1e3:.0f} ms", w["fast_over_simpy"])  # fmt: skip
    for wl, target in (("host-only", 5.0), ("multi-tenant", 1.0)):
        t = thr[wl]
        row(f"(b) fast, {wl}, {t['launches']:,} launches, slowest design (pre-validated {t['prevalidated_min_lps'] / M:.1f} M/s)",
            f"{t['min_lps'] / M:.2f} M/s", f">= {target:g} M/s", t["min_lps"] >= target * M,
            f"{peer[wl]['simpy_lps'] / 1e3:.0f} k/s", t["over_simpy"])  # fmt: skip
    for wl in ("host-only", "multi-tenant"):
        e = ex[wl]
        row(f"(c) exact, {wl}, {e['launches']:,} launches, slowest design",
            f"{e['min_lps'] / 1e3:.0f} k/s", ">= 200 k/s", e["min_lps"] >= 200e3,
            f"{peer[wl]['simpy_lps'] / 1e3:.0f} k/s", e["over_simpy"])  # fmt: skip
    for wl in ("host-only", "multi-tenant"):
        p = peer[wl]
        row(f"(d) {wl}, {p['launches']:,} launches x 5 designs, fast vs SimPy (pre-validated {p['fast_prevalidated_over_simpy']:,.0f}x)",
            f"{p['fast_s'] * 1e3:.0f} ms", ">= 50x", p["fast_over_simpy"] >= 50,
            f"{p['simpy_s']:.2f} s", p["fast_over_simpy"])  # fmt: skip
        row(f"(d) {wl}, same runs, exact vs SimPy",
            f"{p['exact_s']:.2f} s", ">= 2x", p["exact_over_simpy"] >= 2, f"{p['simpy_s']:.2f} s", p["exact_over_simpy"])  # fmt: skip
    mf = mem_fast
    row(f"(e) fast, host-only, {mf['launches']:,} launches, 5 designs: peak RSS "
        f"(trace alone {mf['rss_after_trace_mb']:.0f} MB; engine tracemalloc peak {mf['engine_tracemalloc_peak_mb']:.0f} MB)",
        f"{mf['rss_peak_mb']:.0f} MB", "< 1024 MB", mf["rss_peak_mb"] < 1024,
        f"{mem_simpy['rss_peak_mb']:.0f} MB at {mem_simpy['launches']:,}", fig["memory"]["simpy_over_fast_bytes_per_launch"])  # fmt: skip
    fig["rows"] = [dict(zip(("figure", "value", "target", "met", "simpy", "ratio"), r)) for r in rows]

    width = max(len(r[0]) for r in rows)
    print(f"{'figure':<{width}}  {'value':>10}  {'target':>11}  met  {'SimPy, same run':>22}  ratio")
    for name, value, target, ok, simpy, ratio in rows:
        print(f"{name:<{width}}  {value:>10}  {target:>11}  {'yes' if ok else 'NO ':3}  {simpy:>22}  {ratio:>6}")
    print()
    print("Counts: SimPy, exact and fast summaries were identical on every (d) run; SimPy and fast on the workshop.")
    missed = [r[0] for r in rows if not r[3]]
    if missed:
        print("Targets missed:")
        for m in missed:
            print(f"  {m}")
    if args.json:
        Path(args.json).write_text(json.dumps(fig, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
