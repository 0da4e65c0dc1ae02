"""Runs that show themselves: :func:`run`, :func:`compare` and :class:`Result`.

These are the functions behind ``sgxlab.run`` and ``sgxlab.compare``. They
call the simulation layer (:mod:`sgxlab.sim.run`) and wrap what it returns in
a :class:`Result`, which adds the views to the data: ``str(result)`` is a
72-column text table, and Jupyter shows an HTML table (PyRTL's convention:
plain text in a terminal, rich output in a notebook).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import pandas as pd

from sgxlab.host.designs import Design
from sgxlab.present.text import WIDTH, summary_html, summary_text
from sgxlab.sim import run as sim
from sgxlab.sim.costs import CostModel
from sgxlab.sim.result import Result as RunData
from sgxlab.sim.result import RunConfig
from sgxlab.sim.trace import Trace

__all__ = ["Result", "run", "run_trace", "replay", "compare"]

CostsArg = CostModel | str | Mapping[str, object] | Sequence[str] | None


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
) -> Result:
    """Run an existing trace (see :func:`sgxlab.sim.run.run_trace`)."""
    return Result.of(
        sim.run_trace(
            trace, design, costs, engine=engine, records=records, seed=seed, config=config, allow_import=allow_import
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
) -> pd.DataFrame:
    """One row per design on the same trace (see :func:`sgxlab.sim.run.compare`)."""
    table: pd.DataFrame = sim.compare(designs, workload, params, costs, seed, engine, allow_import)
    return table
