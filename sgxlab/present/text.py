"""Plain-text views: two-column tables, run summaries and the policy matrix, 72 columns wide.

Every function here returns a string whose lines are at most ``width``
(default 72) columns, the width mailing lists expect. Long values are wrapped
onto continuation lines, never cut off.
"""

from __future__ import annotations

import html
import shlex
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
    "check_width",
    "wrap_words",
    "wrap_command",
    "join_command",
    "compare_table",
    "race_table",
]

WIDTH = 72
"""The width of every text view: what mail clients and LKML expect."""


def kv_table(rows: Sequence[tuple[str, str]], width: int | None = None) -> str:
    """Two aligned columns, keys on the left.

    With ``width``, values wrap below themselves at word boundaries; a word
    too long for the value column (a 64-digit hash) is never split: the
    value then starts on its own line, indented by two, so the hash stays
    whole and can be copied.
    """
    if not rows:
        return ""
    lw = max(len(k) for k, _ in rows)
    out: list[str] = []
    for k, v in rows:
        if width is None:
            out.append(f"{k:<{lw}}  {v}".rstrip())
            continue
        vw = max(width - lw - 2, 10)
        if any(len(word) > vw for word in v.split()):
            out.append(k)
            out.extend("  " + line for line in _wrap_tokens(v, width - 2))
            continue
        parts = textwrap.wrap(v, vw, break_on_hyphens=False) or [""]
        out.append(f"{k:<{lw}}  {parts[0]}".rstrip())
        out.extend(f"{'':<{lw}}  {p}" for p in parts[1:])
    return "\n".join(out)


def _wrap_tokens(text: str, width: int) -> list[str]:
    """Wrap ``text`` at spaces and, inside an over-long word such as an option
    string (``epc=64M,lehash=<64 hex>,lewr``), after its commas (and after the
    ``=`` of a piece still too long); a hash itself is never split."""
    pieces: list[tuple[str, str]] = []  # (piece, what joins it to the next one)
    for word in text.split():
        parts = word.split(",") if len(word) > width else [word]
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            text_part = part + ("" if last else ",")
            key, eq, value = text_part.partition("=")
            if len(text_part) > width and eq and value:  # lehash=<64 hex>: break after the "="
                pieces.append((key + eq, ""))
                text_part = value
            pieces.append((text_part, " " if last else ""))
    lines: list[str] = []
    cur = ""
    sep = ""
    for piece, join in pieces:
        if cur and len(cur) + len(sep) + len(piece) > width:
            lines.append(cur)
            cur = piece
        else:
            cur = cur + sep + piece if cur else piece
        sep = join
    if cur:
        lines.append(cur)
    return lines


def summary_rows(s: Mapping[str, Any], cpu_ghz: float = 2.0) -> list[tuple[str, str]]:
    """The label/value rows of a run summary (the keys of ``docs/simulator.md``).

    Launches the host policy refused are their own row, apart from
    ``failures`` (EINIT's non-zero results): a refusal never reached EINIT, or
    was answered by KVM in its place. Those the PROVISIONKEY gate refused
    (``gate_refusals``: ``eacces``, ``ecreate-gp``) get a row of their own
    when there are any."""
    lat = s["latency_cycles"]
    us = 1000.0 * cpu_ghz
    fails = s["failures"]
    gate = {k: n for k, n in (s.get("gate_refusals") or {}).items() if n}
    rows = [
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
        (
            "policy refused",
            f"{s.get('refusals', 0):,} launches (not failures), {s.get('vms_refused', 0):,} VMs",
        ),
    ]
    if gate:  # of those refusals, the PROVISIONKEY gate's: before EINIT, so no hash-MSR write
        rows.append(("gate refusals", ", ".join(f"{k} {n:,}" for k, n in gate.items())))
    return rows


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


_MATRIX_HEADER = (" #", "policy", "lewr", "lehash", "signer", "pk", "host", "vm", "run", "code", "byp", "hw")
_MATRIX_WIDTHS = (3, 12, 4, 8, 9, 3, 6, 3, 3, 4, 3, 3)

MATRIX_LEGEND = (
    "pk: the enclave asks for PROVISIONKEY, its tenant with (+fd) or",
    "without (-fd) /dev/sgx_provision; host: that tenant on the host gets",
    "einit, eacces (the gate) or policy; vm: VM created; run: launched;",
    "code: guest-visible EINIT code, #GP: ECREATE faulted (the gate),",
    "-: no VM; byp: policy bypass; hw: hardware-consistent.",
)


def _yn(v: object) -> str:
    return "yes" if v else "no"


def _matrix_code(r: Mapping[str, object]) -> str:
    if r.get("step") == "ecreate-gp":
        return "#GP"
    return "-" if r["code"] is None else str(r["code"])


def _matrix_line(cells: Sequence[str]) -> str:
    out = [c.rjust(w) if i in (0, 9) else c.ljust(w) for i, (c, w) in enumerate(zip(cells, _MATRIX_WIDTHS))]
    return " ".join(out).rstrip()


def matrix_table(rows: Sequence[Mapping[str, object]], *, reasons: bool = False, width: int = WIDTH) -> str:
    """The policy matrix as a table at most 72 columns wide, with its legend.

    ``pk`` marks a PROVISIONKEY enclave (``+fd``/``-fd``: its tenant may or
    may not open ``/dev/sgx_provision``); ``code`` is ``#GP`` where the gate
    faulted the guest's ECREATE, so no EINIT code exists. With ``reasons``,
    each row's reason follows the table, wrapped to ``width``, never cut.
    """
    lines = [_matrix_line(_MATRIX_HEADER), _matrix_line(tuple("-" * w for w in _MATRIX_WIDTHS))]
    for i, r in enumerate(rows, 1):
        pk = ("+fd" if r["provision"] else "-fd") if r["provisionkey"] else ""
        cells = (
            str(i),
            str(r["policy"]),
            _yn(r["lewr"]),
            str(r["lehash"]),
            str(r["signer"]),
            pk,
            str(r["host"]),
            _yn(r["vm_created"]),
            _yn(r["launched"]),
            _matrix_code(r),
            _yn(r["bypass"]),
            _yn(r["hw_consistent"]),
        )
        lines.append(_matrix_line(cells))
    lines.append("")
    lines.extend(MATRIX_LEGEND)
    if reasons:
        lines.append("")
        for i, r in enumerate(rows, 1):
            lines.extend(
                textwrap.wrap(f"{i:3d}. {r['reason']}", width, subsequent_indent="     ", break_on_hyphens=False)
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


# --------------------------------------------------------------------------- mailing-list tables


def check_width(text: str, width: int = WIDTH) -> str:
    """``text`` with every line at most ``width`` columns: a longer line is wrapped
    (at spaces where it can be, else cut into pieces; nothing is lost)."""
    out: list[str] = []
    for line in text.split("\n"):
        if len(line) <= width:
            out.append(line)
            continue
        indent = len(line) - len(line.lstrip(" "))
        sub = " " * min(indent + 2, width // 2)
        out.extend(
            textwrap.wrap(
                line,
                width,
                subsequent_indent=sub,
                break_on_hyphens=False,
                break_long_words=True,
                drop_whitespace=True,
            )
            or [""]
        )
    return "\n".join(out)


def wrap_words(text: str, width: int = WIDTH, indent: str = "  ") -> list[str]:
    """``text`` wrapped to ``width``; continuation lines start with ``indent``."""
    return textwrap.wrap(text, width, subsequent_indent=indent, break_on_hyphens=False) or [""]


def wrap_command(argv: Sequence[str], width: int = WIDTH, indent: str = "  ") -> list[str]:
    """A shell command over lines of at most ``width`` columns, each but the last
    ending in a backslash-newline: pasted into a POSIX shell it is ``argv``.

    Breaks fall between arguments, keeping an option (``--param``) on the line
    of its value where they fit; continuation lines start with ``indent``. An
    argument too long for a line is split inside itself: its pieces are quoted
    separately, a backslash-newline ends the line and the next piece starts the
    following line at column 0 (a shell joins them into one word).
    """
    words = [shlex.quote(str(a)) for a in argv]
    room = width - 2  # space for " \"
    units: list[list[int]] = []
    i = 0
    while i < len(words):
        if str(argv[i]).startswith("-") and i + 1 < len(words) and not str(argv[i + 1]).startswith("-"):
            units.append([i, i + 1])
            i += 2
        else:
            units.append([i])
            i += 1
    lines: list[str] = []
    cur = ""

    def put(text: str, last: bool) -> bool:
        nonlocal cur
        limit = width if last else room
        if not cur and not lines:
            if len(text) <= limit:
                cur = text
                return True
            return False
        if cur and len(cur) + 1 + len(text) <= limit:
            cur += " " + text
            return True
        if len(indent) + len(text) <= limit:
            if cur:
                lines.append(cur + " \\")
            cur = indent + text
            return True
        return False

    for u in units:
        last_unit = u[-1] == len(words) - 1
        if put(" ".join(words[j] for j in u), last_unit):
            continue
        for j in u:
            if put(words[j], j == len(words) - 1):
                continue
            # One argument longer than a line.
            if cur:
                lines.append(cur + " \\")
                cur = ""
            text = str(argv[j])
            first = True
            while text:
                lead = indent if first and lines else ""
                take = len(text)
                while take > 1 and len(lead + shlex.quote(text[:take])) > room:
                    take -= 1
                piece = lead + shlex.quote(text[:take])
                text = text[take:]
                first = False
                if text:
                    lines.append(piece + "\\")
                else:
                    cur = piece
    if cur:
        lines.append(cur)
    return lines


def join_command(lines: Sequence[str]) -> list[str]:
    """The arguments of a command :func:`wrap_command` laid out (what a shell reads)."""
    return shlex.split("\n".join(lines).replace("\\\n", ""))


def compare_table(
    metrics: Sequence[str],
    base: tuple[str, Sequence[str]],
    others: Sequence[tuple[str, Sequence[str], Sequence[str]]],
    *,
    value_header: str = "mean ± stddev",
    width: int = WIDTH,
) -> str:
    """A kernel-test-robot table: the baseline column, then for each other design its
    ``%change`` against the baseline and its value, then the metric's name.

    ``base`` is (name, one cell per metric); each of ``others`` is (name, cells,
    %changes). Designs that do not fit in ``width`` go into further blocks, each
    repeating the baseline; if even one does not fit, every metric is listed
    on its own, one design a line. Every line is at most ``width`` columns.
    """
    base_name, base_cells = base
    mw = max([len(m) for m in metrics] + [0])
    bw = max([len(base_name), len(value_header)] + [len(c) for c in base_cells])
    groups = []
    for name, cells, changes in others:
        cw = max([len("%change")] + [len(c) for c in changes])
        vw = max([len(value_header)] + [len(c) for c in cells])
        gw = cw + 2 + vw
        if len(name) > gw:
            vw += len(name) - gw
            gw = len(name)
        groups.append((name, cells, changes, cw, vw, gw))

    def block(gs: Sequence[tuple[str, Sequence[str], Sequence[str], int, int, int]]) -> list[str]:
        head = [base_name.rjust(bw)] + [g[0].rjust(g[5]) for g in gs]
        rule = ["-" * bw] + ["-" * g[5] for g in gs]
        sub = [value_header.rjust(bw)] + [f"{'%change':>{g[3]}}  {value_header:>{g[4]}}" for g in gs]
        out = ["  ".join(head).rstrip(), "  ".join(rule), "  ".join(sub).rstrip()]
        for i, m in enumerate(metrics):
            cells = [base_cells[i].rjust(bw)] + [f"{g[2][i]:>{g[3]}}  {g[1][i]:>{g[4]}}" for g in gs]
            out.append("  ".join(cells) + "  " + m)
        return out

    fits = all(bw + 2 + g[5] + 2 + mw <= width for g in groups)
    if not fits:
        return _compare_list(metrics, base, others, width=width)
    blocks: list[list[str]] = []
    cur: list[tuple[str, Sequence[str], Sequence[str], int, int, int]] = []
    used = bw + 2 + mw
    for g in groups:
        if cur and used + 2 + g[5] > width:
            blocks.append(block(cur))
            cur, used = [], bw + 2 + mw
        cur.append(g)
        used += 2 + g[5]
    if cur or not blocks:
        blocks.append(block(cur))
    lines: list[str] = []
    for b in blocks:
        if lines:
            lines.append("")
        lines.extend(b)
    return check_width("\n".join(lines), width)


def _compare_list(
    metrics: Sequence[str],
    base: tuple[str, Sequence[str]],
    others: Sequence[tuple[str, Sequence[str], Sequence[str]]],
    *,
    width: int,
) -> str:
    names = [base[0] + " (baseline)"] + [o[0] for o in others]
    nw = min(max(len(n) for n in names), width // 2)
    lines: list[str] = []
    for i, m in enumerate(metrics):
        lines.append(m)
        rows = [(names[0], base[1][i], "")] + [(n, o[1][i], o[2][i]) for n, o in zip(names[1:], others)]
        for n, v, c in rows:
            lines.append(f"  {n:<{nw}}  {v}  {c}".rstrip())
    return check_width("\n".join(lines), width)


def race_table(
    headers: tuple[str, str, str],
    rows: Sequence[tuple[str, str, str] | tuple[str, str]],
    *,
    width: int = WIDTH,
) -> str:
    """A timeline of two CPUs in the kernel's style (``Documentation/process/maintainer-tip.rst``):
    a time column, then ``CPU a | CPU b``, time going down.

    A row (time, left, right) has one cell per CPU, each wrapped within its
    column (a newline in a cell starts a new line); a row (time, text) is an
    event on both CPUs, drawn centred across them between ``=`` signs.
    """
    tw = max([len(headers[0])] + [len(r[0]) for r in rows])
    cw = max((width - tw - 5) // 2, 12)
    inner = tw + 2 + cw + 3 + cw - (tw + 2)

    def cell_lines(text: str) -> list[str]:
        out: list[str] = []
        for part in text.split("\n"):
            out.extend(textwrap.wrap(part, cw, break_on_hyphens=False, break_long_words=True) or [""])
        return out

    out = [f"{headers[0]:>{tw}}  {headers[1]:<{cw}} | {headers[2]}".rstrip()]
    out.append(f"{'-' * tw}  {'-' * cw} | {'-' * cw}")
    for r in rows:
        if len(r) == 2:
            t, text = r
            pieces = textwrap.wrap(text, max(inner - 6, 10), break_on_hyphens=False) or [""]
            for i, piece in enumerate(pieces):
                ts = t if i == 0 else ""
                out.append(f"{ts:>{tw}}  " + f" {piece} ".center(inner, "="))
            continue
        t, left, right = r
        ll, rl = cell_lines(left), cell_lines(right)
        for i in range(max(len(ll), len(rl))):
            a = ll[i] if i < len(ll) else ""
            b = rl[i] if i < len(rl) else ""
            ts = t if i == 0 else ""
            out.append(f"{ts:>{tw}}  {a:<{cw}} | {b}".rstrip())
    return check_width("\n".join(out), width)
