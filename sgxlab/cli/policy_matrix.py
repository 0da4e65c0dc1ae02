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

from sgxlab.cli import print_json


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "policy-matrix",
        help="run every host launch policy against every guest configuration (lewr, lehash, signer, PROVISIONKEY)",
    )
    p.add_argument("--json", action="store_true", help="print a list of row objects")
    p.add_argument("--design", default="always-write", help="MSR-update design (default: always-write, mainline)")
    p.add_argument("--reasons", action="store_true", help="print each row's reason under the table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sgxlab.experiments.matrix import MATRIX_COLUMNS, policy_matrix_records
    from sgxlab.host.designs import design_class
    from sgxlab.present.text import matrix_table

    design_class(args.design)  # ConfigError (exit 2) for an unknown name
    rows = policy_matrix_records(args.design)
    if args.json:
        print_json([{k: r[k] for k in MATRIX_COLUMNS} for r in rows])
    else:
        print(matrix_table(rows, reasons=args.reasons))
    return 0
