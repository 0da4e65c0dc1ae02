"""Figures of runs, comparisons and sweeps: MSR traffic, EINIT latency, overhead, policy matrix, timeline, crossover, winner.

Each ``plot_*`` function takes plain data (a comparison table, latencies, the
policy matrix) and returns a :class:`matplotlib.figure.Figure` made with the
object API (no ``pyplot``, no global state), in the house style of
:mod:`sgxlab.present.style`. :class:`sgxlab.present.result.Result` and
:class:`~sgxlab.present.result.Comparison` call them in one step.

Decisions
---------
* **Costs from the summary.** A run's overhead and its mean latency split
  exactly into their parts from the summary and the cost model alone
  (``docs/simulator.md``, "Timing model"): hash-MSR accesses are
  ``wrmsr * wrmsr_lehash + rdmsr * rdmsr_lehash`` less the writes at
  schedule-in (a design that ``loads_on_schedule`` writes 4 per
  schedule-in), traps are ``encls_exits * encls_trap + msr_exits *
  vm_exit``, and the lock (held and waited for) is what remains of
  ``overhead_cycles``. :func:`cost_breakdown` does this, so the overhead
  figure works for the fast engine too; ``tests/test_plots.py`` checks it
  against the exact engine's per-launch records.
* **Several seeds.** A table with several rows per design (one per seed) is
  drawn as the mean, with the standard deviation as an error bar; latencies
  of several seeds are pooled.
* **Honest axes.** Every axis names its unit (cycles or counts); a log axis
  says so in its label; box plots use the summary's nearest-rank
  percentiles, so the p50 and p99 drawn are the ones in the table.
* **Timeline colours are signers, not designs.** One colour per signer
  (:func:`sgxlab.present.style.signer_style`), Intel's reset value light
  grey, zero and mixed words hatched, so a stale cache is a CPU whose
  ``cache`` row and ``MSRs`` row differ in colour.
* **Crossovers are interpolated.** Between two grid points where two
  designs' mean curves change order, the crossing is placed by linear
  interpolation (:func:`crossovers`) and labelled with its value; the
  winner heatmap (:func:`winners`) takes the mean over seeds per cell.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import EngFormatter, FuncFormatter, LogLocator, NullFormatter

from sgxlab.errors import ConfigError
from sgxlab.host.designs import Design, design_class
from sgxlab.present.style import (
    COMPONENTS,
    OKABE_ITO,
    Caption,
    Margins,
    design_style,
    finish_axes,
    fixed_grid,
    house_style,
    new_figure,
    refit_grid,
    settle,
    signer_style,
    text_size,
    tint,
    title_figure,
)
from sgxlab.sim.stats import percentile

__all__ = [
    "plot_msr_traffic",
    "plot_latency",
    "plot_overhead",
    "plot_policy_matrix",
    "plot_timeline",
    "TimelineData",
    "plot_crossover",
    "plot_winner",
    "crossovers",
    "winners",
    "cost_breakdown",
    "latency_components",
    "overhead_components",
    "design_order",
    "seed_stats",
]

_BREAKDOWN_NEEDS = (
    "design",
    "launches",
    "einit",
    "wrmsr",
    "rdmsr",
    "schedule_ins",
    "encls_exits",
    "msr_exits",
    "overhead_cycles",
    "latency_mean",
)
_COST_NEEDS = ("wrmsr_lehash", "rdmsr_lehash", "einit", "encls_trap", "vm_exit")
_MAX_CDF_POINTS = 2000


# --------------------------------------------------------------------------- data


def _need(table: pd.DataFrame, cols: Sequence[str], what: str) -> None:
    missing = [c for c in cols if c not in table.columns]
    if missing:
        raise ConfigError(what, ", ".join(missing), "missing column(s); give a table from sgxlab.compare()")


def design_order(table: pd.DataFrame) -> list[str]:
    """The designs of ``table`` in order of first appearance."""
    return list(dict.fromkeys(str(d) for d in table["design"]))


def _classes(labels: Sequence[str], classes: Mapping[str, type[Design]] | None) -> dict[str, type[Design]]:
    out: dict[str, type[Design]] = {}
    for label in labels:
        if classes is not None and label in classes:
            out[label] = classes[label]
            continue
        try:
            out[label] = design_class(label)
        except ConfigError:
            raise ConfigError(
                "design", label, "not a built-in design; pass classes={label: DesignClass} to split its costs"
            ) from None
    return out


def cost_breakdown(
    table: pd.DataFrame,
    costs: Mapping[str, Any],
    classes: Mapping[str, type[Design]] | None = None,
) -> pd.DataFrame:
    """Where each run's cycles went, from its summary row and the costs (``RunConfig.costs``).

    One row per row of ``table`` (a :func:`sgxlab.compare` table, one or more
    seeds), with ``design``, ``seed``, ``launches`` and cycle totals over the run:

    * overhead (``overhead_cycles``, EINIT excluded): ``overhead_msr`` (hash-MSR
      accesses at launch), ``overhead_lock`` (lock held and waited for),
      ``overhead_trap`` (ENCLS traps and intercepted guest WRMSRs),
      ``overhead_sched`` (a schedule-in loading design's 4 WRMSRs per
      schedule-in); they sum to ``overhead_cycles``;
    * latency (``latency_mean * launches``): ``latency_einit``,
      ``latency_msr``, ``latency_trap`` and ``latency_lock`` (lock held plus
      lock and per-CPU queue waits); they sum to the run's total latency.

    ``classes`` maps a design label to its class where the label is not a
    built-in name (the class says whether it ``loads_on_schedule``).
    """
    _need(table, _BREAKDOWN_NEEDS, "cost breakdown")
    missing = [k for k in _COST_NEEDS if k not in costs]
    if missing:
        raise ConfigError("costs", ", ".join(missing), "missing cost parameter(s)")
    cls = _classes(design_order(table), classes)
    w, r = int(costs["wrmsr_lehash"]), int(costs["rdmsr_lehash"])
    rows: list[dict[str, Any]] = []
    for rec in table.to_dict("records"):
        label = str(rec["design"])
        n = int(rec["launches"])
        sched = 4 * int(rec["schedule_ins"]) * w if cls[label].loads_on_schedule else 0
        msr = int(rec["wrmsr"]) * w + int(rec["rdmsr"]) * r - sched
        trap = int(rec["encls_exits"]) * int(costs["encls_trap"]) + int(rec["msr_exits"]) * int(costs["vm_exit"])
        lock = int(rec["overhead_cycles"]) - msr - trap - sched
        einit = int(rec["einit"]) * int(costs["einit"])
        total = round(float(rec["latency_mean"]) * n)
        rows.append(
            {
                "design": label,
                "seed": rec.get("seed", 0),
                "launches": n,
                "overhead_msr": msr,
                "overhead_lock": lock,
                "overhead_trap": trap,
                "overhead_sched": sched,
                "overhead_cycles": int(rec["overhead_cycles"]),
                "latency_einit": einit,
                "latency_msr": msr,
                "latency_trap": trap,
                "latency_lock": total - einit - msr - trap,
                "latency_total": total,
            }
        )
    return pd.DataFrame(rows)


def latency_components(breakdown: pd.DataFrame) -> pd.DataFrame:
    """Mean cycles per launch of each latency part (columns einit, msr, lock, trap), one row per design."""
    parts = ["einit", "msr", "lock", "trap"]
    out: dict[str, dict[str, float]] = {}
    for label in design_order(breakdown):
        sub = breakdown[breakdown["design"] == label]
        n = float(sub["launches"].sum())
        out[label] = {p: float(sub[f"latency_{p}"].sum()) / n if n else 0.0 for p in parts}
    return pd.DataFrame.from_dict(out, orient="index", columns=parts)


def overhead_components(breakdown: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds of each overhead part (cycles per run; columns msr, lock, trap, sched),
    with ``total_std`` (standard deviation of the total over seeds; 0 for one seed) and
    ``launches`` (mean), one row per design."""
    parts = ["msr", "lock", "trap", "sched"]
    out: dict[str, dict[str, float]] = {}
    for label in design_order(breakdown):
        sub = breakdown[breakdown["design"] == label]
        row = {p: float(sub[f"overhead_{p}"].mean()) for p in parts}
        tot = sub["overhead_cycles"].astype(float)
        row["total_std"] = float(tot.std(ddof=1)) if len(tot) > 1 else 0.0
        row["launches"] = float(sub["launches"].mean())
        out[label] = row
    return pd.DataFrame.from_dict(out, orient="index")


def seed_stats(
    table: pd.DataFrame, cols: Sequence[str]
) -> tuple[list[str], dict[str, dict[str, float]], dict[str, dict[str, float]], int]:
    """Per design (in order of appearance): the mean and the sample standard deviation over
    its rows (seeds) of each of ``cols``, and the most rows a design has (1: no stddev, all 0)."""
    labels = design_order(table)
    g = table.groupby("design", sort=False)[list(cols)]
    n = int(g.size().max()) if len(table) else 0
    mean_df = g.mean().astype(float)
    std_df = g.std(ddof=1).astype(float).fillna(0.0) if n > 1 else mean_df * 0.0
    mean_d = mean_df.to_dict("index")
    std_d = std_df.to_dict("index")
    mean = {lab: {c: float(mean_d[lab][c]) for c in cols} for lab in labels}
    std = {lab: {c: float(std_d[lab][c]) for c in cols} for lab in labels}
    return labels, mean, std, n


# --------------------------------------------------------------------------- figures


def _cycles_formatter() -> EngFormatter:
    return EngFormatter(places=None, sep="")


def _log_cycles_axis(ax: Any, span: float, width: float | None = None) -> None:
    """A log axis of cycles labelled 50k, 100k, 200k ... (not 10^5); more labels when the
    data ``span`` (largest / smallest) is under a decade, fewer when the axis, ``width``
    inches long, has no room for them."""
    subs: tuple[float, ...] = (1.0, 2.0, 5.0) if span >= 10 else (1.0, 1.5, 2.0, 3.0, 5.0, 7.0)
    if width is not None:
        # Labels such as "150k" need about 0.45 in each; the closest of these ticks are
        # 0.125 decade (1.5 to 2), 0.3 decade (1 to 2) or a decade apart.
        per_decade = width / max(math.log10(max(span, 1.0) * 1.4), 0.1)  # the axis shows a little more than the data
        if subs[1] == 1.5 and per_decade * 0.125 < 0.45:
            subs = (1.0, 2.0, 5.0)
        if per_decade * 0.3 < 0.45:
            subs = (1.0,)
    ax.xaxis.set_major_locator(_InViewLogLocator(base=10, subs=subs))
    ax.xaxis.set_major_formatter(EngFormatter(sep=""))
    ax.xaxis.set_minor_locator(_InViewLogLocator(base=10, subs=tuple(float(i) for i in range(1, 10))))
    ax.xaxis.set_minor_formatter(NullFormatter())


class _InViewLogLocator(LogLocator):
    """A :class:`LogLocator` that returns only the ticks inside the view. LogLocator adds a
    decade's ticks beyond each end, and the axis makes a tick (two lines, two labels) for
    each before it drops those outside: at 9 minor ticks a decade that was a third of
    the latency figure's draw. The ticks drawn are the same."""

    def __call__(self) -> Any:
        locs = np.asarray(super().__call__())
        if self.axis is None:
            return locs
        lo, hi = sorted(self.axis.get_view_interval())
        return locs[(locs >= lo) & (locs <= hi)]


def _count(x: float) -> str:
    if x == 0:
        return "0"
    if abs(x) >= 100 or float(x).is_integer():
        return f"{x:,.0f}"
    return f"{x:.3g}"


def plot_msr_traffic(table: pd.DataFrame, *, caption: Caption | None = None) -> Figure:
    """Hash-MSR accesses per design: WRMSR and RDMSR as grouped bars, in total (left)
    and per launch (right). Several seeds: the mean, with the standard deviation as an error bar."""
    _need(table, ("design", "wrmsr", "rdmsr", "launches"), "MSR traffic")
    t = table.copy()
    t["wrmsr_per_launch"] = t["wrmsr"] / t["launches"].where(t["launches"] > 0)
    t["rdmsr_per_launch"] = t["rdmsr"] / t["launches"].where(t["launches"] > 0)
    labels, mean, std, n = seed_stats(t, ["wrmsr", "rdmsr", "wrmsr_per_launch", "rdmsr_per_launch"])
    proxies = [
        Patch(facecolor="#555555", edgecolor="#555555", label="WRMSR (filled)"),
        Patch(facecolor=tint("#555555", 0.35), edgecolor="#555555", hatch="..", label="RDMSR (light, dotted)"),
    ]
    units = ("accesses in the run (count)", "accesses per launch (count)")
    with house_style():
        fig = new_figure((7.0, 4.2), fixed=True)
        what = "IA32_SGXLEPUBKEYHASH accesses on physical CPUs"
        if n > 1:
            what += f" (mean ± stddev of {n} seeds)"
        title_figure(fig, what, caption)
        panels = _BarPanels.start(fig, labels, [str(p.get_label()) for p in proxies], units, (7.0, 4.2), (1.0, 1.0))
        axes = panels.axes
        x = np.arange(len(labels), dtype=float)
        bw = 0.38
        notes: list[list[tuple[float, str]]] = [[], []]  # (bar top, text) of each panel's counts
        for k, (ax, (wcol, rcol), unit) in enumerate(
            zip(axes, (("wrmsr", "rdmsr"), ("wrmsr_per_launch", "rdmsr_per_launch")), units, strict=True)
        ):
            for i, label in enumerate(labels):
                st = design_style(label)
                for dx, col, kind in ((-bw / 2, wcol, "W"), (bw / 2, rcol, "R")):
                    v = mean[label][col]
                    e = std[label][col] if n > 1 else None
                    face = st.color if kind == "W" else tint(st.color, 0.35)
                    hatch = st.hatch + ("" if kind == "W" else "..")
                    ax.bar(
                        x[i] + dx,
                        0.0 if math.isnan(v) else v,
                        bw,
                        color=face,
                        edgecolor=st.color,
                        linewidth=1.0,
                        hatch=hatch or None,
                        yerr=e,
                        capsize=3 if e is not None else 0,
                        error_kw={"elinewidth": 1.0, "ecolor": "#333333"},
                    )
                    top = (0.0 if math.isnan(v) else v) + (e or 0.0)
                    ax.annotate(
                        _count(v),
                        (x[i] + dx, top),
                        xytext=(0, 3),
                        textcoords="offset points",
                        rotation=90,
                        ha="center",
                        va="bottom",
                        fontsize=9,
                    )
                    notes[k].append((top, _count(v)))
            ax.set_xticks(x, labels, rotation=30, ha="right", rotation_mode="anchor")
            ax.set_ylabel(unit)
            ax.margins(y=0.25)
            finish_axes(ax)
        axes[0].yaxis.set_major_formatter(EngFormatter(sep=""))
        # The counts stand upright on their bars; a long one may reach above the axes
        # (past the y margin): the titles, and the axes' top, make room for it.
        height = fig.get_figheight() - panels.grid.top - panels.grid.bottom
        over = 0.0
        for _ in range(5):
            h = height - over
            reach = 0.0
            for ax, ns in zip(axes, notes, strict=True):
                y0, y1 = ax.get_ylim()
                reach = max(reach, *((top - y0) / (y1 - y0) * h + 3 * _PT + text_size(t, 9)[0] - h for top, t in ns))
            over = max(over, reach)
        panels.grid = dataclasses.replace(panels.grid, top=panels.grid.top + over)
        axes[0].set_title("in total", pad=_TITLE_PAD + over / _PT)
        axes[1].set_title("per launch", pad=_TITLE_PAD + over / _PT)
        panels.finish(_yaxis_width(axes[0].yaxis), _LAYOUT_PAD * _PT + _yaxis_width(axes[1].yaxis), proxies)
        settle(fig)
    return fig


def _ecdf(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The empirical CDF of ``values`` as step points, at most ~2,000 of them
    (sampled at evenly spaced probabilities, nearest rank, for long runs)."""
    v = np.sort(np.asarray(values, dtype=np.int64))
    n = len(v)
    if n <= _MAX_CDF_POINTS:
        return v, np.arange(1, n + 1) / n
    p = np.linspace(1.0 / _MAX_CDF_POINTS, 1.0, _MAX_CDF_POINTS)
    k = np.maximum(np.ceil(p * n).astype(np.int64), 1) - 1
    return v[k], (k + 1) / n


def _box_stats(label: str, values: np.ndarray) -> dict[str, Any]:
    v = np.sort(np.asarray(values, dtype=np.int64))
    return {
        "label": label,
        "whislo": percentile(v, 0.01),
        "q1": percentile(v, 0.25),
        "med": percentile(v, 0.50),
        "q3": percentile(v, 0.75),
        "whishi": percentile(v, 0.99),
        "mean": float(v.mean()) if len(v) else 0.0,
        "fliers": [],
    }


def _draw_box(ax: Any, y: float, st: Mapping[str, Any], label: str, h: float = 0.6) -> None:
    """One horizontal box (drawn by hand: ``Axes.bxp`` reads every rcParam, and reading
    ``backend`` makes matplotlib import pyplot)."""
    from matplotlib.patches import Rectangle

    ds = design_style(label)
    ax.add_patch(
        Rectangle(
            (st["q1"], y - h / 2),
            max(st["q3"] - st["q1"], 0),
            h,
            facecolor=tint(ds.color, 0.45),
            edgecolor=ds.color,
            linewidth=1.2,
            hatch=ds.hatch or None,
        )
    )
    ax.plot([st["med"]] * 2, [y - h / 2, y + h / 2], color="#222222", linewidth=1.6)
    for a, b in ((st["whislo"], st["q1"]), (st["q3"], st["whishi"])):
        ax.plot([a, b], [y, y], color="#222222", linewidth=1.0)
    for x in (st["whislo"], st["whishi"]):
        ax.plot([x, x], [y - h / 4, y + h / 4], color="#222222", linewidth=1.0)
    ax.plot([st["mean"]], [y], marker="D", markersize=5, markerfacecolor="white", markeredgecolor="#222222")


def plot_latency(
    latencies: Mapping[str, np.ndarray],
    components: pd.DataFrame,
    *,
    caption: Caption | None = None,
    engine: str | None = None,
) -> Figure:
    """EINIT latency per design: the CDF of per-launch latencies on a log axis (top left),
    a box view of the same (bottom left: p25-p75 box, p50 line, p1-p99 whiskers, mean
    diamond) and the mean latency split into its parts (right: ``components`` from
    :func:`latency_components`, cycles per launch).

    ``latencies`` maps each design to its per-launch latencies (cycles; several
    seeds pooled). ``engine`` names the engine in the title when the figure
    was re-run on another one than the caption's.
    """
    labels = list(latencies)
    if not labels:
        raise ConfigError("latencies", {}, "no design to plot")
    empty = [k for k in labels if len(latencies[k]) == 0]
    if empty:
        raise ConfigError("latencies", empty[0], "no launches: nothing to plot")
    comp = components.reindex(labels).fillna(0.0)
    totals = np.zeros(len(labels))
    for part in _LATENCY_PARTS:
        totals += comp[part].to_numpy(dtype=float)  # in the bars' order: the same sums as the bars' ends
    notes = [f"{t:,.0f}\n(+{t - e:,.0f} beyond EINIT)" for t, e in zip(totals, comp["einit"], strict=True)]
    with house_style():
        lay = _latency_layout(labels, totals, notes)
        fig = new_figure((lay.width, 5.4), fixed=True)
        title_figure(fig, "EINIT latency per design", caption, engine=engine)
        lay = lay.with_title(fig.get_suptitle(), len(labels))
        fig.set_size_inches(lay.width, lay.height)
        gs = fixed_grid(
            fig,
            2,
            2,
            Margins(lay.left, lay.right, lay.top, lay.bottom, lay.wgap, lay.hgap),
            width_ratios=(lay.left_width, lay.right_width),
            height_ratios=(1.6, 1.0),
        )
        ax_cdf = fig.add_subplot(gs[0, 0])
        ax_box = fig.add_subplot(gs[1, 0], sharex=ax_cdf)
        ax_comp = fig.add_subplot(gs[:, 1])

        lo = min(int(np.min(latencies[k])) for k in labels)
        for label in labels:
            st = design_style(label)
            x, y = _ecdf(latencies[label])
            ax_cdf.step(x, y, where="post", color=st.color, linestyle=st.linestyle, linewidth=1.6, label=label)
        ax_cdf.set_xscale("log")
        ax_cdf.set_ylim(0, 1.02)
        ax_cdf.set_ylabel("fraction of launches ≤ x")
        ax_cdf.set_title("CDF of EINIT latency (per launch)")
        ax_cdf.tick_params(labelbottom=False)
        finish_axes(ax_cdf, grid="both")

        for k, label in enumerate(labels):
            _draw_box(ax_box, float(len(labels) - 1 - k), _box_stats(label, latencies[label]), label)
        ax_box.set_yticks(np.arange(len(labels))[::-1].astype(float), labels)
        ax_box.set_ylim(-0.6, len(labels) - 0.4)
        ax_box.set_xscale("log")
        hi = max(int(np.max(latencies[k])) for k in labels)
        _log_cycles_axis(ax_box, hi / max(lo, 1), lay.left_width)
        ax_box.set_xlabel("EINIT latency (cycles, log scale): request to EINIT done")
        ax_box.set_title("box p25-p75, line p50, whiskers p1-p99, ◇ mean", fontsize=9)
        finish_axes(ax_box, grid="x")
        ax_cdf.set_xlim(left=max(lo * 0.8, 1))

        y = np.arange(len(labels))[::-1].astype(float)
        left = np.zeros(len(labels))
        for part in _LATENCY_PARTS:
            cs = COMPONENTS[part]
            vals = comp[part].to_numpy(dtype=float)
            for i, label in enumerate(labels):
                st = design_style(label)
                ax_comp.barh(
                    y[i],
                    vals[i],
                    0.62,
                    left=left[i],
                    color=tint(st.color, cs.strength),
                    edgecolor=st.color,
                    linewidth=0.8,
                    hatch=cs.hatch or None,
                )
            left += vals
        for i in range(len(labels)):
            ax_comp.annotate(
                notes[i], (left[i], y[i]), xytext=(_NOTE_OFFSET, 0), textcoords="offset points", va="center", fontsize=9
            )
        ax_comp.set_yticks(y, labels)
        ax_comp.set_xlabel("mean cycles per launch")
        ax_comp.set_title("mean latency, by part")
        ax_comp.xaxis.set_major_formatter(_cycles_formatter())
        ax_comp.set_xlim(0, lay.xmax)
        finish_axes(ax_comp, grid="x")
        proxies = [
            Patch(
                facecolor=tint("#555555", COMPONENTS[p].strength),
                edgecolor="#555555",
                hatch=COMPONENTS[p].hatch or None,
                label=COMPONENTS[p].label,
            )
            for p in _LATENCY_PARTS
        ]
        # Both legends hang from the top of the band under the x-axis labels: the parts
        # under the right-hand axes, the designs (the CDF's lines) at the left.
        band_top = lay.band_top / lay.height
        comp_x = (lay.left + lay.left_width + lay.wgap) / lay.width
        ax_comp.legend(
            handles=proxies,
            loc="upper left",
            bbox_to_anchor=(comp_x, band_top),
            bbox_transform=fig.transFigure,
            ncol=1,
            frameon=False,
        )
        fig.legend(
            handles=ax_cdf.get_legend_handles_labels()[0],
            loc="upper left",
            bbox_to_anchor=(0.0, band_top),
            ncol=lay.legend_cols,
            frameon=False,
        )
        settle(fig)
    return fig


_LATENCY_PARTS = ("einit", "msr", "lock", "trap")
"""The parts of the mean latency the latency figure stacks (no schedule-in loads: they
are not on a launch's path)."""

_NOTE_OFFSET = 3.0
"""Points between a bar's end and its note (total and part beyond EINIT)."""

_PT = 1 / 72
"""Inches per point."""


@dataclass(frozen=True)
class _LatencyLayout:
    """Where the latency figure's parts go, in inches: the margins (``left`` ... ``bottom``),
    the gaps between the two columns (``wgap``) and the two left-hand rows (``hgap``),
    the columns' widths, the top of the legends' band (from the figure's bottom), the
    designs' legend columns and the right-hand axes' upper x limit (``xmax``, cycles)."""

    width: float
    height: float
    left: float
    right: float
    top: float
    bottom: float
    wgap: float
    hgap: float
    left_width: float
    right_width: float
    band_top: float
    legend_cols: int
    xmax: float

    def with_title(self, suptitle: str, n_designs: int) -> _LatencyLayout:
        """The layout with room for ``suptitle`` (several lines) above the axes, and a taller
        figure when the box view would give a design less than a line of text."""
        pad = _LAYOUT_PAD * _PT
        title_h = text_size(suptitle, 11)[1]
        top = 0.02 * self.height + title_h + pad + text_size("CDF", 10)[1] + _TITLE_PAD * _PT
        height = self.height
        # The box view gets 1/2.6 of the axes' height; a design needs 13 pt of it.
        need_axes = 2.6 * n_designs * 13 * _PT
        axes = height - top - self.bottom - self.hgap
        if axes < need_axes:
            height += need_axes - axes
            top = 0.02 * height + title_h + pad + text_size("CDF", 10)[1] + _TITLE_PAD * _PT
        return dataclasses.replace(self, height=height, top=top)


_LAYOUT_PAD = 6.0
"""Points of space kept between neighbouring parts of a fixed layout, and at the figure's edges."""
_TITLE_PAD = 6.0
"""Points between an axes and its title (matplotlib's ``axes.titlepad``)."""
_LEGEND_PAD = 0.5 + 0.4
"""A frameless legend's space around its entries, in font sizes (``borderaxespad`` + ``borderpad``)."""


def _legend_size(texts: Sequence[str], ncol: int, fontsize: float = 9.0) -> tuple[float, float]:
    """Width and height (inches) of a frameless legend of ``texts`` in ``ncol`` columns
    (filled column by column, as matplotlib does) with line or patch handles, from
    matplotlib's default legend spacing (in font sizes): handle 2.0, handle-text gap 0.8,
    column gap 2.0, row gap 0.5, and :data:`_LEGEND_PAD` round it."""
    em = fontsize * _PT
    rows = math.ceil(len(texts) / ncol)
    cols = [list(col) for col in np.array_split(np.asarray(texts, dtype=object), ncol)]  # as Legend does
    widths = [max(text_size(str(t), fontsize)[0] for t in col) + 2.8 * em for col in cols if col]
    line = max(text_size("lp", fontsize)[1], 0.7 * em)
    width = sum(widths) + 2.0 * em * (len(widths) - 1) + 2 * _LEGEND_PAD * em
    height = rows * line + (rows - 1) * 0.5 * em + 2 * _LEGEND_PAD * em
    return width, height


def _latency_layout(labels: Sequence[str], totals: np.ndarray, notes: Sequence[str]) -> _LatencyLayout:
    """The fixed layout of :func:`plot_latency` for designs ``labels`` (so long labels get
    room), the bars' ``totals`` (cycles) and their ``notes`` (which must fit right of
    the bars); the title's room is added by :meth:`_LatencyLayout.with_title`.

    Widths come from :func:`text_size`; the figure is 10 x 5.4 in unless the labels
    need more width. Left column: the CDF above the box view (heights 1.6 : 1);
    right column: the mean latency by part; under them, a band with the legends.
    """
    pt = _PT
    pad = _LAYOUT_PAD * pt
    tick = (mpl.rcParams["ytick.major.size"] + mpl.rcParams["ytick.major.pad"]) * pt
    label_w = max(text_size(lab, 9)[0] for lab in labels)
    # A log-axis tick label (50k ... 500k) reaches half its width past the axes' ends.
    tick_half = text_size("500k", 9)[0] / 2
    cdf_left = text_size("fraction", 10)[1] + mpl.rcParams["axes.labelpad"] * pt + text_size("0.0", 9)[0] + tick
    left = pad + max(cdf_left, label_w + tick)
    wgap = tick_half + pad + label_w + tick
    right_base = pad + tick_half
    parts_w, parts_h = _legend_size([COMPONENTS[p].label for p in _LATENCY_PARTS], 1)
    xlabel_w = text_size("EINIT latency (cycles, log scale): request to EINIT done", 10)[0]
    min_left_w = max(2.6, xlabel_w + 2 * pad - 2 * min(left, wgap))
    min_right_w = max(2.0, parts_w)
    peak = float(totals.max()) if len(totals) and totals.max() > 0 else 0.0
    xmax = peak * 1.55 if peak > 0 else 1.0
    note_w = [text_size(n, 9)[0] + _NOTE_OFFSET * pt for n in notes]

    width, right = 10.0, right_base
    left_w = right_w = 0.0
    for _ in range(50):
        room = width - left - wgap - right
        right_w = max(room / 2.25, min_right_w)
        left_w = max(room - right_w, min_left_w)
        # A note starts at its bar's end; what does not fit in the axes goes in the margin.
        over = max((t / xmax - 1) * right_w + w for t, w in zip(totals, note_w, strict=True)) if peak > 0 else 0.0
        new_right = max(right_base, over + pad)
        need = left + left_w + wgap + right_w + right
        new_width = math.ceil(need * 10 - 1e-6) / 10 if need > width + 1e-6 else width  # wider only for long labels
        if abs(new_right - right) < 1e-4 and abs(new_width - width) < 1e-4:
            break
        right, width = new_right, new_width

    # The designs' legend: as many columns (up to 3) as fit left of the parts' legend.
    avail = left + left_w + wgap - pad
    cols = 1
    for k in range(min(len(labels), 3), 0, -1):
        if _legend_size(labels, k)[0] <= avail:
            cols = k
            break
    band = max(parts_h, _legend_size(labels, cols)[1])
    xaxis = tick + text_size("500k", 9)[1] + mpl.rcParams["axes.labelpad"] * pt + text_size("EINIT", 10)[1]
    bottom = pad + band + xaxis
    # Between the CDF and the box view: the CDF's ticks and the box view's 9 pt title.
    hgap = tick + text_size("box", 9)[1] + _TITLE_PAD * pt
    return _LatencyLayout(
        width=width,
        height=5.4,
        left=left,
        right=right,
        top=0.0,
        bottom=bottom,
        wgap=wgap,
        hgap=hgap,
        left_width=left_w,
        right_width=right_w,
        band_top=bottom - xaxis,
        legend_cols=cols,
        xmax=xmax,
    )


_OVERHEAD_LABELS = {"lock": "lock held + global-lock wait"}
"""Overhead counts only a global lock's wait (per-CPU queueing is latency, not overhead)."""


def _eng(v: float) -> str:
    """``v`` with three significant digits and an SI prefix: 480k, 12.9M, 1.24G."""
    a = abs(v)
    for div, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if a >= div:
            return f"{v / div:.3g}{suffix}"
    return f"{v:.3g}"


def plot_overhead(components: pd.DataFrame, *, caption: Caption | None = None) -> Figure:
    """Launch-control overhead per design (EINIT excluded), stacked by part: hash-MSR
    accesses, lock, traps, schedule-in loads. Left: cycles over the whole run (right-hand
    axis: the same per launch); right: each part's share, so small totals stay readable.

    ``components`` is :func:`overhead_components` (one row per design). With
    several seeds, the error bar is the standard deviation of the total.
    """
    _need(components, ("msr", "lock", "trap", "sched"), "overhead")
    labels = [str(x) for x in components.index]
    parts = ("msr", "lock", "trap", "sched")
    values = {p: components[p].to_numpy(dtype=float) for p in parts}
    total = sum(values.values(), np.zeros(len(labels)))
    share = {p: np.divide(values[p] * 100.0, total, out=np.zeros(len(labels)), where=total > 0) for p in parts}
    std = components["total_std"].to_numpy(dtype=float) if "total_std" in components else np.zeros(len(labels))
    launches = components["launches"].to_numpy(dtype=float) if "launches" in components else np.zeros(0)
    per_launch_axis = bool(len(launches) and launches[0] > 0 and np.all(launches == launches[0]))
    proxies = [
        Patch(
            facecolor=tint("#555555", COMPONENTS[p].strength),
            edgecolor="#555555",
            hatch=COMPONENTS[p].hatch or None,
            label=_OVERHEAD_LABELS.get(p, COMPONENTS[p].label),
        )
        for p in parts
    ]
    with house_style():
        fig = new_figure((9.5, 4.8), fixed=True)
        n_seeds = " (mean ± stddev over seeds)" if np.any(std > 0) else ""
        title_figure(fig, "Launch-control overhead per design" + n_seeds, caption)
        # The annotated totals reach above the tallest bar (its top is a sticky edge, so the
        # y margin does not apply there): the axes' titles sit above them.
        title_pad = _TITLE_PAD + 3 + text_size("133M", 9)[1] / _PT
        panels = _BarPanels.start(
            fig,
            labels,
            [str(p.get_label()) for p in proxies],
            ("cycles per run (EINIT excluded)", "cycles per launch", "share of the overhead (%)"),
            (9.5, 4.8),
            (1.35, 1.0),
            title_pad=title_pad,
        )
        ax, ax_pct = panels.axes
        x = np.arange(len(labels), dtype=float)
        for target, data in ((ax, values), (ax_pct, share)):
            bottoms = np.zeros(len(labels))
            for part in parts:
                cs = COMPONENTS[part]
                for i, label in enumerate(labels):
                    st = design_style(label)
                    target.bar(
                        x[i],
                        data[part][i],
                        0.62,
                        bottom=bottoms[i],
                        color=tint(st.color, cs.strength),
                        edgecolor=st.color,
                        linewidth=0.8,
                        hatch=cs.hatch or None,
                    )
                bottoms += data[part]
            target.set_xticks(x, labels, rotation=30, ha="right", rotation_mode="anchor")
            finish_axes(target)
        if np.any(std > 0):
            ax.errorbar(x, total, yerr=std, fmt="none", ecolor="#222222", elinewidth=1.0, capsize=3)
        for i in range(len(labels)):
            ax.annotate(
                _eng(float(total[i])),
                (x[i], total[i] + std[i]),
                xytext=(0, 3),
                textcoords="offset points",
                ha="center",
                fontsize=9,
            )
        ax.set_ylabel("cycles per run (EINIT excluded)")
        ax.yaxis.set_major_formatter(_cycles_formatter())
        ax.margins(y=0.15)
        ax.set_title("in total", pad=title_pad)
        ax_pct.set_ylabel("share of the overhead (%)")
        ax_pct.set_ylim(0, 100)
        ax_pct.set_title("by part", pad=title_pad)
        sec = None
        if per_launch_axis:
            n = float(launches[0])

            def per_launch(v: Any) -> Any:
                return np.asarray(v, dtype=float) / n

            def per_run(v: Any) -> Any:
                return np.asarray(v, dtype=float) * n

            sec = ax.secondary_yaxis("right", functions=(per_launch, per_run))
            sec.set_ylabel("cycles per launch")
            sec.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,.0f}"))
            sec.tick_params(labelsize=9)
        sec_axis = 0.0
        if sec is not None:
            sec.apply_aspect()  # its limits follow the left axis's
            sec_axis = _yaxis_width(sec.yaxis)
        panels.finish(_yaxis_width(ax.yaxis), sec_axis + _LAYOUT_PAD * _PT + _yaxis_width(ax_pct.yaxis), proxies)
        settle(fig)
    return fig


_SIN30, _COS30 = 0.5, math.sqrt(3) / 2
"""Of the 30 degrees the bar figures' design labels slant at."""


def _yaxis_width(axis: Any) -> float:
    """Inches beside an axes that its y ``axis`` takes: ticks, tick labels and a (rotated) label."""
    pt = _PT
    tick = float(mpl.rcParams["ytick.major.size"] + mpl.rcParams["ytick.major.pad"]) * pt
    label = text_size("cycles", 10)[1] + float(mpl.rcParams["axes.labelpad"]) * pt
    return tick + _tick_labels_width(axis) + label


@dataclass
class _BarPanels:
    """The fixed layout of two bar panels side by side (overhead, MSR traffic): one bar
    group per design, its label slanted 30 degrees under it; each panel titled; the
    legend centred under both; the caption's title above.

    :meth:`start` fixes the rows (title, slanted labels, legend) and makes the axes on a
    provisional grid; :meth:`finish`, once the bars are drawn, fixes the columns from the
    y axes' texts and the labels' slant, and adds the legend."""

    fig: Figure
    gs: Any
    axes: tuple[Any, Any]
    labels: list[str]
    grid: Margins  # the rows' margins; :meth:`finish` sets the columns'
    width: float
    ratios: tuple[float, float]
    legend_texts: list[str]

    @classmethod
    def start(
        cls,
        fig: Figure,
        labels: Sequence[str],
        legend_texts: Sequence[str],
        ylabels: Sequence[str],
        size: tuple[float, float],
        ratios: tuple[float, float],
        *,
        title_pad: float = _TITLE_PAD,
    ) -> _BarPanels:
        """Rows for ``fig`` (titled already) of ``size`` inches: taller only when long
        labels leave the axes less height than their longest y label (``ylabels``) needs."""
        pt, pad = _PT, _LAYOUT_PAD * _PT
        tick = (mpl.rcParams["xtick.major.size"] + mpl.rcParams["xtick.major.pad"]) * pt
        lab_w, lab_h = max(text_size(lab, 9)[0] for lab in labels), text_size("lp", 9)[1]
        above = text_size(fig.get_suptitle(), 11)[1] + pad + text_size("in total", 10)[1] + title_pad * pt
        bottom = _legend_size(legend_texts, 2)[1] + pad + tick + lab_w * _SIN30 + lab_h * _COS30
        need = (above + bottom + max(text_size(t, 10)[0] for t in ylabels) + 2 * pt) / 0.98
        height = size[1] if need <= size[1] else math.ceil(need * 10) / 10
        fig.set_size_inches(size[0], height)
        grid = Margins(left=1.0, right=pad + lab_h * _SIN30, top=0.02 * height + above, bottom=bottom, wgap=1.5)
        gs = fixed_grid(fig, 1, 2, grid, width_ratios=ratios)
        axes = (fig.add_subplot(gs[0, 0]), fig.add_subplot(gs[0, 1]))
        return cls(fig, gs, axes, list(labels), grid, size[0], ratios, list(legend_texts))

    def finish(self, left_axis: float, gap: float, handles: Sequence[Any]) -> None:
        """Columns: ``left_axis`` inches for the left panel's y axis, ``gap`` between the
        panels, and room for the design labels, which slant left of their ticks (the
        figure gets wider only when long labels leave the left panel under 2.6 in)."""
        pad = _LAYOUT_PAD * _PT
        slants = [text_size(lab, 9)[0] * _COS30 + 2 * _PT for lab in self.labels]
        x0, x1 = self.axes[0].get_xlim()
        r0, r1 = self.ratios
        width, left = self.width, pad + left_axis
        for _ in range(20):
            ax_w = (width - left - gap - self.grid.right) * r0 / (r0 + r1)
            reach = max(sl - (i - x0) / (x1 - x0) * ax_w for i, sl in enumerate(slants))  # left of the axes
            left = max(pad + left_axis, pad + reach)
            need = left + gap + self.grid.right + 2.6 * (r0 + r1) / r0
            if need > width + 1e-6:
                width = math.ceil(need * 10 - 1e-6) / 10
        self.fig.set_size_inches(width, self.fig.get_figheight())
        refit_grid(self.fig, self.gs, dataclasses.replace(self.grid, left=left, wgap=gap))
        self.fig.legend(handles=list(handles), loc="lower center", bbox_to_anchor=(0.5, 0.0), ncol=2, frameon=False)


def _tick_labels_width(axis: Any) -> float:
    """The widest major tick label (inches) ``axis`` will draw, from its locator and
    formatter (no tick objects are made)."""
    locs = list(axis.get_majorticklocs())
    lo, hi = sorted(axis.get_view_interval())
    eps = (hi - lo) * 1e-9
    texts = axis.get_major_formatter().format_ticks(locs)
    shown = [t for loc, t in zip(locs, texts, strict=True) if lo - eps <= loc <= hi + eps]
    return max((text_size(t, 9)[0] for t in shown), default=0.0)  # tick labels are 9 pt (finish_axes)


_MATRIX_PANELS = (
    ("vm_created", "VM created", False),
    ("launched", "enclave launched", False),
    ("bypass", "policy bypass", True),
    ("hw_consistent", "hardware-consistent", None),
)
"""Column, panel title, and which value is the alarm (True, False, or None for: False)."""

_YES, _NO, _ALARM = "#4d4d4d", "#f0f0f0", "#D55E00"


def plot_policy_matrix(
    matrix: pd.DataFrame | Sequence[Mapping[str, Any]],
    *,
    subtitle: str | None = None,
) -> Figure:
    """The policy matrix (:func:`sgxlab.policy_matrix`) as four heatmaps, one per outcome:
    VM created, enclave launched, policy bypass and hardware-consistent; rows are the
    guest configurations (lewr, initial hash, enclave signer), columns the host policies.
    Cells say yes or no; vermillion marks the alarming ones (a bypass, or a guest shown
    what no real machine could show)."""
    df = matrix if isinstance(matrix, pd.DataFrame) else pd.DataFrame(list(matrix))
    _need(df, ("policy", "lewr", "lehash", "signer", "vm_created", "launched", "bypass", "hw_consistent"), "matrix")
    if not len(df):
        raise ConfigError("matrix", 0, "no rows to plot")
    policies = list(dict.fromkeys(str(p) for p in df["policy"]))
    # A guest configuration is every column that is neither the policy nor an outcome
    # (lewr, lehash, signer, and whatever else the matrix varies, e.g. provisionkey).
    extra = [c for c in df.columns if c not in _MATRIX_OUTCOMES and c not in ("lewr", "lehash", "signer")]
    keys = [
        (bool(r["lewr"]), str(r["lehash"]), str(r["signer"]), *(_guest_part(c, r[c]) for c in extra))
        for r in df.to_dict("records")
    ]
    guests = list(dict.fromkeys(keys))
    index = {(str(p), *k): i for i, (p, k) in enumerate(zip(df["policy"], keys, strict=True))}
    with house_style():
        fig = new_figure((10.0, min(7.0, max(6.2, 1.6 + 0.2 * len(guests)))))
        axes = fig.subplots(1, len(_MATRIX_PANELS), sharey=True)
        for ax, (col, title, alarm) in zip(axes, _MATRIX_PANELS, strict=True):
            values = df[col].to_numpy()
            for gi, g in enumerate(guests):
                for pi, p in enumerate(policies):
                    row = index.get((p, *g))
                    if row is None:
                        face, text, tc = "white", "-", "#222222"
                    else:
                        v = bool(values[row])
                        bad = (v is True) if alarm is True else (v is False) if alarm is None else False
                        face = _ALARM if bad else _YES if v else _NO
                        text = "yes" if v else "no"
                        tc = "white" if (bad or v) else "#222222"
                    ax.add_patch(
                        _cell(pi, gi, face),
                    )
                    ax.text(pi, gi, text, ha="center", va="center", fontsize=9, color=tc)
            ax.set_xlim(-0.5, len(policies) - 0.5)
            ax.set_ylim(len(guests) - 0.5, -0.5)
            ax.set_xticks(range(len(policies)), policies, rotation=40, ha="right", rotation_mode="anchor")
            ax.set_title(title)
            ax.tick_params(labelsize=9, length=0)
            for s in ax.spines.values():
                s.set_visible(False)
        axes[0].set_yticks(
            range(len(guests)),
            [" · ".join(["lewr" if g[0] else "no lewr", *(str(p) for p in g[1:] if p)]) for g in guests],
        )
        axes[0].set_ylabel("guest: lewr · initial hash · enclave signer")
        fig.supxlabel("host launch policy", fontsize=10)
        title_figure(fig, "Host launch policy × guest configuration", None)
        if subtitle:
            fig.suptitle(
                fig.get_suptitle() + "\n" + subtitle + " · vermillion: bypass or hardware-inconsistent",
                fontsize=11,
                x=0.01,
                ha="left",
            )
        settle(fig)
    return fig


_MATRIX_OUTCOMES = frozenset(
    ("policy", "host", "vm_created", "launched", "code", "step", "bypass", "hw_consistent", "reason")
)
"""Columns of the policy matrix that are the policy or what happened, not the guest."""


def _guest_part(column: str, value: Any) -> str:
    """A guest option in a row label: a true flag by its name, a false one left out, else the value."""
    if isinstance(value, (bool, np.bool_)):
        return column if bool(value) else ""
    return str(value)


def _cell(x: int, y: int, face: str) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle((x - 0.5, y - 0.5), 1.0, 1.0, facecolor=face, edgecolor="white", linewidth=1.5)


# --------------------------------------------------------------------------- timeline


@dataclass(frozen=True)
class TimelineData:
    """What :func:`plot_timeline` draws, in plain arrays (cycles; see
    :class:`sgxlab.sim.exact.MsrHistory` for the value codes):

    * ``history``: ``t``, ``cpu``, ``hw``, ``cached`` (the state after each event);
    * ``launches``: ``time``, ``cpu``, ``signer``, ``outcome`` (``launched``,
      ``failed``, ``refused``), ``vm`` (-1: host);
    * ``s3``: the S3 times; ``migrations``: ``(time, cpu, vm, vcpu, from_cpu)``;
    * ``cpus``: the CPUs to draw; ``t0``, ``t1``: the window; ``has_cache``:
      whether the design keeps a per-CPU cache (a second row per CPU).
    """

    history: Mapping[str, np.ndarray]
    launches: Mapping[str, np.ndarray]
    s3: tuple[int, ...]
    migrations: tuple[tuple[int, int, int, int, int], ...]
    cpus: tuple[int, ...]
    t0: int
    t1: int
    has_cache: bool


def _segments(t: np.ndarray, v: np.ndarray, t1: int) -> list[tuple[int, int, int]]:
    """``(start, width, value)`` runs of equal values: value ``v[i]`` holds from ``t[i]`` to
    the next entry (the last one to ``t1``)."""
    out: list[tuple[int, int, int]] = []
    n = len(t)
    i = 0
    while i < n:
        j = i + 1
        while j < n and v[j] == v[i]:
            j += 1
        end = int(t[j]) if j < n else max(int(t1), int(t[i]))
        if end > int(t[i]) or j >= n:
            out.append((int(t[i]), end - int(t[i]), int(v[i])))
        i = j
    # merge neighbours made equal by dropping zero-width runs
    merged: list[tuple[int, int, int]] = []
    for seg in out:
        if merged and merged[-1][2] == seg[2] and merged[-1][0] + merged[-1][1] == seg[0]:
            a = merged.pop()
            merged.append((a[0], a[1] + seg[1], a[2]))
        else:
            merged.append(seg)
    return merged


def _bands(ax: Any, spans: list[tuple[int, int]], yrange: tuple[float, float], **kw: Any) -> PolyCollection:
    """``ax.broken_barh(spans, yrange, **kw)`` (the same rectangles), without updating the
    data limits: the timeline sets its limits itself, and broken_barh's autoscaling of
    each of its dozens of collections was a third of the figure's making."""
    y0, dy = yrange
    verts = [np.array([(x, y0), (x, y0 + dy), (x + w, y0 + dy), (x + w, y0)], dtype=float) for x, w in spans]
    coll = PolyCollection(verts, **kw)
    ax.add_collection(coll, autolim=False)
    return coll


def plot_timeline(data: TimelineData, *, caption: Caption | None = None, design: str = "") -> Figure:
    """Per CPU, what its IA32_SGXLEPUBKEYHASH MSRs held (``MSRs`` row) and what the
    design's per-CPU cache believed they held (``cache`` row, cache designs only),
    as coloured bands, one colour per signer (Intel's reset value, zero and mixed
    words each distinct). Launches are ticks on the MSR row, failed EINITs a large
    vermillion ✕, policy refusals a hollow circle; S3 is a dashed line across every
    row and a vCPU migration a triangle on the CPU it arrived at. A stale cache is
    where the two rows of a CPU differ in colour."""
    if not data.cpus:
        raise ConfigError("timeline cpus", [], "no CPU to draw")
    h = data.history
    la = data.launches
    rows_per = 2 if data.has_cache else 1
    n = len(data.cpus)
    height = min(1.6 + 0.55 * n * rows_per + 0.9, 7.0)
    t0, t1 = int(data.t0), max(int(data.t1), int(data.t0) + 1)
    with house_style():
        fig = new_figure((10.0, height))
        ax = fig.add_subplot()
        ticks: list[float] = []
        labels: list[str] = []
        seen: dict[int, None] = {}
        y_of: dict[int, float] = {}
        for k, c in enumerate(data.cpus):
            base = float(k * (rows_per + 0.6))
            y_of[c] = base
            on = h["cpu"] == c
            for r, (col, name) in enumerate((("hw", "MSRs"), ("cached", "cache"))[:rows_per]):
                y = base + r
                segs = _segments(h["t"][on], h[col][on], t1)
                by_value: dict[int, list[tuple[int, int]]] = {}
                for start, width, value in segs:
                    lo = max(start, t0)
                    hi = min(start + width, t1)
                    if hi <= lo and not (width == 0 and t0 <= start <= t1):
                        continue
                    by_value.setdefault(value, []).append((lo, max(hi - lo, 0)))
                for value, spans in sorted(by_value.items()):
                    _, color, hatch = signer_style(value)
                    coll = _bands(
                        ax,
                        spans,
                        (y - 0.4, 0.8),
                        facecolors=color,
                        edgecolors="#333333",
                        linewidth=0.4,
                        hatch=hatch or None,
                    )
                    coll.set_gid(f"band-{col}")
                    seen[value] = None
                ticks.append(y)
                labels.append(f"CPU {c} {name}")
        # launches
        lt = np.asarray(la["time"], dtype=np.int64)
        lc = np.asarray(la["cpu"], dtype=np.int64)
        out = np.asarray(la["outcome"]).astype(str)
        inwin = (lt >= t0) & (lt <= t1) & np.isin(lc, list(data.cpus))
        ys = np.array([y_of.get(int(c), 0.0) for c in lc], dtype=float)
        ok = inwin & (out == "launched")
        if ok.any():
            ax.plot(lt[ok], ys[ok] - 0.62, linestyle="none", marker="|", markersize=7, color="#222222", gid="launches")
        bad = inwin & (out == "failed")
        nfail = int(bad.sum())
        if nfail:
            ax.plot(
                lt[bad],
                ys[bad] - 0.62,
                linestyle="none",
                marker="X",
                markersize=10,
                markerfacecolor=OKABE_ITO["vermillion"],
                markeredgecolor="#222222",
                markeredgewidth=0.8,
                gid="failures",
            )
            for x in lt[bad]:
                ax.axvline(int(x), color=OKABE_ITO["vermillion"], linewidth=0.6, alpha=0.5, zorder=0)
        ref = inwin & (out == "refused")
        if ref.any():
            ax.plot(
                lt[ref],
                ys[ref] - 0.62,
                linestyle="none",
                marker="o",
                markersize=6,
                markerfacecolor="none",
                markeredgecolor="#555555",
                gid="refusals",
            )
        top = -1.2
        bottom = float((n - 1) * (rows_per + 0.6) + rows_per - 0.4 + 0.2)
        s3_in = [x for x in data.s3 if t0 <= x <= t1]
        for x in s3_in:
            ax.axvline(x, color="#000000", linestyle=(0, (4, 2)), linewidth=1.2, gid="s3")
            ax.annotate("S3", (x, top), xytext=(2, 0), textcoords="offset points", fontsize=9, va="top")
        mig = [m for m in data.migrations if t0 <= m[0] <= t1 and m[1] in y_of]
        if mig:
            ax.plot(
                [m[0] for m in mig],
                [y_of[m[1]] - 0.45 for m in mig],
                linestyle="none",
                marker="v",
                markersize=6,
                markerfacecolor=OKABE_ITO["bluish green"],
                markeredgecolor="#222222",
                markeredgewidth=0.6,
                gid="migrations",
            )
        ax.set_yticks(ticks, labels)
        ax.set_ylim(bottom, top)
        ax.set_xlim(t0, t1)
        ax.xaxis.set_major_formatter(_cycles_formatter())
        ax.set_xlabel("time (cycles)")
        finish_axes(ax, grid=None)
        ax.tick_params(axis="y", length=0)
        handles: list[Any] = []
        for value in sorted(seen, key=lambda v: (v < 0, v if v >= 0 else -v)):
            label, color, hatch = signer_style(value)
            handles.append(Patch(facecolor=color, edgecolor="#333333", hatch=hatch or None, label=label))
        from matplotlib.lines import Line2D

        handles.append(Line2D([], [], linestyle="none", marker="|", color="#222222", label="EINIT"))
        if nfail:
            handles.append(
                Line2D(
                    [],
                    [],
                    linestyle="none",
                    marker="X",
                    markerfacecolor=OKABE_ITO["vermillion"],
                    markeredgecolor="#222222",
                    markersize=9,
                    label=f"failed EINIT ({nfail})",
                )
            )
        if ref.any():
            handles.append(
                Line2D([], [], linestyle="none", marker="o", markerfacecolor="none", color="#555555", label="refused")
            )
        if s3_in:
            handles.append(Line2D([], [], color="#000000", linestyle=(0, (4, 2)), label="S3 (MSRs := Intel's)"))
        if mig:
            handles.append(
                Line2D(
                    [],
                    [],
                    linestyle="none",
                    marker="v",
                    markerfacecolor=OKABE_ITO["bluish green"],
                    markeredgecolor="#222222",
                    label="vCPU migrated here",
                )
            )
        fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 5), frameon=False)
        what = f"{design}: " if design else ""
        what += "hash MSRs" + (" and the per-CPU cache" if data.has_cache else "") + " per CPU over time"
        if nfail and data.has_cache:
            what += " (stale cache → failed EINIT)"
        title_figure(fig, what, caption)
        settle(fig)
    return fig


# --------------------------------------------------------------------------- sweeps


def _numeric(values: Any, name: str) -> np.ndarray:
    try:
        return np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise ConfigError("x", name, "the crossover needs a numeric parameter") from None


def _sweep_means(table: pd.DataFrame, keys: Sequence[str], metric: str) -> pd.DataFrame:
    """Mean and sample stddev of ``metric`` over seeds, by design and ``keys``."""
    _need(table, ("design", *keys, metric), "sweep")
    g = table.groupby(["design", *keys], sort=False)[metric]
    out = g.mean().to_frame("mean")
    out["std"] = g.std(ddof=1).fillna(0.0)
    out["n"] = g.size()
    return out.reset_index()


def crossovers(curves: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> list[tuple[str, str, float, float]]:
    """Where two designs' curves cross: ``(a, b, x, y)`` for each pair (in order) and each
    sign change of ``a - b`` between two grid points (linear interpolation), or grid
    point where they are equal (once per run of equal points)."""
    labels = list(curves)
    out: list[tuple[str, str, float, float]] = []
    for i, a in enumerate(labels):
        for b in labels[i + 1 :]:
            xa, ya = curves[a]
            xb, yb = curves[b]
            common = np.intersect1d(xa, xb)
            if len(common) < 1:
                continue
            va = np.array([ya[np.flatnonzero(xa == x)[0]] for x in common])
            vb = np.array([yb[np.flatnonzero(xb == x)[0]] for x in common])
            d = va - vb
            k = 0
            while k < len(common):
                if d[k] == 0:
                    out.append((a, b, float(common[k]), float(va[k])))
                    while k + 1 < len(common) and d[k + 1] == 0:
                        k += 1
                elif k + 1 < len(common) and d[k] * d[k + 1] < 0:
                    f = d[k] / (d[k] - d[k + 1])
                    x = common[k] + (common[k + 1] - common[k]) * f
                    y = va[k] + (va[k + 1] - va[k]) * f
                    out.append((a, b, float(x), float(y)))
                k += 1
    return out


def _fmt_x(x: float) -> str:
    if float(x).is_integer() or abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.3g}"


def plot_crossover(
    table: pd.DataFrame,
    x: str,
    metric: str = "overhead_cycles",
    *,
    caption: Caption | None = None,
    note: str = "",
) -> Figure:
    """Each design's ``metric`` (mean over seeds, stddev as a band) against parameter ``x``,
    with every crossover point (where two designs' curves cross, interpolated linearly
    between grid points) marked and labelled with its ``x`` value. ``table``: sweep rows
    (one per design, seed and value of ``x``; other parameters fixed)."""
    m = _sweep_means(table, [x], metric)
    labels = list(dict.fromkeys(str(d) for d in m["design"]))
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for label in labels:
        sub = m[m["design"] == label]
        xs = _numeric(sub[x], x)
        order = np.argsort(xs, kind="stable")
        curves[label] = (xs[order], sub["mean"].to_numpy(dtype=float)[order])
    found = crossovers(curves)
    with house_style():
        fig = new_figure((8.0, 4.8))
        ax = fig.add_subplot()
        for label in labels:
            st = design_style(label)
            xs, ys = curves[label]
            sub = m[m["design"] == label]
            sd = sub["std"].to_numpy(dtype=float)[np.argsort(_numeric(sub[x], x), kind="stable")]
            ax.plot(
                xs, ys, color=st.color, linestyle=st.linestyle, marker="o", markersize=4, linewidth=1.8, label=label
            )
            if np.any(sd > 0):
                ax.fill_between(xs, ys - sd, ys + sd, color=st.color, alpha=0.15, linewidth=0)
        allx = np.unique(np.concatenate([c[0] for c in curves.values()]))
        if len(allx) and allx.min() > 0 and allx.max() / allx.min() >= 20:
            ax.set_xscale("log")
        if 0 < len(allx) <= 12:  # the grid's own values, written out (not 10^3)
            ax.set_xticks(allx, [_fmt_x(float(v)) for v in allx])
            ax.xaxis.set_minor_formatter(NullFormatter())
        for k, (a, b, cx, cy) in enumerate(found):
            ax.plot(
                [cx], [cy], marker="o", markersize=9, markerfacecolor="none", markeredgecolor="#000000", gid="crossover"
            )
            ax.annotate(
                f"{a} = {b}\nat {x} ≈ {_fmt_x(cx)}",
                (cx, cy),
                xytext=(8, 14 + 22 * (k % 3)),
                textcoords="offset points",
                fontsize=9,
                arrowprops={"arrowstyle": "-", "color": "#555555", "linewidth": 0.8},
                gid="crossover-label",
            )
        if not found:
            ax.text(
                0.02,
                0.96,
                "no crossover in this range",
                transform=ax.transAxes,
                fontsize=9,
                va="top",
                gid="no-crossover",
            )
        ax.set_xlabel(x)
        ax.set_ylabel(metric.replace("_", " ") + (" (cycles)" if "cycles" in metric or "latency" in metric else ""))
        ax.yaxis.set_major_formatter(_cycles_formatter())
        finish_axes(ax, grid="both")
        fig.legend(loc="outside lower center", ncol=min(len(labels), 3), frameon=False)
        what = f"{metric} against {x}" + (f" ({note})" if note else "")
        title_figure(fig, what, caption)
        settle(fig)
    return fig


def winners(table: pd.DataFrame, x: str, y: str, metric: str, *, lower_is_better: bool = True) -> pd.DataFrame:
    """The best design at each ``(x, y)``: columns ``x``, ``y``, ``design`` (the first in
    order among the best; ``tie`` says whether others equal it), ``value``, ``runner_up``."""
    m = _sweep_means(table, [x, y], metric)
    order = {d: i for i, d in enumerate(dict.fromkeys(str(d) for d in m["design"]))}
    rows: list[dict[str, Any]] = []
    for (xv, yv), sub in m.groupby([x, y], sort=False):
        vals = sorted(
            ((float(v) if lower_is_better else -float(v)), order[str(d)], str(d))
            for d, v in zip(sub["design"], sub["mean"], strict=True)
        )
        best = vals[0]
        tie = len(vals) > 1 and vals[1][0] == best[0]
        rows.append(
            {
                x: xv,
                y: yv,
                "design": best[2],
                "value": best[0] if lower_is_better else -best[0],
                "tie": tie,
                "runner_up": vals[1][2] if len(vals) > 1 else "",
            }
        )
    return pd.DataFrame(rows)


def plot_winner(
    table: pd.DataFrame,
    x: str,
    y: str,
    metric: str = "overhead_cycles",
    *,
    lower_is_better: bool = True,
    caption: Caption | None = None,
    note: str = "",
) -> Figure:
    """The design with the best ``metric`` (mean over seeds; lowest unless
    ``lower_is_better=False``) at each point of parameters ``x`` and ``y``, as a heatmap
    in the designs' colours (a tie is hatched and says so), with a legend."""
    w = winners(table, x, y, metric, lower_is_better=lower_is_better)
    designs = list(dict.fromkeys(str(d) for d in table["design"]))
    xs = sorted(dict.fromkeys(w[x].tolist()), key=_sort_key)
    ys = sorted(dict.fromkeys(w[y].tolist()), key=_sort_key)
    with house_style():
        fig = new_figure((min(max(6.5, 1.0 + 0.9 * len(xs)), 10.0), min(max(3.6, 2.2 + 0.45 * len(ys)), 7.0)))
        ax = fig.add_subplot()
        from matplotlib.patches import Rectangle

        for rec in w.to_dict("records"):
            i, j = xs.index(rec[x]), ys.index(rec[y])
            st = design_style(str(rec["design"]))
            ax.add_patch(
                Rectangle(
                    (i - 0.5, j - 0.5),
                    1.0,
                    1.0,
                    facecolor=st.color,
                    edgecolor="white",
                    linewidth=1.5,
                    hatch="//" if rec["tie"] else (st.hatch or None),
                    gid="winner-cell",
                )
            )
            text = _eng(float(rec["value"])) + (" (tie)" if rec["tie"] else "")
            ax.text(i, j, text, ha="center", va="center", fontsize=9, color="white" if _dark(st.color) else "#222222")
        ax.set_xlim(-0.5, len(xs) - 0.5)
        ax.set_ylim(-0.5, len(ys) - 0.5)
        ax.set_xticks(range(len(xs)), [_fmt_value(v) for v in xs])
        ax.set_yticks(range(len(ys)), [_fmt_value(v) for v in ys])
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        ax.tick_params(labelsize=9, length=0)
        for s in ax.spines.values():
            s.set_visible(False)
        won = set(w["design"])
        handles = [
            Patch(
                facecolor=design_style(d).color,
                edgecolor="white",
                hatch=design_style(d).hatch or None,
                label=d if d in won else f"{d} (never best)",
            )
            for d in designs
        ]
        fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 3), frameon=False)
        best = "lowest" if lower_is_better else "highest"
        what = f"Design with the {best} {metric} (cell: its mean over seeds)" + (f" ({note})" if note else "")
        title_figure(fig, what, caption)
        settle(fig)
    return fig


def _sort_key(v: Any) -> tuple[int, float, str]:
    try:
        return (0, float(v), "")
    except (TypeError, ValueError):
        return (1, 0.0, str(v))


def _fmt_value(v: Any) -> str:
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return f"{int(v):,}"
    if isinstance(v, (float, np.floating)):
        return _fmt_x(float(v))
    return str(v)


def _dark(color: str) -> bool:
    from matplotlib.colors import to_rgb

    r, g, b = to_rgb(color)
    return 0.299 * r + 0.587 * g + 0.114 * b < 0.5
