"""Peak memory at the budget's caps (``sgxlab.sim.budget``): a 50 M-launch trace and a 50 M-row CSV.

Run ``.venv/bin/python bench/limits.py`` (both cases at the caps, 50 M) or
``--rows N`` for a smaller size. Each case runs in a fresh child process and
reports its wall seconds and peak resident set (``ru_maxrss`` of the child,
which is what the kernel charged it):

* ``host-only``: ``make_trace("host-only", {"launches": N})`` (generation and
  validation), then ``fast.simulate`` under ``always-write``;
* ``csv``: ``read_trace_csv`` of an N-row host-only CSV file (written first by
  the parent, not measured), i.e. the file's text, the streamed parse into
  compact columns, and validation.

The figures go into docs/simulator.md ("Limits").
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

CAP = 50_000_000


def child(case: str, n: int, path: str) -> None:
    """Run one case; print one JSON line: case, rows, seconds, peak RSS in MB."""
    from sgxlab.sim import fast
    from sgxlab.sim.workloads import make_trace, read_trace_csv

    t0 = time.perf_counter()
    if case == "host-only":
        tr = make_trace("host-only", {"launches": n}, seed=1)
        s = fast.simulate(tr, "always-write")
        assert s["launches"] == n
    else:
        tr = read_trace_csv(path)
    rows = len(tr)
    secs = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"case": case, "rows": rows, "seconds": round(secs, 1), "peak_rss_mb": round(rss)}))


def write_csv(path: Path, n: int) -> None:
    """An n-row host-only CSV trace (4 CPUs, 4 signers), in blocks."""
    step = 1_000_000
    with open(path, "w") as f:
        f.write("#@ cpus=4\n#@ signers=4\nt,kind,cpu,vm,vcpu,signer\n")
        for a in range(0, n, step):
            b = min(n, a + step)
            f.write("".join(f"{100_000 * i},launch,{i & 3},,,{(i >> 2) & 3}\n" for i in range(a, b)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=CAP, help="launches and CSV rows (default: the caps, 50 M)")
    ap.add_argument("--case", choices=["host-only", "csv", "both"], default="both")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), args.child[2])
        return
    cases = ["host-only", "csv"] if args.case == "both" else [args.case]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "trace.csv"
        if "csv" in cases:
            write_csv(path, args.rows)
            print(f"csv file: {path.stat().st_size / 2**20:,.0f} MiB, {args.rows:,} rows", flush=True)
        for case in cases:
            out = subprocess.run(
                [sys.executable, __file__, "--child", case, str(args.rows), str(path)],
                capture_output=True,
                text=True,
                check=False,
            )
            if out.returncode:
                print(f"{case}: failed ({out.returncode}): {out.stderr.strip()[-400:]}", flush=True)
            else:
                print(out.stdout.strip(), flush=True)


if __name__ == "__main__":
    main()
