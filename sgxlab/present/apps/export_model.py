"""The export panel's model: save the current figure and the mailing-list text to a folder.

It reads the runner's last outcome (:class:`~sgxlab.present.apps.runner_model.RunnerModel`),
writes through :func:`sgxlab.present.export.save_figure` and
:meth:`~sgxlab.present.result.Comparison.to_mailing_list` (atomic writes),
and gives the command that reproduces the comparison. No widgets here.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from sgxlab.errors import ConfigError
from sgxlab.files import check_writable, write_atomic
from sgxlab.present.apps.runner_model import FIGURES, RunnerModel, RunOutcome
from sgxlab.present.export import save_figure

__all__ = ["ExportModel", "FIGURE_FORMATS"]

FIGURE_FORMATS = ("png", "svg")


def _stem(name: str) -> str:
    return name.replace(" ", "-")


class ExportModel:
    """Exports of ``runner``'s last outcome into ``folder`` (default: the current folder)."""

    def __init__(self, runner: RunnerModel, folder: str | Path = ".") -> None:
        self.runner = runner
        self.folder = Path(".")
        self.figure = FIGURES[0]
        self.set_folder(folder)

    def set_folder(self, folder: str | Path) -> None:
        """Where files go: an existing, writable folder (checked now, by writing nothing)."""
        text = str(folder).strip()
        if not text:
            raise ConfigError("folder", folder, "give a folder")
        p = Path(text).expanduser()
        if not p.is_dir():
            raise ConfigError("folder", text, "no such folder")
        check_writable(p / ".sgxlab-export-check", "folder")
        self.folder = p

    def set_figure(self, name: str) -> None:
        if name not in FIGURES:
            raise ConfigError("figure", name, f"expected one of {', '.join(FIGURES)}")
        self.figure = name

    def _outcome(self) -> RunOutcome:
        out = self.runner.outcome
        if out is None:
            raise ConfigError("export", None, "nothing to export yet: run a comparison first")
        return out

    def save_figure(self, fmt: str) -> Path:
        """Save the current figure as ``fmt`` (png or svg); byte-identical for the same run."""
        if fmt not in FIGURE_FORMATS:
            raise ConfigError("format", fmt, f"expected one of {', '.join(FIGURE_FORMATS)}")
        out = self._outcome()
        figs = out.figures if self.figure in out.figures else self.runner.figures(out, which=(self.figure,))
        fig = figs.get(self.figure)
        if fig is None:
            raise ConfigError("figure", self.figure, "not available for this run")
        return save_figure(fig, self.folder / f"sgxlab-{_stem(self.figure)}.{fmt}")

    def mailing_list_text(self) -> str:
        """The 72-column mailing-list report of the comparison."""
        text = self._outcome().comparison.to_mailing_list()
        changes = self._outcome().vm_changes
        if changes:
            lines = ["", "VMs changed by hand (not in the command above):"]
            lines += [
                f"  vm{j}: lewr={'on' if c.lewr else 'off'}, lehash={c.lehash}" for j, c in sorted(changes.items())
            ]
            text = text.rstrip("\n") + "\n" + "\n".join(lines) + "\n"
        return text

    def save_text(self) -> Path:
        """Save :meth:`mailing_list_text` as ``sgxlab-report.txt``."""
        return write_atomic(self.folder / "sgxlab-report.txt", self.mailing_list_text(), "report")

    def command(self) -> str:
        """The shell command that reproduces the comparison (``sgxlab compare …``)."""
        return shlex.join(self._outcome().comparison.spec.command())
