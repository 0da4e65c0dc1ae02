"""Exact-engine launches/s of one checkout, for before/after comparisons (figure c of bench/run.py).

Usage: ``python bench/exact_ab.py ROOT [LAUNCHES]`` where ROOT is a checkout
(e.g. a ``git worktree`` of an older commit). It imports sgxlab from ROOT,
builds the ``host-only`` and ``multi-tenant`` traces with LAUNCHES launches
(default 300,000, seed 1) and prints each design's launches/s (best of two)
and the slowest. Run it alternately on two checkouts: the figures are noisy.
It understands both the flat layout before issue 8 and the layered one.
"""

from __future__ import annotations

import sys
import time

from benchargs import parser, positive_int

ap = parser(__doc__)
ap.add_argument("root", help="the checkout to import sgxlab from")
ap.add_argument("launches", nargs="?", type=positive_int, default=300_000, help="launches per trace (default 300,000)")
args = ap.parse_args()
root = args.root
sys.path.insert(0, root)
n = args.launches

try:
    from sgxlab.host.designs import DESIGNS
    from sgxlab.sim.workloads import make_trace
except ImportError:  # the flat layout before issue 8
    from sgxlab.designs import DESIGNS  # type: ignore[no-redef]
    from sgxlab.workloads import make_trace  # type: ignore[no-redef]
from sgxlab.sim import exact

for wl in ("host-only", "multi-tenant"):
    tr = make_trace(wl, {"launches": n}, seed=1)
    per = {}
    for name, d in DESIGNS.items():
        best: float | None = None
        for _ in range(2):
            t0 = time.perf_counter()
            exact.simulate(tr, d)
            dt = time.perf_counter() - t0
            best = dt if best is None or dt < best else best
        per[name] = tr.launches / best
    print(f"{wl}: slowest {min(per.values()) / 1e3:.0f} k/s;", ", ".join(f"{k} {v / 1e3:.0f}k" for k, v in per.items()))
