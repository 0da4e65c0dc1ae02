"""The workload and design runner's model: choose, run, compare, draw.

Choose a workload and its parameters (each VM's ``lewr`` and ``lehash`` and
the host policy included), the designs, a cost preset and any cost;
:meth:`RunnerModel.run` runs every design on every seed (checking a cancel
flag between runs and reporting progress) and returns a
:class:`~sgxlab.present.result.Comparison`; :meth:`RunnerModel.figures` draws
it. Every setter validates first and changes nothing on a bad value. No widgets here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sgxlab.errors import Cancelled, ConfigError
from sgxlab.host.designs import DESIGNS
from sgxlab.present.export import CompareSpec
from sgxlab.present.result import EXACT_RERUN_MAX, Comparison, Result, run_trace
from sgxlab.sim.costs import COST_PARAMS, CostModel, preset_names
from sgxlab.sim.result import RunConfig, flatten_summary
from sgxlab.sim.run import design_ref, resolve_design
from sgxlab.sim.trace import LAUNCH, Trace
from sgxlab.sim.workloads import make_workload, workload_names, workload_params

__all__ = [
    "RunnerModel",
    "RunOutcome",
    "VmChoice",
    "Cancelled",
    "VM_LEHASH",
    "SUMMARY_COLUMNS",
    "FIGURES",
]

VM_LEHASH = ("own", "intel", "host-approved")
"""A VM's initial hash: its own (first) signer's, as the workload makes it; Intel's; or the
host's first signer's, which every host policy built from the workload approves."""

SUMMARY_COLUMNS = (
    "wrmsr",
    "rdmsr",
    "failures_total",
    "retries",
    "refusals",
    "vms_refused",
    "bypasses",
    "latency_p99",
    "overhead_cycles",
)
"""The columns of the runner's summary table (means over the seeds)."""

FIGURES = ("msr traffic", "latency", "timeline")
MAX_SEEDS = 50


@dataclass(frozen=True, slots=True)
class VmChoice:
    """One VM's ``lewr`` and initial hash (one of :data:`VM_LEHASH`)."""

    lewr: bool
    lehash: str = "own"


@dataclass
class RunOutcome:
    """A finished run: the comparison, and, when VMs were changed from the workload's
    own layout, the exact per-launch latencies (the comparison's settings cannot name
    the changes, so its own re-runs could not reproduce them)."""

    comparison: Comparison
    vm_changes: dict[int, VmChoice]
    latencies: dict[str, np.ndarray] | None = None
    figures: dict[str, Figure] = field(default_factory=dict)

    def summary(self) -> pd.DataFrame:
        """Means over the seeds, one row per design, :data:`SUMMARY_COLUMNS`."""
        df = pd.DataFrame(self.comparison)
        cols = [c for c in SUMMARY_COLUMNS if c in df.columns]
        out = df.groupby("design", sort=False)[cols].mean()
        return out.reset_index()


class RunnerModel:
    """The runner's settings and its last :class:`RunOutcome` (``outcome``)."""

    def __init__(self, workload: str = "workshop") -> None:
        self.workload = ""
        self.params: dict[str, Any] = {}
        self.designs: list[str] = list(DESIGNS)
        self.preset = "default"
        self.cost_overrides: dict[str, int] = {}
        self.seeds = 1
        self.engine = "fast"
        self.vm_changes: dict[int, VmChoice] = {}
        self.outcome: RunOutcome | None = None
        self.set_workload(workload)

    # -- choices ------------------------------------------------------------------------

    @staticmethod
    def workload_names() -> list[str]:
        return [n for n in workload_names() if ":" not in n and n != "trace"]

    @staticmethod
    def preset_names() -> list[str]:
        return ["default", *preset_names()]

    @staticmethod
    def design_names() -> list[str]:
        return list(DESIGNS)

    def param_specs(self) -> list[dict[str, Any]]:
        """The workload's parameters (name, type, default, doc, bounds), ``policy`` excluded."""
        return [p for p in workload_params(self.workload) if p["name"] != "policy"]

    def values(self) -> dict[str, Any]:
        """Every parameter of the workload with its current value."""
        return dict(make_workload(self.workload, self.params).values)

    def set_workload(self, name: str) -> None:
        if name not in self.workload_names():
            raise ConfigError("workload", name, f"expected one of {', '.join(self.workload_names())}")
        make_workload(name, {})
        self.workload = name
        self.params = {}
        self.vm_changes = {}

    def set_param(self, name: str, value: object) -> None:
        """One workload parameter (a value or its text); checked by the workload itself."""
        params = {**self.params, name: value}
        values = make_workload(self.workload, params).values  # ConfigError naming the parameter
        self.params[name] = values[name]
        self.vm_changes = {j: c for j, c in self.vm_changes.items() if j < self.vm_count()}

    @property
    def has_policy(self) -> bool:
        return any(p["name"] == "policy" for p in workload_params(self.workload))

    def policy_choices(self) -> list[str]:
        """The host policies this workload's ``policy`` parameter accepts (none if it has none)."""
        for p in workload_params(self.workload):
            if p["name"] == "policy":
                return [str(c) for c in p.get("choices") or ()]
        return []

    @property
    def policy(self) -> str | None:
        return str(self.values()["policy"]) if self.has_policy else None

    def set_policy(self, name: str) -> None:
        if not self.has_policy:
            raise ConfigError("policy", name, f"workload {self.workload} has no host policy parameter")
        self.set_param("policy", name)

    def set_designs(self, designs: list[str] | tuple[str, ...]) -> None:
        chosen = list(designs)
        if not chosen:
            raise ConfigError("designs", [], "choose at least one design")
        for d in chosen:
            resolve_design(d)
        self.designs = chosen

    def set_preset(self, name: str) -> None:
        """Start from cost preset ``name`` (``default``: the built-in costs); the costs
        changed by hand are dropped, so every cost is the preset's."""
        if name != "default":
            CostModel.preset(name)
        self.preset = name
        self.cost_overrides = {}

    def set_cost(self, name: str, value: object) -> None:
        if name not in COST_PARAMS:
            raise ConfigError("cost", name, f"expected one of {', '.join(COST_PARAMS)}")
        model = self.cost_model().with_overrides({name: value})
        self.cost_overrides[name] = int(getattr(model, name))

    def cost_model(self) -> CostModel:
        base = CostModel() if self.preset == "default" else CostModel.preset(self.preset)
        return base.with_overrides(self.cost_overrides) if self.cost_overrides else base

    def set_seeds(self, n: int) -> None:
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_SEEDS:
            raise ConfigError("seeds", n, f"expected a number of seeds in 1..{MAX_SEEDS}")
        self.seeds = n

    def set_engine(self, engine: str) -> None:
        if engine not in ("fast", "exact"):
            raise ConfigError("engine", engine, "expected fast or exact")
        self.engine = engine

    # -- the VMs -------------------------------------------------------------------------

    def vm_count(self) -> int:
        v = self.values()
        return int(v.get("vms", 0))

    def vm_layout(self) -> list[VmChoice]:
        """Each VM's ``lewr`` and hash: the workload's (the last ``nolewr`` VMs have none), then the changes."""
        v = self.values()
        n = int(v.get("vms", 0))
        nolewr = int(v.get("nolewr", 0))
        return [self.vm_changes.get(j, VmChoice(j < n - nolewr, "own")) for j in range(n)]

    def set_vm(self, vm: int, *, lewr: bool | None = None, lehash: str | None = None) -> None:
        """Change VM ``vm``'s ``lewr`` and/or initial hash (:data:`VM_LEHASH`)."""
        n = self.vm_count()
        if isinstance(vm, bool) or not isinstance(vm, int) or not 0 <= vm < n:
            raise ConfigError("vm", vm, f"this workload has VMs 0..{n - 1}" if n else "this workload has no VMs")
        cur = self.vm_layout()[vm]
        new = VmChoice(cur.lewr if lewr is None else bool(lewr), cur.lehash if lehash is None else lehash)
        if new.lehash not in VM_LEHASH:
            raise ConfigError(f"vm{vm} lehash", new.lehash, f"expected one of {', '.join(VM_LEHASH)}")
        if new.lehash == "host-approved" and int(self.values().get("host_signers", 0)) < 1:
            raise ConfigError(f"vm{vm} lehash", new.lehash, f"workload {self.workload} has no host signers")
        if not new.lewr and new.lehash == "intel":
            raise ConfigError(
                f"vm{vm} lehash",
                "intel",
                "a VM without lewr keeps Intel's hash and could launch only Intel-signed enclaves, which "
                "sgxlab has none of: give it lewr or another hash",
            )
        base = VmChoice(vm < n - int(self.values().get("nolewr", 0)), "own")
        if new == base:
            self.vm_changes.pop(vm, None)
        else:
            self.vm_changes[vm] = new

    def apply_vm_changes(self, trace: Trace, changes: Mapping[int, VmChoice] | None = None) -> Trace:
        """``trace`` with the VM changes (default: the model's): new :class:`VmSpec` s; a VM
        without lewr launches only its hash's signer, so its launches are given that signer."""
        changes = self.vm_changes if changes is None else changes
        if not changes:
            return trace
        specs = list(trace.vms)
        signer = trace.signer.copy()
        for j, c in changes.items():
            spec = specs[j]
            own = spec.lehash
            lehash = {"own": own, "intel": -1, "host-approved": 0}[c.lehash]
            specs[j] = dataclasses.replace(spec, lewr=c.lewr, lehash=lehash)
            if not c.lewr:
                signer[(trace.vm == j) & (trace.kind == LAUNCH)] = lehash
        out = dataclasses.replace(trace, vms=tuple(specs), signer=signer, params=dict(trace.params))
        out.validate()
        return out

    # -- running -------------------------------------------------------------------------

    def spec(self) -> CompareSpec:
        return CompareSpec.build(
            self.designs, self.workload, self.params, self.cost_model(), self.seeds, self.engine, None, False
        )

    def plan(self) -> list[tuple[int, str]]:
        """The runs, seed-major: ``(seed, design)``."""
        return [(s, d) for s in range(self.seeds) for d in self.designs]

    def run(
        self,
        progress: Callable[[int, int, str], None] | None = None,
        cancel: Callable[[], bool] | None = None,
    ) -> RunOutcome:
        """Run every design on every seed; ``progress(done, total, what)`` after each run;
        ``cancel()`` is asked before each run and stops with :class:`Cancelled`."""
        # A snapshot: the settings may change (in the view) while this runs.
        spec = self.spec()
        costs = self.cost_model()
        workload, params, changes, engine = self.workload, dict(self.params), dict(self.vm_changes), self.engine
        designs = list(self.designs)
        classes = {d: resolve_design(d) for d in designs}
        plan = [(s, d) for s in range(self.seeds) for d in designs]
        want_lat = bool(changes)
        rows: list[dict[str, Any]] = []
        latencies: dict[str, list[np.ndarray]] = {d: [] for d in designs}
        exact_runs: dict[tuple[str, int], Result] = {}
        trace: Trace | None = None
        trace_seed = -1
        for i, (seed, d) in enumerate(plan):
            if cancel is not None and cancel():
                raise Cancelled(f"cancelled after {i} of {len(plan)} runs")
            if seed != trace_seed:
                trace = self.apply_vm_changes(make_workload(workload, params).trace(seed), changes)
                trace_seed = seed
            assert trace is not None
            cls = classes[d]
            config = RunConfig(design_ref(cls), workload, dict(spec.params), costs.as_dict(), seed, engine)
            res = run_trace(trace, cls, costs, engine=engine, records=False, seed=seed, config=config)
            rows.append(flatten_summary(res.summary()))
            if want_lat and engine != "exact":
                if trace.launches > EXACT_RERUN_MAX:
                    raise ConfigError("engine", engine, "changed VMs need the exact engine for latencies")
                res = run_trace(trace, cls, costs, engine="exact", records=False, seed=seed, config=config)
            if want_lat:
                latencies[d].append(np.asarray(res.latencies))
            if res.simulation is not None:
                exact_runs[(res.label, seed)] = res
            if progress is not None:
                progress(i + 1, len(plan), f"{d}, seed {seed}")
        table = _table(rows)
        # The comparison keeps the exact runs, so its figures reuse them instead of re-running
        # (and re-generating the trace without the VM changes).
        comparison = Comparison.of(
            table, spec, {lab: classes[d] for d, lab in zip(designs, spec.labels)}, runs=exact_runs or None
        )
        lat = None
        if want_lat:
            lat = {lab: np.concatenate(latencies[d]) for d, lab in zip(designs, spec.labels)}
        self.outcome = RunOutcome(comparison, changes, lat)
        return self.outcome

    def figures(
        self,
        outcome: RunOutcome | None = None,
        *,
        which: tuple[str, ...] = FIGURES,
        cancel: Callable[[], bool] | None = None,
    ) -> dict[str, Figure]:
        """Draw the outcome's figures (kept in ``outcome.figures``): MSR traffic, the latency
        CDF and, where the presentation layer has it and no VM was changed, the CPU timeline."""
        out = outcome if outcome is not None else self.outcome
        if out is None:
            raise ConfigError("run", None, "nothing has run yet: press Run")
        c = out.comparison
        for name in which:
            if cancel is not None and cancel():
                raise Cancelled("cancelled while drawing")
            if name in out.figures:
                continue
            if name == "msr traffic":
                out.figures[name] = c.plot_msr_traffic()
            elif name == "latency":
                out.figures[name] = c.plot_latency()
            elif name == "timeline" and not out.vm_changes:
                failed = [d for d in c.designs if int(c[c["design"] == d]["failures_total"].sum()) > 0]
                design = failed[0] if failed else c.spec.baseline
                out.figures[name] = c.plot_timeline(design=design, seed=c.seeds[0])
        return out.figures


def _table(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Rows of flattened summaries as one table; failure columns aligned (0 where a run had none)."""
    df = pd.DataFrame(rows)
    fails = sorted({c for r in rows for c in r if c.startswith("failures_") and c != "failures_total"})
    for c in fails:
        df[c] = df[c].fillna(0).astype("int64")
    cols = [c for c in df.columns if c not in fails]
    at = cols.index("failures_total") + 1 if "failures_total" in cols else len(cols)
    return df[cols[:at] + fails + cols[at:]]
