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
  the exact engine's per-launch data. A fast-engine comparison or result
  re-runs the same configuration on the exact engine for them (the title
  says so), up to :data:`EXACT_RERUN_MAX` launches per run; a larger one is
  a :class:`~sgxlab.errors.ConfigError` naming the engine.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sgxlab import __version__
from sgxlab.errors import ConfigError
from sgxlab.host.designs import DESIGNS, Design, design_label
from sgxlab.kvm.policy import HostPolicy
from sgxlab.present import plots
from sgxlab.present.export import (
    DEFAULT_METRICS,
    CompareSpec,
    export_csv,
    export_json,
    mailing_list_text,
    run_command,
    timeline_text,
)
from sgxlab.present.style import Caption, Provenance, attach_provenance
from sgxlab.present.text import WIDTH, summary_html, summary_text
from sgxlab.sim import run as sim
from sgxlab.sim.costs import CostModel
from sgxlab.sim.exact import RECORDS_DEFAULT_MAX
from sgxlab.sim.result import Result as RunData
from sgxlab.sim.result import RunConfig, flatten_summary
from sgxlab.sim.trace import Trace
from sgxlab.sim.workloads import make_workload

__all__ = ["Result", "Comparison", "run", "run_trace", "replay", "compare", "compare_seeds", "EXACT_RERUN_MAX"]

CostsArg = CostModel | str | Mapping[str, object] | Sequence[str] | None

EXACT_RERUN_MAX = RECORDS_DEFAULT_MAX
"""The most launches a fast-engine run may have for a figure to re-run it on the exact engine."""


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
        cls, table: pd.DataFrame, spec: CompareSpec, classes: Mapping[str, type[Design]] | None = None
    ) -> Comparison:
        """``table`` with its settings; ``classes``: the design classes by label (a class
        defined in a notebook cell cannot be found again by its ``module:Class`` name)."""
        c = cls(table)
        object.__setattr__(c, "_sgx_spec", spec)
        object.__setattr__(c, "_sgx_runs", {})
        object.__setattr__(c, "_sgx_classes", dict(classes or {}))
        return c

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
        runs: dict[tuple[str, int, bool], Result] = found if isinstance(found, dict) else {}
        if runs is not found:
            object.__setattr__(self, "_sgx_runs", runs)
        for key in ((design, seed, True), (design, seed, records)):
            if key in runs:
                return runs[key]
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
) -> Result:
    """Generate ``workload`` and run it under ``design`` (see :func:`sgxlab.sim.run.run`)."""
    return Result.of(sim.run(design, workload, params, costs, seed, engine, records=records, allow_import=allow_import))


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
) -> Result:
    """Run an existing trace (see :func:`sgxlab.sim.run.run_trace`); ``policy`` is a
    :class:`~sgxlab.kvm.policy.HostPolicy` or a policy name (default: the trace's)."""
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
        )
    )


def replay(config: RunConfig, *, records: bool | None = None, allow_import: bool = False) -> Result:
    """Run a saved :class:`~sgxlab.sim.result.RunConfig` again (see :func:`sgxlab.sim.run.replay`)."""
    return Result.of(sim.replay(config, records=records, allow_import=allow_import))


def compare(
    designs: Iterable[str | type[Design]] | None = None,
    workload: str = "workshop",
    params: Mapping[str, object] | None = None,
    costs: CostsArg = None,
    seed: int = 0,
    engine: str = "exact",
    allow_import: bool = False,
    *,
    baseline: str | type[Design] | None = None,
) -> Comparison:
    """One row per design on the same trace (see :func:`sgxlab.sim.run.compare`), as a
    :class:`Comparison` (a DataFrame with figures and exports; ``baseline``: the design
    the mailing-list text compares against, default the first)."""
    chosen = list(designs) if designs is not None else None
    table: pd.DataFrame = sim.compare(chosen, workload, params, costs, seed, engine, allow_import)
    spec = CompareSpec.build(chosen, workload, params, costs, [seed], engine, baseline, allow_import)
    return Comparison.of(table, spec, _design_classes(chosen, allow_import))


def compare_seeds(
    designs: Iterable[str | type[Design]] | None = None,
    workload: str = "workshop",
    params: Mapping[str, object] | None = None,
    costs: CostsArg = None,
    seeds: int | Sequence[int] = 5,
    engine: str = "exact",
    baseline: str | type[Design] | None = None,
    allow_import: bool = False,
) -> Comparison:
    """:func:`compare` once per seed (``seeds``: a list, or a count N for seeds 0..N-1), as one
    tidy :class:`Comparison`: one row per seed and design (seed-major), the columns of
    :func:`compare` (a ``failures_<NAME>`` column seen in one seed is 0 in the others)."""
    chosen = list(designs) if designs is not None else None
    spec = CompareSpec.build(chosen, workload, params, costs, seeds, engine, baseline, allow_import)
    frames = [sim.compare(chosen, workload, params, costs, s, engine, allow_import) for s in spec.seeds]
    return Comparison.of(_stack(frames), spec, _design_classes(chosen, allow_import))


def _design_classes(designs: Sequence[str | type[Design]] | None, allow_import: bool) -> dict[str, type[Design]]:
    classes = [sim.resolve_design(d, allow_import=allow_import) for d in (designs or list(DESIGNS.values()))]
    return {design_label(c): c for c in classes}


def _stack(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Tables of one seed each, stacked; failure columns aligned (0 where a seed had none)."""
    table = pd.concat(frames, ignore_index=True, sort=False)
    fails = sorted({c for c in table.columns if c.startswith("failures_") and c != "failures_total"})
    for c in fails:
        table[c] = table[c].fillna(0).astype("int64")
    cols = [c for c in table.columns if c not in fails]
    at = cols.index("failures_total") + 1 if "failures_total" in cols else len(cols)
    return table[cols[:at] + fails + cols[at:]]
