"""``sgxlab designs [--json]``: the MSR-update designs, their sources and parameters."""

from __future__ import annotations

import argparse
import textwrap
from typing import TypedDict

from sgxlab.cli import print_json


class DesignParam(TypedDict):
    """A parameter of a design, as ``sgxlab designs --json`` lists it."""

    name: str
    type: str
    default: str | None
    choices: list[str]
    doc: str


class DesignInfo(TypedDict):
    """One design, as ``sgxlab designs --json`` lists it."""

    name: str
    summary: str
    source: str
    traps_einit: bool
    loads_on_schedule: bool
    lock: str | None
    params: list[DesignParam]
    variants: list[str]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("designs", help="list the MSR-update designs with their sources and parameters")
    p.add_argument("--json", action="store_true", help="print a list of design objects")
    p.set_defaults(func=run)


def describe() -> list[DesignInfo]:
    """One object per built-in design: name, summary, source, flags and parameters."""
    from sgxlab.host.designs import DESIGNS, PerCpuCache

    out: list[DesignInfo] = []
    for name, cls in DESIGNS.items():
        doc = " ".join((cls.__doc__ or "").split())
        params: list[DesignParam] = []
        if issubclass(cls, PerCpuCache):
            params.append(
                {
                    "name": "lock",
                    "type": "str",
                    "default": cls.lock,
                    "choices": ["global", "percpu"],
                    "doc": "one global mutex (Andy's literal proposal) or per-CPU state with preemption "
                    f"disabled; select with {name}:lock=global or {name}:lock=percpu",
                }
            )
            params.append(
                {
                    "name": "initial",
                    "type": "str",
                    "default": cls.initial,
                    "choices": ["zero", "intel"],
                    "doc": "what the per-CPU cache holds before the first EINIT on a CPU: zero, as the 2019 "
                    "kernel's uninitialised DEFINE_PER_CPU array did, or Intel's reset value; select with "
                    f"{name}:initial=intel (options combine: {name}:lock=percpu,initial=intel)",
                }
            )
        out.append(
            {
                "name": name,
                "summary": doc.split(". ")[0].rstrip(".") + ".",
                "source": cls.source,
                "traps_einit": cls.traps_einit,
                "loads_on_schedule": cls.loads_on_schedule,
                "lock": cls.lock,
                "params": params,
                "variants": [
                    f"{name}:lock=global",
                    f"{name}:lock=percpu",
                    f"{name}:initial=zero",
                    f"{name}:initial=intel",
                ]
                if params
                else [],
            }
        )
    return out


def run(args: argparse.Namespace) -> int:
    rows = describe()
    if args.json:
        print_json(rows)
        return 0
    for i, d in enumerate(rows):
        if i:
            print()
        flags = [f"lock {d['lock'] or 'none'}", "traps EINIT" if d["traps_einit"] else "EINIT not trapped"]
        if d["loads_on_schedule"]:
            flags.append("writes at schedule-in")
        print(f"{d['name']}  ({', '.join(flags)})")
        for line in textwrap.wrap(d["summary"], 70):
            print(f"  {line}")
        for line in textwrap.wrap(f"source: {d['source']}", 70, subsequent_indent="  "):
            print(f"  {line}")
        for p in d["params"]:
            print(f"  param {p['name']} = {'|'.join(p['choices'])} (default {p['default']})")
    return 0
