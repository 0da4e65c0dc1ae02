"""``sgxlab policy-matrix [--json] [--design NAME] [--reasons]``: every host policy against every guest.

Runs :func:`sgxlab.kvm.policy_matrix_records` (the rows of
:func:`sgxlab.policy_matrix`) and prints them: with ``--json`` a list of
objects whose keys are exactly :data:`sgxlab.kvm.MATRIX_COLUMNS`, otherwise a
table at most 72 columns wide (``--reasons`` adds each row's reason below it).
"""

from __future__ import annotations

import argparse
import textwrap
from typing import Any

from . import print_json

_HEADER = (" #", "policy", "lewr", "lehash", "signer", "vm", "run", "code", "bypass", "hw-ok")
_WIDTHS = (2, 12, 4, 8, 9, 3, 3, 4, 6, 5)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "policy-matrix",
        help="run every host launch policy against every guest configuration (lewr, lehash, signer)",
    )
    p.add_argument("--json", action="store_true", help="print a list of row objects")
    p.add_argument("--design", default="always-write", help="MSR-update design (default: always-write, mainline)")
    p.add_argument("--reasons", action="store_true", help="print each row's reason under the table")
    p.set_defaults(func=run)


def _yn(v: bool) -> str:
    return "yes" if v else "no"


def format_table(rows: list[dict[str, Any]], *, reasons: bool = False) -> str:
    """The human-readable table (every line at most 72 characters)."""

    def line(cells: tuple[str, ...]) -> str:
        out = []
        for i, (c, w) in enumerate(zip(cells, _WIDTHS)):
            out.append(c.rjust(w) if i in (0, 7) else c.ljust(w))
        return " ".join(out).rstrip()

    lines = [line(_HEADER), line(tuple("-" * w for w in _WIDTHS))]
    for i, r in enumerate(rows, 1):
        lines.append(
            line(
                (
                    str(i),
                    r["policy"],
                    _yn(r["lewr"]),
                    r["lehash"],
                    r["signer"],
                    _yn(r["vm_created"]),
                    _yn(r["launched"]),
                    "-" if r["code"] is None else str(r["code"]),
                    _yn(r["bypass"]),
                    _yn(r["hw_consistent"]),
                )
            )
        )
    lines.append("")
    lines.append("vm: VM created; run: enclave launched; code: guest-visible EINIT code;")
    lines.append("bypass: guest ran a signer the host forbids; hw-ok: hardware-consistent.")
    if reasons:
        lines.append("")
        for i, r in enumerate(rows, 1):
            lines.extend(textwrap.wrap(f"{i:2d}. {r['reason']}", 72, subsequent_indent="    "))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from ..kvm import MATRIX_COLUMNS, policy_matrix_records
    from ..designs import design_class

    design_class(args.design)  # ConfigError (exit 2) for an unknown name
    rows = policy_matrix_records(args.design)
    if args.json:
        print_json([{k: r[k] for k in MATRIX_COLUMNS} for r in rows])
    else:
        print(format_table(rows, reasons=args.reasons))
    return 0
