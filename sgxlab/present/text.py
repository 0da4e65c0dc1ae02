"""Plain-text views: two-column tables, run summaries and the policy matrix, 72 columns wide.

Every function here returns a string whose lines are at most ``width``
(default 72) columns, the width mailing lists expect. Long values are wrapped
onto continuation lines, never cut off.
"""

from __future__ import annotations

import html
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "WIDTH",
    "kv_table",
    "summary_rows",
    "summary_text",
    "summary_html",
    "matrix_table",
]

WIDTH = 72
"""The width of every text view: what mail clients and LKML expect."""


def kv_table(rows: Sequence[tuple[str, str]], width: int | None = None) -> str:
    """Two aligned columns, keys on the left. With ``width``, values wrap below themselves."""
    if not rows:
        return ""
    lw = max(len(k) for k, _ in rows)
    out: list[str] = []
    for k, v in rows:
        if width is None:
            out.append(f"{k:<{lw}}  {v}".rstrip())
            continue
        vw = max(width - lw - 2, 10)
        parts = textwrap.wrap(v, vw, break_on_hyphens=False) or [""]
        out.append(f"{k:<{lw}}  {parts[0]}".rstrip())
        out.extend(f"{'':<{lw}}  {p}" for p in parts[1:])
    return "\n".join(out)


def summary_rows(s: Mapping[str, Any], cpu_ghz: float = 2.0) -> list[tuple[str, str]]:
    """The label/value rows of a run summary (the keys of ``docs/simulator.md``)."""
    lat = s["latency_cycles"]
    us = 1000.0 * cpu_ghz
    fails = s["failures"]
    return [
        ("launches", f"{s['launches']:,}"),
        ("einit", f"{s['einit']:,} (retries {s['retries']:,})"),
        ("failures", ", ".join(f"{k} {v:,}" for k, v in fails.items()) if fails else "none"),
        ("wrmsr / rdmsr", f"{s['wrmsr']:,} / {s['rdmsr']:,} (hash MSRs, physical CPUs)"),
        ("schedule-ins", f"{s['schedule_ins']:,}"),
        ("exits", f"ENCLS {s['encls_exits']:,}, MSR {s['msr_exits']:,}, other {s['exits']:,}"),
        ("S3 events", f"{s['s3_events']:,}"),
        ("latency mean", f"{lat['mean']:,.1f} cycles ({lat['mean'] / us:,.2f} us)"),
        ("latency p50/p99", f"{lat['p50']:,} / {lat['p99']:,} cycles"),
        ("latency max", f"{lat['max']:,} cycles"),
        ("overhead", f"{s['overhead_cycles']:,} cycles (launch control, EINIT excluded)"),
        ("sched / exits", f"{s['sched_cycles']:,} / {s['exit_cycles']:,} cycles"),
        ("bypasses", f"{s['bypasses']:,}"),
    ]


def _title(s: Mapping[str, Any]) -> str:
    return f"{s['design']} on {s['workload']} (seed {s['seed']}, {s['engine']} engine)"


def summary_text(s: Mapping[str, Any], cpu_ghz: float = 2.0, width: int = WIDTH) -> str:
    """A run summary as a plain-text table no wider than ``width`` columns."""
    out = textwrap.wrap(_title(s), width) or [""]
    out.append("-" * min(width, max(len(x) for x in out)))
    out.append(kv_table(summary_rows(s, cpu_ghz), width))
    return "\n".join(out)


def summary_html(s: Mapping[str, Any], cpu_ghz: float = 2.0) -> str:
    """A run summary as an HTML table (Jupyter's rich display)."""
    cap = html.escape(_title(s))
    body = "".join(
        f"<tr><th style='text-align:left'>{html.escape(k)}</th><td style='text-align:left'>{html.escape(v)}</td></tr>"
        for k, v in summary_rows(s, cpu_ghz)
    )
    return f"<table><caption>{cap}</caption>{body}</table>"


_MATRIX_HEADER = (" #", "policy", "lewr", "lehash", "signer", "vm", "run", "code", "bypass", "hw-ok")
_MATRIX_WIDTHS = (2, 12, 4, 8, 9, 3, 3, 4, 6, 5)


def _yn(v: object) -> str:
    return "yes" if v else "no"


def matrix_table(rows: Sequence[Mapping[str, object]], *, reasons: bool = False, width: int = WIDTH) -> str:
    """The policy matrix as a table (every line at most ``width`` characters).

    With ``reasons``, each row's reason follows the table, wrapped, never cut.
    """

    def line(cells: tuple[str, ...]) -> str:
        out = []
        for i, (c, w) in enumerate(zip(cells, _MATRIX_WIDTHS)):
            out.append(c.rjust(w) if i in (0, 7) else c.ljust(w))
        return " ".join(out).rstrip()

    lines = [line(_MATRIX_HEADER), line(tuple("-" * w for w in _MATRIX_WIDTHS))]
    for i, r in enumerate(rows, 1):
        cells = (
            str(i),
            str(r["policy"]),
            _yn(r["lewr"]),
            str(r["lehash"]),
            str(r["signer"]),
            _yn(r["vm_created"]),
            _yn(r["launched"]),
            "-" if r["code"] is None else str(r["code"]),
            _yn(r["bypass"]),
            _yn(r["hw_consistent"]),
        )
        lines.append(line(cells))
    lines.append("")
    lines.append("vm: VM created; run: enclave launched; code: guest-visible EINIT code;")
    lines.append("bypass: guest ran a signer the host forbids; hw-ok: hardware-consistent.")
    if reasons:
        lines.append("")
        for i, r in enumerate(rows, 1):
            lines.extend(
                textwrap.wrap(f"{i:2d}. {r['reason']}", width, subsequent_indent="    ", break_on_hyphens=False)
            )
    return "\n".join(lines)


_SWEEP_METRICS = ("wrmsr", "rdmsr", "failures_total", "latency_p99", "overhead_cycles")


def sweep_table(df: Any, width: int = WIDTH) -> str:
    """A sweep's rows as a text table at most ``width`` columns wide.

    The columns are the design, the seed (when there are several), every
    varied parameter, then as many of wrmsr, rdmsr, failures, p99 latency and
    overhead as fit; a last line names the metrics left out (the CSV has them).
    """
    if len(df) == 0:
        return "(no runs)"
    varied = [c for c in df.attrs.get("varied", []) if c in df.columns]
    keys = ["design"] + (["seed"] if df["seed"].nunique() > 1 else []) + varied
    metrics = [m for m in _SWEEP_METRICS if m in df.columns]

    def cell(v: object) -> str:
        return f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else str(v)

    def widths(cols: list[str]) -> list[int]:
        return [max(len(str(c)), *(len(cell(v)) for v in df[c].tolist())) for c in cols]

    shown = list(metrics)
    while shown and sum(widths(keys + shown)) + 2 * (len(keys + shown) - 1) > width:
        shown.pop()
    cols = keys + shown
    ws = widths(cols)
    lines = [
        "  ".join(
            str(c).ljust(w) if i < len(keys) else str(c).rjust(w) for i, (c, w) in enumerate(zip(cols, ws, strict=True))
        )
    ]
    lines.append("  ".join("-" * w for w in ws))
    for row in df[cols].itertuples(index=False):
        lines.append(
            "  ".join(
                cell(v).ljust(w) if i < len(keys) else cell(v).rjust(w)
                for i, (v, w) in enumerate(zip(row, ws, strict=True))
            ).rstrip()
        )
    left = [m for m in metrics if m not in shown]
    if left:
        lines.extend(textwrap.wrap(f"not shown (see --csv): {', '.join(left)}", width))
    return "\n".join(lines)
