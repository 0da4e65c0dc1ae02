"""Fixed figure layouts (sgxlab.present.style.fixed_grid): nothing clipped, nothing overlapping.

The EINIT latency and overhead figures are laid out from text sizes measured
without a draw (:func:`sgxlab.present.style.text_size`) instead of constrained
layout. These tests draw them for one, three and five designs, with built-in
and long labels and a three-line caption, at the figure's 100 dpi and at the
saved 150 dpi, and check that every text that is drawn lies inside the figure,
that no two texts overlap (slanted labels as the rotated boxes they are), that
no text or legend covers another axes, and that saving twice gives the same bytes.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.text import Text

from sgxlab.host.designs import DESIGNS
from sgxlab.present import plots
from sgxlab.present.export import figure_bytes
from sgxlab.present.style import DPI, Caption, house_style, text_size

BUILTIN = list(DESIGNS)
LONG = [
    "my_very_long_user_design_class_name_v2",
    "percpu-cache:percpu,initial=intel,lock=ticket",
    "a_long_module_name.submodule:SomeDesignClassWithALongName",
]
LONG_CAPTION = Caption(
    "workshop",
    {"launches": 400, "vm_cpus": 4, "interval": 12000, "host_signers": 3},
    tuple(range(10)),
    "pessimistic-msr",
    "fast",
)


def _drawn_texts(fig: Figure) -> list[Text]:
    """The texts a draw of ``fig`` shows (a tick label counts when its tick is in view)."""
    fig.draw_without_rendering()
    hidden: set[int] = set()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            lo, hi = sorted(axis.get_view_interval())
            span = hi - lo
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                if not lo - 1e-9 * span <= tick.get_loc() <= hi + 1e-9 * span:
                    hidden.update((id(tick.label1), id(tick.label2)))
    return [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip() and id(t) not in hidden]


def _corners(t: Text, renderer: Any) -> np.ndarray:
    """The four corners (display units) of ``t`` as drawn, rotated text included (its
    unrotated box turned about its anchor: the alignment point, as ``rotation_mode="anchor"``
    does, or the box's centre, as matplotlib's default mode does)."""
    angle = t.get_rotation()
    if not angle:
        b = t.get_window_extent(renderer)
        return np.array([[b.x0, b.y0], [b.x1, b.y0], [b.x1, b.y1], [b.x0, b.y1]])
    t.set_rotation(0)
    try:
        b = t.get_window_extent(renderer)
    finally:
        t.set_rotation(angle)
    if t.get_rotation_mode() == "anchor":
        ha, va = t.get_horizontalalignment(), t.get_verticalalignment()
        ax_ = {"left": b.x0, "right": b.x1}.get(ha, (b.x0 + b.x1) / 2)
        ay = {"top": b.y1, "bottom": b.y0, "baseline": b.y0}.get(va, (b.y0 + b.y1) / 2)
    else:
        ax_, ay = (b.x0 + b.x1) / 2, (b.y0 + b.y1) / 2
    pts = np.array([[b.x0, b.y0], [b.x1, b.y0], [b.x1, b.y1], [b.x0, b.y1]]) - [ax_, ay]
    a = np.radians(angle)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    pts = pts @ rot.T + [ax_, ay]
    if t.get_rotation_mode() != "anchor":  # the default mode keeps the rotated box's alignment
        drawn = t.get_window_extent(renderer)
        pts += [drawn.x0 - pts[:, 0].min(), drawn.y0 - pts[:, 1].min()]
    return pts


def _overlap(p: np.ndarray, q: np.ndarray) -> bool:
    """Whether two convex quadrilaterals overlap by more than a hair (separating axes)."""
    for poly in (p, q):
        for i in range(4):
            edge = poly[(i + 1) % 4] - poly[i]
            normal = np.array([-edge[1], edge[0]]) / (np.hypot(*edge) or 1.0)
            a, b = p @ normal, q @ normal
            if a.max() <= b.min() + 0.5 or b.max() <= a.min() + 0.5:
                return False
    return True


def _rect(b: Any) -> np.ndarray:
    return np.array([[b.x0, b.y0], [b.x1, b.y0], [b.x1, b.y1], [b.x0, b.y1]])


def layout_problems(fig: Figure, dpi: float) -> list[str]:
    """What is clipped or overlaps in ``fig`` drawn at ``dpi`` (empty: nothing)."""
    FigureCanvasAgg(fig)
    old = fig.get_dpi()
    fig.set_dpi(dpi)
    try:
        texts = _drawn_texts(fig)
        r = fig.canvas.get_renderer()
        fb = fig.bbox
        out: list[str] = []
        shapes = [(t, _corners(t, r)) for t in texts]
        axes = [(ax, _rect(ax.get_window_extent(r))) for ax in fig.axes]
        for t, c in shapes:
            lo, hi = c.min(axis=0), c.max(axis=0)
            if lo[0] < fb.x0 - 0.5 or lo[1] < fb.y0 - 0.5 or hi[0] > fb.x1 + 0.5 or hi[1] > fb.y1 + 0.5:
                out.append(f"clipped: {t.get_text()!r}")
            for ax, a in axes:
                if t.axes is not ax and _overlap(c, a):
                    out.append(f"over another axes: {t.get_text()!r}")
        for (t1, c1), (t2, c2) in itertools.combinations(shapes, 2):
            if _overlap(c1, c2):
                out.append(f"overlap: {t1.get_text()!r} / {t2.get_text()!r}")
        legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
        for leg in legends:
            lb = _rect(leg.get_window_extent(r))
            own = {id(t) for t in leg.get_texts()}
            for _ax, a in axes:
                if _overlap(lb, a):
                    out.append(f"legend over axes: {leg.get_texts()[0].get_text()!r}")
            for t, c in shapes:
                if id(t) not in own and _overlap(lb, c):
                    out.append(f"legend over text: {t.get_text()!r}")
        for (_a1, r1), (_a2, r2) in itertools.combinations(axes, 2):
            if _overlap(r1, r2):
                out.append("axes overlap")
        return out
    finally:
        fig.set_dpi(old)


def _latency_inputs(labels: list[str]) -> tuple[dict[str, np.ndarray], pd.DataFrame]:
    n = np.arange(600)
    lat = {}
    parts = []
    for k, label in enumerate(labels):
        spread = 90_000 if k % 2 else 400_000
        lat[label] = 60_000 + (n * (7919 + 104 * k)) % spread
        parts.append({"einit": 6e4, "msr": 900.0 + 300 * k, "lock": 3e3 if k % 2 else 6.6e4, "trap": 500.0})
    return lat, pd.DataFrame(parts, index=labels)


CASES = {
    "1 built-in": BUILTIN[:1],
    "3 built-in": BUILTIN[:3],
    "5 built-in": BUILTIN,
    "1 long": LONG[1:2],
    "3 long": [LONG[0], BUILTIN[1], LONG[1]],
    "5 long": [LONG[2], BUILTIN[1], BUILTIN[2], BUILTIN[3], LONG[1]],
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("caption", [None, LONG_CAPTION], ids=["no caption", "long caption"])
def test_latency_figure_layout_clips_and_overlaps_nothing(case: str, caption: Caption | None):
    labels = CASES[case]
    lat, parts = _latency_inputs(labels)
    fig = plots.plot_latency(lat, parts, caption=caption, engine="exact")
    assert fig.get_layout_engine() is None  # laid out once, frozen
    for dpi in (100, DPI):
        assert layout_problems(fig, dpi) == [], (case, dpi)
    w, h = fig.get_size_inches()
    if all(label in DESIGNS for label in labels):
        assert (w, h) == (10.0, 5.4)  # the house size: wider only for labels that need it
    else:
        assert 10.0 <= w <= 16.0 and h == 5.4


def test_latency_figure_saves_the_same_bytes_twice():
    lat, parts = _latency_inputs([LONG[0], *BUILTIN[1:3]])
    fig = plots.plot_latency(lat, parts, caption=LONG_CAPTION)
    again = plots.plot_latency(lat, parts, caption=LONG_CAPTION)
    first = figure_bytes(fig, "png")
    assert figure_bytes(fig, "png") == first == figure_bytes(again, "png")


def test_latency_figure_keeps_its_elements():
    lat, parts = _latency_inputs(BUILTIN)
    fig = plots.plot_latency(lat, parts)
    cdf, box, comp = fig.axes
    assert cdf.get_xscale() == box.get_xscale() == "log"
    assert [t.get_text() for t in box.get_yticklabels()] == BUILTIN == [t.get_text() for t in comp.get_yticklabels()]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == BUILTIN
    assert len(comp.get_legend().get_texts()) == 4
    assert len(comp.texts) == len(BUILTIN)  # one note per bar
    # Every bar's note fits in the figure: the right margin makes room for the longest.
    assert layout_problems(fig, DPI) == []


@pytest.mark.parametrize("text", ["percpu-cache-retry", LONG[2], "(+66,604 beyond EINIT)", "0.0"])
@pytest.mark.parametrize("size", [9, 10, 11])
def test_text_size_is_never_narrower_than_what_agg_draws(text: str, size: float):
    with house_style():
        fig = Figure(dpi=100)
        FigureCanvasAgg(fig)
        t = fig.text(0, 0, text, fontproperties=FontProperties(family="DejaVu Sans", size=size))
        for dpi in (100, DPI):
            fig.set_dpi(dpi)
            drawn = t.get_window_extent(fig.canvas.get_renderer()).width / dpi
            assert text_size(text, size)[0] >= drawn - 1e-9, (dpi, drawn)
    w, h = text_size("a\nbb", 10)
    assert w == text_size("bb", 10)[0] and h == pytest.approx(2 * 1.2 * 10 / 72)


def _overhead_inputs(labels: list[str], seeds: bool = False) -> pd.DataFrame:
    rows = []
    for k, _label in enumerate(labels):
        rows.append(
            {
                "msr": 2e6 + 5e5 * k,
                "lock": 1.3e8 if k == 1 else 1e5 * k,
                "trap": 3e6 + 1e5 * k,
                "sched": 4e5 if k == 0 else 0.0,
                "launches": 2000,
                "total_std": 3e5 * (k + 1) if seeds else 0.0,
            }
        )
    return pd.DataFrame(rows, index=labels)


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("caption", [None, LONG_CAPTION], ids=["no caption", "long caption"])
def test_overhead_figure_layout_clips_and_overlaps_nothing(case: str, caption: Caption | None):
    labels = CASES[case]
    fig = plots.plot_overhead(_overhead_inputs(labels, seeds=caption is not None), caption=caption)
    assert fig.get_layout_engine() is None
    for dpi in (100, DPI):
        assert layout_problems(fig, dpi) == [], (case, dpi)
    w, h = fig.get_size_inches()
    if all(label in DESIGNS for label in labels):
        assert w == 9.5 and 4.8 <= h <= 5.0  # the house size; a three-line title adds a little height
    else:
        assert 9.5 <= w <= 12.0 and 4.8 <= h <= 7.5


def test_overhead_figure_without_a_per_launch_axis_and_saved_twice():
    comps = _overhead_inputs(BUILTIN[:3]).drop(columns=["launches"])
    fig = plots.plot_overhead(comps)
    assert not fig.axes[0].child_axes  # no common launch count: no right-hand axis
    assert layout_problems(fig, DPI) == []
    assert figure_bytes(fig, "png") == figure_bytes(fig, "png") == figure_bytes(plots.plot_overhead(comps), "png")


def _msr_table(labels: list[str], seeds: int = 1, scale: int = 1) -> pd.DataFrame:
    rows = []
    for s in range(seeds):
        for k, label in enumerate(labels):
            wr = (7172 - 700 * k + 40 * s) * scale
            rows.append(
                {"design": label, "seed": s, "wrmsr": wr, "rdmsr": 8000 * scale if k == 3 else 0, "launches": 2000}
            )
    return pd.DataFrame(rows)


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize(
    ("seeds", "scale", "caption"), [(1, 1, None), (3, 40, LONG_CAPTION)], ids=["one seed", "seeds, large counts"]
)
def test_msr_traffic_figure_layout_clips_and_overlaps_nothing(
    case: str, seeds: int, scale: int, caption: Caption | None
):
    labels = CASES[case]
    fig = plots.plot_msr_traffic(_msr_table(labels, seeds, scale), caption=caption)
    assert fig.get_layout_engine() is None
    for dpi in (100, DPI):
        assert layout_problems(fig, dpi) == [], (case, dpi)
    w, h = fig.get_size_inches()
    if all(label in DESIGNS for label in labels):
        assert w == 7.0 and 4.2 <= h <= 4.6
    else:
        assert 7.0 <= w <= 10.0 and 4.2 <= h <= 7.5
    assert figure_bytes(fig, "png") == figure_bytes(fig, "png")
