"""Time to make (and to save as PNG) every figure of ``workshop`` (issue 9: < 0.3 s each).

Usage: ``python bench/figures.py [REPEATS]`` (default 3). Makes one exact-engine
comparison of the five designs (its runs are kept, so the latency figure runs
nothing again), a small fast-engine sweep, and times each figure: best wall
time of REPEATS, and the best CPU time of this process. The comparison's
``exact_reruns`` stays 0 through the latency figure; the timeline makes one
exact run with per-launch records (then an observed replay of its window).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from benchargs import parser, positive_int
from matplotlib.figure import Figure

import sgxlab
from sgxlab.present.apps.ui import figure_png
from sgxlab.present.export import figure_bytes

ap = parser(__doc__)
ap.add_argument("repeats", nargs="?", type=positive_int, default=3, help="tries per figure (default 3)")
n = ap.parse_args().repeats
c = sgxlab.compare(None, "workshop", engine="exact")
sw = sgxlab.sweep(
    ["read-compare", "always-write", "percpu-cache"],
    "workshop",
    {"wrmsr_lehash": [100, 400, 1600, 4000], "rdmsr_lehash": [50, 200, 800]},
    progress=False,
)
figures: dict[str, Callable[[], Figure]] = {
    "msr-traffic": c.plot_msr_traffic,
    "latency": c.plot_latency,
    "overhead": c.plot_overhead,
    "timeline (percpu-cache)": lambda: c.plot_timeline("percpu-cache"),
    "crossover": lambda: sw.plot_crossover("wrmsr_lehash", at={"rdmsr_lehash": 200}),
    "winner": lambda: sw.plot_winner("wrmsr_lehash", "rdmsr_lehash"),
}
figures["msr-traffic"]()  # warm matplotlib's font cache
for name, make in figures.items():
    best = best_cpu = save = shown = float("inf")
    for _ in range(n):
        w0, c0 = time.perf_counter(), time.process_time()
        fig = make()
        best = min(best, time.perf_counter() - w0)
        best_cpu = min(best_cpu, time.process_time() - c0)
        s0 = time.perf_counter()
        figure_png(fig)
        shown = min(shown, time.perf_counter() - s0)
        s0 = time.perf_counter()
        figure_bytes(fig, "png")
        save = min(save, time.perf_counter() - s0)
    print(
        f"{name:24s} make: best {best:.3f} s (CPU {best_cpu:.3f} s; target < 0.3 s: "
        f"{'met' if best < 0.3 else 'NOT met'}); draw for a widget (80 dpi) {shown:.3f} s, "
        f"make + draw {best + shown:.3f} s; save PNG (150 dpi) {save:.3f} s"
    )
    if name == "latency":
        print(f"  exact re-runs for the latency figure: {c.exact_reruns} (its runs are the comparison's own)")
print(f"exact runs made by all the figures: {c.exact_reruns} (the timeline's records run)")
