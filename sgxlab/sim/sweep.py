"""Sweeps: every design over a grid of cost and workload parameters and seeds, as one tidy table.

:func:`sweep` runs designs × cost parameters × workload parameters × seeds
and returns a pandas DataFrame with one row per run: the design, the seed,
one column per varied parameter, then the run's summary flattened
(:func:`sgxlab.sim.result.flatten_summary`).

Decisions
---------
* **A trace per workload configuration and seed, once.** Costs never change
  a trace, so every design and every cost value runs on the same trace. A
  task is one workload configuration and seed with a share of the cost
  values; when there are fewer such traces than workers, the traces are made
  here once and shipped to the tasks that share them. What does not depend
  on costs is done once per trace, not per run: its generation and
  validation, its launches' order by CPU (:meth:`Trace.launch_cpu_order`,
  kept on the frozen trace) and the signers' MSR-word tables. Each run still redoes its design's per-launch MSR arithmetic and
  the queue (a few milliseconds per 100 k launches). The same
  holds for anyone calling :func:`sgxlab.run_trace` on one trace with many
  cost models.
* **Any executor.** Tasks go to a :class:`concurrent.futures.Executor`: a
  local process pool by default, or a Dask distributed cluster
  (``executor="dask"`` starts a local one, ``"dask:tcp://host:8786"``
  connects to a scheduler). Each task is deterministic, and rows are put
  back in grid order, so the table does not depend on the executor, the
  worker count or the order tasks finish in.
* **Resumable.** With ``out=``, each finished task's rows are written at
  once (atomically) to the folder beside a manifest of the sweep's
  arguments; an interrupted sweep keeps them, and running the same sweep
  again skips the tasks already done. A folder that holds another sweep is
  refused rather than mixed.
* **Progress.** A tqdm bar (a widget in Jupyter, text in a terminal).
* **The table knows its grid.** ``df.attrs["manifest"]`` is the sweep's
  manifest (designs, workload, parameters, grid, seeds, engine), from
  which :func:`sgxlab.sweep` makes a :class:`sgxlab.present.result.SweepTable`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from sgxlab import __version__
from sgxlab.errors import ConfigError
from sgxlab.files import read_user_text, write_atomic
from sgxlab.host.designs import Design
from sgxlab.sim.budget import Budget
from sgxlab.sim.costs import COST_PARAMS, CostModel
from sgxlab.sim.result import SUMMARY_KEYS, flatten_summary
from sgxlab.sim.run import cost_model, design_classes, design_ref, run_trace
from sgxlab.sim.trace import Trace
from sgxlab.sim.workloads import _seed, make_workload, workload_params

__all__ = ["sweep", "SweepPlan", "plan_sweep", "param_column", "MAX_SWEEP_RUNS"]

MAX_SWEEP_RUNS = 1_000_000
"""The most runs (designs × grid points × seeds) one sweep may ask for."""

_HEAD = ("design", "workload", "seed", "engine")


@dataclass(frozen=True)
class _Task:
    """One unit of work: a workload configuration and seed, some cost points, every design."""

    index: int
    workload: str
    params: dict[str, Any]
    seed: int
    designs: tuple[str, ...]
    costs: tuple[tuple[int, dict[str, Any]], ...]
    engine: str
    wl_index: int
    seed_index: int
    wl_values: dict[str, Any]
    cost_names: tuple[str, ...]
    trace: Trace | None = None
    budget: Budget | None = None


@dataclass(frozen=True)
class SweepPlan:
    """What a sweep will run, checked before anything runs."""

    designs: tuple[str, ...]
    workload: str
    params: dict[str, Any]
    costs: dict[str, Any]
    vary_costs: tuple[tuple[str, tuple[Any, ...]], ...]
    vary_params: tuple[tuple[str, tuple[Any, ...]], ...]
    seeds: tuple[int, ...]
    engine: str
    tasks: tuple[_Task, ...] = field(repr=False)

    @property
    def runs(self) -> int:
        return len(self.designs) * self.points * len(self.seeds)

    @property
    def points(self) -> int:
        return math.prod(len(v) for _, v in (*self.vary_costs, *self.vary_params))

    @property
    def varied(self) -> tuple[str, ...]:
        return tuple(n for n, _ in (*self.vary_params, *self.vary_costs))

    def manifest(self) -> dict[str, Any]:
        """Everything that determines the rows (for resuming and for a reader)."""
        return {
            "sgxlab": __version__,
            "designs": list(self.designs),
            "workload": self.workload,
            "params": self.params,
            "costs": self.costs,
            "vary_costs": [[n, list(v)] for n, v in self.vary_costs],
            "vary_params": [[n, list(v)] for n, v in self.vary_params],
            "seeds": list(self.seeds),
            "engine": self.engine,
            "tasks": len(self.tasks),
        }

    def key(self) -> str:
        blob = json.dumps(self.manifest(), sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def _values(name: str, values: object) -> tuple[Any, ...]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise ConfigError(f"vary {name}", values, "expected a list of values")
    out = tuple(values)
    if not out:
        raise ConfigError(f"vary {name}", values, "give at least one value")
    return out


def _split_vary(workload: str, vary: Mapping[str, object]) -> tuple[list[tuple[str, tuple[Any, ...]]], ...]:
    wl_names = {p["name"] for p in workload_params(workload)}
    vc: list[tuple[str, tuple[Any, ...]]] = []
    vp: list[tuple[str, tuple[Any, ...]]] = []
    for name, values in vary.items():
        if not isinstance(name, str):
            raise ConfigError("vary", name, "a parameter name is a string")
        vals = _values(name, values)
        if name in COST_PARAMS or name == "cpu_ghz":
            vc.append((name, vals))
        elif name in wl_names:
            vp.append((name, vals))
        else:
            raise ConfigError(
                "vary",
                name,
                f"not a cost parameter ({', '.join(COST_PARAMS)}) or a parameter of workload {workload!r} "
                f"({', '.join(sorted(wl_names))})",
            )
    return vc, vp


def _seeds(seeds: int | Sequence[int]) -> tuple[int, ...]:
    if isinstance(seeds, bool):
        raise ConfigError("seeds", seeds, "expected a number of seeds or a list of seeds")
    if isinstance(seeds, int):
        if not 1 <= seeds <= 10_000:
            raise ConfigError("seeds", seeds, "expected 1 to 10000 seeds")
        return tuple(range(seeds))
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Iterable):
        raise ConfigError("seeds", seeds, "expected a number of seeds or a list of seeds")
    out = tuple(_seed(s) for s in seeds)
    if not out or len(set(out)) != len(out):
        raise ConfigError("seeds", seeds, "expected distinct seeds, at least one")
    return out


def plan_sweep(
    designs: Iterable[str | type[Design]] | str | type[Design] | None = None,
    workload: str = "workshop",
    vary: Mapping[str, object] | None = None,
    *,
    params: Mapping[str, Any] | None = None,
    costs: CostModel | str | Mapping[str, Any] | Sequence[str] | None = None,
    seeds: int | Sequence[int] = 1,
    engine: str = "fast",
    workers: int = 1,
    allow_import: bool = False,
    budget: Budget | None = None,
) -> SweepPlan:
    """Check a sweep's arguments and lay out its tasks, without running anything
    (``budget``: the limits each workload point is checked against, and run within)."""
    classes = design_classes(designs, allow_import=allow_import)
    refs = tuple(design_ref(c) for c in classes)
    if engine not in ("exact", "fast"):
        raise ConfigError("engine", engine, "expected exact or fast")
    base = cost_model(costs)
    if vary is not None and not isinstance(vary, Mapping):
        raise ConfigError(
            "vary", vary, "expected a mapping of parameter name to values, e.g. {'einit': [30000, 60000]}"
        )
    vc, vp = _split_vary(workload, vary or {})
    fixed = dict(params or {})
    clash = [n for n, _ in vp if n in fixed]
    if clash:
        raise ConfigError("params", clash[0], "is both fixed and varied")
    seed_list = _seeds(seeds)
    cost_points: list[dict[str, Any]] = []
    for combo in itertools.product(*(v for _, v in vc)):
        over = {n: x for (n, _), x in zip(vc, combo, strict=True)}
        cost_points.append(base.with_overrides(over, name=base.name).as_dict() if over else base.as_dict())
    wl_points: list[dict[str, Any]] = []
    wl_values: list[dict[str, Any]] = []
    for combo in itertools.product(*(v for _, v in vp)):
        over = {n: x for (n, _), x in zip(vp, combo, strict=True)}
        wl = make_workload(workload, {**fixed, **over}, budget=budget)  # checks every value now, not in a worker
        wl_points.append(dict(wl.values))
        wl_values.append(over)
    runs = len(refs) * len(cost_points) * len(wl_points) * len(seed_list)
    if runs > MAX_SWEEP_RUNS:
        raise ConfigError("vary", runs, f"a sweep may run at most {MAX_SWEEP_RUNS:,} runs; vary fewer values")
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise ConfigError("workers", workers, "expected a positive number of workers")
    traces = len(wl_points) * len(seed_list)
    chunks = max(1, min(len(cost_points), math.ceil(2 * workers / traces))) if workers > 1 else 1
    per = math.ceil(len(cost_points) / chunks)
    tasks: list[_Task] = []
    for wi, (wp, wv) in enumerate(zip(wl_points, wl_values, strict=True)):
        for si, seed in enumerate(seed_list):
            for c0 in range(0, len(cost_points), per):
                share = tuple((ci, cost_points[ci]) for ci in range(c0, min(c0 + per, len(cost_points))))
                tasks.append(
                    _Task(
                        len(tasks),
                        workload,
                        wp,
                        seed,
                        refs,
                        share,
                        engine,
                        wi,
                        si,
                        wv,
                        tuple(n for n, _ in vc),
                        budget=budget,
                    )
                )
    return SweepPlan(
        designs=refs,
        workload=workload,
        params=fixed,
        costs=base.as_dict(),
        vary_costs=tuple(vc),
        vary_params=tuple(vp),
        seeds=seed_list,
        engine=engine,
        tasks=tuple(tasks),
    )


def param_column(name: str, kind: str) -> str:
    """The column of a varied parameter: its name, or ``<name>_param`` / ``<name>_cost``
    where a summary column has that name (``launches``, ``einit``)."""
    return f"{name}_{kind}" if name in SUMMARY_KEYS else name


def _run_task(task: _Task) -> list[dict[str, Any]]:
    """Run one task (in a worker): every design at each of its cost points on one trace."""
    trace = (
        task.trace
        if task.trace is not None
        else make_workload(task.workload, task.params, budget=task.budget).trace(task.seed)
    )
    rows: list[dict[str, Any]] = []
    for ci, costs in task.costs:
        model = CostModel.from_dict(costs)
        for di, design in enumerate(task.designs):
            res = run_trace(
                trace,
                design,
                model,
                engine=task.engine,
                records=False,
                seed=task.seed,
                allow_import=True,
                budget=task.budget,
            )
            flat = flatten_summary(res.summary())
            row: dict[str, Any] = {
                "_order": (task.wl_index, task.seed_index, ci, di),
                "design": flat["design"],
                "seed": task.seed,
                **{param_column(n, "param"): v for n, v in task.wl_values.items()},
                **{param_column(n, "cost"): costs[n] for n in task.cost_names},
            }
            row.update({k: v for k, v in flat.items() if k not in _HEAD})
            rows.append(row)
    return rows


def _executor(executor: Executor | str | None, workers: int) -> tuple[Executor | None, Callable[[], None]]:
    """The executor to use and how to shut down what was started here."""
    if isinstance(executor, Executor):
        return executor, lambda: None
    if executor is None or executor == "local":
        if workers == 1:
            return None, lambda: None
        pool = ProcessPoolExecutor(max_workers=workers)
        return pool, lambda: pool.shutdown(cancel_futures=True)
    if isinstance(executor, str) and (executor == "dask" or executor.startswith("dask:")):
        try:
            from distributed import Client, LocalCluster
        except ImportError as e:  # pragma: no cover - a dependency of the kit
            raise ConfigError("executor", executor, f"Dask distributed is not installed: {e}") from None
        address = executor[len("dask:") :]
        if address:
            try:
                client = Client(address, timeout="10s")  # type: ignore[no-untyped-call]  # distributed is untyped
            except (OSError, TimeoutError, ValueError) as e:
                raise ConfigError("executor", executor, f"cannot reach the Dask scheduler: {e}") from None
            cluster = None
        else:
            cluster = LocalCluster(  # type: ignore[no-untyped-call]
                n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
            )
            client = Client(cluster)  # type: ignore[no-untyped-call]

        def close() -> None:
            client.close()  # type: ignore[no-untyped-call]
            if cluster is not None:
                cluster.close()

        return client.get_executor(), close  # type: ignore[no-untyped-call]
    raise ConfigError("executor", executor, "expected local, dask or dask:ADDRESS, or a concurrent.futures.Executor")


class _Store:
    """The ``out`` folder: a manifest and one JSON file of rows per finished task."""

    def __init__(self, out: str | os.PathLike[str], plan: SweepPlan) -> None:
        self.dir = Path(out)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError("out", str(self.dir), f"cannot make the folder: {e.strerror or e}") from None
        self.key = plan.key()
        manifest = self.dir / "sweep.json"
        if manifest.exists():
            try:
                old = json.loads(read_user_text(manifest, "out"))
            except json.JSONDecodeError:
                old = {}
            if old.get("key") != self.key:
                raise ConfigError(
                    "out", str(self.dir), "holds the results of a different sweep; give another folder or remove it"
                )
        else:
            write_atomic(manifest, json.dumps({"key": self.key, **plan.manifest()}, indent=2) + "\n", "out")

    def part(self, index: int) -> Path:
        return self.dir / f"part-{index:06d}.json"

    def done(self, index: int) -> list[dict[str, Any]] | None:
        p = self.part(index)
        if not p.exists():
            return None
        rows: list[dict[str, Any]] = json.loads(read_user_text(p, "out"))
        for r in rows:
            r["_order"] = tuple(r["_order"])
        return rows

    def save(self, index: int, rows: list[dict[str, Any]]) -> None:
        write_atomic(self.part(index), json.dumps(rows, default=_plain) + "\n", "out")


def _plain(x: object) -> object:
    if hasattr(x, "item"):
        return x.item()  # numpy scalars
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def sweep(
    designs: Iterable[str | type[Design]] | str | type[Design] | None = None,
    workload: str = "workshop",
    vary: Mapping[str, object] | None = None,
    *,
    params: Mapping[str, Any] | None = None,
    costs: CostModel | str | Mapping[str, Any] | Sequence[str] | None = None,
    seeds: int | Sequence[int] = 1,
    engine: str = "fast",
    executor: Executor | str | None = None,
    workers: int | None = None,
    out: str | os.PathLike[str] | None = None,
    progress: bool = True,
    allow_import: bool = False,
    budget: Budget | None = None,
) -> pd.DataFrame:
    """Run ``designs`` on ``workload`` at every point of ``vary`` for each seed.

    ``vary`` maps parameter names (any cost parameter, ``cpu_ghz``, or any
    parameter of the workload) to lists of values; ``params`` and ``costs``
    fix the others, as in :func:`sgxlab.run`. ``seeds`` is a count (seeds
    0..N-1) or a list. ``executor`` is ``None``/``"local"`` (a process pool
    of ``workers``, or this process for one worker), ``"dask"``,
    ``"dask:ADDRESS"`` or any :class:`concurrent.futures.Executor`. ``out``
    is a folder for incremental, resumable results. ``budget``: the limits
    of :mod:`sgxlab.sim.budget` every run stays within (the default ones
    else; a limit never changes a result, so it is not part of the
    manifest). Returns a tidy DataFrame in grid order (workload point,
    seed, cost point, design).
    """
    if workers is None:
        workers = 1 if executor is None else (os.cpu_count() or 1)
    plan = plan_sweep(
        designs,
        workload,
        vary,
        params=params,
        costs=costs,
        seeds=seeds,
        engine=engine,
        workers=workers,
        allow_import=allow_import,
        budget=budget,
    )
    store = _Store(out, plan) if out is not None else None
    rows: list[dict[str, Any]] = []
    todo: list[_Task] = []
    for t in plan.tasks:
        have = store.done(t.index) if store is not None else None
        if have is not None:
            rows.extend(have)
        else:
            todo.append(t)
    todo = _ship_traces(todo)
    from tqdm.auto import tqdm

    pool, close = _executor(executor, workers)  # a bad executor is refused before the bar is drawn
    bar = tqdm(total=len(plan.tasks), initial=len(plan.tasks) - len(todo), disable=not progress, unit="task")
    try:
        if pool is None:
            for t in todo:
                got = _run_task(t)
                if store is not None:
                    store.save(t.index, got)
                rows.extend(got)
                bar.update()
        else:
            futures: dict[Future[list[dict[str, Any]]], _Task] = {pool.submit(_run_task, t): t for t in todo}
            from concurrent.futures import as_completed

            for fut in as_completed(futures):
                got = fut.result()
                if store is not None:
                    store.save(futures[fut].index, got)
                rows.extend(got)
                bar.update()
    finally:
        bar.close()
        close()
    rows.sort(key=lambda r: r["_order"])
    df = pd.DataFrame([{k: v for k, v in r.items() if k != "_order"} for r in rows])
    df.attrs["varied"] = [param_column(n, "param") for n, _ in plan.vary_params] + [
        param_column(n, "cost") for n, _ in plan.vary_costs
    ]
    df.attrs["manifest"] = plan.manifest()
    if store is not None:
        write_atomic(store.dir / "sweep.csv", df.to_csv(index=False), "out")
    return df


def _ship_traces(todo: list[_Task]) -> list[_Task]:
    """Make each trace that several tasks share once, here, and hand it to them."""
    by_trace: dict[tuple[int, int], list[_Task]] = {}
    for t in todo:
        by_trace.setdefault((t.wl_index, t.seed_index), []).append(t)
    out: list[_Task] = []
    for group in by_trace.values():
        if len(group) == 1:
            out.extend(group)
            continue
        first = group[0]
        trace = make_workload(first.workload, first.params, budget=first.budget).trace(first.seed)
        out.extend(_with_trace(t, trace) for t in group)
    out.sort(key=lambda t: t.index)
    return out


def _with_trace(t: _Task, trace: Trace) -> _Task:
    return dataclasses.replace(t, trace=trace)
