"""The export panel: buttons that save the current figure (PNG, SVG) and the mailing-list text, and the reproduce command.

A thin ipywidgets view over :class:`~sgxlab.present.apps.export_model.ExportModel`.
The runner embeds it; ``export_panel(runner_app)`` shows it on its own.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sgxlab.present.apps.export_model import ExportModel
from sgxlab.present.apps.runner_model import RunnerModel
from sgxlab.present.apps.ui import App, ErrorLine, W, esc

__all__ = ["export_panel", "ExportPanel", "export_widgets"]


class ExportPanel(App[ExportModel]):
    """The export panel (see the module docstring)."""


def export_widgets(model: ExportModel, busy: Callable[[], bool] | None = None) -> tuple[dict[str, Any], Any, Any]:
    """The panel's controls, its root widget and a ``refresh()`` that shows the reproduce command.
    ``busy()``: a run or a drawing is in progress (then the buttons wait for it)."""
    err = ErrorLine()
    w: dict[str, Any] = {
        "folder": W.Text(value=str(model.folder), description="folder", continuous_update=False),
        "save_png": W.Button(description="Save figure (PNG)", icon="download"),
        "save_svg": W.Button(description="Save figure (SVG)", icon="download"),
        "save_text": W.Button(description="Save mailing-list text", icon="envelope"),
        "saved": W.HTML(value=""),
        "command": W.HTML(value=""),
        "export_error": err.widget,
    }

    def refresh() -> None:
        if model.runner.outcome is None:
            w["command"].value = "<i>run a comparison to get its reproduce command</i>"
        else:
            w["command"].value = f"to reproduce: <code>{esc(model.command())}</code>"

    def saved(path: Path) -> None:
        w["saved"].value = f"saved <code>{esc(path)}</code>"

    def save(fmt: str | None) -> None:
        if busy is not None and busy():
            err.show("a run is in progress: export when it is done")
            return
        out: list[Path] = []
        if err.guard(None, lambda: out.append(model.save_text() if fmt is None else model.save_figure(fmt))):
            saved(out[0])
            refresh()

    w["folder"].observe(lambda c: err.guard(w["folder"], lambda: model.set_folder(c["new"])), names="value")
    w["save_png"].on_click(lambda _: save("png"))
    w["save_svg"].on_click(lambda _: save("svg"))
    w["save_text"].on_click(lambda _: save(None))
    refresh()
    root = W.VBox(
        [
            W.HBox([w["folder"], w["save_png"], w["save_svg"], w["save_text"]]),
            w["export_error"],
            w["saved"],
            w["command"],
        ]
    )
    return w, root, refresh


def export_panel(runner: App[RunnerModel] | RunnerModel, folder: str | Path = ".") -> ExportPanel:
    """Export buttons for a runner app (or a runner model)."""
    model = ExportModel(runner.model if isinstance(runner, App) else runner, folder)
    w, root, refresh = export_widgets(model)
    w["refresh"] = W.Button(description="Refresh")
    w["refresh"].on_click(lambda _: refresh())
    return ExportPanel(model, w, W.VBox([W.HTML("<b>Export</b>"), root, w["refresh"]]))
