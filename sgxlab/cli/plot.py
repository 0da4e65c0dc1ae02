"""``sgxlab plot KIND --out FILE``: one figure, saved reproducibly, without a notebook.

::

    sgxlab plot latency --workload suspend-resume --seeds 3 --out latency.svg
    sgxlab plot timeline --design percpu-cache --workload suspend-resume --out stale.png
    sgxlab plot crossover --designs read-compare,always-write --vary wrmsr_lehash=100,400,1200,4000 \\
        --x wrmsr_lehash --out crossover.svg
    sgxlab plot winner --sweep sweep1 --x wrmsr_lehash --y launches --out winner.png
    sgxlab plot policy-matrix --out matrix.png

KIND is ``msr-traffic``, ``latency`` or ``overhead`` (a comparison of
designs, with the options of ``sgxlab compare``); ``timeline`` (per CPU, the
hash MSRs and the design's cache over time, on the exact engine: ``--design``,
default the first design of the comparison that fails; ``--cpus 0,1``,
``--window T0,T1``); ``crossover`` and ``winner`` (a sweep: ``--sweep DIR``
reads a finished ``sgxlab sweep --out DIR``, else ``--vary`` runs one;
``--x``, ``--y``, ``--metric``, ``--at NAME=VALUE`` for the other varied
parameters); or ``policy-matrix`` (``--design``, default always-write). The
file is PNG, SVG or PDF by its suffix; the same command gives
byte-identical files, which carry the sgxlab version and the command that
reproduces them.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from sgxlab.cli.compare import FIGURES, add_compare_options, add_progress_option, comparison, figure, progress_of
from sgxlab.cli.run import parse_pairs
from sgxlab.errors import ConfigError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

KINDS = (*FIGURES, "crossover", "winner", "policy-matrix")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("plot", help="save one figure (PNG, SVG or PDF) reproducibly")
    p.add_argument("kind", choices=KINDS, help="which figure")
    p.add_argument("--out", required=True, metavar="FILE", help="the figure file (.png, .svg or .pdf)")
    p.add_argument("--design", default=None, help="timeline and policy-matrix: the MSR-update design")
    p.add_argument("--cpus", default=None, metavar="A,B", help="timeline: the CPUs to draw")
    p.add_argument("--window", default=None, metavar="T0,T1", help="timeline: the time window (cycles)")
    p.add_argument("--sweep", default=None, metavar="DIR", help="crossover/winner: a finished sweep's --out folder")
    p.add_argument("--vary", action="append", default=[], metavar="NAME=V1,V2", help="crossover/winner: sweep this")
    p.add_argument("--x", default=None, metavar="NAME", help="crossover/winner: the varied parameter along x")
    p.add_argument("--y", default=None, metavar="NAME", help="winner: the varied parameter along y")
    p.add_argument("--metric", default="overhead_cycles", help="crossover/winner: the column compared")
    p.add_argument("--at", action="append", default=[], metavar="NAME=VALUE", help="fix another varied parameter")
    add_compare_options(p, engine_default=None)
    add_progress_option(p)
    p.set_defaults(func=run)


def _ints(text: str | None, option: str, count: int | None = None) -> list[int] | None:
    if text is None:
        return None
    try:
        out = [int(x, 0) for x in text.split(",")]
    except ValueError:
        raise ConfigError(option, text, "expected comma-separated integers") from None
    if count is not None and len(out) != count:
        raise ConfigError(option, text, f"expected {count} comma-separated integers")
    return out


def _sweep_figure(args: argparse.Namespace) -> Figure:
    from sgxlab.cli.sweep import parse_vary
    from sgxlab.present.export import parse_seeds, split_designs
    from sgxlab.present.result import SweepTable, sweep
    from sgxlab.sim.run import cost_model

    if args.x is None:
        raise ConfigError("--x", None, f"{args.kind} needs --x NAME (a varied parameter)")
    if args.kind == "winner" and args.y is None:
        raise ConfigError("--y", None, "winner needs --y NAME (a second varied parameter)")
    if args.sweep is not None:
        if args.vary:
            raise ConfigError("--vary", args.vary[0], "give --sweep DIR or --vary, not both")
        table = SweepTable.load(args.sweep)
    else:
        if not args.vary:
            raise ConfigError("--vary", None, f"{args.kind} needs a sweep: --sweep DIR, or --vary NAME=V1,V2,...")
        base = cost_model(args.costs)
        table = sweep(
            split_designs(args.designs) if args.designs else None,
            args.workload,
            parse_vary(args.vary),
            params=parse_pairs(args.param, "--param"),
            costs=base.with_overrides(args.cost) if args.cost else base,
            seeds=list(parse_seeds(args.seeds, args.seed)),
            engine=args.engine or "fast",
            progress=progress_of(args) is not False,
            allow_import=args.allow_import,
        )
    at = parse_pairs(args.at, "--at")
    if args.kind == "crossover":
        return table.plot_crossover(args.x, args.metric, at=at)
    return table.plot_winner(args.x, args.y, args.metric, at=at)


def _timeline_figure(args: argparse.Namespace) -> Figure:
    cpus = _ints(args.cpus, "--cpus")
    w = _ints(args.window, "--window", 2)
    window = (w[0], w[1]) if w is not None else None
    if args.design is None:
        args.engine = args.engine or "exact"
        return comparison(args).plot_timeline(cpus=cpus, window=window)
    from sgxlab.present.export import parse_seeds
    from sgxlab.present.result import run as run_one
    from sgxlab.sim.run import cost_model

    base = cost_model(args.costs)
    seeds = parse_seeds(args.seeds, args.seed)
    if len(seeds) != 1:
        raise ConfigError("--seeds", args.seeds, "a timeline shows one run: give one seed (--seed N)")
    result = run_one(
        args.design,
        args.workload,
        parse_pairs(args.param, "--param"),
        base.with_overrides(args.cost) if args.cost else base,
        seeds[0],
        "exact",
        records=True,
        allow_import=args.allow_import,
        progress=progress_of(args),
    )
    return result.plot_timeline(cpus, window=window)


def run(args: argparse.Namespace) -> int:
    from sgxlab.files import check_writable
    from sgxlab.present.export import FIGURE_SUFFIXES, save_figure

    out = check_writable(args.out, "--out", suffixes=FIGURE_SUFFIXES)
    if args.kind == "policy-matrix":
        from sgxlab.experiments.matrix import policy_matrix
        from sgxlab.host.designs import design_class
        from sgxlab.present.plots import plot_policy_matrix

        design = args.design or "always-write"
        design_class(design)  # a bad name is a ConfigError before the matrix runs
        fig = plot_policy_matrix(policy_matrix(design), subtitle=f"design {design}")
    elif args.kind == "timeline":
        fig = _timeline_figure(args)
    elif args.kind in ("crossover", "winner"):
        fig = _sweep_figure(args)
    else:
        args.engine = args.engine or "exact"
        fig = figure(comparison(args), args.kind)
    save_figure(fig, out)
    print(out)
    return 0
