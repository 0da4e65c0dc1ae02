"""Warm ``sgxlab.compare`` of all five designs on ``workshop`` (issue 9 targets).

Usage: ``python bench/compare.py [REPEATS]`` (default 15). Runs one cold call
per engine, then REPEATS warm ones, and prints the best and the median wall
time and the best CPU time of this process (``time.process_time``, less
sensitive to other processes on a shared machine). Targets: fast < 10 ms,
exact < 0.1 s. Also prints how many signer images the exact engine built
(once per process; every later run forks them).
"""

from __future__ import annotations

import statistics
import time

from benchargs import parser, positive_int

import sgxlab
from sgxlab.sim.exact import _built_signer

ap = parser(__doc__)
ap.add_argument("repeats", nargs="?", type=positive_int, default=15, help="warm calls per engine (default 15)")
n = ap.parse_args().repeats
for engine, target in (("fast", 0.010), ("exact", 0.100)):
    sgxlab.compare(None, "workshop", engine=engine)  # cold: imports, keys, signing
    wall: list[float] = []
    cpu: list[float] = []
    for _ in range(n):
        w0, c0 = time.perf_counter(), time.process_time()
        sgxlab.compare(None, "workshop", engine=engine)
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
    best = min(wall)
    print(
        f"{engine:5s} warm compare, 5 designs, workshop: best {best * 1e3:.1f} ms, "
        f"median {statistics.median(wall) * 1e3:.1f} ms, best CPU {min(cpu) * 1e3:.1f} ms "
        f"(target < {target * 1e3:.0f} ms: {'met' if best < target else 'NOT met'})"
    )
info = _built_signer.cache_info()
print(f"signer images built {info.misses}, reused {info.hits}")
