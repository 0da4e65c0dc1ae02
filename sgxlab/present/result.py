"""Runs that show themselves: :func:`run`, :func:`compare`, :class:`Result` and :class:`Comparison`.

These are the functions behind ``sgxlab.run`` and ``sgxlab.compare``. They
call the simulation layer (:mod:`sgxlab.sim.run`) and wrap what it returns in
a :class:`Result` or a :class:`Comparison`, which add the views to the data:
``str(result)`` is a 72-column text table, Jupyter shows an HTML table
(PyRTL's convention: plain text in a terminal, rich output in a notebook),
and each figure of :mod:`sgxlab.present.plots` and each export of
:mod:`sgxlab.present.export` is one method call away.

Decisions
---------
* **A comparison is still a DataFrame.** :class:`Comparison` subclasses
  :class:`pandas.DataFrame` (pandas' ``_metadata``/``_constructor``
  protocol), so ``sgxlab.compare(...)[["design", "wrmsr"]]``, ``.iloc`` and
  ``["wrmsr"]`` work as before, and it remembers its settings
  (:class:`~sgxlab.present.export.CompareSpec`) for titles and the
  reproduce command. A selection of its rows or columns keeps them.
* **Figures that need every launch.** The latency CDF and the timeline need
  the exact engine's per-launch data. An exact-engine comparison keeps its
  runs (:func:`sgxlab.sim.run.compare_runs`), so the latency figure runs
  nothing again (:attr:`Comparison.exact_reruns` counts what figures did
  run). A fast-engine comparison or result re-runs the same configuration on
  the exact engine for them (the title says so), up to
  :data:`EXACT_RERUN_MAX` launches per run; a larger one is a
  :class:`~sgxlab.errors.ConfigError` naming the engine.
* **The timeline observes the emulator.** :func:`timeline_data` picks a
  window from the run's records (around the first failed EINIT, else the
  first S3), then replays the run once more, reading every CPU's hash MSRs
  and the design's cache after each row of the window
  (:meth:`sgxlab.sim.exact.ExactSimulation.observe`): the bands are the
  emulator's state, not a reconstruction.
* **A sweep is still a DataFrame.** :func:`sweep` returns a
  :class:`SweepTable` (the tidy table of :func:`sgxlab.sim.sweep.sweep`) that
  knows its grid, so ``plot_crossover`` and ``plot_winner`` are one call, and
  :meth:`SweepTable.load` reads a finished sweep's ``out`` folder.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sgxlab import __version__
from sgxlab.errors import ConfigError
from sgxlab.host.designs import Design, design_label
from sgxlab.kvm.policy import HostPolicy
from sgxlab.present import plots
from sgxlab.present.export import (
    DEFAULT_METRICS,
    CompareSpec,
    export_csv,
    export_json,
    mailing_list_text,
    nondefault_params,
    run_command,
    timeline_text,
)
from sgxlab.present.style import Caption, Provenance, attach_provenance
from sgxlab.present.text import WIDTH, summary_html, summary_text
from sgxlab.sim import run as sim
from sgxlab.sim.budget import Budget
from sgxlab.sim.costs import CostModel
from sgxlab.sim.exact import RECORDS_DEFAULT_MAX
from sgxlab.sim.progress import ProgressArg
from sgxlab.sim.result import Result as RunData
from sgxlab.sim.result import RunConfig, flatten_summary
from sgxlab.sim.trace import Trace
from sgxlab.sim.workloads import make_workload

__all__ = [
    "Result",
    "Comparison",
    "SweepTable",
    "run",
    "run_trace",
    "replay",
    "compare",
    "compare_seeds",
    "sweep",
    "timeline_data",
    "EXACT_RERUN_MAX",
    "TIMELINE_LAUNCHES",
]

CostsArg = CostModel | str | Mapping[str, object] | Sequence[str] | None

EXACT_RERUN_MAX = RECORDS_DEFAULT_MAX
"""The most launches a fast-engine run may have for a figure to re-run it on the exact engine."""

TIMELINE_LAUNCHES = 240
"""Launches the timeline shows by default (the whole run if it has no more)."""


def _resolve(ref: str, allow_import: bool) -> type[Design]:
    """A design class; a ``module:Class`` whose module is already imported (it was run) resolves."""
    mod = ref.partition(":")[0]
    return sim.resolve_design(ref, allow_import=allow_import or mod in sys.modules)


def _check_rerun(engine: str, launches: int, what: str) -> None:
    if engine != "exact" and launches > EXACT_RERUN_MAX:
        raise ConfigError(
            what,
            engine,
            f"needs per-launch data, which only the exact engine keeps; re-running {launches:,} launches "
            f"exactly is over the {EXACT_RERUN_MAX:,} done automatically: run with engine='exact'",
        )


class Result(RunData):
    """A run's data (:class:`sgxlab.sim.result.Result`) with its views.

    ``str(result)`` / :meth:`to_text`: a plain table of at most 72 columns;
    in Jupyter, an HTML table.
    """

    @classmethod
    def of(cls, data: RunData) -> Result:
        """The same run, with views."""
        if isinstance(data, cls):
            return data
        return cls(
            data.summary(),
            data.config,
            simulation=data.simulation,
            trace=data.trace,
            cpu_ghz=data.cpu_ghz,
        )

    def to_text(self, width: int = WIDTH) -> str:
        """A plain-text table no wider than ``width`` columns."""
        return summary_text(self._summary, self.cpu_ghz, width)

    def __str__(self) -> str:
        return self.to_text()

    def _repr_html_(self) -> str:
        return summary_html(self._summary, self.cpu_ghz)

    # figures ---------------------------------------------------------------

    @property
    def label(self) -> str:
        """The design's name as tables show it (``percpu-cache:percpu``)."""
        return str(self._summary["design"])

    def caption(self) -> Caption:
        """What a figure's title says about this run (workload, seed, costs, engine)."""
        return CompareSpec.of_config(self.config, label=self.label).caption()

    def provenance(self, title: str) -> Provenance:
        """What a saved figure of this run carries: the config and the ``sgxlab run`` command."""
        return Provenance(title, self.config.to_json(), run_command(self.config), __version__)

    def _table(self) -> pd.DataFrame:
        return pd.DataFrame([flatten_summary(self._summary)])

    def _classes(self) -> dict[str, type[Design]]:
        cls = getattr(self.simulation, "design_cls", None)
        if isinstance(cls, type) and issubclass(cls, Design):
            return {self.label: cls}
        return {self.label: _resolve(self.config.design, False)}

    def plot_msr_traffic(self) -> Figure:
        """WRMSR and RDMSR of the hash MSRs, in total and per launch (:func:`plots.plot_msr_traffic`)."""
        fig = plots.plot_msr_traffic(self._table(), caption=self.caption())
        return attach_provenance(fig, self.provenance("MSR traffic"))

    def exact_latencies(self) -> np.ndarray:
        """Per-launch latencies (cycles): this run's, or, for the fast engine, those of the same
        configuration re-run on the exact engine (up to :data:`EXACT_RERUN_MAX` launches)."""
        lat = self.latencies
        if lat is not None:
            return np.asarray(lat)
        _check_rerun(self.config.engine, int(self._summary["launches"]), "latency")
        cfg = RunConfig.from_dict({**self.config.as_dict(), "engine": "exact"})
        again = sim.replay(cfg, records=False, allow_import=self.config.design.partition(":")[0] in sys.modules)
        return np.asarray(again.latencies)

    def plot_latency(self) -> Figure:
        """The CDF (log axis) and box view of per-launch EINIT latency, and the mean latency by
        part (:func:`plots.plot_latency`). A fast-engine run is re-run exactly for the CDF."""
        lat = self.exact_latencies()
        comps = plots.latency_components(plots.cost_breakdown(self._table(), self.config.costs, self._classes()))
        engine = "exact"
        fig = plots.plot_latency({self.label: lat}, comps, caption=self.caption(), engine=engine)
        return attach_provenance(fig, self.provenance("EINIT latency"))

    def plot_overhead(self) -> Figure:
        """Launch-control overhead by part (:func:`plots.plot_overhead`)."""
        bd = plots.cost_breakdown(self._table(), self.config.costs, self._classes())
        fig = plots.plot_overhead(plots.overhead_components(bd), caption=self.caption())
        return attach_provenance(fig, self.provenance("launch-control overhead"))

    def plot_policy_matrix(self) -> Figure:
        """The policy matrix under this run's design (:func:`plots.plot_policy_matrix`)."""
        return _policy_matrix_figure(self.config.design)

    def plot_timeline(
        self,
        cpus: Sequence[int] | None = None,
        *,
        window: tuple[int, int] | None = None,
        max_launches: int = TIMELINE_LAUNCHES,
    ) -> Figure:
        """Per CPU, the hash MSRs and the design's per-CPU cache over time, launches,
        failures, S3 and vCPU migrations (:func:`plots.plot_timeline`), from the exact
        engine (a fast-engine run is re-run exactly). ``cpus``: which CPUs (default:
        those with launches in the window); ``window``: ``(t0, t1)`` cycles (default:
        the whole run, or ``max_launches`` launches around the first failure, else the
        first S3)."""
        trace = self.trace if isinstance(self.trace, Trace) else None
        if trace is None:
            trace = make_workload(self.config.workload, self.config.params).trace(self.config.seed)
        _check_rerun("exact", trace.launches, "timeline")
        sim_obj = self.simulation
        policy = getattr(sim_obj, "policy", None)
        have = sim_obj if sim_obj is not None and getattr(sim_obj, "keep_records", False) else None
        cls = self._classes()[self.label]
        data = timeline_data(
            trace,
            cls,
            CostModel.from_dict(self.config.costs),
            policy,
            records_run=have,
            cpus=cpus,
            window=window,
            max_launches=max_launches,
        )
        caption = CompareSpec.of_config(
            RunConfig.from_dict({**self.config.as_dict(), "engine": "exact"}), label=self.label
        ).caption()
        fig = plots.plot_timeline(data, caption=caption, design=self.label)
        return attach_provenance(fig, self.provenance("per-CPU timeline"))

    # exports ---------------------------------------------------------------

    def timeline_text(self, *, cpus: tuple[int, int] | None = None, width: int = WIDTH) -> str:
        """Two CPUs around the first failed EINIT (:func:`sgxlab.present.export.timeline_text`;
        exact engine with records)."""
        return timeline_text(self, cpus=cpus, width=width)

    def export_csv(self, path: str | Path, *, what: str | None = None) -> Path:
        """Records (or, with ``what="summary"``, the summary) as CSV (:func:`export.export_csv`)."""
        return export_csv(self, path, what=what)

    def export_json(self, path: str | Path, *, what: str | None = None) -> Path:
        """Config, summary and records as JSON (:func:`export.export_json`)."""
        return export_json(self, path, what=what)


def _policy_matrix_figure(design: str) -> Figure:
    """The policy matrix under ``design``; its provenance is ``sgxlab policy-matrix --design D``."""
    import json

    from sgxlab.experiments.matrix import policy_matrix

    fig = plots.plot_policy_matrix(policy_matrix(design), subtitle=f"design {design}")
    config = json.dumps({"experiment": "policy-matrix", "design": design}, indent=2) + "\n"
    command = ["sgxlab", "policy-matrix", "--design", design]
    return attach_provenance(fig, Provenance("policy matrix", config, command, __version__))


def timeline_data(
    trace: Trace,
    cls: type[Design],
    costs: CostModel,
    policy: HostPolicy | None,
    *,
    records_run: Any = None,
    cpus: Sequence[int] | None = None,
    window: tuple[int, int] | None = None,
    max_launches: int = TIMELINE_LAUNCHES,
) -> plots.TimelineData:
    """The data of :func:`plots.plot_timeline` for one run: the exact engine's per-launch
    records (``records_run``, an :class:`~sgxlab.sim.exact.ExactSimulation` that kept
    them, else a run made here) choose the window; a second, observed run
    (:meth:`ExactSimulation.observe`) notes the MSRs and the cache row by row there."""
    from sgxlab.sim.exact import ExactSimulation
    from sgxlab.sim.trace import S3, SCHED

    if not isinstance(max_launches, int) or isinstance(max_launches, bool) or max_launches < 1:
        raise ConfigError("max_launches", max_launches, "expected a positive number of launches")
    if records_run is None:
        records_run = ExactSimulation(trace, cls, costs, records=True, policy=policy).run()
    recs = records_run.records_frame()
    rows = records_run.rows
    s3 = [int(t) for t in rows.t[rows.kind == S3]]
    times = recs["time"].to_numpy(dtype=np.int64)
    if window is not None:
        try:
            t0, t1 = (int(window[0]), int(window[1]))
        except (TypeError, ValueError, IndexError):
            raise ConfigError("window", window, "expected (t0, t1) in cycles") from None
        if t1 <= t0:
            raise ConfigError("window", window, "t1 must be after t0")
    elif len(times) <= max_launches:
        t0 = int(rows.t[0]) if len(rows) else 0
        t1 = int(rows.t[-1]) if len(rows) else 1
    else:
        failed = np.flatnonzero((recs["outcome"] == "failed").to_numpy())
        if len(failed):
            anchor = int(failed[0])
        else:
            after = np.flatnonzero(times > s3[0]) if s3 else np.zeros(0, np.int64)
            anchor = int(after[0]) if len(after) else 0
        lo = max(anchor - max_launches // 4, 0)
        before = [x for x in s3 if x <= times[anchor]]
        if before:  # start a little before the S3 that made the cache stale
            lo = min(lo, max(int(np.searchsorted(times, before[-1])) - max_launches // 8, 0))
        hi = min(lo + max_launches, len(times) - 1)
        t0, t1 = int(times[lo]), int(times[hi])
    ncpus = records_run.platform.ncpus
    if cpus is not None:
        chosen = tuple(dict.fromkeys(int(c) for c in cpus))
        bad = [c for c in chosen if not 0 <= c < ncpus]
        if bad or not chosen:
            raise ConfigError("cpus", list(cpus), f"expected CPUs in 0..{ncpus - 1}")
    else:
        inwin = (times >= t0) & (times <= t1)
        chosen = tuple(sorted({int(c) for c in recs["cpu"].to_numpy()[inwin]})) or tuple(range(ncpus))
    observed = ExactSimulation(trace, cls, costs, records=False, policy=records_run.policy)
    hist = observed.observe(t0, t1)
    sched = np.flatnonzero(rows.kind == SCHED)
    last: dict[tuple[int, int], int] = {}
    mig: list[tuple[int, int, int, int, int]] = []
    for t, c, v, vc in zip(
        rows.t[sched].tolist(), rows.cpu[sched].tolist(), rows.vm[sched].tolist(), rows.vcpu[sched].tolist()
    ):
        prev = last.get((v, vc))
        if prev is not None and prev != c:
            mig.append((t, c, v, vc, prev))
        last[(v, vc)] = c
    return plots.TimelineData(
        history={"t": hist.t, "cpu": hist.cpu, "hw": hist.hw, "cached": hist.cached},
        launches={
            "time": times,
            "cpu": recs["cpu"].to_numpy(dtype=np.int64),
            "signer": recs["signer"].to_numpy(dtype=np.int64),
            "vm": recs["vm"].to_numpy(dtype=np.int64),
            "outcome": recs["outcome"].to_numpy().astype(str),
        },
        s3=tuple(s3),
        migrations=tuple(mig),
        cpus=chosen,
        t0=t0,
        t1=t1,
        has_cache=hist.has_cache,
    )


class Comparison(pd.DataFrame):
    """What :func:`compare` and :func:`compare_seeds` return: the table (one row per design
    and seed; a :class:`pandas.DataFrame`, used as before) that knows its settings
    (:attr:`spec`), with one-call figures and exports.

    ``c.plot_msr_traffic()``, ``c.plot_latency()``, ``c.plot_overhead()``,
    ``c.plot_policy_matrix()``, ``c.to_mailing_list()``, ``c.timeline_text()``,
    ``c.export_csv(path)``, ``c.export_json(path)``; save a figure with
    :func:`sgxlab.present.export.save_figure`.
    """

    _metadata: ClassVar[list[str]] = ["_sgx_spec", "_sgx_runs", "_sgx_classes"]

    @property
    def _constructor(self) -> type[Comparison]:
        return Comparison

    @classmethod
    def of(
        cls,
        table: pd.DataFrame,
        spec: CompareSpec,
        classes: Mapping[str, type[Design]] | None = None,
        runs: Mapping[tuple[str, int], RunData] | None = None,
    ) -> Comparison:
        """``table`` with its settings; ``classes``: the design classes by label (a class
        defined in a notebook cell cannot be found again by its ``module:Class`` name);
        ``runs``: exact-engine runs by (label, seed) that figures may reuse."""
        c = cls(table)
        object.__setattr__(c, "_sgx_spec", spec)
        kept: dict[Any, Any] = {"reruns": 0}
        for (label, seed), res in (runs or {}).items():
            if res.simulation is not None:
                kept[(label, int(seed), False)] = Result.of(res)
        object.__setattr__(c, "_sgx_runs", kept)
        object.__setattr__(c, "_sgx_classes", dict(classes or {}))
        return c

    @property
    def exact_reruns(self) -> int:
        """How many runs this comparison's figures made on the exact engine (0 when every
        figure reused the comparison's own runs)."""
        runs = getattr(self, "_sgx_runs", None)
        return int(runs.get("reruns", 0)) if isinstance(runs, dict) else 0

    @property
    def spec(self) -> CompareSpec:
        """The comparison's settings: designs, workload and parameters, costs, seeds, engine, baseline."""
        s = getattr(self, "_sgx_spec", None)
        if not isinstance(s, CompareSpec):
            raise ConfigError(
                "comparison",
                type(self).__name__,
                "this table has lost its settings (a pandas operation did not carry them); run sgxlab.compare() again",
            )
        return s

    @property
    def designs(self) -> list[str]:
        """The designs in the table, in order (labels)."""
        return plots.design_order(self) if "design" in self.columns else list(self.spec.labels)

    @property
    def seeds(self) -> list[int]:
        """The seeds in the table, in order."""
        if "seed" in self.columns:
            return list(dict.fromkeys(int(s) for s in self["seed"]))
        return list(self.spec.seeds)

    def caption(self) -> Caption:
        spec = self.spec
        return spec.with_seeds(tuple(self.seeds)).caption()

    def provenance(self, title: str) -> Provenance:
        spec = self.spec.with_seeds(tuple(self.seeds))
        return spec.provenance(title)

    def _class(self, label: str) -> type[Design]:
        known = getattr(self, "_sgx_classes", None)
        if isinstance(known, dict) and label in known:
            cls: type[Design] = known[label]
            return cls
        spec = self.spec
        ref = spec.designs[spec.labels.index(label)] if label in spec.labels else label
        return _resolve(ref, spec.allow_import)

    def _classes(self) -> dict[str, type[Design]]:
        return {lab: self._class(lab) for lab in self.designs}

    def _plain(self) -> pd.DataFrame:
        return pd.DataFrame(self)

    def run_exact(self, design: str, seed: int, *, records: bool = False) -> Result:
        """One of the comparison's runs on the exact engine (kept for later figures)."""
        spec = self.spec
        found = getattr(self, "_sgx_runs", None)
        runs: dict[Any, Any] = found if isinstance(found, dict) else {"reruns": 0}
        if runs is not found:
            object.__setattr__(self, "_sgx_runs", runs)
        for key in ((design, seed, True), (design, seed, records)):
            if key in runs:
                found_run: Result = runs[key]
                return found_run
        runs["reruns"] = int(runs.get("reruns", 0)) + 1
        cfg = spec.run_config(design, seed, engine="exact")
        trace = make_workload(spec.workload, spec.params).trace(seed)
        res = Result.of(
            sim.run_trace(
                trace,
                self._class(design) if design in spec.labels else _resolve(cfg.design, spec.allow_import),
                cfg.costs,
                engine="exact",
                records=records,
                seed=seed,
                config=cfg,
            )
        )
        runs[(design, seed, records)] = res
        return res

    def latencies(self) -> dict[str, np.ndarray]:
        """Per-launch latencies (cycles) per design, the seeds pooled, from the exact engine
        (a fast-engine comparison is re-run for them; see the module docstring)."""
        spec = self.spec
        if "launches" in self.columns and len(self):
            _check_rerun(spec.engine, int(self["launches"].max()), "latency")
        out: dict[str, np.ndarray] = {}
        for lab in self.designs:
            parts = [np.asarray(self.run_exact(lab, s).latencies) for s in self.seeds]
            out[lab] = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        return out

    def plot_msr_traffic(self) -> Figure:
        """WRMSR and RDMSR per design, in total and per launch (:func:`plots.plot_msr_traffic`)."""
        fig = plots.plot_msr_traffic(self._plain(), caption=self.caption())
        return attach_provenance(fig, self.provenance("MSR traffic per design"))

    def plot_latency(self) -> Figure:
        """EINIT latency per design: CDF (log axis), box view, mean by part (:func:`plots.plot_latency`)."""
        comps = plots.latency_components(plots.cost_breakdown(self._plain(), self.spec.costs, self._classes()))
        engine = "exact"
        fig = plots.plot_latency(self.latencies(), comps, caption=self.caption(), engine=engine)
        return attach_provenance(fig, self.provenance("EINIT latency per design"))

    def plot_overhead(self) -> Figure:
        """Launch-control overhead per design by part (:func:`plots.plot_overhead`)."""
        bd = plots.cost_breakdown(self._plain(), self.spec.costs, self._classes())
        fig = plots.plot_overhead(plots.overhead_components(bd), caption=self.caption())
        return attach_provenance(fig, self.provenance("launch-control overhead per design"))

    def plot_policy_matrix(self, design: str | None = None) -> Figure:
        """The policy matrix under ``design`` (default: the baseline) (:func:`plots.plot_policy_matrix`)."""
        spec = self.spec
        lab = design or spec.baseline
        ref = spec.designs[spec.labels.index(lab)] if lab in spec.labels else lab
        return _policy_matrix_figure(ref)

    def plot_timeline(
        self,
        design: str | None = None,
        *,
        seed: int | None = None,
        cpus: Sequence[int] | None = None,
        window: tuple[int, int] | None = None,
        max_launches: int = TIMELINE_LAUNCHES,
    ) -> Figure:
        """The per-CPU timeline (:meth:`Result.plot_timeline`) of ``design`` (default: the
        first design that failed, else the baseline) for ``seed`` (default: the first)."""
        label = design if design is not None else self._first_failing()
        if label not in self.designs and label not in self.spec.labels:
            raise ConfigError("design", label, f"not one of the designs compared ({', '.join(self.designs)})")
        s = self.seeds[0] if seed is None else int(seed)
        if s not in self.seeds:
            raise ConfigError("seed", seed, f"not one of the comparison's seeds ({', '.join(map(str, self.seeds))})")
        spec = self.spec
        trace = make_workload(spec.workload, spec.params).trace(s)
        _check_rerun("exact", trace.launches, "timeline")
        run = self.run_exact(label, s, records=True)
        data = timeline_data(
            trace,
            self._class(label),
            CostModel.from_dict(dict(spec.costs)),
            None,
            records_run=run.simulation,
            cpus=cpus,
            window=window,
            max_launches=max_launches,
        )
        caption = CompareSpec.of_config(spec.run_config(label, s, engine="exact"), label=label).caption()
        fig = plots.plot_timeline(data, caption=caption, design=label)
        return attach_provenance(fig, spec.with_seeds((s,)).provenance(f"per-CPU timeline of {label}"))

    def _first_failing(self) -> str:
        if "failures_total" in self.columns:
            for d in self.designs:
                if int(self[self["design"] == d]["failures_total"].sum()) > 0:
                    return d
        return self.spec.baseline

    def to_mailing_list(
        self,
        *,
        metrics: Sequence[str] = DEFAULT_METRICS,
        baseline: str | None = None,
        width: int = WIDTH,
        ascii: bool = False,
    ) -> str:
        """Plain text for a kernel mailing list (:func:`sgxlab.present.export.mailing_list_text`)."""
        return mailing_list_text(self._plain(), self.spec, metrics=metrics, baseline=baseline, width=width, ascii=ascii)

    def timeline_text(
        self,
        design: str | None = None,
        *,
        seed: int | None = None,
        cpus: tuple[int, int] | None = None,
        width: int = WIDTH,
    ) -> str:
        """Two CPUs around ``design``'s first failed EINIT (default: the first design that
        failed, else the baseline), on the exact engine (:func:`export.timeline_text`)."""
        if design is None:
            failed = [
                d
                for d in self.designs
                if "failures_total" in self.columns and int(self[self["design"] == d]["failures_total"].sum()) > 0
            ]
            design = failed[0] if failed else self.spec.baseline
        s = self.seeds[0] if seed is None else seed
        return timeline_text(self.run_exact(design, s, records=True), cpus=cpus, width=width)

    def export_csv(self, path: str | Path) -> Path:
        """The table as CSV (:func:`sgxlab.present.export.export_csv`)."""
        return export_csv(self._plain(), path)

    def export_json(self, path: str | Path) -> Path:
        """The table as JSON with the comparison's settings and reproduce command."""
        spec = self.spec.with_seeds(tuple(self.seeds))
        meta = {"comparison": spec.as_dict(), "command": spec.command()}
        return export_json(self._plain(), path, meta=meta)


def run(
    design: str | type[Design] = "always-write",
    workload: str = "workshop",
    params: Mapping[str, object] | None = None,
    costs: CostsArg = None,
    seed: int = 0,
    engine: str = "exact",
    records: bool | None = None,
    allow_import: bool = False,
    progress: ProgressArg = None,
    budget: Budget | None = None,
) -> Result:
    """Generate ``workload`` and run it under ``design`` (see :func:`sgxlab.sim.run.run`;
    ``progress`` as in :func:`compare`; ``budget``: the limits of :mod:`sgxlab.sim.budget`)."""
    return Result.of(
        sim.run(
            design,
            workload,
            params,
            costs,
            seed,
            engine,
            records=records,
            allow_import=allow_import,
            progress=progress,
            budget=budget,
        )
    )


def run_trace(
    trace: Trace,
    design: str | type[Design],
    costs: CostsArg = None,
    *,
    engine: str = "exact",
    records: bool | None = None,
    seed: int = 0,
    config: RunConfig | None = None,
    allow_import: bool = False,
    policy: HostPolicy | str | None = None,
    progress: ProgressArg = None,
    budget: Budget | None = None,
) -> Result:
    """Run an existing trace (see :func:`sgxlab.sim.run.run_trace`); ``policy`` is a
    :class:`~sgxlab.kvm.policy.HostPolicy` or a policy name (default: the trace's);
    ``budget``: the limits of :mod:`sgxlab.sim.budget`."""
    return Result.of(
        sim.run_trace(
            trace,
            design,
            costs,
            engine=engine,
            records=records,
            seed=seed,
            config=config,
            allow_import=allow_import,
            policy=policy,
            progress=progress,
            budget=budget,
        )
    )


def replay(config: RunConfig, *, records: bool | None = None, allow_import: bool = False) -> Result:
    """Run a saved :class:`~sgxlab.sim.result.RunConfig` again (see :func:`sgxlab.sim.run.replay`)."""
    return Result.of(sim.replay(config, records=records, allow_import=allow_import))


def compare(
    designs: Iterable[str | type[Design]] | str | type[Design] | None = None,
    workload: str = "workshop",
    params: Mapping[str, object] | None = None,
    costs: CostsArg = None,
    seed: int = 0,
    engine: str = "exact",
    allow_import: bool = False,
    *,
    baseline: str | type[Design] | None = None,
    progress: ProgressArg = None,
    budget: Budget | None = None,
) -> Comparison:
    """One row per design on the same trace (see :func:`sgxlab.sim.run.compare`), as a
    :class:`Comparison` (a DataFrame with figures and exports; ``baseline``: the design
    the mailing-list text compares against, default the first). ``progress``: ``None``
    (a bar for long runs only), ``True``, ``False`` or a callback ``f(done, total)``
    that may raise :class:`~sgxlab.sim.progress.Cancelled` (:mod:`sgxlab.sim.progress`).
    The exact engine's runs are kept for the figures (up to
    :data:`sgxlab.sim.run.KEEP_RUNS_MAX` launches each). ``budget``: the limits of
    :mod:`sgxlab.sim.budget` for generating and running (the default ones else)."""
    chosen = sim.design_classes(designs, allow_import=allow_import)
    spec = CompareSpec.build(chosen, workload, params, costs, [seed], engine, baseline, allow_import, budget=budget)
    table, results = sim.compare_runs(
        chosen, workload, params, spec.costs, seed, engine, allow_import, progress=progress, budget=budget
    )
    return Comparison.of(table, spec, _design_classes(chosen, allow_import), _runs(table, results))


def _runs(table: pd.DataFrame, results: Sequence[RunData | None]) -> dict[tuple[str, int], RunData]:
    return {
        (str(d), int(s)): r for d, s, r in zip(table["design"], table["seed"], results, strict=True) if r is not None
    }


def compare_seeds(
    designs: Iterable[str | type[Design]] | str | type[Design] | None = None,
    workload: str = "workshop",
    params: Mapping[str, object] | None = None,
    costs: CostsArg = None,
    seeds: int | Sequence[int] = 5,
    engine: str = "exact",
    baseline: str | type[Design] | None = None,
    allow_import: bool = False,
    *,
    progress: ProgressArg = None,
    budget: Budget | None = None,
) -> Comparison:
    """:func:`compare` once per seed (``seeds``: a list, or a count N for seeds 0..N-1), as one
    tidy :class:`Comparison`: one row per seed and design (seed-major), the columns of
    :func:`compare` (a ``failures_<NAME>`` column seen in one seed is 0 in the others).
    ``progress`` and ``budget``: as :func:`compare`, per seed."""
    chosen = sim.design_classes(designs, allow_import=allow_import)
    spec = CompareSpec.build(chosen, workload, params, costs, seeds, engine, baseline, allow_import, budget=budget)
    frames = []
    runs: dict[tuple[str, int], RunData] = {}
    for s in spec.seeds:
        table, results = sim.compare_runs(
            chosen, workload, params, spec.costs, s, engine, allow_import, progress=progress, budget=budget
        )
        frames.append(table)
        runs.update(_runs(table, results))
    return Comparison.of(_stack(frames), spec, _design_classes(chosen, allow_import), runs)


def _design_classes(
    designs: Iterable[str | type[Design]] | str | type[Design] | None, allow_import: bool
) -> dict[str, type[Design]]:
    return {design_label(c): c for c in sim.design_classes(designs, allow_import=allow_import)}


def _stack(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Tables of one seed each, stacked; failure columns aligned (0 where a seed had none)."""
    table = pd.concat(frames, ignore_index=True, sort=False)
    fails = sorted({c for c in table.columns if c.startswith("failures_") and c != "failures_total"})
    for c in fails:
        table[c] = table[c].fillna(0).astype("int64")
    cols = [c for c in table.columns if c not in fails]
    at = cols.index("failures_total") + 1 if "failures_total" in cols else len(cols)
    return table[cols[:at] + fails + cols[at:]]


# --------------------------------------------------------------------------- sweeps


@dataclass(frozen=True)
class SweepSpec:
    """What a sweep ran (:meth:`sgxlab.sim.sweep.SweepPlan.manifest`): the designs, the
    workload and its fixed ``params``, the base ``costs``, the varied parameters
    (``vary``: name, kind ``param`` or ``cost``, values), the ``seeds`` and the ``engine``."""

    designs: tuple[str, ...]
    workload: str
    params: Mapping[str, Any]
    costs: Mapping[str, Any]
    vary: tuple[tuple[str, str, tuple[Any, ...]], ...]
    seeds: tuple[int, ...]
    engine: str

    @classmethod
    def from_manifest(cls, m: Mapping[str, Any]) -> SweepSpec:
        try:
            vary = tuple((str(n), "param", tuple(v)) for n, v in m["vary_params"]) + tuple(
                (str(n), "cost", tuple(v)) for n, v in m["vary_costs"]
            )
            return cls(
                tuple(str(d) for d in m["designs"]),
                str(m["workload"]),
                dict(m["params"]),
                dict(m["costs"]),
                vary,
                tuple(int(s) for s in m["seeds"]),
                str(m["engine"]),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ConfigError("sweep", "sweep.json", f"not a sweep manifest ({type(e).__name__}: {e})") from None

    def column(self, name: str) -> str:
        """The table column of varied parameter ``name`` (a name or its column)."""
        from sgxlab.sim.sweep import param_column

        cols = {param_column(n, k): n for n, k, _ in self.vary}
        if name in cols:
            return name
        for n, k, _ in self.vary:
            if n == name:
                return param_column(n, k)
        raise ConfigError(
            "parameter",
            name,
            f"not a varied parameter of this sweep ({', '.join(cols) or 'none was varied'})",
        )

    def caption(self, pinned: Mapping[str, Any]) -> Caption:
        params = {**nondefault_params(self.workload, dict(self.params)), **dict(pinned)}
        return Caption(self.workload, params, self.seeds, str(self.costs.get("name", "default")), self.engine)

    def command(self, kind: str, metric: str, axes: Sequence[str], pinned: Mapping[str, Any]) -> list[str]:
        """The ``sgxlab plot`` arguments that run this sweep again and draw the figure."""
        argv = ["sgxlab", "plot", kind, "--designs", ",".join(self.designs), "--workload", self.workload]
        for k, v in self.params.items():
            argv += ["--param", f"{k}={v}"]
        for n, _, vals in self.vary:
            argv += ["--vary", f"{n}=" + ",".join(str(v) for v in vals)]
        s = self.seeds
        argv += ["--seeds", str(len(s)) if list(s) == list(range(len(s))) else ",".join(map(str, s))]
        argv += ["--engine", self.engine, "--x", axes[0]]
        if len(axes) > 1:
            argv += ["--y", axes[1]]
        argv += ["--metric", metric]
        for k, v in pinned.items():
            argv += ["--at", f"{k}={v}"]
        return argv


class SweepTable(pd.DataFrame):
    """What :func:`sweep` returns: the tidy table of :func:`sgxlab.sim.sweep.sweep` (one
    row per run; a :class:`pandas.DataFrame` for everything else) that knows its sweep
    (:attr:`spec`), with :meth:`plot_crossover` and :meth:`plot_winner`.
    :meth:`load` reads a sweep's ``out`` folder back."""

    _metadata: ClassVar[list[str]] = ["_sgx_sweep"]

    @property
    def _constructor(self) -> type[SweepTable]:
        return SweepTable

    @classmethod
    def of(cls, table: pd.DataFrame, spec: SweepSpec) -> SweepTable:
        t = cls(table)
        object.__setattr__(t, "_sgx_sweep", spec)
        t.attrs["varied"] = [spec.column(n) for n, _, _ in spec.vary]
        return t

    @classmethod
    def load(cls, folder: str | Path) -> SweepTable:
        """The table a finished sweep left in ``folder`` (``sweep.json`` and ``sweep.csv``)."""
        import io
        import json

        from sgxlab.files import read_user_text

        d = Path(folder)
        if not d.is_dir():
            raise ConfigError("sweep", str(d), "not a folder (give the --out folder of `sgxlab sweep`)")
        try:
            manifest = json.loads(read_user_text(d / "sweep.json", "sweep"))
        except json.JSONDecodeError as e:
            raise ConfigError("sweep", str(d / "sweep.json"), f"not valid JSON: {e}") from None
        csv = d / "sweep.csv"
        if not csv.is_file():
            raise ConfigError("sweep", str(csv), "missing: the sweep has not finished (run it again to resume)")
        table = pd.read_csv(io.StringIO(read_user_text(csv, "sweep", max_bytes=1 << 30)))
        return cls.of(table, SweepSpec.from_manifest(manifest))

    @property
    def spec(self) -> SweepSpec:
        s = getattr(self, "_sgx_sweep", None)
        if not isinstance(s, SweepSpec):
            raise ConfigError(
                "sweep", type(self).__name__, "this table has lost its sweep settings; run sgxlab.sweep()"
            )
        return s

    def _select(
        self, axes: Sequence[str], metric: str, at: Mapping[str, Any] | None
    ) -> tuple[pd.DataFrame, list[str], dict[str, Any]]:
        spec = self.spec
        cols = [spec.column(a) for a in axes]
        if len(set(cols)) != len(cols):
            raise ConfigError("y", axes[-1], "must differ from x")
        if metric not in self.columns or metric in ("design", "workload", "engine"):
            numeric = [c for c in self.columns if pd.api.types.is_numeric_dtype(self[c]) and c != "seed"]
            raise ConfigError("metric", metric, f"not a numeric column of the sweep ({', '.join(numeric)})")
        if not pd.api.types.is_numeric_dtype(self[metric]):
            raise ConfigError("metric", metric, "not a numeric column")
        table = pd.DataFrame(self)
        pinned: dict[str, Any] = {}
        given = {spec.column(k): v for k, v in (at or {}).items()}
        for n, _, _vals in spec.vary:
            col = spec.column(n)
            if col in cols:
                continue
            present = list(dict.fromkeys(table[col].tolist()))
            if col in given:
                want = given[col]
                match = [v for v in present if str(v) == str(want) or _same_number(v, want)]
                if not match:
                    raise ConfigError(f"at {col}", want, f"not a value of the sweep ({', '.join(map(str, present))})")
                table = table[table[col] == match[0]]
                pinned[col] = match[0]
            elif len(present) > 1:
                raise ConfigError(
                    "at",
                    col,
                    f"is varied too ({', '.join(map(str, present))}); fix it with at={{{col!r}: value}} "
                    f"(command line: --at {col}=VALUE)",
                )
            elif present:
                pinned[col] = present[0]
        return table, cols, pinned

    def plot_crossover(self, x: str, metric: str = "overhead_cycles", *, at: Mapping[str, Any] | None = None) -> Figure:
        """Each design's ``metric`` against varied parameter ``x``, crossovers marked and
        labelled (:func:`plots.plot_crossover`); other varied parameters are fixed with ``at``."""
        table, cols, pinned = self._select([x], metric, at)
        spec = self.spec
        fig = plots.plot_crossover(table, cols[0], metric, caption=spec.caption(pinned))
        config = json_text({"sweep": _spec_dict(spec), "x": cols[0], "metric": metric, "at": pinned})
        command = spec.command("crossover", metric, cols, pinned)
        return attach_provenance(fig, Provenance(f"{metric} against {cols[0]}", config, command, __version__))

    def plot_winner(
        self,
        x: str,
        y: str,
        metric: str = "overhead_cycles",
        *,
        at: Mapping[str, Any] | None = None,
        lower_is_better: bool = True,
    ) -> Figure:
        """The best design at each point of varied parameters ``x`` and ``y`` as a heatmap in
        the designs' colours (:func:`plots.plot_winner`); others fixed with ``at``."""
        table, cols, pinned = self._select([x, y], metric, at)
        spec = self.spec
        fig = plots.plot_winner(
            table, cols[0], cols[1], metric, lower_is_better=lower_is_better, caption=spec.caption(pinned)
        )
        config = json_text({"sweep": _spec_dict(spec), "x": cols[0], "y": cols[1], "metric": metric, "at": pinned})
        command = spec.command("winner", metric, cols, pinned)
        return attach_provenance(fig, Provenance(f"best design by {metric}", config, command, __version__))


def _same_number(a: Any, b: Any) -> bool:
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return False


def _spec_dict(spec: SweepSpec) -> dict[str, Any]:
    return {
        "designs": list(spec.designs),
        "workload": spec.workload,
        "params": dict(spec.params),
        "costs": dict(spec.costs),
        "vary": [[n, k, list(v)] for n, k, v in spec.vary],
        "seeds": list(spec.seeds),
        "engine": spec.engine,
    }


def json_text(obj: Mapping[str, Any]) -> str:
    import json

    return json.dumps(obj, indent=2, default=str) + "\n"


def sweep(
    designs: Iterable[str | type[Design]] | str | type[Design] | None = None,
    workload: str = "workshop",
    vary: Mapping[str, object] | None = None,
    **kwargs: Any,
) -> SweepTable:
    """:func:`sgxlab.sim.sweep.sweep` (same arguments), as a :class:`SweepTable`: the same
    tidy DataFrame, with :meth:`~SweepTable.plot_crossover` and :meth:`~SweepTable.plot_winner`."""
    from sgxlab.sim.sweep import sweep as run_sweep

    table = run_sweep(designs, workload, vary, **kwargs)
    manifest = table.attrs.pop("manifest")
    return SweepTable.of(table, SweepSpec.from_manifest(manifest))
