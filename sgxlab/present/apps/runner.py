"""The workload and design runner app: parameters, VMs, policy, designs, costs; Run, progress, cancel; figures, summary, export.

A thin ipywidgets view over :class:`~sgxlab.present.apps.runner_model.RunnerModel`;
``runner()`` returns the app, which displays itself in Jupyter. Runs and
figures are computed off the kernel's thread; Cancel stops between runs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from sgxlab.errors import ConfigError, SgxlabError
from sgxlab.present.apps.export_model import ExportModel
from sgxlab.present.apps.export_panel import export_widgets
from sgxlab.present.apps.runner_model import FIGURES, VM_LEHASH, Cancelled, RunnerModel
from sgxlab.present.apps.ui import (
    CSS_FIGURE,
    CSS_LEWR,
    CSS_POLICY,
    CSS_RUN,
    CSS_SUMMARY,
    App,
    ErrorLine,
    W,
    Worker,
    esc,
    figure_png,
    html_table,
)
from sgxlab.present.apps.vm_model import policy_names
from sgxlab.sim.costs import COST_PARAMS

__all__ = ["runner", "Runner"]


class Runner(App[RunnerModel]):
    """The runner (see the module docstring). ``worker`` runs the jobs, ``export`` is the
    embedded export panel's model, :meth:`cancel` asks the running job to stop."""

    def __init__(
        self,
        model: RunnerModel,
        widgets: dict[str, Any],
        root: Any,
        worker: Worker,
        export: ExportModel,
        cancel_flag: threading.Event,
    ) -> None:
        super().__init__(model, widgets, root)
        self.worker = worker
        self.export = export
        self.cancel_flag = cancel_flag

    def cancel(self) -> None:
        self.cancel_flag.set()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the running job (tests, scripts)."""
        self.worker.join(timeout)


def _cost_max(default: int) -> int:
    return max(10 * default, 1000)


def runner(*, background: bool = True, folder: str = ".") -> Runner:
    """The runner; ``background=False`` runs jobs inline (tests); ``folder``: where exports go."""
    model = RunnerModel()
    worker = Worker(background)
    export = ExportModel(model, folder)
    err = ErrorLine()
    cancel_flag = threading.Event()
    figures = list(FIGURES)
    w: dict[str, Any] = {
        "workload": W.Dropdown(options=model.workload_names(), value=model.workload, description="workload"),
        "params": W.VBox([]),
        "policy": W.Dropdown(
            options=model.policy_choices() or list(policy_names()), value=model.policy, description="policy"
        ),
        "vms": W.VBox([]),
        "designs": W.SelectMultiple(
            options=model.design_names(), value=tuple(model.designs), description="designs", rows=5
        ),
        "preset": W.Dropdown(options=model.preset_names(), value=model.preset, description="costs"),
        "costs": W.VBox([]),
        "seeds": W.Text(value=str(model.seeds), description="seeds", continuous_update=False),
        "engine": W.ToggleButtons(options=["fast", "exact"], value=model.engine),
        "run": W.Button(description="Run", button_style="primary", icon="play"),
        "cancel": W.Button(description="Cancel", icon="stop", disabled=True),
        "progress": W.IntProgress(value=0, min=0, max=1, description="progress"),
        "status": W.HTML(value=""),
        "figure_choice": W.ToggleButtons(options=figures, value=figures[0]),
        "figure": W.Image(value=b"", format="png", layout=W.Layout(max_width="100%")),
        "figure_note": W.HTML(value=""),
        "summary": W.HTML(value="<i>press Run</i>"),
        "error": err.widget,
    }
    w["policy"].add_class(CSS_POLICY)
    w["run"].add_class(CSS_RUN)
    w["figure"].add_class(CSS_FIGURE)
    w["summary"].add_class(CSS_SUMMARY)
    param_fields: dict[str, Any] = {}
    cost_fields: dict[str, tuple[Any, Any]] = {}
    vm_fields: dict[str, Any] = {}

    # -- building the variable parts -------------------------------------------------

    def forget(prefix: str) -> None:
        for k in [k for k in w if k.startswith(prefix)]:
            del w[k]

    def build_params() -> None:
        param_fields.clear()
        forget("param_")
        values = model.values()
        rows = []
        for p in model.param_specs():
            t = W.Text(
                value=str(values[p["name"]]),
                description=p["name"],
                tooltip=p["doc"],
                continuous_update=False,
                style={"description_width": "initial"},
            )
            t.observe(lambda c, n=p["name"]: set_param(n, c["new"]), names="value")
            param_fields[p["name"]] = t
            w[f"param_{p['name']}"] = t
            rows.append(t)
        w["params"].children = rows
        w["policy"].disabled = not model.has_policy
        choices = model.policy_choices()
        if choices and list(w["policy"].options) != choices:
            w["policy"].options = choices
        if model.policy is not None and w["policy"].value != model.policy:
            w["policy"].value = model.policy

    def build_vms() -> None:
        vm_fields.clear()
        forget("vm_")
        rows = []
        for j, c in enumerate(model.vm_layout()):
            lewr = W.Checkbox(value=c.lewr, description=f"vm{j} lewr", indent=False)
            lewr.add_class(CSS_LEWR)
            lehash = W.Dropdown(options=list(VM_LEHASH), value=c.lehash, description="lehash")
            lewr.observe(lambda ch, j=j: set_vm(j, lewr=bool(ch["new"])), names="value")
            lehash.observe(lambda ch, j=j: set_vm(j, lehash=ch["new"]), names="value")
            vm_fields[f"vm{j}_lewr"] = w[f"vm_{j}_lewr"] = lewr
            vm_fields[f"vm{j}_lehash"] = w[f"vm_{j}_lehash"] = lehash
            rows.append(W.HBox([lewr, lehash]))
        w["vms"].children = rows or [W.HTML("<i>this workload has no VMs</i>")]

    def build_costs() -> None:
        cm = model.cost_model()
        rows = []
        for name, p in COST_PARAMS.items():
            v = int(getattr(cm, name))
            if name not in cost_fields:
                s = W.IntSlider(
                    value=v,
                    min=0,
                    max=max(_cost_max(p.default), v),
                    description=name,
                    continuous_update=False,
                    style={"description_width": "initial"},
                )
                t = W.Text(value=str(v), continuous_update=False, layout=W.Layout(width="9em"))
                s.observe(lambda c, n=name: set_cost(n, c["new"]), names="value")
                t.observe(lambda c, n=name: set_cost(n, c["new"]), names="value")
                cost_fields[name] = (s, t)
                w[f"cost_{name}"], w[f"cost_{name}_text"] = s, t
            s, t = cost_fields[name]
            if s.max < v:
                s.max = v
            if s.value != v:
                s.value = v
            if t.value != str(v):
                t.value = str(v)
            rows.append(W.HBox([s, t]))
        w["costs"].children = rows

    # -- changes ---------------------------------------------------------------------------

    def set_param(name: str, value: object) -> None:
        if err.guard(param_fields.get(name), lambda: model.set_param(name, value)) and name in ("vms", "nolewr"):
            build_vms()

    def set_vm(j: int, **kw: Any) -> None:
        field = vm_fields.get(f"vm{j}_{next(iter(kw))}")
        if not err.guard(field, lambda: model.set_vm(j, **kw)):
            return
        c = model.vm_layout()[j]
        vm_fields[f"vm{j}_lewr"].value = c.lewr
        vm_fields[f"vm{j}_lehash"].value = c.lehash

    def set_cost(name: str, value: object) -> None:
        s, t = cost_fields[name]
        if err.guard(t, lambda: model.set_cost(name, value)):
            build_costs()

    def on_workload(c: dict[str, Any]) -> None:
        if err.guard(w["workload"], lambda: model.set_workload(c["new"])):
            build_params()
            build_vms()

    w["workload"].observe(on_workload, names="value")
    w["policy"].observe(lambda c: err.guard(w["policy"], lambda: model.set_policy(c["new"])), names="value")
    w["designs"].observe(lambda c: err.guard(w["designs"], lambda: model.set_designs(c["new"])), names="value")
    w["engine"].observe(lambda c: err.guard(w["engine"], lambda: model.set_engine(c["new"])), names="value")

    def on_preset(c: dict[str, Any]) -> None:
        if err.guard(w["preset"], lambda: model.set_preset(c["new"])):
            build_costs()

    w["preset"].observe(on_preset, names="value")

    def on_seeds(c: dict[str, Any]) -> None:
        def set_seeds() -> None:
            text = str(c["new"]).strip()
            try:
                n = int(text)
            except ValueError:
                raise ConfigError("seeds", text, "expected a whole number of seeds") from None
            model.set_seeds(n)

        err.guard(w["seeds"], set_seeds)

    w["seeds"].observe(on_seeds, names="value")

    # -- running ---------------------------------------------------------------------------

    ew, eroot, refresh_export = export_widgets(export, lambda: worker.busy)
    for k, v in ew.items():
        w[k] = v

    pngs: dict[str, bytes] = {}  # the last outcome's figures, rendered once, off the kernel's thread
    missing: dict[str, str] = {}  # figures this outcome cannot have, and why

    def show_figure() -> None:
        """Show the chosen figure; draw it on the worker first if it is not drawn yet."""
        name = w["figure_choice"].value
        export.set_figure(name)
        png = pngs.get(name)
        if png is not None:
            w["figure"].value = png
            w["figure_note"].value = ""
        elif name in missing:
            w["figure_note"].value = f"<i>{esc(missing[name])}</i>"
        elif model.outcome is not None and not worker.busy:
            cancel_flag.clear()
            w["status"].value = f"drawing {esc(name)}…"
            worker.start(figure_job)

    w["figure_choice"].observe(lambda _: show_figure(), names="value")

    def show_summary() -> None:
        out = model.outcome
        if out is None:
            return
        df = out.summary()
        rows = [[r["design"], *(f"{r[c]:,.0f}" for c in df.columns[1:])] for _, r in df.iterrows()]
        seeds = out.comparison.seeds
        note = f"<i>means over {len(seeds)} seed{'s' if len(seeds) != 1 else ''}"
        if out.vm_changes:
            note += "; VMs changed by hand: " + ", ".join(f"vm{j}" for j in sorted(out.vm_changes))
        w["summary"].value = html_table(list(df.columns), rows) + note + "</i>"

    def draw_chosen() -> None:
        """Draw the chosen figure of the last outcome, and again if the choice changed meanwhile."""
        out = model.outcome
        while out is not None:
            name = w["figure_choice"].value
            if name in pngs or name in missing:
                break
            w["status"].value = f"drawing {esc(name)}…"
            drawn = model.figures(out, which=(name,), cancel=cancel_flag.is_set)
            if name in drawn:
                pngs[name] = figure_png(drawn[name])
            else:
                missing[name] = "no timeline for VMs changed by hand: its exact re-run could not reproduce them"
            if w["figure_choice"].value == name:
                show_figure()
        w["status"].value = "done"

    def guarded(steps: Callable[[], None]) -> None:
        try:
            steps()
        except Cancelled as e:
            w["status"].value = f"<i>{esc(e)}</i>"
        except SgxlabError as e:
            err.show(str(e))
            w["status"].value = ""
        except Exception as e:  # a bug: say so in place, and keep it for worker.error
            err.show(f"internal error: {type(e).__name__}: {e}")
            w["status"].value = ""
            raise
        finally:
            w["run"].disabled = False
            w["cancel"].disabled = True

    def figure_job() -> None:
        guarded(draw_chosen)

    def run_steps() -> None:
        runs = len(model.plan())
        w["progress"].max = runs + 1
        w["progress"].value = 0

        def progress(done: int, _total: int, what: str) -> None:
            w["progress"].value = done
            w["status"].value = f"ran {esc(what)}"

        model.run(progress=progress, cancel=cancel_flag.is_set)
        pngs.clear()
        missing.clear()
        show_summary()
        refresh_export()
        draw_chosen()  # the other figures are drawn when chosen
        w["progress"].value = runs + 1

    def job() -> None:
        guarded(run_steps)

    def on_run(_: object) -> None:
        if worker.busy:
            w["status"].value = "<i>busy: press Run again when the current job is done</i>"
            return
        err.clear()
        cancel_flag.clear()
        w["run"].disabled = True
        w["cancel"].disabled = False
        w["status"].value = "running…"
        worker.start(job)

    w["run"].on_click(on_run)
    w["cancel"].on_click(lambda _: cancel_flag.set())
    build_params()
    build_vms()
    build_costs()
    settings = W.Accordion(
        children=[
            W.VBox([w["workload"], w["params"]]),
            W.VBox([w["policy"], w["vms"]]),
            W.VBox([w["designs"], w["preset"], w["costs"], w["seeds"], w["engine"]]),
        ],
        titles=("workload", "host policy and VMs", "designs and costs"),
    )
    settings.selected_index = 0
    results = W.Tab(
        children=[W.VBox([w["figure_choice"], w["figure_note"], w["figure"]]), w["summary"], eroot],
        titles=("figures", "summary", "export"),
    )
    root = W.VBox(
        [
            W.HTML("<b>Workload and design runner</b>"),
            settings,
            W.HBox([w["run"], w["cancel"], w["progress"], w["status"]]),
            w["error"],
            results,
        ]
    )
    return Runner(model, w, root, worker, export, cancel_flag)
