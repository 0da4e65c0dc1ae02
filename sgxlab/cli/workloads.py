"""``sgxlab workloads [--json]``: the workloads and their documented parameters."""

from __future__ import annotations

import argparse
import textwrap

from sgxlab.cli import print_json


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("workloads", help="list the workloads and their parameters")
    p.add_argument("--json", action="store_true", help="print a list of workload objects")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sgxlab.sim.workloads import describe_workloads

    rows = describe_workloads()
    if args.json:
        print_json(rows)
        return 0
    for i, w in enumerate(rows):
        if i:
            print()
        print(w["name"])
        for line in textwrap.wrap(w["summary"], 70):
            print(f"  {line}")
        for p in w["params"]:
            head = f"  --param {p['name']}={p['default']} ({p['type']})"
            print(head[:72])
            for line in textwrap.wrap(p["doc"], 66):
                print(f"      {line}")
    return 0
