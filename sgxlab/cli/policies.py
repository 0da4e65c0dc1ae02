"""``sgxlab policies [--json]``: the built-in host launch policies, one line each, with their sources.

Reads :data:`sgxlab.kvm.policy.POLICY_CATALOG`, the one place the six
policies are listed (the policy matrix, ``sgxlab guest --policy`` and a
policy chooser read the same tuple). ``--json`` prints a list of objects
``{name, summary, source, enforcing, gates_provisionkey}``.
"""

from __future__ import annotations

import argparse
import textwrap

from sgxlab.cli import print_json

WIDTH = 72


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("policies", help="list the host launch policies with their sources")
    p.add_argument("--json", action="store_true", help="print a list of policy objects")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sgxlab.kvm.policy import POLICY_CATALOG

    if args.json:
        print_json(
            [
                {
                    "name": p.name,
                    "summary": p.summary,
                    "source": p.source,
                    "enforcing": p.enforcing,
                    "gates_provisionkey": p.gates_provisionkey,
                }
                for p in POLICY_CATALOG
            ]
        )
        return 0
    out: list[str] = []
    for p in POLICY_CATALOG:
        flags = [f for f, on in (("enforcing", p.enforcing), ("gates PROVISIONKEY", p.gates_provisionkey)) if on]
        out.append(p.name + (f" ({', '.join(flags)})" if flags else ""))
        out.extend(textwrap.wrap(p.summary, WIDTH, initial_indent="  ", subsequent_indent="  "))
        out.extend(textwrap.wrap(f"source: {p.source}", WIDTH, initial_indent="  ", subsequent_indent="    "))
    print("\n".join(out))
    return 0
