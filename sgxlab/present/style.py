"""The house style of every sgxlab figure: one colour per design, fonts, sizes, titles and provenance.

Colours are the Okabe–Ito palette (safe for the common colour-vision
deficiencies). Each built-in design keeps one colour in every figure; a
variant (``percpu-cache:percpu``) gets its base design's colour, darkened,
with a hatch for bars and a dash pattern for lines.

Decisions
---------
* **Settled layout.** A figure is laid out once when it is made, then
  frozen (:func:`settle`: no layout engine), so saving it twice, or in
  another process, draws the same pixels. Two kinds of layout:

  - *Fixed* (the MSR traffic, EINIT latency and overhead figures, where
    constrained layout cost two thirds of making the figure, over 0.2 s):
    :func:`fixed_grid` places the figure's gridspec with margins and gaps
    in inches, sized from the text they must hold (the longest design
    label, tick labels, titles, the caption's lines, the legends),
    measured by :func:`text_size` from the font's glyph metrics without a
    draw; :func:`refit_grid` moves it once the tick labels are known. Long
    labels widen the figure (and make it taller where they slant) rather
    than being clipped.
  - *Constrained* (the other figures): matplotlib's constrained layout,
    run once without drawing.
* **No global state.** Figures are :class:`matplotlib.figure.Figure` objects
  made by :func:`new_figure` inside :func:`house_style`, a
  :func:`matplotlib.rc_context` that is undone on exit; the font sizes that
  matplotlib looks up late (tick labels, drawn at save time) are also set on
  each axes, so a notebook's own rcParams do not change an sgxlab figure.
* **Readable at email-attachment size.** 7 x 4 in at 150 dpi, text at 9 pt
  or more, DejaVu Sans (shipped with matplotlib, so every machine draws the
  same glyphs and a saved file is the same bytes everywhere).
* **Provenance travels with the figure.** :func:`attach_provenance` stores
  the sgxlab version, the run configuration (JSON) and the command that
  reproduces the data on the figure; :func:`sgxlab.present.export.save_figure`
  writes them into the file's metadata.
"""

from __future__ import annotations

import colorsys
import contextlib
import functools
import textwrap
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import matplotlib as mpl
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import RendererAgg
from matplotlib.colors import to_hex, to_rgb
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.gridspec import GridSpec
from matplotlib.textpath import text_to_path

from sgxlab.host.designs import DESIGNS

__all__ = [
    "OKABE_ITO",
    "DESIGN_COLORS",
    "DesignStyle",
    "design_style",
    "SIGNER_COLORS",
    "SPECIAL_VALUES",
    "signer_style",
    "tint",
    "ComponentStyle",
    "COMPONENTS",
    "HOUSE_RC",
    "FIGSIZE",
    "DPI",
    "house_style",
    "new_figure",
    "finish_axes",
    "settle",
    "text_size",
    "fixed_grid",
    "refit_grid",
    "title_figure",
    "Caption",
    "Provenance",
    "attach_provenance",
    "provenance_of",
]

OKABE_ITO: Mapping[str, str] = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky blue": "#56B4E9",
    "bluish green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish purple": "#CC79A7",
}
"""Okabe & Ito (2008), "Color Universal Design": eight colours told apart under the
common colour-vision deficiencies."""

_BUILTIN_ORDER = ("orange", "vermillion", "reddish purple", "bluish green", "blue")
DESIGN_COLORS: Mapping[str, str] = {name: OKABE_ITO[c] for name, c in zip(DESIGNS, _BUILTIN_ORDER, strict=True)}
"""The colour of each built-in design, in :data:`sgxlab.host.designs.DESIGNS` order:
eager-load orange, percpu-cache vermillion, percpu-cache-retry reddish purple,
read-compare bluish green, always-write (mainline) blue."""

_OTHER_MARKS = (("oo", (3, 1.5)), ("++", (1, 1)), ("--", (5, 1, 1, 1)))
"""A design that is not built in (a user's class) is black, with one of these hatches and
dash patterns, fixed by its name (sky blue, the remaining Okabe–Ito colour, is too close to
always-write's blue)."""

_VARIANT_MARKS = {
    "lock": ("//", (6, 2)),
    "initial": ("\\\\", (1, 1.5)),
    "both": ("xx", (6, 1.5, 1, 1.5)),
}
"""Hatch and dash pattern of a cache design's variant, by the options it changes."""


@dataclass(frozen=True)
class DesignStyle:
    """How a design is drawn: ``color`` (hex), ``hatch`` for bars (``""``: none),
    ``dashes`` for lines (``None``: solid) and whether it is a ``variant``."""

    color: str
    hatch: str = ""
    dashes: tuple[float, ...] | None = None
    variant: bool = False

    @property
    def linestyle(self) -> Any:
        """A matplotlib linestyle: ``"-"`` or ``(0, dashes)``."""
        return "-" if self.dashes is None else (0, self.dashes)


def tint(color: str, amount: float) -> str:
    """``color`` mixed with white: ``amount`` 1 is the colour, 0 is white."""
    r, g, b = to_rgb(color)
    a = min(max(amount, 0.0), 1.0)
    return to_hex((1 - a + a * r, 1 - a + a * g, 1 - a + a * b))


def _shade(color: str, factor: float = 0.72) -> str:
    h, lum, s = colorsys.rgb_to_hls(*to_rgb(color))
    return to_hex(colorsys.hls_to_rgb(h, lum * factor, s))


def design_style(label: str) -> DesignStyle:
    """The style of the design reported as ``label`` (a name such as ``read-compare``,
    a variant label such as ``percpu-cache:percpu,initial=intel``, or anything else).

    The same label always gets the same style, in every figure and every process.
    """
    if label in DESIGN_COLORS:
        return DesignStyle(DESIGN_COLORS[label])
    base, sep, opts = label.partition(":")
    if sep and base in DESIGN_COLORS:
        items = [o.strip() for o in opts.split(",") if o.strip()]
        has_initial = any(o.startswith("initial") for o in items)
        has_lock = any(not o.startswith("initial") for o in items)
        key = "both" if has_initial and has_lock else "initial" if has_initial else "lock"
        hatch, dashes = _VARIANT_MARKS[key]
        return DesignStyle(_shade(DESIGN_COLORS[base]), hatch, dashes, variant=True)
    hatch, dashes = _OTHER_MARKS[zlib.crc32(label.encode("utf-8")) % len(_OTHER_MARKS)]
    return DesignStyle(OKABE_ITO["black"], hatch, dashes)


SIGNER_COLORS: tuple[str, ...] = (
    OKABE_ITO["sky blue"],
    OKABE_ITO["orange"],
    OKABE_ITO["bluish green"],
    OKABE_ITO["yellow"],
    OKABE_ITO["blue"],
    OKABE_ITO["vermillion"],
    OKABE_ITO["reddish purple"],
)
"""Colours of signers 0, 1, 2 ... in the timeline (a signer is not a design, so these
repeat the palette in another order); signer 7 and later reuse them with a hatch."""

_SIGNER_HATCHES = ("", "//", "..", "xx", "\\\\", "++", "oo", "--", "||")

SPECIAL_VALUES: Mapping[int, tuple[str, str, str]] = {
    -1: ("Intel's hash (reset value)", "#d9d9d9", ""),
    -2: ("zero (cache at boot)", "#ffffff", "////"),
    -3: ("no signer's hash (mixed words)", "#7f7f7f", "xx"),
    -5: ("the host's launch enclave", "#000000", ""),
}
"""Label, colour and hatch of the MSR values that are no run signer's hash (the
codes of :class:`sgxlab.sim.exact.MsrHistory`)."""


def signer_style(code: int) -> tuple[str, str, str]:
    """Label, colour and hatch of signer ``code`` (or a special value, :data:`SPECIAL_VALUES`)."""
    if code in SPECIAL_VALUES:
        return SPECIAL_VALUES[code]
    if code < 0:
        return (f"value {code}", "#7f7f7f", "xx")
    n = len(SIGNER_COLORS)
    return (f"signer {code}", SIGNER_COLORS[code % n], _SIGNER_HATCHES[(code // n) % len(_SIGNER_HATCHES)])


@dataclass(frozen=True)
class ComponentStyle:
    """One part of a stacked bar: ``label`` (with its unit), how strongly the design's
    colour shows (``strength``, 0-1) and a ``hatch``, so the parts differ without colour."""

    label: str
    strength: float
    hatch: str


COMPONENTS: Mapping[str, ComponentStyle] = {
    "einit": ComponentStyle("EINIT", 0.22, ""),
    "msr": ComponentStyle("hash-MSR accesses (RDMSR/WRMSR)", 1.0, ""),
    "lock": ComponentStyle("lock held + lock/queue wait", 0.55, "//"),
    "trap": ComponentStyle("ENCLS trap + guest MSR exits", 0.4, ".."),
    "sched": ComponentStyle("WRMSR at schedule-in (eager load)", 0.75, "xx"),
}
"""The parts of a launch's latency and of a run's overhead, in stacking order."""

FIGSIZE = (7.0, 4.0)
"""Inches: an email attachment or a slide, read without zooming."""
DPI = 150
"""Pixels per inch of a saved PNG (1050 x 600 for :data:`FIGSIZE`)."""

HOUSE_RC: Mapping[str, Any] = {
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],
    "font.size": 10,
    "axes.titlesize": 10,
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "legend.title_fontsize": 9,
    "figure.titlesize": 11,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.axisbelow": True,
    "axes.grid": False,
    "grid.color": "#d9d9d9",
    "grid.linewidth": 0.6,
    "hatch.linewidth": 0.7,
    "hatch.color": "#222222",
    "axes.formatter.use_locale": False,
    "axes.formatter.useoffset": False,
    "axes.titley": 1.0,  # a fixed title place: no axes has labels on top, and finding one costs a layout per draw
    "figure.dpi": 100,
    "savefig.dpi": DPI,
    "svg.hashsalt": "sgxlab",
    "svg.fonttype": "path",
    "pdf.fonttype": 3,
    "path.simplify": True,
}
"""The rcParams every sgxlab figure is made and saved under (see the module docstring)."""

_TICK_SIZE = 9


@contextlib.contextmanager
def house_style() -> Iterator[None]:
    """The house rcParams for the ``with`` block only."""
    with mpl.rc_context(cast(Any, dict(HOUSE_RC))):
        yield


def new_figure(size: tuple[float, float] = FIGSIZE, *, fixed: bool = False) -> Figure:
    """An empty figure of ``size`` inches with constrained layout, or none when ``fixed``
    (the caller places a :func:`fixed_grid`) (call inside :func:`house_style`)."""
    fig = Figure(figsize=size, dpi=100, layout=None if fixed else "constrained")
    if fixed:
        fig.set_layout_engine("none")  # not rcParams["figure.constrained_layout.use"] either
    return fig


_FONT_FAMILY = "DejaVu Sans"
_LINE_SPACING = 1.2
"""matplotlib's default line spacing of multi-line text (a multiple of the font size)."""


@functools.lru_cache(maxsize=4)
def _agg(dpi: float) -> RendererAgg:
    return RendererAgg(1, 1, dpi)  # type: ignore[no-untyped-call]  # backend_agg is untyped


@functools.lru_cache(maxsize=1024)
def text_size(text: str, size: float) -> tuple[float, float]:
    """Width and height in inches of ``text`` set at ``size`` points in the house font:
    the widest line, and the lines at matplotlib's 1.2 line spacing.

    Measured from the font's glyph metrics without a figure or a draw: the widest of
    the outlines (:data:`matplotlib.textpath.text_to_path`, as SVG and PDF draw them)
    and Agg's hinted glyphs at the figure's 100 dpi and at :data:`DPI` (hinting rounds
    each glyph's advance to whole pixels, up to 5 % wider at 100 dpi). A layout adds
    its own padding.
    """
    prop = FontProperties(family=_FONT_FAMILY, size=size)
    width = 0.0
    for line in text.split("\n"):
        if not line:
            continue
        width = max(width, text_to_path.get_text_width_height_descent(line, prop, ismath=False)[0] / 72.0)
        for dpi in (100.0, float(DPI)):
            agg_w = _agg(dpi).get_text_width_height_descent(line, prop, ismath=False)[0]  # type: ignore[no-untyped-call]
            width = max(width, agg_w / dpi)
    return width, (text.count("\n") + 1) * _LINE_SPACING * size / 72.0


@dataclass(frozen=True)
class Margins:
    """A fixed grid's margins (``left`` ... ``bottom``) and the gaps between its columns
    (``wgap``) and rows (``hgap``), in inches: sized by the caller from the text they
    hold (:func:`text_size`)."""

    left: float
    right: float
    top: float
    bottom: float
    wgap: float = 0.0
    hgap: float = 0.0

    def fractions(self, fig: Figure, nrows: int, ncols: int) -> dict[str, float]:
        """The gridspec keywords (figure fractions) of these margins on ``fig``."""
        w, h = fig.get_size_inches()
        cell_w = (w - self.left - self.right - self.wgap * (ncols - 1)) / ncols
        cell_h = (h - self.top - self.bottom - self.hgap * (nrows - 1)) / nrows
        if cell_w <= 0 or cell_h <= 0:
            raise ValueError(f"margins leave no room for the axes of a {w:g} x {h:g} in figure")
        return {
            "left": self.left / w,
            "right": 1 - self.right / w,
            "bottom": self.bottom / h,
            "top": 1 - self.top / h,
            "wspace": self.wgap / cell_w,
            "hspace": self.hgap / cell_h,
        }


def fixed_grid(
    fig: Figure,
    nrows: int,
    ncols: int,
    margins: Margins,
    *,
    width_ratios: Sequence[float] | None = None,
    height_ratios: Sequence[float] | None = None,
) -> GridSpec:
    """A gridspec on ``fig`` with ``margins``, for a figure without a layout engine
    (:func:`new_figure` with ``fixed=True``). The cells share what is left in
    ``width_ratios`` and ``height_ratios``. :func:`refit_grid` moves it once its axes
    are drawn on."""
    return fig.add_gridspec(
        nrows, ncols, width_ratios=width_ratios, height_ratios=height_ratios, **margins.fractions(fig, nrows, ncols)
    )


def refit_grid(fig: Figure, gs: GridSpec, margins: Margins) -> None:
    """Move ``gs`` (and its axes) to new ``margins``: for margins that depend on the
    axes' contents (tick labels, known once the data is drawn on them)."""
    nrows, ncols = gs.get_geometry()
    gs.update(**margins.fractions(fig, nrows, ncols))
    for ax in fig.axes:  # GridSpec.update moves the axes of pyplot's figures only
        spec = ax.get_subplotspec()
        if spec is not None and spec.get_topmost_subplotspec().get_gridspec() is gs:
            ax.set_position(spec.get_position(fig))


def settle(fig: Figure) -> Figure:
    """Lay ``fig`` out once (constrained layout, which iterates internally), then freeze
    it (no layout engine); a figure with a fixed layout (:func:`fixed_grid`) is only frozen.

    Each draw of a constrained-layout figure starts from the last layout, so
    the first and second saves of a fresh figure would differ by a fraction
    of a pixel; a settled figure draws the same every time, in every process.
    The layout runs without drawing the figure (a full draw costs as much
    again), so making a figure costs one layout, and saving it one draw.
    """
    engine = fig.get_layout_engine()
    if engine is not None:
        engine.execute(fig)
    fig.set_layout_engine("none")
    return fig


def finish_axes(ax: Axes, *, grid: str | None = "y") -> None:
    """Tick labels at 9 pt (fixed on the axes, not looked up at draw time) and a light grid."""
    ax.tick_params(labelsize=_TICK_SIZE)
    if grid is not None:
        ax.grid(True, axis=grid, color="#d9d9d9", linewidth=0.6)  # type: ignore[arg-type]
        ax.set_axisbelow(True)


@dataclass(frozen=True)
class Caption:
    """What a figure's title says about the data: the workload and the parameters that
    differ from its defaults, the seeds, the cost preset and the engine."""

    workload: str
    params: Mapping[str, Any] = field(default_factory=dict)
    seeds: tuple[int, ...] = (0,)
    costs: str = "default"
    engine: str = "exact"

    def seeds_text(self) -> str:
        s = self.seeds
        if len(s) == 1:
            return f"seed {s[0]}"
        if list(s) == list(range(s[0], s[0] + len(s))):
            return f"seeds {s[0]}-{s[-1]} ({len(s)} runs)"
        return f"seeds {','.join(map(str, s))} ({len(s)} runs)"

    def parts(self, *, engine: str | None = None) -> list[str]:
        """The caption's parts: workload (with its non-default parameters), seeds, costs,
        engine. ``engine``: the engine the figure's data came from when it is not the
        caption's (a fast-engine comparison's latencies re-run on the exact engine)."""
        wl = self.workload
        if self.params:
            wl += " (" + ", ".join(f"{k}={_show(v)}" for k, v in self.params.items()) + ")"
        eng = f"{self.engine} engine"
        if engine is not None and engine != self.engine:
            eng = f"{engine} engine (re-run of the {self.engine}-engine runs)"
        return [wl, self.seeds_text(), f"costs {self.costs}", eng]

    def text(self, *, engine: str | None = None) -> str:
        """The caption on one line."""
        return " · ".join(self.parts(engine=engine))


def _show(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    return str(v)


def title_figure(fig: Figure, what: str, caption: Caption | None, *, engine: str | None = None) -> None:
    """The figure's title: ``what``, then the caption (wrapped to the figure's width)."""
    lines = [what]
    if caption is not None:
        width = max(int(fig.get_figwidth() * 11), 40)  # characters of 11 pt DejaVu Sans per line
        cur = ""
        for part in caption.parts(engine=engine):
            if cur and len(cur) + 3 + len(part) > width:
                lines.append(cur)
                cur = ""
            cur = f"{cur} · {part}" if cur else part
        lines += textwrap.wrap(cur, width, break_on_hyphens=False) if len(cur) > width else [cur]
    fig.suptitle("\n".join(lines), fontsize=11, x=0.01, ha="left")


@dataclass(frozen=True)
class Provenance:
    """What a saved figure carries: ``title``, the ``config`` (JSON text), the
    ``command`` (a list of arguments) that reproduces the data, and the sgxlab ``version``."""

    title: str
    config: str
    command: Sequence[str]
    version: str


_PROVENANCE_ATTR = "_sgxlab_provenance"


def attach_provenance(fig: Figure, provenance: Provenance) -> Figure:
    """Store ``provenance`` on ``fig`` (read back by :func:`provenance_of`); return ``fig``."""
    setattr(fig, _PROVENANCE_ATTR, provenance)
    return fig


def provenance_of(fig: Figure) -> Provenance | None:
    """The provenance :func:`attach_provenance` stored on ``fig``, if any."""
    p = getattr(fig, _PROVENANCE_ATTR, None)
    return p if isinstance(p, Provenance) else None
