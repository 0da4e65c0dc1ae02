"""The widget helper the apps share: the ipywidgets module, the app wrapper, in-place errors, figures.

ipywidgets has no type information, so it is reached through :data:`W`
(typed ``Any``) here and nowhere else. Everything a view needs more than
once lives here: :class:`App` (displays its root widget, exposes ``model``
and ``widgets``), :class:`ErrorLine` (a refused value shown beside its
field), :func:`figure_png` and :func:`html_table`.

Stable CSS classes for browser tests are the ``CSS_*`` constants; every
view adds them with ``widget.add_class``.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic, TypeVar

import ipywidgets as _ipywidgets  # type: ignore[import-untyped]
from matplotlib.figure import Figure

from sgxlab.errors import SgxlabError
from sgxlab.present.export import figure_bytes

__all__ = [
    "W",
    "App",
    "ErrorLine",
    "Worker",
    "figure_png",
    "html_table",
    "esc",
    "CSS_LEWR",
    "CSS_LEHASH",
    "CSS_POLICY",
    "CSS_RUN",
    "CSS_FIGURE",
    "CSS_SUMMARY",
    "CSS_GUEST_VIEW",
    "CSS_ERROR",
    "CSS_INVALID",
    "FIGURE_DPI",
]

W: Any = _ipywidgets
"""The ipywidgets module (8.x), typed ``Any``: the one place the untyped library is reached."""

CSS_LEWR = "sgxlab-lewr"
CSS_LEHASH = "sgxlab-lehash"
CSS_POLICY = "sgxlab-policy"
CSS_RUN = "sgxlab-run"
CSS_FIGURE = "sgxlab-figure"
CSS_SUMMARY = "sgxlab-summary"
CSS_GUEST_VIEW = "sgxlab-guest-view"
CSS_ERROR = "sgxlab-error"
CSS_INVALID = "sgxlab-invalid"
"""Added to a field while it holds a refused value (the app keeps its last good state)."""

FIGURE_DPI = 80
"""Figures in the apps are drawn at this resolution (exports use the house DPI)."""

M = TypeVar("M")


class App(Generic[M]):
    """One app: its ``model`` (plain state and methods), its named controls
    (``widgets``) and the ``root`` widget that lays them out. In Jupyter the
    app displays as its root widget."""

    def __init__(self, model: M, widgets: Mapping[str, Any], root: Any) -> None:
        self.model = model
        # The view's own dict (not a copy): controls it rebuilds later appear here too.
        self.widgets: dict[str, Any] = widgets if isinstance(widgets, dict) else dict(widgets)
        self.root = root

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.root._repr_mimebundle_(**kwargs)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {type(self.model).__name__}>"


class ErrorLine:
    """An in-place error message for one or more fields.

    :meth:`guard` runs a model update; a :class:`~sgxlab.errors.SgxlabError`
    it raises is shown here (CSS class ``sgxlab-error``) and the field gets
    ``sgxlab-invalid``; the model, which validates before it changes, keeps
    its last good state. Success clears the message.
    """

    def __init__(self) -> None:
        self.widget: Any = W.HTML(value="")
        self.widget.add_class(CSS_ERROR)
        self.widget.layout.display = "none"
        self.message = ""

    def show(self, message: str) -> None:
        self.message = message
        self.widget.value = f'<span style="color:#b00020">&#9888; {esc(message)}</span>'
        self.widget.layout.display = ""

    def clear(self) -> None:
        self.message = ""
        self.widget.value = ""
        self.widget.layout.display = "none"

    def guard(self, field: Any, update: Callable[[], object]) -> bool:
        """Run ``update``; on a typed sgxlab error show it and mark ``field`` invalid.
        Returns whether the update was accepted."""
        try:
            update()
        except SgxlabError as e:
            self.show(str(e))
            if field is not None:
                field.add_class(CSS_INVALID)
                field.layout.border = "2px solid #b00020"
            return False
        self.clear()
        if field is not None:
            field.remove_class(CSS_INVALID)
            field.layout.border = ""
        return True


def esc(text: object) -> str:
    """``text`` escaped for HTML."""
    return html.escape(str(text), quote=True)


def figure_png(fig: Figure, *, dpi: float = FIGURE_DPI) -> bytes:
    """``fig`` as PNG bytes (object API, no pyplot), ready for a ``widgets.Image``."""
    return figure_bytes(fig, "png", dpi=dpi)


def html_table(
    header: Sequence[str], rows: Sequence[Sequence[object]], *, css: str = "", raw: Sequence[int] = ()
) -> str:
    """A small HTML table; cells are escaped except the column indices in ``raw``."""
    head = "".join(f'<th style="text-align:left;padding:2px 8px">{esc(h)}</th>' for h in header)
    body = []
    for r in rows:
        cells = "".join(
            f'<td style="padding:2px 8px;font-family:monospace">{c if i in raw else esc(c)}</td>'
            for i, c in enumerate(r)
        )
        body.append(f"<tr>{cells}</tr>")
    cls = f' class="{esc(css)}"' if css else ""
    return f"<table{cls} style='border-collapse:collapse'><tr>{head}</tr>{''.join(body)}</table>"


class Worker:
    """Runs slow work (a simulation, a figure) off the kernel's thread, one job at a time.

    ``background=False`` runs each job inline, which is how the tests drive
    the views deterministically; :meth:`join` waits for the current job (no
    sleeps). Each app owns its worker: two apps never share one.
    """

    def __init__(self, background: bool = True) -> None:
        self.background = background
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self._inline = False

    @property
    def busy(self) -> bool:
        return self._inline or (self.thread is not None and self.thread.is_alive())

    def start(self, job: Callable[[], None]) -> bool:
        """Start ``job``; returns False (and starts nothing) while a job is running."""
        if self.busy:
            return False
        self.error = None

        def run() -> None:
            try:
                job()
            except BaseException as e:  # kept for the view and the tests; a thread must not die silently
                self.error = e
                if not self.background:
                    raise

        if self.background:
            self.thread = threading.Thread(target=run, name="sgxlab-app-worker", daemon=True)
            self.thread.start()
        else:
            self._inline = True
            try:
                run()
            finally:
                self._inline = False
        return True

    def join(self, timeout: float | None = None) -> None:
        """Wait for the current job (if any) to end."""
        t = self.thread
        if t is not None:
            t.join(timeout)
