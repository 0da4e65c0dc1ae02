"""Budgets: one set of documented limits on all the work a run will do, checked before anything big is allocated.

A :class:`Budget` bounds the final trace (launches, rows), what a generator
draws before it cuts the trace to ``launches``, the VMs' vCPUs an engine
builds, the S3 work (S3 events x CPUs, S3 reloads) and a CSV trace (bytes,
rows, line length). Every check estimates the work from parameters or
counts, so a run over budget is refused in milliseconds with a
:class:`~sgxlab.errors.ConfigError` that names the parameter to lower and
the limit. The defaults are :data:`DEFAULT_BUDGET`; a power user raises a
limit explicitly with ``Budget().raised(draws=10**9)`` and passes it as
``budget=`` to :func:`~sgxlab.sim.workloads.make_trace`,
:func:`~sgxlab.sim.workloads.make_workload`,
:func:`~sgxlab.sim.workloads.read_trace_csv`/``parse_trace_csv``,
:func:`sgxlab.sim.run.run_trace` and the engines. ``docs/simulator.md``
("Limits") lists the defaults and why each is what it is.

For a generated workload the parameters' own maxima (``sgxlab workloads
--json``; ``launches`` at most 50 M) hold whatever the budget says.
"""

from __future__ import annotations

import csv
import dataclasses
from array import array
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from sgxlab.errors import ConfigError
from sgxlab.sim.trace import LAUNCH, S3, Trace

__all__ = [
    "Budget",
    "DEFAULT_BUDGET",
    "check_generator",
    "check_trace",
    "CsvRows",
    "csv_lines",
    "csv_cells",
    "vcpu_counts",
]


@dataclass(frozen=True)
class Budget:
    """The limits of one run (defaults: docs/simulator.md, "Limits").

    ``launches`` and ``rows``: of any trace (generated, CSV or built by hand);
    ``draws``: events a generator draws before cutting the trace (its
    temporaries are a few bytes each); ``vcpus``: the VMs' vCPUs added up
    (the exact engine keeps a guest model per vCPU); ``s3_cpus``: S3 events x
    CPUs (each S3 resets every CPU's MSRs); ``reloads``: S3 events x vCPUs
    current at them, an upper bound of the S3 reloads; ``csv_bytes``,
    ``csv_line``: a CSV trace's size and longest line (its rows count
    against ``rows``).
    """

    launches: int = 50_000_000
    rows: int = 50_000_000
    draws: int = 100_000_000
    vcpus: int = 1_048_576
    s3_cpus: int = 4_194_304
    reloads: int = 1_048_576
    csv_bytes: int = 2 << 30
    csv_line: int = 4096

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            x = getattr(self, f.name)
            if isinstance(x, bool) or not isinstance(x, int) or x < 1:
                raise ConfigError(f"Budget.{f.name}", x, "expected a whole number of at least 1")

    def raised(self, **limits: int) -> Budget:
        """A copy with the given limits (``Budget().raised(rows=60_000_000)``); unknown names are refused."""
        names = {f.name for f in dataclasses.fields(self)}
        for k in limits:
            if k not in names:
                raise ConfigError(f"Budget.{k}", limits[k], f"unknown limit; the limits are {', '.join(sorted(names))}")
        return dataclasses.replace(self, **limits)


DEFAULT_BUDGET = Budget()
"""The documented default limits (a frozen value, not a setting: pass ``budget=`` to change them)."""


def resolve_budget(budget: Budget | None) -> Budget:
    """``budget``, or :data:`DEFAULT_BUDGET` for ``None``; anything else is refused."""
    if budget is None:
        return DEFAULT_BUDGET
    if not isinstance(budget, Budget):
        raise ConfigError("budget", budget, "expected a sgxlab.sim.budget.Budget")
    return budget


def _count(x: float) -> str:
    """A count as text: whole with commas up to 10**12, else three digits (``8.2e11``)."""
    return f"{int(x):,}" if x < 1e12 else f"{x:.2g}".replace("e+", "e")


def _over(option: str, value: object, what: str, got: float, limit: int, advice: str, field: str) -> ConfigError:
    """The one-line refusal: what the run would do, the limit, and how to get under it."""
    return ConfigError(option, value, f"{what} {_count(got)}; at most {limit:,} ({advice}, or raise Budget.{field})")


# --------------------------------------------------------------------------- generated workloads


def generator_draws(values: Mapping[str, Any], est: Mapping[str, float]) -> tuple[float, float, float]:
    """Events a workload's generator draws before cutting: (total, guest part, host part).

    The host workloads draw exactly their launches (and S3 events). The guest
    workloads draw whole batches of slices, at least three (``slices`` of the
    estimate, at least 3), each with every running vCPU's launches and exits
    and every host CPU's launches, whatever ``launches`` asks for.
    """
    n = float(values.get("launches", 0))
    s3 = float(values.get("s3", 0))
    if "slice" not in values or not n:
        return n + s3, 0.0, n
    vm_cpus = values.get("vm_cpus", values.get("cpus", 0))
    busy = min(vm_cpus, values["vms"] * values["vcpus"])
    per_cycle = busy / values["interval"] + (busy / values["exit_interval"] if values["exit_interval"] else 0.0)
    host_per_cycle = values.get("host_cpus", 0) / values.get("host_interval", 1)
    cycles = max(float(est.get("slices", 0.0)), 3.0) * values["slice"]
    guest, host = cycles * per_cycle, cycles * host_per_cycle
    return guest + host + s3, guest, host


def check_generator(workload: str, values: Mapping[str, Any], est: Mapping[str, float], budget: Budget | None) -> None:
    """Refuse a workload whose generator would draw, or whose trace would hold, more than ``budget`` allows."""
    b = resolve_budget(budget)
    n = values.get("launches", 0)
    if n > b.launches:
        raise _over(f"{workload} param launches", n, "launches", n, b.launches, "lower launches", "launches")
    total, guest, host = generator_draws(values, est)
    if total > b.draws and "slice" not in values:  # a host workload draws its launches
        raise _over(
            f"{workload} param launches", n, "the generator would draw", total, b.draws, "lower launches", "draws"
        )
    if total > b.draws:
        if host > guest:
            names = "lower slice or host_cpus, raise host_interval"
        else:
            names = "lower slice, raise interval/exit_interval"
        raise _over(
            f"{workload} param slice",
            values.get("slice"),
            "the generator would draw about",
            total,
            b.draws,
            f"events before cutting the trace; {names}",
            "draws",
        )
    cpus = values.get("cpus", 0) + values.get("host_cpus", 0) + values.get("vm_cpus", 0)
    s3 = values.get("s3", 0)
    if s3 and n and s3 * cpus > b.s3_cpus:
        raise _over(f"{workload} param s3", s3, "S3 events x CPUs", s3 * cpus, b.s3_cpus, "lower s3 or cpus", "s3_cpus")
    if "vms" in values and values["vms"] * values["vcpus"] > b.vcpus:  # (within the parameters' maxima: never)
        raise _over(
            f"{workload} param vcpus",
            values["vcpus"],
            "vCPUs",
            values["vms"] * values["vcpus"],
            b.vcpus,
            "lower vms or vcpus",
            "vcpus",
        )
    vm_cpus = values.get("vm_cpus", values.get("cpus", 0)) if "vms" in values else 0
    reloads = s3 * min(vm_cpus, values.get("vms", 0) * values.get("vcpus", 0)) if n else 0
    if reloads > b.reloads:
        raise _over(
            f"{workload} param s3",
            s3,
            "S3 reloads (S3 events x running vCPUs) up to",
            reloads,
            b.reloads,
            "lower s3 or the VM CPUs",
            "reloads",
        )


# --------------------------------------------------------------------------- any trace, at an engine's entry


def check_trace(trace: Trace, budget: Budget | None = None) -> None:
    """Refuse a trace an engine could not run within ``budget`` (rows, launches,
    vCPUs, S3 events x CPUs, S3 reloads), before the engine allocates anything."""
    b = resolve_budget(budget)
    n = len(trace)
    if n > b.rows:
        raise _over("trace rows", n, "rows", n, b.rows, "cut the trace", "rows")
    nl = int(np.count_nonzero(trace.kind == LAUNCH)) if n else 0
    if nl > b.launches:
        raise _over("trace launches", nl, "launches", nl, b.launches, "cut the trace", "launches")
    nv = sum(int(spec.nvcpus) for spec in trace.vms)
    if nv > b.vcpus:
        raise _over("trace vms", len(trace.vms), "vCPUs of the VMs", nv, b.vcpus, "declare fewer VMs or vCPUs", "vcpus")
    ns3 = int(np.count_nonzero(trace.kind == S3)) if n else 0
    if ns3 * trace.ncpus > b.s3_cpus:
        raise _over(
            "trace s3",
            ns3,
            f"S3 events x {trace.ncpus:,} CPUs",
            ns3 * trace.ncpus,
            b.s3_cpus,
            "lower the S3 events or CPUs",
            "s3_cpus",
        )
    reloads = ns3 * min(trace.ncpus, nv)
    if reloads > b.reloads:
        raise _over(
            "trace s3",
            ns3,
            "S3 reloads (S3 events x running vCPUs) up to",
            reloads,
            b.reloads,
            "lower the S3 events or VM CPUs",
            "reloads",
        )


# --------------------------------------------------------------------------- CSV traces


def csv_lines(text: str, block: int = 1 << 20) -> Iterator[str]:
    """``text.splitlines()`` one line at a time, a block of about ``block`` characters
    split at a time (cut after a ``\\n``, which never parts a ``\\r\\n``); a leading
    BOM is dropped."""
    pos = 1 if text.startswith("\ufeff") else 0
    end = len(text)
    while pos < end:
        cut = text.find("\n", pos + block)
        stop = end if cut < 0 else cut + 1
        yield from text[pos:stop].splitlines()
        pos = stop


def csv_cells(line: str, lineno: int, source: str) -> list[str]:
    """The stripped cells of one CSV line (the csv module's reading; errors name the line)."""
    if '"' not in line and "\0" not in line:  # what csv.reader gives for such a line
        return [c.strip() for c in line.split(",")]
    try:
        cells = next(csv.reader([line]), [])
    except csv.Error as e:
        raise ConfigError(f"{source} line {lineno}", line[:40], f"not a CSV line: {e}") from None
    return [c.strip() for c in cells]


_CSV_TYPES = ("q", "b", "h", "h", "h", "h", "h")  # t, kind, cpu, vm, vcpu, signer, unmasked
_CSV_DTYPES = (np.int64, np.int8, np.int16, np.int16, np.int16, np.int16, np.int16)


class CsvRows:
    """A CSV trace's rows as they stream in: compact typed columns (21 bytes a row with
    its line number) instead of Python tuples, counted against the budget's
    ``rows`` as they come; the text's size, line length and declared vCPUs too."""

    def __init__(self, source: str, width: int, budget: Budget | None) -> None:
        self.source = source
        self.budget = resolve_budget(budget)
        self.cols = [array(code) for code in _CSV_TYPES[:width]]
        self.lines = array("I")
        self._declared = 0  # VMs declared so far, and their vCPUs
        self._vcpus = 0

    def check_text(self, text: str) -> None:
        """Refuse text over ``csv_bytes`` characters before reading a line of it."""
        b = self.budget
        if len(text) > b.csv_bytes:
            raise _over(
                self.source,
                f"{len(text):,} characters",
                "a CSV trace of",
                len(text),
                b.csv_bytes,
                "split the trace",
                "csv_bytes",
            )

    def check_line(self, line: str, lineno: int) -> None:
        """Refuse a line longer than ``csv_line`` characters (no trace line is; the csv module would choke at 128 KiB)."""
        if len(line) > self.budget.csv_line:
            raise _over(
                f"{self.source} line {lineno}",
                line[:40],
                "characters in the line:",
                len(line),
                self.budget.csv_line,
                "a trace line is short; fix the file",
                "csv_line",
            )

    def width(self, width: int) -> None:
        """Set the number of columns (6, or 7 with ``unmasked``) once the header is read."""
        self.cols = [array(code) for code in _CSV_TYPES[:width]]

    def add(self, row: tuple[int, ...], lineno: int) -> None:
        """Append one checked row (its values within the columns' ranges)."""
        if len(self.lines) >= self.budget.rows:
            raise _over(
                f"{self.source} line {lineno}",
                "",
                "more rows than",
                len(self.lines) + 1,
                self.budget.rows,
                "split the trace",
                "rows",
            )
        for col, x in zip(self.cols, row):
            col.append(x)
        self.lines.append(lineno)

    def declared(self, vm_decl: dict[int, Any], lineno: int) -> None:
        """After a directive line: refuse VMs declared with more vCPUs in all than ``vcpus``."""
        if len(vm_decl) == self._declared:
            return
        nv = next(reversed(vm_decl.values()))[0]  # a vm line declares one VM: the last one
        self._vcpus += nv or 1
        self._declared = len(vm_decl)
        if self._vcpus > self.budget.vcpus:
            raise _over(
                f"{self.source} line {lineno}, vcpus",
                self._vcpus,
                "the VMs declared so far have vCPUs:",
                self._vcpus,
                self.budget.vcpus,
                "declare fewer VMs or vCPUs",
                "vcpus",
            )

    def __len__(self) -> int:
        return len(self.lines)

    def columns(self) -> list[np.ndarray]:
        """The columns as numpy arrays (views of the buffers: no copy)."""
        n = len(self.lines)
        return [np.frombuffer(c, dtype=dt) if n else np.zeros(0, dt) for c, dt in zip(self.cols, _CSV_DTYPES)]


def vcpu_counts(vm: np.ndarray, vcpu: np.ndarray, ns: np.ndarray, nvms: int) -> np.ndarray:
    """Per VM 0..nvms-1: its highest vCPU on a non-S3 row, plus one (0: no row), in one pass
    over the rows (not one pass per VM)."""
    top = np.zeros(nvms, np.int64)
    g = ns & (vm >= 0)
    if nvms and g.any():
        np.maximum.at(top, vm[g].astype(np.intp), vcpu[g].astype(np.int64) + 1)
    return top
