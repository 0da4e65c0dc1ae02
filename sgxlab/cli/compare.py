"""``sgxlab compare``: every design on one workload, over seeds, as mailing-list text and files.

::

    sgxlab compare --designs percpu-cache,always-write --workload suspend-resume \\
        --param s3=3 --costs skylake-2021 --seeds 5 --baseline always-write \\
        --plot latency.png --text report.txt --csv runs.csv

Output
------
The default output is the mailing-list report: a header with the
parameters, a table in the kernel test robot's layout (each value as
``value ± stddev`` over the seeds, a ``%change`` column against the
baseline) and a "to reproduce" line; every line is at most 72 columns.
``--json`` prints the rows instead. ``--plot FILE.png|svg|pdf`` saves the
EINIT latency figure (``--figure`` picks another), ``--text FILE`` the
report, ``--csv FILE`` the rows; each path is checked before anything runs
and written atomically. Running the reproduce command printed in any of
them gives the same numbers.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from sgxlab.cli import print_json
from sgxlab.cli.run import parse_pairs

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from sgxlab.present.result import Comparison

FIGURES = ("msr-traffic", "latency", "overhead", "timeline")


def add_progress_option(p: argparse.ArgumentParser) -> None:
    """``--progress/--no-progress``: a progress bar on stderr (default: for long runs, on a terminal)."""
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show a progress bar on stderr (default: for long runs when stderr is a terminal)",
    )


def progress_of(args: argparse.Namespace) -> bool | None:
    """The ``progress`` argument for ``--progress/--no-progress``: True, False, or ``None``
    (a bar for long runs only) when stderr is a terminal, else False."""
    import sys

    chosen = getattr(args, "progress", None)
    if chosen is not None:
        return bool(chosen)
    return None if sys.stderr.isatty() else False


def add_compare_options(p: argparse.ArgumentParser, *, engine_default: str | None = "exact") -> None:
    """The options that say which comparison to run (shared with ``sgxlab plot``)."""
    p.add_argument("--designs", default=None, help="comma-separated designs (default: all five)")
    p.add_argument("--workload", default="workshop", help="workload name (default workshop)")
    p.add_argument("--param", action="append", default=[], metavar="K=V", help="workload parameter (repeatable)")
    p.add_argument("--cost", action="append", default=[], metavar="K=V", help="cost override in cycles (repeatable)")
    p.add_argument("--costs", metavar="PRESET", help="cost preset from data/costs")
    p.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    p.add_argument("--seeds", default=None, metavar="N|a,b,c", help="a number of seeds, or a list (default 1)")
    p.add_argument(
        "--engine",
        choices=("exact", "fast"),
        default=engine_default,
        help="simulation engine (default exact)"
        if engine_default == "exact"
        else "simulation engine (default exact; fast for crossover and winner)",
    )
    p.add_argument("--baseline", default=None, help="design the %%change column compares against")
    p.add_argument("--allow-import", action="store_true", help="let a module:Class design import its module")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("compare", help="compare designs on one workload over seeds; mailing-list text, figures, CSV")
    add_compare_options(p)
    p.add_argument("--plot", metavar="FILE", help="save a figure (.png, .svg or .pdf)")
    p.add_argument("--figure", choices=FIGURES, default="latency", help="which figure --plot saves")
    p.add_argument("--text", metavar="FILE", help="save the mailing-list report")
    p.add_argument("--csv", metavar="FILE", help="save the rows as CSV")
    p.add_argument("--json", action="store_true", help="print the rows as JSON instead of the report")
    add_progress_option(p)
    p.set_defaults(func=run)


def comparison(args: argparse.Namespace) -> Comparison:
    """Run the comparison the options describe (a :class:`~sgxlab.present.result.Comparison`)."""
    from sgxlab.errors import ConfigError
    from sgxlab.present.export import parse_seeds, split_designs
    from sgxlab.present.result import compare_seeds
    from sgxlab.sim.run import cost_model

    designs = split_designs(args.designs) if args.designs else None
    if designs is not None and not designs:
        raise ConfigError("--designs", args.designs, "expected comma-separated design names")
    base = cost_model(args.costs)
    costs = base.with_overrides(args.cost) if args.cost else base
    return compare_seeds(
        designs,
        args.workload,
        parse_pairs(args.param, "--param"),
        costs,
        parse_seeds(args.seeds, args.seed),
        args.engine,
        args.baseline,
        args.allow_import,
        progress=progress_of(args),
    )


def figure(c: Comparison, kind: str) -> Figure:
    """The figure ``kind`` of comparison ``c``."""
    plots = {
        "msr-traffic": c.plot_msr_traffic,
        "latency": c.plot_latency,
        "overhead": c.plot_overhead,
        "timeline": c.plot_timeline,
    }
    return plots[kind]()


def run(args: argparse.Namespace) -> int:
    from sgxlab.files import check_writable, write_atomic
    from sgxlab.present.export import FIGURE_SUFFIXES, save_figure

    # Every output path is checked before the (possibly long) runs.
    plot = check_writable(args.plot, "--plot", suffixes=FIGURE_SUFFIXES) if args.plot else None
    text_path = check_writable(args.text, "--text") if args.text else None
    csv_path = check_writable(args.csv, "--csv", suffixes=(".csv",)) if args.csv else None
    c = comparison(args)
    report = c.to_mailing_list()
    if args.json:
        print_json(c.to_dict(orient="records"))
    else:
        print(report)
    if text_path is not None:
        write_atomic(text_path, report + "\n", "--text")
    if csv_path is not None:
        c.export_csv(csv_path)
    if plot is not None:
        save_figure(figure(c, args.figure), plot)
    return 0
