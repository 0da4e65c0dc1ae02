"""``sgxlab policy-matrix [--json] [--design NAME] [--reasons]``: every host policy against every guest.

Runs :func:`sgxlab.experiments.matrix.policy_matrix_records` (the rows of
:func:`sgxlab.policy_matrix`) and prints them: with ``--json`` a list of
objects whose keys are exactly :data:`sgxlab.experiments.matrix.MATRIX_COLUMNS`, otherwise a
table at most 72 columns wide (``--reasons`` adds each row's reason below it).
In the table, ``pk`` marks a PROVISIONKEY enclave (``+fd``/``-fd``: its
tenant may or may not open ``/dev/sgx_provision``) and ``code`` is ``#GP``
where the gate faulted the guest's ECREATE, so no EINIT code exists.
"""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Mapping, Sequence

from sgxlab.cli import print_json

WIDTH = 72

_HEADER = (" #", "policy", "lewr", "lehash", "signer", "pk", "host", "vm", "run", "code", "byp", "hw")
_WIDTHS = (3, 12, 4, 8, 9, 3, 6, 3, 3, 4, 3, 3)
_RIGHT = (0, 9)

LEGEND = (
    "pk: the enclave asks for PROVISIONKEY, its tenant with (+fd) or",
    "without (-fd) /dev/sgx_provision; host: that tenant on the host gets",
    "einit, eacces (the gate) or policy; vm: VM created; run: launched;",
    "code: guest-visible EINIT code, #GP: ECREATE faulted (the gate),",
    "-: no VM; byp: policy bypass; hw: hardware-consistent.",
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "policy-matrix",
        help="run every host launch policy against every guest configuration (lewr, lehash, signer, PROVISIONKEY)",
    )
    p.add_argument("--json", action="store_true", help="print a list of row objects")
    p.add_argument("--design", default="always-write", help="MSR-update design (default: always-write, mainline)")
    p.add_argument("--reasons", action="store_true", help="print each row's reason under the table")
    p.set_defaults(func=run)


def _yn(v: object) -> str:
    return "yes" if v else "no"


def _code(r: Mapping[str, object]) -> str:
    if r["step"] == "ecreate-gp":
        return "#GP"
    return "-" if r["code"] is None else str(r["code"])


def _line(cells: Sequence[str]) -> str:
    out = [c.rjust(w) if i in _RIGHT else c.ljust(w) for i, (c, w) in enumerate(zip(cells, _WIDTHS))]
    return " ".join(out).rstrip()


def matrix_text(rows: Sequence[Mapping[str, object]], *, reasons: bool = False) -> str:
    """The policy matrix as a table at most 72 columns wide, with its legend
    (and each row's reason, wrapped, with ``reasons``)."""
    lines = [_line(_HEADER), _line(tuple("-" * w for w in _WIDTHS))]
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
            _code(r),
            _yn(r["bypass"]),
            _yn(r["hw_consistent"]),
        )
        lines.append(_line(cells))
    lines.append("")
    lines.extend(LEGEND)
    if reasons:
        lines.append("")
        for i, r in enumerate(rows, 1):
            lines.extend(
                textwrap.wrap(f"{i:3d}. {r['reason']}", WIDTH, subsequent_indent="     ", break_on_hyphens=False)
            )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from sgxlab.experiments.matrix import MATRIX_COLUMNS, policy_matrix_records
    from sgxlab.host.designs import design_class

    design_class(args.design)  # ConfigError (exit 2) for an unknown name
    rows = policy_matrix_records(args.design)
    if args.json:
        print_json([{k: r[k] for k in MATRIX_COLUMNS} for r in rows])
    else:
        print(matrix_text(rows, reasons=args.reasons))
    return 0
