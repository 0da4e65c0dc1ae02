"""``sgxlab sweep``: run designs over a grid of cost and workload parameters and seeds.

::

    sgxlab sweep --designs always-write,percpu-cache --workload workshop \\
        --vary wrmsr_lehash=400,1200,4000 --vary launches=1000,2000 --seeds 3 --out sweep1
    sgxlab sweep --designs read-compare,always-write --vary einit=20000,60000 \\
        --executor dask:tcp://scheduler:8786 --out sweep2

Options
-------
``--vary NAME=V1,V2,...`` takes any cost parameter or any parameter of the
workload (repeatable); ``--param``, ``--cost`` and ``--costs`` fix the
others, as in ``sgxlab run``. ``--executor`` is ``local`` (a process pool of
``--workers``), ``dask`` (a local Dask cluster) or ``dask:ADDRESS`` (a
running scheduler). ``--out DIR`` keeps each finished part and the final
``sweep.csv`` there; running the same command again resumes. The table
printed at the end (at most 72 columns) shows each run's key counts;
``--csv FILE`` writes every column.
"""

from __future__ import annotations

import argparse
import sys

from sgxlab.cli import print_json
from sgxlab.cli.run import parse_pairs
from sgxlab.errors import ConfigError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("sweep", help="run designs over a grid of cost and workload parameters and seeds")
    p.add_argument("--designs", default=None, help="comma-separated design names (default: all five)")
    p.add_argument("--workload", default="workshop", help="workload name (default workshop)")
    p.add_argument("--vary", action="append", default=[], metavar="NAME=V1,V2", help="a parameter to sweep")
    p.add_argument("--param", action="append", default=[], metavar="K=V", help="fixed workload parameter")
    p.add_argument("--cost", action="append", default=[], metavar="K=V", help="fixed cost override in cycles")
    p.add_argument("--costs", metavar="PRESET", help="cost preset from data/costs")
    p.add_argument("--seeds", type=int, default=1, metavar="N", help="seeds 0..N-1 per point (default 1)")
    p.add_argument("--engine", choices=("exact", "fast"), default="fast", help="simulation engine (default fast)")
    p.add_argument("--executor", default="local", help="local, dask or dask:ADDRESS (default local)")
    p.add_argument("--workers", type=int, default=None, metavar="N", help="worker processes (default: all CPUs)")
    p.add_argument("--out", metavar="DIR", help="folder for incremental, resumable results")
    p.add_argument("--csv", metavar="FILE", help="write every column of the result as CSV")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show a progress bar on stderr (default: when stderr is a terminal)",
    )
    p.set_defaults(func=run)


def parse_vary(items: list[str]) -> dict[str, list[str]]:
    """``["name=v1,v2", ...]`` to ``{name: [v1, v2]}``; each name once, each value non-empty."""
    out: dict[str, list[str]] = {}
    for item in items:
        name, sep, values = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ConfigError("--vary", item, "expected NAME=V1,V2,...")
        if name in out:
            raise ConfigError("--vary", item, f"{name} given twice")
        vals = [v.strip() for v in values.split(",")]
        if not values.strip() or any(not v for v in vals):
            raise ConfigError(f"--vary {name}", values, "expected comma-separated values, none empty")
        out[name] = vals
    return out


def run(args: argparse.Namespace) -> int:
    from sgxlab.files import check_writable, write_atomic
    from sgxlab.present.text import sweep_table
    from sgxlab.sim.run import cost_model
    from sgxlab.sim.sweep import sweep

    csv_path = check_writable(args.csv, "--csv", suffixes=(".csv",)) if args.csv else None
    designs = [d.strip() for d in args.designs.split(",")] if args.designs else None
    if designs is not None and any(not d for d in designs):
        raise ConfigError("--designs", args.designs, "expected comma-separated design names, none empty")
    base = cost_model(args.costs)
    costs = base.with_overrides(args.cost) if args.cost else base
    if args.seeds < 1:
        raise ConfigError("--seeds", args.seeds, "expected at least 1")
    df = sweep(
        designs,
        args.workload,
        parse_vary(args.vary),
        params=parse_pairs(args.param, "--param"),
        costs=costs,
        seeds=args.seeds,
        engine=args.engine,
        executor=args.executor,
        workers=args.workers,
        out=args.out,
        progress=sys.stderr.isatty() if args.progress is None else bool(args.progress),
    )
    if args.json:
        print_json(df.to_dict(orient="records"))
    else:
        print(sweep_table(df))
    if csv_path is not None:
        write_atomic(csv_path, df.to_csv(index=False), "--csv")
    return 0
