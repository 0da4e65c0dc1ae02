"""Issue 9's sweep figure: 1,000 configurations x 100 k launches on the fast engine.

Five designs x 200 values of ``wrmsr_lehash`` on one ``host-only`` trace of
100,000 launches (the trace is generated once and reused, as ``sweep``
promises), on the default local process pool. Prints the wall time, the
rows and a digest of the table, which must not depend on the executor.

    .venv/bin/python bench/sweep.py [--workers N] [--launches N] [--points N]
"""

from __future__ import annotations

import argparse
import hashlib
import time

import sgxlab


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--launches", type=int, default=100_000)
    ap.add_argument("--points", type=int, default=200)
    a = ap.parse_args()
    values = [100 + 20 * i for i in range(a.points)]
    t0 = time.perf_counter()
    df = sgxlab.sweep(
        None,
        "host-only",
        {"wrmsr_lehash": values},
        params={"launches": a.launches},
        seeds=1,
        engine="fast",
        executor="local",
        workers=a.workers,
    )
    dt = time.perf_counter() - t0
    digest = hashlib.sha256(df.to_csv(index=False).encode()).hexdigest()[:16]
    print(f"configurations  {len(df):,} (5 designs x {a.points} wrmsr_lehash values)")
    print(f"launches each   {a.launches:,}")
    print(f"wall time       {dt:.2f} s  (target < 10 s)")
    print(f"table digest    {digest}")


if __name__ == "__main__":
    main()
