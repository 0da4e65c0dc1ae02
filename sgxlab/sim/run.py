"""The run API: ``sgxlab.run(...)`` and ``sgxlab.compare(...)``.

::

    import sgxlab
    r = sgxlab.run(design="read-compare", workload="workshop", seed=1)
    r.summary()["wrmsr"], r.records().head()
    sgxlab.compare(["percpu-cache", "read-compare", "always-write"], "suspend-resume")

``design`` is a name (``"read-compare"``, ``"percpu-cache:percpu"`` for the
per-CPU-lock variant, ``"percpu-cache:lock=percpu,initial=intel"``; the grammar
is in :mod:`sgxlab.host.designs`), a :class:`~sgxlab.host.designs.Design` subclass (built-in
or your own), or ``"module:Class"``. The last imports ``module``, which runs
its code, so it needs an explicit opt-in: ``allow_import=True`` here and in
:meth:`RunConfig.run <sgxlab.sim.result.RunConfig.run>` (a saved config
names its design as text), ``--allow-import`` on the command line; without
it a ``"module:Class"`` design is a :class:`~sgxlab.errors.ConfigError`. ``costs`` is a
:class:`~sgxlab.sim.costs.CostModel`, a preset name (``"pessimistic-msr"``), a
mapping of overrides (``{"wrmsr_lehash": 1200}``) or a list of ``name=value``
strings. ``engine`` is ``"exact"`` (event by event through the emulator) or
``"fast"`` (numpy; same summary, may refuse a design it cannot model with
:class:`~sgxlab.errors.EngineUnsupported`).

The host launch policy is the workload's (the ``policy`` parameter of the
guest workloads, or a CSV trace's ``#@ policy=`` line). :func:`run_trace`
also takes a :class:`~sgxlab.kvm.policy.HostPolicy` object, the very kind
``sgxlab.kvm.Kvm`` takes (or a built-in's name). A config can name such a
policy only if it is the built-in of that name built with the trace's
approved signers and the workload has a ``policy`` parameter: then the run's
:class:`RunConfig` records the name in its params. Any other policy object
leaves the run without a reproducible config: its ``RunConfig.unsaved``
says why, and saving or replaying it raises :class:`ConfigError`.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from sgxlab.errors import ConfigError
from sgxlab.host.designs import DESIGNS, Design, design_class, design_label
from sgxlab.kvm.policy import HostPolicy
from sgxlab.sim import fast
from sgxlab.sim.budget import Budget, check_trace
from sgxlab.sim.costs import CostModel, check_int64_budget
from sgxlab.sim.exact import ExactSimulation
from sgxlab.sim.hostpolicy import builtin_equivalent, run_policy, same_policy
from sgxlab.sim.progress import EXACT_STEP_ROWS, Progress, ProgressArg, is_long
from sgxlab.sim.result import ENGINES, Result, RunConfig
from sgxlab.sim.trace import Trace

__all__ = [
    "run",
    "replay",
    "compare",
    "compare_runs",
    "run_trace",
    "resolve_design",
    "design_ref",
    "design_classes",
    "cost_model",
    "KEEP_RUNS_MAX",
]


def resolve_design(design: str | type[Design], *, allow_import: bool = False) -> type[Design]:
    """A design class from a name, a class, or ``"module:Class"``.

    ``"module:Class"`` imports ``module`` (running its code) and is refused
    unless ``allow_import`` is true. Whatever the import or the attribute
    lookup raises becomes a :class:`ConfigError`; the result must be a
    :class:`~sgxlab.host.designs.Design` subclass.
    """
    try:
        return design_class(design)
    except ConfigError:
        if not (isinstance(design, str) and ":" in design):
            raise
    mod_name, _, qual = design.partition(":")
    if mod_name in DESIGNS:
        return design_class(design)  # a bad variant: re-raise its error
    if not allow_import:
        raise ConfigError(
            "design",
            design,
            f"not a built-in design ({', '.join(DESIGNS)}); module:Class imports {mod_name!r} and runs its "
            "code, so opt in with allow_import=True (command line: --allow-import)",
        )
    if not mod_name or not qual:
        raise ConfigError("design", design, "expected module:Class, e.g. mypkg.designs:WriteTwice")
    try:
        obj: Any = importlib.import_module(mod_name)
    except (Exception, SystemExit) as e:  # whatever the module does on import
        raise ConfigError("design", design, f"cannot import {mod_name!r}: {type(e).__name__}: {e}") from None
    try:
        for part in qual.split("."):
            obj = getattr(obj, part)
    except (Exception, SystemExit) as e:
        raise ConfigError("design", design, f"{mod_name!r} has no {qual!r}: {type(e).__name__}: {e}") from None
    if not (isinstance(obj, type) and issubclass(obj, Design)):
        raise ConfigError("design", design, "is not a sgxlab.host.designs.Design subclass")
    return obj


def design_classes(
    designs: Iterable[str | type[Design]] | str | type[Design] | None, *, allow_import: bool = False
) -> list[type[Design]]:
    """The design classes a ``designs=`` argument names, in order.

    ``None`` means every built-in design; one name or class is one design (a
    string is not walked letter by letter). Anything else must be an iterable
    of names or classes, non-empty, with no design twice. Errors name ``designs``.
    """
    if designs is None:
        return list(DESIGNS.values())
    if isinstance(designs, (str, type)):
        designs = [designs]
    try:
        items = list(designs)
    except TypeError:
        raise ConfigError("designs", designs, "expected a design name, a Design class, or a list of them") from None
    if not items:
        raise ConfigError("designs", items, "give at least one design")
    classes = [resolve_design(d, allow_import=allow_import) for d in items]
    seen: set[str] = set()
    for cls in classes:
        label = design_label(cls)
        if label in seen:
            raise ConfigError("designs", label, "design given twice")
        seen.add(label)
    return classes


def design_ref(cls: type[Design]) -> str:
    """The string a config stores for ``cls`` (resolvable by :func:`resolve_design`).

    A built-in design is its name; a variant of one (:meth:`PerCpuCache.variant
    <sgxlab.host.designs.PerCpuCache.variant>`) its label, e.g.
    ``percpu-cache:percpu,initial=intel``, which :func:`design_class` reads back
    to the very same class; anything else ``module:Class``.
    """
    if cls in DESIGNS.values():
        return cls.name
    base = cls.__dict__.get("variant_of")
    if base is not None and base in DESIGNS.values():
        return design_label(cls)
    return f"{cls.__module__}:{cls.__qualname__}"


def cost_model(costs: CostModel | str | Mapping[str, Any] | Sequence[str] | None) -> CostModel:
    """Normalise the ``costs`` argument (see the module docstring)."""
    if costs is None:
        return CostModel()
    if isinstance(costs, CostModel):
        return costs
    if isinstance(costs, str):
        return CostModel.preset(costs)
    if isinstance(costs, Mapping):
        if "name" in costs:
            return CostModel.from_dict(costs)
        return CostModel().with_overrides(dict(costs))
    if isinstance(costs, (list, tuple)):
        return CostModel().with_overrides(list(costs))
    raise ConfigError("costs", costs, "expected a CostModel, a preset name, a mapping or name=value strings")


def _check_engine(engine: Any) -> str:
    if engine not in ENGINES:
        raise ConfigError("engine", engine, f"expected one of {', '.join(ENGINES)}")
    return str(engine)


def _policy_config(config: RunConfig, trace: Trace, policy: HostPolicy) -> RunConfig:
    """``config`` for a run of ``trace`` under ``policy`` (see the module docstring)."""
    if same_policy(policy, run_policy(trace)):
        return config  # the trace's own policy: nothing to record
    name = builtin_equivalent(policy, trace)
    if name is not None and "policy" in config.params:
        return dataclasses.replace(config, params={**config.params, "policy": name})
    if name is None:
        why = (
            f"its host policy {policy.describe()} is not the built-in {policy.name!r} built with the "
            f"workload's approved signers {list(trace.approved)}"
        )
    else:
        why = (
            f"its host policy {name!r} differs from the trace's and workload {config.workload} has no policy parameter"
        )
    return dataclasses.replace(config, unsaved=why)


def run_trace(
    trace: Trace,
    design: str | type[Design],
    costs: CostModel | str | Mapping[str, Any] | Sequence[str] | None = None,
    *,
    engine: str = "exact",
    records: bool | None = None,
    seed: int = 0,
    config: RunConfig | None = None,
    allow_import: bool = False,
    policy: HostPolicy | str | None = None,
    progress: ProgressArg | Progress = None,
    budget: Budget | None = None,
) -> Result:
    """Run an existing trace (from :func:`sgxlab.sim.workloads.make_trace` or your own).

    ``progress``: ``None`` (a bar only for a long run), ``True``, ``False`` or a
    callback ``f(done, total)`` that may raise
    :class:`~sgxlab.sim.progress.Cancelled` to stop (:mod:`sgxlab.sim.progress`).

    ``policy``: a :class:`~sgxlab.kvm.policy.HostPolicy` (or a built-in's
    name, built with the trace's approved signers) to run under instead of
    the trace's own; how the run's config records it is in the module
    docstring. Refused with :class:`ConfigError` (before anything runs) when
    the costs are too large for the trace's int64 arithmetic
    (:func:`sgxlab.sim.costs.check_int64_budget`), or when the trace is over
    ``budget`` (:mod:`sgxlab.sim.budget`; default: the documented limits).
    """
    if not isinstance(trace, Trace):
        raise ConfigError("trace", trace, "expected a sgxlab.sim.trace.Trace (make_trace or read_trace_csv)")
    check_trace(trace, budget)
    cls = resolve_design(design, allow_import=allow_import)
    model = cost_model(costs)
    engine = _check_engine(engine)
    check_int64_budget(
        model, trace.launches, int(trace.t.max()) if len(trace) else 0, interrupted=trace.interrupted_attempts()
    )
    pol = None if policy is None else run_policy(trace, policy)

    if config is None:
        config = RunConfig(design_ref(cls), trace.name, dict(trace.params), model.as_dict(), seed, engine)
    if pol is not None:
        config = _policy_config(config, trace, pol)
    if isinstance(progress, Progress):
        return _run_one(trace, cls, model, engine, records, config, pol, progress, budget=budget)
    with Progress(progress, 0, long=is_long(engine, trace.launches), desc=design_label(cls)) as bar:
        return _run_one(trace, cls, model, engine, records, config, pol, bar, budget=budget)


def _run_one(
    trace: Trace,
    cls: type[Design],
    model: CostModel,
    engine: str,
    records: bool | None,
    config: RunConfig,
    pol: HostPolicy | None,
    bar: Progress,
    *,
    counted: bool = False,
    budget: Budget | None = None,
) -> Result:
    """One run, reporting :func:`_steps` steps to ``bar`` (``counted``: they are already
    in its total, so a widget's bar does not reach its end before the last run)."""
    head = {"design": design_label(cls), "workload": config.workload, "seed": config.seed, "engine": engine}
    bar.phase(f"{head['design']} ({engine})")
    expected = _steps(engine, trace)
    if bar.active and not counted:
        bar.add(expected)
    sim: ExactSimulation | None
    if engine == "exact":
        sim = ExactSimulation(trace, cls, model, records=records, policy=pol, budget=budget)
        made = sim.progress_steps() if bar.active else 0
        sim.run(bar)
        if bar.active and expected > made:  # rows of VMs the policy refused never run
            bar.step(expected - made)
        body = sim.summary()
    else:
        sim = None
        body = fast.simulate(trace, cls, model, policy=pol, budget=budget)
        bar.step(expected)
    summary = {**head, **{k: v for k, v in body.items() if k not in head}}
    return Result(summary, config, simulation=sim, trace=trace, cpu_ghz=model.cpu_ghz)


def _steps(engine: str, trace: Trace) -> int:
    """The progress steps of one run: 1 on the fast engine, one per
    :data:`~sgxlab.sim.progress.EXACT_STEP_ROWS` trace rows (at least 1) on the exact one."""
    if engine != "exact":
        return 1
    return max(1, -(-len(trace) // EXACT_STEP_ROWS))


TRACE_MEMO_ROWS = 200_000
"""Generated traces expected to have at most this many rows are memoised (see :func:`_memo_trace`)."""


@lru_cache(maxsize=16)
def _memo_trace(workload: str, values: str, seed: int) -> Trace:
    """The generated trace of a built-in workload, remembered.

    A generated trace is a pure function of (workload, parameters, seed), and
    once validated it is frozen (read-only columns), so sharing one object
    between calls is safe; a warm ``compare`` (a widget redrawing on every
    change) then skips generation. Bounded: 16 traces of at most
    :data:`TRACE_MEMO_ROWS` rows each (about 4 MB). CSV traces are never memoised,
    as their file may change.
    """
    from sgxlab.sim.workloads import make_workload

    return make_workload(workload, json.loads(values)).trace(seed)


def _prepare(
    workload: str, params: Mapping[str, Any] | None, seed: int, budget: Budget | None = None
) -> tuple[Trace, dict[str, Any], int]:
    from sgxlab.sim.workloads import _seed, estimated_rows, make_workload

    seed = _seed(seed)
    wl = make_workload(workload, params, budget=budget)
    values = dict(wl.values)
    est = type(wl).estimate(values)
    rows = estimated_rows(est)
    memo = budget is None and not workload.startswith("trace:") and rows <= TRACE_MEMO_ROWS
    if memo:
        try:
            key = json.dumps(values, sort_keys=True)
        except (TypeError, ValueError):
            memo = False
    trace = _memo_trace(workload, key, seed) if memo else wl.trace(seed)
    return trace, values, seed


def run(
    design: str | type[Design] = "always-write",
    workload: str = "workshop",
    params: Mapping[str, Any] | None = None,
    costs: CostModel | str | Mapping[str, Any] | Sequence[str] | None = None,
    seed: int = 0,
    engine: str = "exact",
    records: bool | None = None,
    allow_import: bool = False,
    progress: ProgressArg = None,
    budget: Budget | None = None,
) -> Result:
    """Generate ``workload`` with ``params`` and ``seed`` and run it under ``design``.

    ``records``: keep per-launch records (exact engine; default: only for
    runs of at most 200,000 launches). ``allow_import``: let a
    ``"module:Class"`` design import its module (see the module docstring).
    ``progress``: see :func:`run_trace` (the trace's generation is one step).
    ``budget``: the limits of :mod:`sgxlab.sim.budget` (default: the documented ones).
    """
    cls = resolve_design(design, allow_import=allow_import)
    model = cost_model(costs)
    engine = _check_engine(engine)
    with Progress(progress, 1, long=_looks_long(engine, workload, params, 1), desc="generate trace") as bar:
        trace, values, seed = _prepare(workload, params, seed, budget)
        bar.step()
        bar.set_long(is_long(engine, trace.launches))
        config = RunConfig(design_ref(cls), workload, values, model.as_dict(), seed, engine)
        return run_trace(trace, cls, model, engine=engine, records=records, config=config, progress=bar, budget=budget)


def _looks_long(engine: str, workload: str, params: Mapping[str, Any] | None, designs: int) -> bool:
    """Whether a run will be long, from the workload's ``launches`` parameter (before the trace exists)."""
    from sgxlab.sim.workloads import make_workload

    try:
        n = make_workload(workload, params).values.get("launches")
    except ConfigError:
        return False  # _prepare names the problem
    return isinstance(n, int) and is_long(engine, n * designs)


def replay(config: RunConfig, *, records: bool | None = None, allow_import: bool = False) -> Result:
    """Run ``config`` again (the same summary, by determinism).

    A ``"module:Class"`` design imports its module, which runs that module's
    code: a config file should not do that by itself, so it needs
    ``allow_import=True`` (see :func:`resolve_design`).
    """
    if not isinstance(config, RunConfig):
        raise ConfigError("config", config, "expected a sgxlab.RunConfig (RunConfig.load(path) reads one)")
    config.check_savable()
    return run(
        design=config.design,
        workload=config.workload,
        params=config.params,
        costs=config.costs,
        seed=config.seed,
        engine=config.engine,
        records=records,
        allow_import=allow_import,
    )


def compare(
    designs: Iterable[str | type[Design]] | str | type[Design] | None = None,
    workload: str = "workshop",
    params: Mapping[str, Any] | None = None,
    costs: CostModel | str | Mapping[str, Any] | Sequence[str] | None = None,
    seed: int = 0,
    engine: str = "exact",
    allow_import: bool = False,
    progress: ProgressArg = None,
    budget: Budget | None = None,
) -> Any:
    """One DataFrame row per design on the same trace (all five built-ins by default).

    Columns are the summary's keys flattened (``latency_mean`` ...
    ``latency_max``, ``failures_total`` and one ``failures_<NAME>`` per SGX
    error seen, 0 where a design had none). ``progress``: see :func:`run_trace`
    (steps: the trace, then each design). ``budget``: see :func:`run`.
    :func:`compare_runs` also returns each run.
    """
    return compare_runs(designs, workload, params, costs, seed, engine, allow_import, progress=progress, budget=budget)[
        0
    ]


KEEP_RUNS_MAX = 200_000
""":func:`compare_runs` keeps a run's :class:`Result` (with the exact engine's per-launch
latencies) only for runs of at most this many launches, so memory stays bounded."""


def compare_runs(
    designs: Iterable[str | type[Design]] | str | type[Design] | None = None,
    workload: str = "workshop",
    params: Mapping[str, Any] | None = None,
    costs: CostModel | str | Mapping[str, Any] | Sequence[str] | None = None,
    seed: int = 0,
    engine: str = "exact",
    allow_import: bool = False,
    *,
    progress: ProgressArg = None,
    budget: Budget | None = None,
) -> tuple[Any, list[Result | None]]:
    """:func:`compare`'s table and each design's :class:`Result`, in the same order
    (``None`` for a run of more than :data:`KEEP_RUNS_MAX` launches), so a figure
    that needs a run's latencies does not run it again."""
    import pandas as pd

    classes = design_classes(designs, allow_import=allow_import)
    model = cost_model(costs)
    engine = _check_engine(engine)
    long = _looks_long(engine, workload, params, len(classes))
    rows = []
    kept: list[Result | None] = []
    with Progress(progress, 1, long=long, desc="generate trace") as bar:
        trace, values, seed = _prepare(workload, params, seed, budget)
        check_int64_budget(
            model, trace.launches, int(trace.t.max()) if len(trace) else 0, interrupted=trace.interrupted_attempts()
        )
        bar.step()
        bar.set_long(is_long(engine, trace.launches * len(classes)))
        if bar.active:
            bar.add(_steps(engine, trace) * len(classes))
        for cls in classes:
            config = RunConfig(design_ref(cls), workload, values, model.as_dict(), seed, engine)
            res = _run_one(trace, cls, model, engine, False, config, None, bar, counted=True, budget=budget)
            rows.append(res.flat())
            kept.append(res if trace.launches <= KEEP_RUNS_MAX else None)
    # One DataFrame built from columns (a failure column a design did not see is 0 there).
    names = sorted({c for r in rows for c in r if c.startswith("failures_") and c != "failures_total"})
    cols = [c for c in rows[0] if c not in names]
    at = cols.index("failures_total") + 1
    order = cols[:at] + names + cols[at:]
    df = pd.DataFrame({c: [r.get(c, 0) for r in rows] for c in order}, columns=order)
    return df, kept
