"""Exports anyone can reproduce: figure files, mailing-list text, a CPU timeline, CSV and JSON.

Every file is written atomically (rendered in memory, then
:func:`sgxlab.files.write_atomic`), so a failed export leaves neither a
partial file nor a clobbered old one, and carries what reproduces it: the
sgxlab version, the run configuration and an ``sgxlab`` command.

Decisions
---------
* **Byte-identical figures.** :func:`save_figure` renders under the house
  rcParams with a fixed SVG hash salt and fixed metadata (no dates; PDF
  ``CreationDate``/``ModDate`` and SVG ``Date`` are removed), so the same
  inputs give the same bytes in every process (``tests/test_export.py``
  checks PNG, SVG and PDF, once in a fresh interpreter).
* **Metadata per format.** PNG: text chunks ``Title``, ``Software``,
  ``Description`` and ``sgxlab-version``/``sgxlab-config``/``sgxlab-command``;
  SVG: the Dublin Core block (``<dc:description>``, ``<dc:source>``); PDF: the
  Info dictionary (``/Subject`` is the command, ``/Keywords`` the config).
* **Mailing lists** (``../shared/reference/ecosystem-and-style.md`` §4):
  plain text, every line at most 72 columns, a header line with every
  parameter, the kernel test robot's table (baseline, then each design as
  ``%change`` and ``mean ± stddev`` over the seeds) and a ``to reproduce:``
  command wrapped with backslash-newlines, so it can be pasted into a shell.
* **The reproduce command** is built from the configuration:
  ``sgxlab compare [--designs a,b] --workload W [--param k=v ...] [--costs
  P] [--cost k=v ...] [--seed S] [--seeds N] --engine E [--baseline B]``.
  Only what differs from a default is spelled out (no ``--designs``: all
  built-in designs; no ``--baseline``: always-write if compared, else the
  first design; a workload parameter at its default is left out), so the
  command is short enough to read; the header names the sgxlab version it
  holds for, and a figure's metadata carries the complete configuration.
  Design names are comma-separated; a variant's own commas
  (``percpu-cache:percpu,initial=intel``) are read back by
  :func:`split_designs`. ``--seeds N`` means seeds ``S .. S+N-1``; a list
  that is not a run of consecutive seeds is written ``--seeds 1,5,9``
  (:func:`parse_seeds` reads both).
"""

from __future__ import annotations

import io
import json
import math
import os
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sgxlab import __version__
from sgxlab.errors import ConfigError
from sgxlab.files import check_writable, write_atomic
from sgxlab.host.designs import DESIGNS, Design, PerCpuCache, design_label
from sgxlab.present.plots import seed_stats
from sgxlab.present.style import DPI, Caption, Provenance, house_style, provenance_of
from sgxlab.present.text import (
    WIDTH,
    check_width,
    compare_table,
    race_table,
    wrap_command,
    wrap_words,
)
from sgxlab.sim.budget import Budget
from sgxlab.sim.costs import COST_PARAMS, CostModel, preset_names
from sgxlab.sim.result import ENGINES, RunConfig, flatten_summary
from sgxlab.sim.result import Result as RunData
from sgxlab.sim.run import cost_model, design_classes, design_ref, resolve_design
from sgxlab.sim.trace import S3
from sgxlab.sim.workloads import _seed, make_workload, workload_params

__all__ = [
    "CompareSpec",
    "FIGURE_SUFFIXES",
    "save_figure",
    "figure_bytes",
    "figure_metadata",
    "run_command",
    "compare_command",
    "split_designs",
    "parse_seeds",
    "nondefault_params",
    "DEFAULT_METRICS",
    "mailing_list_text",
    "timeline_text",
    "export_csv",
    "export_json",
]

FIGURE_SUFFIXES = (".png", ".svg", ".pdf")
"""The figure formats :func:`save_figure` writes, chosen by the file's suffix."""

SVG_HASH_SALT = "sgxlab"
"""``rcParams["svg.hashsalt"]`` while saving: SVG ids depend on it, not on the process."""


# --------------------------------------------------------------------------- what a comparison is


@dataclass(frozen=True)
class CompareSpec:
    """Everything that determines a comparison: designs (``designs``: references a
    run config stores, ``labels``: the names tables show), the workload and its complete
    ``params``, the ``costs`` (:meth:`CostModel.as_dict`), the ``seeds``, the
    ``engine``, the ``baseline`` design (a label) and whether a ``module:Class``
    design may be imported (``allow_import``)."""

    designs: tuple[str, ...]
    labels: tuple[str, ...]
    workload: str
    params: Mapping[str, Any] = field(default_factory=dict)
    costs: Mapping[str, Any] = field(default_factory=dict)
    seeds: tuple[int, ...] = (0,)
    engine: str = "exact"
    baseline: str = ""
    allow_import: bool = False

    @classmethod
    def build(
        cls,
        designs: Iterable[str | type[Design]] | str | type[Design] | None,
        workload: str = "workshop",
        params: Mapping[str, Any] | None = None,
        costs: Any = None,
        seeds: int | Sequence[int] = (0,),
        engine: str = "exact",
        baseline: str | type[Design] | None = None,
        allow_import: bool = False,
        *,
        budget: Budget | None = None,
    ) -> CompareSpec:
        """Resolve and check every argument (as :func:`sgxlab.compare` does), without running anything.

        ``seeds`` is a list of seeds or a count ``N`` (seeds ``0 .. N-1``);
        ``baseline`` a design among ``designs`` (default: ``always-write``,
        mainline Linux, if compared, else the first design); ``budget`` the limits the
        workload's parameters are checked against (:mod:`sgxlab.sim.budget`).
        """
        classes = design_classes(designs, allow_import=allow_import)
        refs = tuple(design_ref(c) for c in classes)
        labels = tuple(design_label(c) for c in classes)
        if engine not in ENGINES:
            raise ConfigError("engine", engine, f"expected one of {', '.join(ENGINES)}")
        seed_list = _seed_list(seeds)
        values = dict(make_workload(workload, params, budget=budget).values)
        model = cost_model(costs)
        if baseline is None:
            base = _default_baseline(labels)
        else:
            try:
                bcls = resolve_design(baseline, allow_import=allow_import)
            except ConfigError as e:
                raise ConfigError("baseline", baseline, e.reason) from None
            base = design_label(bcls)
            if base not in labels:
                raise ConfigError("baseline", base, f"not one of the designs compared ({', '.join(labels)})")
        return cls(refs, labels, workload, values, model.as_dict(), seed_list, engine, base, allow_import)

    @classmethod
    def of_config(cls, config: RunConfig, *, label: str | None = None) -> CompareSpec:
        """The one-design, one-seed comparison a run's :class:`RunConfig` describes."""
        lab = label if label is not None else config.design
        return cls(
            (config.design,),
            (lab,),
            config.workload,
            dict(config.params),
            dict(config.costs),
            (config.seed,),
            config.engine,
            lab,
            False,
        )

    def with_seeds(self, seeds: int | Sequence[int]) -> CompareSpec:
        return CompareSpec(
            self.designs,
            self.labels,
            self.workload,
            self.params,
            self.costs,
            _seed_list(seeds),
            self.engine,
            self.baseline,
            self.allow_import,
        )

    def run_config(self, design: str, seed: int | None = None, *, engine: str | None = None) -> RunConfig:
        """The :class:`RunConfig` of one run (``design``: a label or a reference)."""
        ref = self.designs[self.labels.index(design)] if design in self.labels else design
        if ref not in self.designs:
            raise ConfigError("design", design, f"not one of the designs compared ({', '.join(self.labels)})")
        return RunConfig(
            ref,
            self.workload,
            dict(self.params),
            dict(self.costs),
            self.seeds[0] if seed is None else seed,
            engine or self.engine,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "designs": list(self.designs),
            "labels": list(self.labels),
            "baseline": self.baseline,
            "workload": self.workload,
            "params": dict(self.params),
            "costs": dict(self.costs),
            "seeds": list(self.seeds),
            "engine": self.engine,
        }

    def to_json(self) -> str:
        """The comparison as JSON: every design, the seeds, and the rest of a :class:`RunConfig`."""
        return json.dumps(self.as_dict(), indent=2) + "\n"

    def caption(self) -> Caption:
        return Caption(
            self.workload,
            nondefault_params(self.workload, self.params),
            self.seeds,
            str(self.costs.get("name", "default")),
            self.engine,
        )

    def command(self) -> list[str]:
        """The ``sgxlab compare`` arguments that reproduce this comparison."""
        return compare_command(self)

    def provenance(self, title: str) -> Provenance:
        return Provenance(title, self.to_json(), self.command(), __version__)


def _seed_list(seeds: int | Sequence[int]) -> tuple[int, ...]:
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        n = int(seeds)
        if n < 1:
            raise ConfigError("seeds", seeds, "expected at least 1 seed")
        return tuple(range(n))
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Sequence):
        raise ConfigError("seeds", seeds, "expected a number of seeds or a list of seeds")
    out = tuple(_seed(s) for s in seeds)
    if not out:
        raise ConfigError("seeds", [], "expected at least 1 seed")
    if len(set(out)) != len(out):
        raise ConfigError("seeds", list(out), "a seed is given twice")
    return out


def nondefault_params(workload: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of ``params`` that differ from the workload's defaults (all of them for
    a workload without documented defaults)."""
    try:
        defaults = {p["name"]: p["default"] for p in workload_params(workload)}
    except ConfigError:
        return dict(params)
    return {k: v for k, v in params.items() if k not in defaults or defaults[k] != v}


# --------------------------------------------------------------------------- commands


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    return str(v)


def _param_args(params: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    for k, v in params.items():
        out += ["--param", f"{k}={_value(v)}"]
    return out


def _cost_args(costs: Mapping[str, Any]) -> list[str]:
    """``--costs PRESET`` and one ``--cost k=v`` per value that differs from that preset."""
    name = str(costs.get("name", "default"))
    base_name = name[: -len("+overrides")] if name.endswith("+overrides") else name
    out: list[str] = []
    if base_name in preset_names():
        base = CostModel.preset(base_name)
        out += ["--costs", base_name]
    else:
        base = CostModel()
    ref = base.as_dict()
    for k in [*COST_PARAMS, "cpu_ghz"]:
        if k in costs and costs[k] != ref[k]:
            out += ["--cost", f"{k}={_value(costs[k])}"]
    return out


def _needs_import(designs: Sequence[str]) -> bool:
    for d in designs:
        base = d.partition(":")[0]
        if ":" in d and base not in DESIGNS:
            return True
    return False


def run_command(config: RunConfig) -> list[str]:
    """The ``sgxlab run`` arguments that reproduce the run of ``config``."""
    argv = ["sgxlab", "run", "--design", config.design, "--workload", config.workload]
    argv += _param_args(nondefault_params(config.workload, config.params))
    argv += _cost_args(config.costs)
    argv += ["--seed", str(config.seed), "--engine", config.engine]
    if _needs_import([config.design]):
        argv.append("--allow-import")
    return argv


def compare_command(spec: CompareSpec) -> list[str]:
    """The ``sgxlab compare`` arguments that reproduce ``spec`` (module docstring)."""
    argv = ["sgxlab", "compare"]
    if spec.designs != tuple(DESIGNS):
        argv += ["--designs", ",".join(spec.designs)]
    argv += ["--workload", spec.workload]
    argv += _param_args(nondefault_params(spec.workload, spec.params))
    argv += _cost_args(spec.costs)
    s = spec.seeds
    if list(s) == list(range(s[0], s[0] + len(s))):
        if s[0] != 0:
            argv += ["--seed", str(s[0])]
        if len(s) > 1:
            argv += ["--seeds", str(len(s))]
    else:
        argv += ["--seeds", ",".join(map(str, s))]
    argv += ["--engine", spec.engine]
    base = spec.designs[spec.labels.index(spec.baseline)] if spec.baseline in spec.labels else spec.designs[0]
    if base != _default_baseline(spec.designs):
        argv += ["--baseline", base]
    if _needs_import(spec.designs):
        argv.append("--allow-import")
    return argv


def _default_baseline(designs: Sequence[str]) -> str:
    return "always-write" if "always-write" in designs else designs[0]


def split_designs(text: str) -> list[str]:
    """A ``--designs`` value back into design names: commas separate designs, except
    the commas inside a variant's options (``percpu-cache:percpu,initial=intel,read-compare``
    is two designs). An item is a new design when it is a built-in name, has a colon,
    or follows a design that takes no options."""
    out: list[str] = []
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            raise ConfigError("--designs", text, "an empty design name (two commas in a row?)")
        if out and ":" not in item and item not in DESIGNS and _takes_options(out[-1]):
            out[-1] += "," + item
        else:
            out.append(item)
    return out


def _takes_options(design: str) -> bool:
    base, sep, _ = design.partition(":")
    cls = DESIGNS.get(base)
    return bool(sep) and cls is not None and issubclass(cls, PerCpuCache)


def parse_seeds(seeds: str | None, seed: int = 0) -> tuple[int, ...]:
    """``--seeds`` (a count ``N``: seeds ``seed .. seed+N-1``; or a list ``1,5,9``) and ``--seed``."""
    if seeds is None or not seeds.strip():
        return (_seed(seed),)
    text = seeds.strip()
    try:
        if "," in text:
            return _seed_list([int(x, 0) for x in text.split(",")])
        n = int(text, 0)
    except ValueError:
        raise ConfigError("--seeds", seeds, "expected a number of seeds or a comma-separated list") from None
    if n < 1:
        raise ConfigError("--seeds", seeds, "expected at least 1")
    return tuple(range(_seed(seed), _seed(seed) + n))


# --------------------------------------------------------------------------- figures


def figure_metadata(fmt: str, provenance: Provenance | None) -> dict[str, Any]:
    """The ``savefig(metadata=...)`` for ``fmt`` (png, svg or pdf): fixed, no dates."""
    software = f"sgxlab {__version__} (matplotlib {mpl.__version__})"
    p = provenance
    cmd = shlex.join(p.command) if p is not None else ""
    if fmt == "png":
        meta: dict[str, Any] = {"Software": software, "sgxlab-version": __version__}
        if p is not None:
            meta.update(
                {
                    "Title": p.title,
                    "Description": f"sgxlab {p.version}; reproduce: {cmd}",
                    "sgxlab-config": p.config,
                    "sgxlab-command": cmd,
                }
            )
        return meta
    if fmt == "svg":
        meta = {"Date": None, "Creator": software, "Keywords": ["sgxlab", f"sgxlab-{__version__}"]}
        if p is not None:
            meta.update(
                {
                    "Title": p.title,
                    "Description": f"sgxlab {p.version}\nreproduce: {cmd}\nconfig: {p.config}",
                    "Source": cmd,
                }
            )
        return meta
    if fmt == "pdf":
        meta = {"CreationDate": None, "ModDate": None, "Creator": software, "Producer": software}
        if p is not None:
            meta.update(
                {
                    "Title": p.title,
                    "Subject": f"sgxlab {p.version}; reproduce: {cmd}",
                    "Keywords": p.config,
                }
            )
        return meta
    raise ConfigError("figure format", fmt, f"expected one of {', '.join(s[1:] for s in FIGURE_SUFFIXES)}")


def figure_bytes(fig: Figure, fmt: str, provenance: Provenance | None = None, *, dpi: float = DPI) -> bytes:
    """``fig`` rendered as ``fmt`` (png, svg or pdf) in memory, reproducibly (module docstring)."""
    meta = figure_metadata(fmt, provenance)
    buf = io.BytesIO()
    with house_style(), mpl.rc_context({"svg.hashsalt": SVG_HASH_SALT}):
        fig.savefig(buf, format=fmt, dpi=dpi, metadata=meta)
    return buf.getvalue()


def save_figure(
    fig: Figure,
    path: str | os.PathLike[str],
    *,
    provenance: Provenance | None = None,
    dpi: float = DPI,
) -> Path:
    """Write ``fig`` to ``path`` as PNG, SVG or PDF (by suffix), byte-identical for the same
    inputs, with the provenance (``provenance``, else what the sgxlab figure carries) in
    its metadata. The write is atomic. An unknown suffix or a path that cannot be
    written is a :class:`ConfigError` naming the path, raised before rendering."""
    p = check_writable(path, "figure", suffixes=FIGURE_SUFFIXES)
    prov = provenance if provenance is not None else provenance_of(fig)
    data = figure_bytes(fig, p.suffix.lower()[1:], prov, dpi=dpi)
    return write_atomic(p, data, "figure")


# --------------------------------------------------------------------------- mailing-list text


DEFAULT_METRICS = (
    "wrmsr",
    "rdmsr",
    "latency_mean",
    "latency_p50",
    "latency_p99",
    "overhead_cycles",
    "failures_total",
    "retries",
)
"""The rows of :func:`mailing_list_text` (those the table has)."""

GATE_METRIC = "gate_refusals_total"
"""The row :func:`mailing_list_text` adds to :data:`DEFAULT_METRICS` when some run has
launches the PROVISIONKEY gate refused (``-EACCES`` or #GP at ECREATE, never EINIT)."""


def _num(x: float) -> str:
    if not math.isfinite(x):
        return "n/a"
    if x == 0:
        return "0"
    a = abs(x)
    if a >= 100 or float(x).is_integer():
        return f"{x:.0f}"
    if a >= 10:
        return f"{x:.1f}"
    return f"{x:.3g}"


def _change(base: float, value: float) -> str:
    if base == 0:
        return "0.0%" if value == 0 else "n/a"
    return f"{100.0 * (value - base) / abs(base):+.1f}%"


def mailing_list_text(
    table: pd.DataFrame,
    spec: CompareSpec,
    *,
    metrics: Sequence[str] = DEFAULT_METRICS,
    baseline: str | None = None,
    width: int = WIDTH,
    ascii: bool = False,
) -> str:
    """A comparison as plain text for a kernel mailing list, every line at most ``width``.

    ``table`` has one row per design and seed (:func:`sgxlab.present.result.compare_seeds`);
    each cell is the mean ``± stddev`` (sample standard deviation) over the seeds,
    and ``%change`` is against ``baseline`` (default: the spec's). ``ascii`` writes
    ``+-`` for ``±``.
    """
    if "design" not in table.columns or not len(table):
        raise ConfigError("table", list(table.columns), "needs rows with a design column")
    rows = [m for m in metrics if m in table.columns]
    if not rows:
        raise ConfigError("metrics", list(metrics), "none of them is a column of the table")
    gate = GATE_METRIC
    if metrics is DEFAULT_METRICS and gate in table.columns and bool(table[gate].fillna(0).astype(bool).any()):
        rows.append(gate)  # launches mainline's PROVISIONKEY gate refused before EINIT
    labels = list(dict.fromkeys(str(d) for d in table["design"]))
    base = baseline or spec.baseline or labels[0]
    if base not in labels:
        raise ConfigError("baseline", base, f"not one of the designs in the table ({', '.join(labels)})")
    pm = "+-" if ascii else "±"
    _, mean, std, n = seed_stats(table, rows)

    def cell(label: str, m: str) -> str:
        v = mean[label][m]
        return f"{_num(v)} {pm} {_num(std[label][m])}" if n > 1 else _num(v)

    seeds = sorted({int(s) for s in table["seed"]}) if "seed" in table.columns else list(spec.seeds)
    cap = Caption(spec.workload, spec.params, tuple(seeds), str(spec.costs.get("name", "default")), spec.engine)
    seed_text = (
        f"{seeds[0]}-{seeds[-1]}"
        if seeds == list(range(seeds[0], seeds[0] + len(seeds)))
        else ",".join(map(str, seeds))
    )
    head = (
        f"sgxlab={__version__} workload={spec.workload} costs={cap.costs} engine={spec.engine} "
        f"seeds={seed_text} runs={len(seeds)}"
    )
    out = wrap_words(head, width)
    out += wrap_words("params: " + " ".join(f"{k}={_value(v)}" for k, v in spec.params.items()), width)
    cost_args = _cost_args(spec.costs)
    overrides = [cost_args[i + 1] for i in range(len(cost_args) - 1) if cost_args[i] == "--cost"]
    if overrides:
        out += wrap_words("cost overrides (cycles): " + " ".join(overrides), width)
    out.append("")
    if n > 1:
        note = f"mean {pm} stddev over {n} seeds; %change against {base}"
    else:
        note = f"one run per design (no stddev); %change against {base}"
    out += wrap_words(note + "; cycles unless a count.", width)
    out.append("")
    others = [
        (lab, [cell(lab, m) for m in rows], [_change(mean[base][m], mean[lab][m]) for m in rows])
        for lab in labels
        if lab != base
    ]
    value_header = f"mean {pm} stddev" if n > 1 else "value"
    out.append(
        compare_table(rows, (base, [cell(base, m) for m in rows]), others, value_header=value_header, width=width)
    )
    out.append("")
    out.append("to reproduce:")
    out += wrap_command(compare_command(spec.with_seeds(tuple(seeds))), width)
    return check_width("\n".join(out), width) + "\n"


# --------------------------------------------------------------------------- timeline


def _design_class(result: RunData) -> type[Design] | None:
    cls = getattr(result.simulation, "design_cls", None)
    if isinstance(cls, type) and issubclass(cls, Design):
        return cls
    try:
        return resolve_design(result.config.design)
    except ConfigError:
        return None


def timeline_text(
    result: RunData,
    *,
    cpus: tuple[int, int] | None = None,
    width: int = WIDTH,
    max_launches: int = 2,
) -> str:
    """Two CPUs of a run side by side, time going down, around its first failed EINIT
    (else the first launch after an S3, else the first launch): the kernel's race-diagram
    style, derived from the exact engine's per-launch records and the trace's S3 rows.

    With a per-CPU cache design on a suspend-resume trace it tells the stale-cache
    story: the cache says signer X, S3 puts Intel's hash back in the MSRs, the cache
    still says X, nothing is written and EINIT fails with SGX_INVALID_EINITTOKEN.
    ``cpus`` = (a, b) picks the CPUs (the story is told on ``a``).
    """
    if result.simulation is None:
        raise ConfigError(
            "timeline", result.config.engine, "needs the exact engine's per-launch records; run with engine='exact'"
        )
    recs = result.records()
    trace = result.trace
    if not len(recs):
        raise ConfigError("timeline", 0, "the run has no launches")
    s3 = sorted(int(t) for t in trace.t[trace.kind == S3]) if trace is not None else []
    cls = _design_class(result)
    cache = cls is not None and issubclass(cls, PerCpuCache)
    t = recs["time"].to_numpy()
    cpu = recs["cpu"].to_numpy()
    code = recs["code"].to_numpy()
    failed = (recs["outcome"] == "failed").to_numpy()  # EINIT failures, not policy refusals

    on = np.ones(len(recs), dtype=bool) if cpus is None else cpu == cpus[0]
    fails = np.flatnonzero(failed & on)
    if len(fails):
        anchor = int(fails[0])
    else:
        after = np.flatnonzero((t > s3[0]) & on) if s3 else np.zeros(0, dtype=np.int64)
        cand = after if len(after) else np.flatnonzero(on)
        if not len(cand):
            raise ConfigError("timeline cpus", cpus, "no launch on that CPU")
        anchor = int(cand[0])
    a = int(cpu[anchor])
    t_a = int(t[anchor])
    t_s3 = max((x for x in s3 if x <= t_a), default=None)
    split = t_s3 if t_s3 is not None else t_a
    on_a = np.flatnonzero(cpu == a)
    pre_a = [int(i) for i in on_a if t[i] < split][-1:]
    mid_a = [int(i) for i in on_a if split <= t[i] <= t_a][-max_launches:]
    post_a = [int(i) for i in on_a if t[i] > t_a][:1]
    shown_a = pre_a + mid_a + post_a
    t0 = int(t[shown_a[0]])
    t1 = int(t[shown_a[-1]])

    if cpus is not None:
        b = cpus[1]
    else:
        others = [int(c) for c in cpu[(t >= t0) & (t <= t1) & (cpu != a)]]
        if others:
            b = max(sorted(set(others)), key=others.count)
        else:
            ncpu = int(trace.ncpus) if trace is not None else a + 2
            b = (a + 1) % max(ncpu, 2)
    on_b = np.flatnonzero(cpu == b)
    pre_b = [int(i) for i in on_b if t[i] < split][-1:]
    post_b = [int(i) for i in on_b if split <= t[i] <= t1][:max_launches]
    shown = sorted(set(shown_a + pre_b + post_b), key=lambda i: (int(t[i]), i))
    t0 = min(t0, int(t[shown[0]]))

    # What each CPU's MSRs and the design's cache hold, launch by launch (host launches only
    # prove a value: a token-less EINIT succeeds only when the MSRs hold its signer's hash).
    tracked = cls is not None and not cls.loads_on_schedule  # eager-load also writes at schedule-in
    initial = getattr(cls, "initial", "zero") if cache else None
    msr: dict[int, str] = {}
    cached: dict[int, str] = {}
    state: dict[int, tuple[str, str]] = {}
    events = sorted([(int(x), 0, -1) for x in s3] + [(int(t[i]), 1, i) for i in range(len(recs))])
    vm = recs["vm"].to_numpy()
    signer = recs["signer"].to_numpy()
    wr = recs["wrmsr"].to_numpy()
    rd = recs["rdmsr"].to_numpy()
    last = shown[-1]
    for _time, kind, i in events:
        if kind == 0:
            msr = dict.fromkeys(set(msr) | {a, b}, "Intel's")
            continue
        c = int(cpu[i])
        who = f"signer {signer[i]}" if vm[i] < 0 else f"vm{vm[i]}'s hash"
        if wr[i] > 0 or (code[i] == 0 and vm[i] < 0):
            msr[c] = who
        if cache:
            cached[c] = who
        state[i] = (msr.get(c, "Intel's"), cached.get(c, "Intel's" if initial == "intel" else "zero"))
        if i == last:
            break

    name = recs["name"].to_numpy()
    einits = recs["einits"].to_numpy()

    def launch_cell(i: int) -> str:
        who = f"signer {signer[i]}" if vm[i] < 0 else f"signer {signer[i]} in vm{vm[i]}"
        lines = [f"EINIT {who}"]
        if wr[i] == 0 and rd[i] == 0:
            lines.append("cache hit: no RDMSR/WRMSR" if cache else "no RDMSR/WRMSR")
        else:
            acc = [f"RDMSR x{rd[i]}"] if rd[i] else []
            acc += [f"WRMSR x{wr[i]}"] if wr[i] else ["no WRMSR"]
            lines.append(", ".join(acc))
        res = "SUCCESS" if code[i] == 0 else str(name[i])
        if einits[i] > 1:
            res += f" after {einits[i]} EINITs"
        lines.append(f"-> {res}")
        if i in state and tracked:
            m, ch = state[i]
            lines.append(f"MSRs: {m}")
            if cache:
                lines.append(f"cache: {ch}")
        return "\n".join(lines)

    rows: list[tuple[str, str, str] | tuple[str, str]] = []
    items = sorted([(int(t[i]), 1, i) for i in shown] + [(x, 0, -1) for x in s3 if t0 <= x <= t1])
    prev = {a: -1, b: -1}
    for time, kind, i in items:
        if kind == 0:
            rows.append((f"{time:,}", "S3: every CPU's hash MSRs := Intel's"))
            if cache:
                rows.append(("", "(the per-CPU caches keep their values)"))
            continue
        c = int(cpu[i])
        skipped = _between(on_a if c == a else on_b, prev[c], i)
        if skipped:
            text = f"... {skipped} more launch{'es' if skipped > 1 else ''}"
            rows.append(("", text, "") if c == a else ("", "", text))
        prev[c] = i
        cell = launch_cell(i)
        rows.append((f"{time:,}", cell, "") if c == a else (f"{time:,}", "", cell))

    label = design_label(cls) if cls is not None else result.config.design
    head = f"{label} on {result.config.workload} (seed {result.config.seed}, exact engine): CPU {a} and CPU {b}"
    out = wrap_words(head, width)
    out.append("")
    out.append(race_table(("cycles", f"CPU {a}", f"CPU {b}"), rows, width=width))
    out.append("")
    loads = cls is not None and cls.loads_on_schedule
    out += wrap_words(_moral(recs, anchor, pre_a, t_s3, label, a, cache, loads), width, indent="")
    return check_width("\n".join(out), width) + "\n"


def _launches(n: int) -> str:
    return f"{n} launch" if n == 1 else f"{n} launches"


def _between(indices: np.ndarray, lo: int, hi: int) -> int:
    if lo < 0:
        return 0
    return int(np.count_nonzero((indices > lo) & (indices < hi)))


def _moral(
    recs: pd.DataFrame, anchor: int, pre_a: list[int], t_s3: int | None, label: str, a: int, cache: bool, loads: bool
) -> str:
    r = recs.iloc[anchor]
    nfail = int((recs["outcome"] == "failed").sum())
    if r["outcome"] == "failed":
        same = bool(pre_a) and int(recs.iloc[pre_a[0]]["signer"]) == int(r["signer"])
        if t_s3 is not None and int(r["wrmsr"]) == 0 and same:
            who = "its per-CPU cache still said" if cache else f"{label} still assumed"
            return (
                f"CPU {a} had loaded signer {int(r['signer'])}'s hash before the S3; S3 put Intel's hash "
                f"back in the MSRs, but {who} signer {int(r['signer'])}, so nothing was written and EINIT "
                f"failed with {r['name']} ({int(r['code'])}). {_launches(nfail)} failed in the whole run."
            )
        return f"EINIT failed on CPU {a} with {r['name']} ({int(r['code'])}); {_launches(nfail)} failed in the run."
    if t_s3 is not None and loads:
        return (
            f"No launch failed: {label} writes the hash MSRs at every schedule-in, S3's reloads "
            f"included, so after the S3 CPU {a}'s MSRs were right before the EINIT."
        )
    if t_s3 is not None:
        return (
            f"No launch failed: after the S3, {label} made CPU {a}'s MSRs right again "
            f"({int(r['rdmsr'])} RDMSR, {int(r['wrmsr'])} WRMSR) and EINIT succeeded."
        )
    return f"No launch failed and no S3 happened; {label} ran every EINIT with the right hash."


# --------------------------------------------------------------------------- CSV and JSON


def _table_of(data: pd.DataFrame | RunData, what: str | None) -> pd.DataFrame:
    if isinstance(data, pd.DataFrame):
        if what not in (None, "table"):
            raise ConfigError("what", what, "a table is exported as it is (what=None)")
        return pd.DataFrame(data)
    if isinstance(data, RunData):
        if what is None:
            what = "records" if data.simulation is not None and data.simulation.keep_records else "summary"
        if what == "records":
            return pd.DataFrame(data.records())
        if what == "summary":
            return pd.DataFrame([flatten_summary(data.summary())])
        raise ConfigError("what", what, "expected records or summary")
    raise ConfigError("data", type(data).__name__, "expected a DataFrame or a run result")


def _jsonable(v: Any) -> Any:
    if v is None or v is pd.NA:
        return None
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v


def _rows(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): _jsonable(v) for k, v in r.items()} for r in df.astype(object).to_dict("records")]


def export_csv(data: pd.DataFrame | RunData, path: str | os.PathLike[str], *, what: str | None = None) -> Path:
    """Write a table, or a run's records or summary (``what``: ``"records"`` or ``"summary"``;
    default: records when the run kept them), as CSV (comma-separated, ``\\n`` line ends,
    no index), atomically."""
    p = check_writable(path, "csv", suffixes=(".csv",))
    text = _table_of(data, what).to_csv(index=False, lineterminator="\n")
    return write_atomic(p, text, "csv")


def export_json(
    data: pd.DataFrame | RunData,
    path: str | os.PathLike[str],
    *,
    what: str | None = None,
    meta: Mapping[str, Any] | None = None,
) -> Path:
    """Write a table, or a run's summary (and records), as JSON, atomically.

    A run gives ``{"sgxlab", "config", "summary"[, "records"]}``; a table
    ``{"sgxlab", **meta, "rows"}`` (``meta``: e.g. a comparison's settings).
    """
    p = check_writable(path, "json", suffixes=(".json",))
    obj: dict[str, Any] = {"sgxlab": __version__}
    if isinstance(data, RunData):
        obj["config"] = data.config.as_dict()
        obj["summary"] = data.summary()
        if what in (None, "records"):
            if what == "records" or (data.simulation is not None and data.simulation.keep_records):
                obj["records"] = _rows(_table_of(data, "records"))
        elif what != "summary":
            raise ConfigError("what", what, "expected records or summary")
    else:
        obj.update(dict(meta or {}))
        obj["rows"] = _rows(_table_of(data, what))
    text = json.dumps(_jsonable(obj), indent=2, allow_nan=False) + "\n"
    return write_atomic(p, text, "json")
