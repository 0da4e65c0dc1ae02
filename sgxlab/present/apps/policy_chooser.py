"""The host policy chooser app: created VMs, bypasses and hardware-inconsistent rows, for one policy and for all.

A thin ipywidgets view over :class:`~sgxlab.present.apps.policy_model.PolicyChooserModel`;
``policy_chooser()`` returns the app, which displays itself in Jupyter. The
matrix figure is drawn off the kernel's thread.
"""

from __future__ import annotations

from typing import Any

from sgxlab.present.apps.policy_model import MATRIX_DESIGNS, PolicyChooserModel
from sgxlab.present.apps.ui import (
    CSS_FIGURE,
    CSS_POLICY,
    CSS_SUMMARY,
    App,
    ErrorLine,
    W,
    Worker,
    esc,
    figure_png,
    html_table,
)

__all__ = ["policy_chooser", "PolicyChooser"]


class PolicyChooser(App[PolicyChooserModel]):
    """The policy chooser (see the module docstring); ``worker`` draws the figure."""

    def __init__(self, model: PolicyChooserModel, widgets: dict[str, Any], root: Any, worker: Worker) -> None:
        super().__init__(model, widgets, root)
        self.worker = worker


_CONDITIONS = ("lewr", "lehash", "signer", "provisionkey", "provision")
"""The guest configuration columns of a matrix row (those present are shown)."""


def _yn(v: object) -> str:
    return ("yes" if v else "no") if isinstance(v, bool) else str(v)


def _mark(v: object, alarm: bool) -> str:
    text = "yes" if v else "no"
    return f'<b style="color:#b00020">{text}</b>' if alarm else text


def policy_chooser(*, background: bool = True, model: PolicyChooserModel | None = None) -> PolicyChooser:
    """The policy chooser. The matrix (once per design) and, when the "matrix figure" toggle
    is on, its figure (seconds to draw) are made off the kernel's thread; ``background=False`` makes them inline (tests). ``model``:
    a model to show (its matrices already run are reused)."""
    model = model if model is not None else PolicyChooserModel()
    err = ErrorLine()
    worker = Worker(background)
    w: dict[str, Any] = {
        "policy": W.Dropdown(options=list(model.policy_names()), value=model.policy, description="policy"),
        "design": W.Dropdown(options=list(MATRIX_DESIGNS), value=model.design, description="design"),
        "source": W.HTML(value=""),
        "summary": W.HTML(value=""),
        "rows": W.HTML(value=""),
        "show_figure": W.ToggleButton(value=False, description="matrix figure", icon="image"),
        "figure": W.Image(value=b"", format="png", layout=W.Layout(max_width="100%", display="none")),
        "status": W.HTML(value=""),
        "error": err.widget,
    }
    w["policy"].add_class(CSS_POLICY)
    w["summary"].add_class(CSS_SUMMARY)
    w["figure"].add_class(CSS_FIGURE)
    shown_design: dict[str, str] = {}

    def wanted() -> bool:
        return bool(w["show_figure"].value)

    def job() -> None:
        try:
            steps()
        except Exception as e:  # a bug: say so in place, and keep it for worker.error
            err.show(f"internal error: {type(e).__name__}: {e}")
            w["status"].value = ""
            raise

    def steps() -> None:
        """Run the matrix (first use of a design) and, if asked for, draw its figure, for
        whatever design is chosen when each step ends (the user may change it meanwhile)."""
        while True:
            design = model.design
            model.matrix_for(design)
            tables()
            if wanted() and shown_design.get("figure") != design:
                w["status"].value = "<i>drawing the matrix…</i>"
                png = figure_png(model.figure(design))
                if model.design == design:
                    w["figure"].value = png
                    shown_design["figure"] = design
            if model.design == design and (not wanted() or shown_design.get("figure") == design):
                break
        w["status"].value = ""

    def refresh() -> None:
        stale = shown_design.get("figure") != model.design
        if stale and w["figure"].value:
            w["figure"].value = b""  # never show one design's figure under another's name
        w["figure"].layout.display = "" if wanted() else "none"
        if model.has_matrix():
            tables()
            if not (wanted() and stale):
                return
        else:
            w["status"].value = f"<i>running the policy matrix under {esc(model.design)} on the emulator…</i>"
        worker.start(job)

    def tables() -> None:
        w["source"].value = f"<i>{esc(model.source())}</i>"
        head = ["policy", "VMs created", "bypass rows", "not hardware-consistent"]
        rows = []
        for s in model.summaries():
            name = f"<b>{esc(s.policy)}</b>" if s.policy == model.policy else esc(s.policy)
            bypass = f'<b style="color:#b00020">{s.bypasses}</b>' if s.bypasses else "0"
            odd = f'<b style="color:#b00020">{s.inconsistent}</b>' if s.inconsistent else "0"
            rows.append([name, f"{s.vms_created} of {s.vms}", bypass, odd])
        w["summary"].value = html_table(head, rows, raw=(0, 2, 3))
        rows_now = model.rows()
        given = [c for c in _CONDITIONS if rows_now and c in rows_now[0]]
        extra = [c for c in ("host", "step") if rows_now and c in rows_now[0]]
        cols = [*given, "VM created", "launched", "code", "bypass", "hw-consistent", *extra, "reason"]
        body = []
        for r in rows_now:
            cells = [esc(_yn(r[c])) for c in given]
            cells += [
                _mark(r["vm_created"], False),
                _mark(r["launched"], False),
                esc("" if r["code"] is None else r["code"]),
                _mark(r["bypass"], bool(r["bypass"])),
                _mark(r["hw_consistent"], not r["hw_consistent"]).replace("no", "NO"),
            ]
            cells += [esc(r[c]) for c in extra]
            body.append([*cells, esc(r["reason"])])
        w["rows"].value = html_table(cols, body, raw=tuple(range(len(cols))))

    def update(field: str, value: str) -> None:
        if err.guard(w[field], lambda: model.set(**{field: value})):
            refresh()

    w["policy"].observe(lambda c: update("policy", c["new"]), names="value")
    w["design"].observe(lambda c: update("design", c["new"]), names="value")
    w["show_figure"].observe(lambda _: refresh(), names="value")
    refresh()
    root = W.VBox(
        [
            W.HTML("<b>Host launch policy</b>: which guests run, and what gets through"),
            W.HBox([w["policy"], w["design"], w["show_figure"]]),
            w["source"],
            w["error"],
            w["summary"],
            w["rows"],
            w["status"],
            w["figure"],
        ]
    )
    return PolicyChooser(model, w, root, worker)
