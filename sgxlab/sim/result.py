"""What a run returns: the summary, per-launch records, and the config that reproduces it.

:class:`Result` holds the contract's summary dict (``summary()``; the keys of
``sgxlab run --json``), the per-launch records as a pandas DataFrame
(``records()``, exact engine), the latencies, and the :class:`RunConfig` it
came from. A ``RunConfig`` (design, workload, parameters, costs, seed and
engine) round-trips through JSON and TOML, and ``sgxlab.replay(config)`` reproduces
the same summary: every workload is deterministic per seed, and both engines
are deterministic.

Config files are read as UTF-8; a file that is missing, a directory, not
UTF-8, or not valid JSON/TOML is a :class:`ConfigError` naming it. Saving is
atomic: the text goes to a temporary file in the same folder, which is
flushed and fsynced, given the permissions a new file gets (``0o666`` less
the umask) and renamed over the target, so a crash never leaves a torn file.
:func:`check_save_path` checks a target (suffix, folder, not a directory,
writable) without writing it, so a caller can refuse a bad ``--save-config``
before a long run instead of after it.
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sgxlab.errors import ConfigError
from sgxlab.files import check_writable, read_user_text, write_atomic

MAX_CONFIG_BYTES = 1 << 20
"""The largest run config file read: 1 MiB."""

__all__ = ["Result", "RunConfig", "flatten_summary", "check_save_path", "SUMMARY_KEYS", "ENGINES"]

ENGINES = ("exact", "fast")

SUMMARY_KEYS = (
    "design",
    "workload",
    "seed",
    "engine",
    "launches",
    "einit",
    "failures",
    "retries",
    "wrmsr",
    "rdmsr",
    "schedule_ins",
    "encls_exits",
    "msr_exits",
    "exits",
    "s3_events",
    "latency_cycles",
    "overhead_cycles",
    "sched_cycles",
    "exit_cycles",
    "bypasses",
    "refusals",
    "gate_refusals",
    "vms_refused",
)
"""The summary's keys, in order (``docs/simulator.md``)."""

_CONFIG_KEYS = ("design", "workload", "params", "costs", "seed", "engine")


# --------------------------------------------------------------------------- config


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines a run: ``design`` (a name such as
    ``"read-compare"`` or ``"percpu-cache:percpu"``, or ``"module:Class"`` for a
    user's design), ``workload``, its complete ``params`` (defaults included),
    ``costs`` (:meth:`CostModel.as_dict`), ``seed`` and ``engine``.

    ``unsaved`` is set, to the reason, on the config of a run that these
    fields cannot reproduce: one given a host policy object that no workload
    parameter names (:func:`sgxlab.sim.run.run_trace`). Such a config is
    never written (:meth:`to_json`, :meth:`to_toml` and :meth:`save` raise
    :class:`ConfigError` with the reason) nor replayed; it is not part of the
    saved form, nor of equality."""

    design: str
    workload: str
    params: dict[str, Any] = field(default_factory=dict)
    costs: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    engine: str = "exact"
    unsaved: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        for k in ("design", "workload", "engine"):
            if not isinstance(getattr(self, k), str):
                raise ConfigError(f"config {k}", getattr(self, k), "expected a string")
        if self.engine not in ENGINES:
            raise ConfigError("config engine", self.engine, f"expected one of {', '.join(ENGINES)}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError("config seed", self.seed, "expected a non-negative integer")
        for k in ("params", "costs"):
            v = getattr(self, k)
            if not isinstance(v, Mapping):
                raise ConfigError(f"config {k}", v, "expected a table of names to values")
            object.__setattr__(self, k, dict(v))

    def check_savable(self) -> None:
        """Raise :class:`ConfigError` if this config cannot reproduce its run (``unsaved``)."""
        if self.unsaved is not None:
            raise ConfigError("config", self.workload, f"this run cannot be saved or replayed: {self.unsaved}")

    def as_dict(self) -> dict[str, Any]:
        return {
            "design": self.design,
            "workload": self.workload,
            "params": dict(self.params),
            "costs": dict(self.costs),
            "seed": self.seed,
            "engine": self.engine,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunConfig:
        if not isinstance(data, Mapping):
            raise ConfigError("config", data, "expected an object/table")
        unknown = [k for k in data if k not in _CONFIG_KEYS]
        if unknown:
            raise ConfigError(
                f"config {unknown[0]}", data[unknown[0]], f"unknown key; expected {', '.join(_CONFIG_KEYS)}"
            )
        for k in ("design", "workload"):
            if k not in data:
                raise ConfigError(f"config {k}", None, "missing")
        return cls(
            design=data["design"],
            workload=data["workload"],
            params=data.get("params", {}),
            costs=data.get("costs", {}),
            seed=data.get("seed", 0),
            engine=data.get("engine", "exact"),
        )

    # JSON -------------------------------------------------------------------

    def to_json(self, path: str | os.PathLike[str] | None = None) -> str:
        """The config as JSON text; also written atomically to ``path`` if given."""
        self.check_savable()
        text = json.dumps(self.as_dict(), indent=2) + "\n"
        if path is not None:
            _write_atomic(Path(path), text)
        return text

    @classmethod
    def from_json(cls, source: str | os.PathLike[str]) -> RunConfig:
        """Parse JSON text, or read a ``.json`` file (a path or a string not starting with ``{``)."""
        text = _source_text(source, "{")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError("config", _where(source), f"not valid JSON: {e}") from None
        except (ValueError, RecursionError) as e:  # e.g. nesting too deep, an over-long number
            raise ConfigError("config", _where(source), f"not usable JSON: {e}") from None
        return cls.from_dict(data)

    # TOML -------------------------------------------------------------------

    def to_toml(self, path: str | os.PathLike[str] | None = None) -> str:
        """The config as TOML text (written by hand; ``tomllib`` only reads); also
        written atomically to ``path`` if given."""
        self.check_savable()
        lines = ["# sgxlab run configuration (sgxlab.sim.result.RunConfig)"]
        for k in ("design", "workload", "seed", "engine"):
            lines.append(f"{k} = {_toml_value(getattr(self, k))}")
        for table in ("params", "costs"):
            lines.append("")
            lines.append(f"[{table}]")
            for k, v in getattr(self, table).items():
                lines.append(f"{_toml_key(k)} = {_toml_value(v)}")
        text = "\n".join(lines) + "\n"
        if path is not None:
            _write_atomic(Path(path), text)
        return text

    @classmethod
    def from_toml(cls, source: str | os.PathLike[str]) -> RunConfig:
        """Parse TOML text, or read a ``.toml`` file (a path, or a string that is
        an existing file name)."""
        if isinstance(source, os.PathLike):
            text = _read(Path(source))
        elif isinstance(source, str):
            text = source if ("\n" in source or "=" in source) else _read(Path(source))
        else:
            raise ConfigError("config", source, "expected TOML text or a file path")
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise ConfigError("config", _where(source), f"not valid TOML: {e}") from None
        except (ValueError, RecursionError) as e:
            raise ConfigError("config", _where(source), f"not usable TOML: {e}") from None
        return cls.from_dict(data)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> RunConfig:
        """Read a ``.json`` or ``.toml`` file (by extension)."""
        p = Path(path)
        if p.suffix.lower() == ".json":
            return cls.from_json(p)
        if p.suffix.lower() == ".toml":
            return cls.from_toml(p)
        raise ConfigError("config", str(p), "expected a .json or .toml file")

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write a ``.json`` or ``.toml`` file (by extension), atomically."""
        self.check_savable()
        p = check_save_path(path)
        if p.suffix.lower() == ".json":
            self.to_json(p)
        else:
            self.to_toml(p)


def _where(source: Any) -> str:
    s = str(source)
    return s if len(s) < 60 else s[:57] + "..."


def _source_text(source: Any, opener: str) -> str:
    if isinstance(source, os.PathLike):
        return _read(Path(source))
    if isinstance(source, str):
        if source.lstrip().startswith(opener):
            return source
        return _read(Path(source))
    raise ConfigError("config", source, "expected text or a file path")


def _read(p: Path) -> str:
    return read_user_text(p, "config", max_bytes=MAX_CONFIG_BYTES, what="a config file")


def check_save_path(path: str | os.PathLike[str]) -> Path:
    """``path`` as a :class:`Path` if a config can be saved there, else ConfigError naming it
    (see :func:`sgxlab.files.check_writable`)."""
    return check_writable(path, "config", suffixes=(".json", ".toml"))


def _write_atomic(path: Path, text: str) -> None:
    write_atomic(path, text, "config")


_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _toml_key(k: Any) -> str:
    k = str(k)
    return k if _BARE_KEY.match(k) else _toml_string(k)


def _toml_string(s: str) -> str:
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif o < 0x20 or o == 0x7F:
            out.append(f"\\u{o:04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        r = repr(v)
        return r if any(c in r for c in ".eE") else r + ".0"
    if isinstance(v, str):
        return _toml_string(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise ConfigError("config value", v, "only strings, numbers, booleans and lists can be saved")


# --------------------------------------------------------------------------- results


def flatten_summary(summary: Mapping[str, Any]) -> dict[str, Any]:
    """One flat row: ``latency_cycles`` → ``latency_mean/p50/p99/max``, ``failures`` →
    ``failures_total`` and ``failures_<NAME>``, ``gate_refusals`` →
    ``gate_refusals_total`` and ``gate_refusals_<code>`` (``eacces``, ``ecreate-gp``)."""
    row: dict[str, Any] = {}
    for k, v in summary.items():
        if k == "latency_cycles":
            for q in ("mean", "p50", "p99", "max"):
                row[f"latency_{q}"] = v[q]
        elif k in ("failures", "gate_refusals"):
            row[f"{k}_total"] = sum(v.values())
            for name, n in v.items():
                row[f"{k}_{name}"] = n
        else:
            row[k] = v
    return row


class Result:
    """The outcome of one run, as data.

    * :meth:`summary` -- the contract's dict (a copy);
    * :meth:`records` -- per-launch records as a DataFrame (exact engine, when kept);
    * :attr:`latencies` -- the per-launch latencies (int64 array; exact engine);
    * :attr:`config` -- the :class:`RunConfig` that reproduces it;
    * :attr:`failure_examples` -- the first EINIT reason per failure name (exact engine).

    The presentation layer's :class:`sgxlab.present.result.Result` (what
    :func:`sgxlab.run` returns) adds the views: a 72-column text table and
    HTML in Jupyter.
    """

    def __init__(
        self,
        summary: dict[str, Any],
        config: RunConfig,
        *,
        simulation: Any = None,
        trace: Any = None,
        cpu_ghz: float = 2.0,
    ) -> None:
        self._summary = summary
        self.config = config
        self.simulation = simulation
        self.trace = trace
        self.cpu_ghz = cpu_ghz

    def summary(self) -> dict[str, Any]:
        return copy.deepcopy(self._summary)

    def flat(self) -> dict[str, Any]:
        """The summary as one flat row (:func:`flatten_summary`; a new dict of scalars)."""
        return flatten_summary(self._summary)

    def __getitem__(self, key: str) -> Any:
        return copy.deepcopy(self._summary[key])

    @property
    def latencies(self) -> Any:
        if self.simulation is None:
            return None
        return self.simulation.latency_array()

    @property
    def failure_examples(self) -> dict[str, str]:
        return {} if self.simulation is None else self.simulation.failure_examples()

    def records(self) -> Any:
        """Per-launch records (pandas DataFrame; columns in ``docs/simulator.md``)."""
        if self.simulation is None:
            raise ConfigError(
                "records", self.config.engine, "the fast engine keeps no per-launch records; run with engine='exact'"
            )
        return self.simulation.records_frame()

    def launch_records(self) -> list[Any]:
        """Per-launch records as frozen :class:`~sgxlab.sim.exact.LaunchRecord` objects."""
        if self.simulation is None:
            raise ConfigError("records", self.config.engine, "the fast engine keeps no per-launch records")
        return list(self.simulation.launch_records())

    def __repr__(self) -> str:
        s = self._summary
        return (
            f"<Result {s['design']} on {s['workload']}: {s['launches']} launches, "
            f"{sum(s['failures'].values())} failures, wrmsr {s['wrmsr']}, rdmsr {s['rdmsr']}, "
            f"latency mean {s['latency_cycles']['mean']:.0f} cycles>"
        )
