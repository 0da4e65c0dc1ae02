"""Progress of long runs: a tqdm bar, or a caller's callback that may cancel.

A run reports ``(done, total)`` steps: one for generating the trace, then
one per design on the fast engine, or one per chunk of trace rows per design
on the exact engine. ``progress`` is ``None`` (a bar only for a long run),
``True`` (always a bar), ``False`` (never) or a callable ``f(done, total)``.

Decisions
---------
* **Quiet by default.** A bar shows only when the run is long
  (:data:`LONG_FAST` launches on the fast engine, :data:`LONG_EXACT` on the
  exact one) or when asked; a small run in a test or a notebook cell prints
  nothing.
* **tqdm.auto**: a widget in Jupyter, text on stderr elsewhere.
* **Cancelling.** A callback may raise :class:`Cancelled` (or anything else);
  the run stops at the next step and the exception propagates. Nothing is
  left half-written: runs write no files.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sgxlab.errors import Cancelled, ConfigError

__all__ = ["Cancelled", "Progress", "ProgressArg", "LONG_FAST", "LONG_EXACT", "EXACT_STEP_ROWS", "is_long"]

LONG_FAST = 1_000_000
"""A fast-engine run of more launches than this shows a bar when ``progress`` is ``None``."""
LONG_EXACT = 50_000
"""An exact-engine run of more launches than this shows a bar when ``progress`` is ``None``."""
EXACT_STEP_ROWS = 1 << 14
"""Trace rows the exact engine replays between two progress reports."""

ProgressArg = bool | Callable[[int, int], None] | None
"""``None``: a bar for long runs only; ``True``/``False``: always/never a bar; a callable: called
with ``(done, total)`` after each step instead of a bar."""


def is_long(engine: str, launches: int) -> bool:
    """Whether a run of ``launches`` on ``engine`` counts as long (see the module docstring)."""
    return launches > (LONG_EXACT if engine == "exact" else LONG_FAST)


class Progress:
    """Reports steps to a bar or a callback (one object per run; nothing global).

    ``total`` may grow once the trace is known (:meth:`add`); ``desc`` names
    the current phase on the bar.
    """

    def __init__(self, progress: ProgressArg, total: int, *, long: bool = False, desc: str = "") -> None:
        if progress is not None and not isinstance(progress, bool) and not callable(progress):
            raise ConfigError("progress", progress, "expected None, True, False or a callable f(done, total)")
        self.done = 0
        self.total = max(int(total), 0)
        self._callback: Callable[[int, int], None] | None = progress if callable(progress) else None
        self._bar: Any = None
        self._auto_mode = progress is None
        self._want_bar = progress is True or (progress is None and long)
        self._desc = desc
        if self._want_bar:
            self._open()

    def _open(self) -> None:
        if self._bar is None:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=self.total, desc=self._desc or None, unit="step", leave=False)

    @property
    def active(self) -> bool:
        """Whether anything is reported (a bar or a callback)."""
        return self._want_bar or self._callback is not None

    def set_long(self, long: bool) -> None:
        """Open the bar now if ``progress`` was ``None`` and the run turned out long."""
        if long and self._auto_mode and not self._want_bar:
            self._want_bar = True
            self._open()

    def add(self, steps: int) -> None:
        """``steps`` more to do."""
        self.total += max(int(steps), 0)
        if self._bar is not None:
            self._bar.total = self.total
            self._bar.refresh()

    def phase(self, desc: str) -> None:
        """Name the current phase on the bar."""
        self._desc = desc
        if self._bar is not None:
            self._bar.set_description_str(desc, refresh=False)

    def step(self, n: int = 1) -> None:
        """``n`` steps done; the callback may raise to cancel."""
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        if self._callback is not None:
            self._callback(self.done, self.total)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
