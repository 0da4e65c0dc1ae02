"""``sgxlab measure FILE.sgxs [--json]``: replay an SGXS stream and print MRENCLAVE."""

from __future__ import annotations

import argparse

from sgxlab.cli import print_json, print_table, read_file


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("measure", help="replay an SGXS stream through ECREATE/EADD/EEXTEND and print MRENCLAVE")
    p.add_argument("file", help="an SGXS measured stream (Fortanix format)")
    p.add_argument("--json", action="store_true", help='print {"mrenclave": …}')
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sgxlab.hw.measure import replay_sgxs

    enclave = replay_sgxs(read_file(args.file, "FILE"))
    mr = enclave.mrenclave().hex()
    if args.json:
        print_json({"mrenclave": mr})
    else:
        print_table([("MRENCLAVE", mr)])
    return 0
