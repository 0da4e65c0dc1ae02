"""``sgxlab run``: run one workload under one MSR-update design and print the summary.

::

    sgxlab run --design read-compare --workload workshop --seed 1 --json
    sgxlab run --design percpu-cache:percpu --workload host-only \\
        --param launches=100000 --param cpus=8 --costs pessimistic-msr --cost einit=50000
    sgxlab run --config run.toml           # a saved RunConfig (JSON or TOML)

Output and options
------------------
``--json`` prints the summary object of ``docs/simulator.md`` (``design``,
``workload``, ``seed``, ``engine``, ``launches``, ``einit``, ``failures``,
``retries``, ``wrmsr``, ``rdmsr``, ``schedule_ins``, ``encls_exits``,
``latency_cycles``, ``overhead_cycles``, ``bypasses`` and the contract's
extra keys); otherwise a table at most 72 columns wide. ``--save-config
FILE.json|FILE.toml`` writes the run's configuration, which ``--config``
replays; the file name is checked (suffix, folder, writable) before the
simulation starts, so a long run is never lost to a bad path.
``--design module:Class`` (or a saved config naming one) imports that
module, running its code, and needs ``--allow-import``.
"""

from __future__ import annotations

import argparse
import sys

from sgxlab.cli import print_json
from sgxlab.errors import ConfigError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("run", help="run a workload under an MSR-update design and print the summary")
    p.add_argument("--design", help="design name (sgxlab designs), e.g. read-compare, percpu-cache:percpu")
    p.add_argument("--workload", help="workload name (sgxlab workloads) or trace:PATH")
    p.add_argument("--param", action="append", default=[], metavar="K=V", help="workload parameter (repeatable)")
    p.add_argument("--cost", action="append", default=[], metavar="K=V", help="cost override in cycles (repeatable)")
    p.add_argument("--costs", metavar="PRESET", help="cost preset from data/costs (e.g. skylake-2021)")
    p.add_argument("--seed", type=_seed, default=None, help="random seed of the workload (default 0)")
    p.add_argument("--engine", choices=("exact", "fast"), default=None, help="simulation engine (default exact)")
    p.add_argument("--config", metavar="FILE", help="replay a saved configuration (.json or .toml)")
    p.add_argument("--save-config", metavar="FILE", help="write this run's configuration (.json or .toml)")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show a progress bar on stderr (default: for long runs when stderr is a terminal)",
    )
    p.add_argument(
        "--allow-import",
        action="store_true",
        help="let --design module:Class (or --config naming one) import that module, running its code",
    )
    p.set_defaults(func=run)


def _seed(text: str) -> int:
    try:
        v = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid seed {text!r}: expected a non-negative integer") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"invalid seed {text!r}: expected a non-negative integer")
    return v


def _progress(args: argparse.Namespace) -> bool | None:
    """``--progress/--no-progress``, or ``None`` (long runs only) on a terminal, else False."""
    if args.progress is not None:
        return bool(args.progress)
    return None if sys.stderr.isatty() else False


def parse_pairs(items: list[str], option: str) -> dict[str, str]:
    """``["k=v", ...]`` to a dict; a malformed or repeated item raises ConfigError."""
    out: dict[str, str] = {}
    for item in items:
        k, sep, v = item.partition("=")
        k = k.strip()
        if not sep or not k:
            raise ConfigError(option, item, "expected NAME=VALUE")
        if k in out:
            raise ConfigError(option, item, f"{k} given twice")
        out[k] = v.strip()
    return out


def run(args: argparse.Namespace) -> int:
    from sgxlab.present.result import run as sim_run
    from sgxlab.sim.costs import CostModel
    from sgxlab.sim.result import RunConfig, check_save_path
    from sgxlab.sim.run import cost_model

    # Check where the config goes before the run: a bad path must not cost the results.
    save_to = check_save_path(args.save_config) if args.save_config else None
    params: dict[str, object] = {}
    if args.config:
        cfg = RunConfig.load(args.config)
        design = args.design or cfg.design
        workload = args.workload or cfg.workload
        if workload == cfg.workload:
            params.update(cfg.params)
        base = CostModel.from_dict(cfg.costs) if cfg.costs else CostModel()
        seed = cfg.seed if args.seed is None else args.seed
        engine = args.engine or cfg.engine
    else:
        if args.design is None:
            raise ConfigError("--design", None, "required (see `sgxlab designs`)")
        if args.workload is None:
            raise ConfigError("--workload", None, "required (see `sgxlab workloads`)")
        design, workload = args.design, args.workload
        base = CostModel()
        seed = 0 if args.seed is None else args.seed
        engine = args.engine or "exact"
    params.update(parse_pairs(args.param, "--param"))
    if args.costs is not None:
        base = cost_model(args.costs)
    costs = base.with_overrides(args.cost) if args.cost else base
    result = sim_run(
        design=design,
        workload=workload,
        params=params,
        costs=costs,
        seed=seed,
        engine=engine,
        records=False,
        allow_import=args.allow_import,
        progress=_progress(args),
    )
    # Print first: if saving then fails (disk full ...), the summary is not lost.
    if args.json:
        print_json(result.summary())
    else:
        print(result.to_text(72))
    sys.stdout.flush()
    if save_to is not None:
        result.config.save(save_to)
    return 0
