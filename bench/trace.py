"""End-to-end throughput of the fast path: generate a workload's trace, then run the fast engine.

Run ``.venv/bin/python bench/trace.py`` (10 M launches of ``host-only`` and of
``multi-tenant``) or ``--quick`` (1 M). Each case runs in a fresh child process,
as a user would: ``make_trace(workload, {"launches": N}, seed=1)`` (generation,
including the trace's validation and its launches' CPU order, which the trace keeps
for every design), then ``fast.simulate`` for each of the five
designs (the trace's verdict is remembered, so the engines are not charged for
validating again). The child reports wall and CPU seconds of each step and its
peak resident set (``VmHWM`` from ``/proc/self/status``; ``ru_maxrss``
elsewhere). End-to-end launches/s is ``N / (generation + the slowest design's
engine run)``, the figure of the issue (targets: >= 10 M/s on ``host-only``,
>= 5 M/s on ``multi-tenant``, each under 1 GB).

CPU seconds are printed beside the wall seconds because on a shared machine
the two differ: the wall figure is what a user waits, the CPU figure what the
code costs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from run import peak_rss_mb  # bench/run.py: VmHWM, else ru_maxrss

TARGETS = {"host-only": 10e6, "multi-tenant": 5e6}  # launches/s, end to end
RSS_LIMIT_MB = 1024


def child(workload: str, launches: int) -> None:
    """Generate the trace, run the five designs, print one JSON line of timings and the peak RSS."""
    from sgxlab.host.designs import DESIGNS
    from sgxlab.sim import fast
    from sgxlab.sim.costs import CostModel
    from sgxlab.sim.workloads import make_trace

    costs = CostModel()
    fast.simulate(make_trace(workload, {"launches": 1000}, seed=1), "always-write", costs)  # warm imports and keys
    rss0 = peak_rss_mb()
    w0, c0 = time.perf_counter(), time.process_time()
    trace = make_trace(workload, {"launches": launches}, seed=1)
    trace.launch_cpu_order()  # kept on the trace for every design (host generators hand theirs over)
    gen_wall, gen_cpu = time.perf_counter() - w0, time.process_time() - c0
    rss_trace = peak_rss_mb()
    engine: dict[str, tuple[float, float]] = {}
    for name, design in DESIGNS.items():
        w0, c0 = time.perf_counter(), time.process_time()
        fast.simulate(trace, design, costs)
        engine[name] = (time.perf_counter() - w0, time.process_time() - c0)
    out = {
        "workload": workload,
        "launches": trace.launches,
        "rows": len(trace),
        "gen_wall": gen_wall,
        "gen_cpu": gen_cpu,
        "engine": engine,
        "rss_start_mb": rss0,
        "rss_after_trace_mb": rss_trace,
        "rss_peak_mb": peak_rss_mb(),
    }
    print(json.dumps(out))


def run_case(workload: str, launches: int) -> dict[str, Any]:
    """:func:`child` in a fresh Python process (its own peak RSS)."""
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", workload, str(launches)],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="1 M launches instead of 10 M")
    ap.add_argument("--launches", type=int, help="launches per case (overrides --quick)")
    ap.add_argument("--workloads", default="host-only,multi-tenant", help="comma-separated workloads")
    ap.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    ap.add_argument("--child", nargs=2, metavar=("WORKLOAD", "LAUNCHES"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.child[0], int(args.child[1]))
        return 0
    n = args.launches or (1_000_000 if args.quick else 10_000_000)
    cmd = "python bench/trace.py" + (" --quick" if args.quick and not args.launches else "")
    if args.launches:
        cmd += f" --launches {args.launches}"
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print(f"`{cmd}` on {os.cpu_count()} CPUs, load average {load[0]:.2f} at the start")
    print()
    print("| workload | launches (rows) | generation s (CPU s) | slowest design: engine s (CPU s) "
          "| end to end, launches/s (on CPU s) | target | peak RSS |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    results = []
    ok_all = True
    for wl in args.workloads.split(","):
        r = run_case(wl, n)
        slow = max(r["engine"], key=lambda d: r["engine"][d][0])
        ew, ec = r["engine"][slow]
        e2e = r["launches"] / (r["gen_wall"] + ew)
        e2e_cpu = r["launches"] / (r["gen_cpu"] + ec)
        target = TARGETS.get(wl)
        met = target is not None and e2e >= target and r["rss_peak_mb"] < RSS_LIMIT_MB
        ok_all &= met
        r.update(slowest=slow, e2e_lps=e2e, e2e_cpu_lps=e2e_cpu)
        results.append(r)
        tgt = f">= {target / 1e6:g} M/s, < 1 GB" if target else "-"
        print(
            f"| `{wl}` | {r['launches']:,} ({r['rows']:,}) | {r['gen_wall']:.2f} ({r['gen_cpu']:.2f}) "
            f"| `{slow}`: {ew:.2f} ({ec:.2f}) | {e2e / 1e6:.2f} M ({e2e_cpu / 1e6:.2f} M) | {tgt} "
            f"| {r['rss_peak_mb']:.0f} MB (trace {r['rss_after_trace_mb']:.0f} MB) |"
        )
    print()
    for r in results:
        per = ", ".join(f"{d} {w:.2f} s ({c:.2f})" for d, (w, c) in r["engine"].items())
        print(f"{r['workload']}: engine per design, wall (CPU): {per}")
    if args.json:
        Path(args.json).write_text(json.dumps({"command": cmd, "results": results}, indent=2) + "\n")
    return 0 if ok_all else 1


if __name__ == "__main__":
    raise SystemExit(main())
