"""The cost model: every cycle the simulator charges, named, sourced and overridable.

Each parameter has a default in CPU cycles, a unit, a source and a flag that
says whether the default is a published figure or an assumption. Only three
launch-control figures are published (see ``../shared/reference/linux-kvm-qemu.md`` §6):

* a WRMSR to one LE-hash MSR costs about 400 cycles on Skylake (KVM commit
  b6f084ca5538, Sean Christopherson, 2021), and all four "1200+ cycles"
  (LKML 20200922162944.GA30874@linux.intel.com);
* EINIT costs about 60k cycles (same LKML message; the kernel's
  ``sgx_encl_init`` comment says "50k+");
* trapping and executing EINIT for a guest adds about 1.5k cycles (commit
  b6f084ca5538).

Everything else is an assumption, marked as such and easy to sweep. Presets
live in ``data/costs/*.toml``; :meth:`CostModel.preset` loads one and
:meth:`CostModel.with_overrides` applies ``name=value`` strings from the
command line or a widget.

Bounds. Every cycle cost is a whole number in ``[0, MAX_COST]`` with
``MAX_COST = 2**40`` cycles (about nine minutes at 2 GHz, 18 million times
EINIT's 60k): nothing real comes near it, and it keeps each value and a
launch's service time (at most :data:`SERVICE_TERMS` = 20 charged costs with
the built-in designs, so below 2**45, plus :data:`ATTEMPT_TERMS` per EINIT
attempt an interrupt aborts) far inside int64. The engines keep
per-launch times, waits and running sums of service times in int64; those
are exact while ``trace end + launches * max_service() < 2**63``. At the
default costs that holds with a wide margin (10 M launches stay below
2**42), but no per-cost cap can promise it for every launch count (10 M
saturated launches at 2**40 cycles each would pass 2**63), so
:func:`check_int64_budget` checks the actual trace before a run and
``sgxlab.run`` refuses, naming the largest cost, rather than let a number
wrap. ``cpu_ghz`` must be a finite, positive number.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from sgxlab.errors import ConfigError
from sgxlab.files import data_path, read_user_text

__all__ = [
    "CostParam",
    "CostModel",
    "COST_PARAMS",
    "PRESETS_DIR",
    "preset_names",
    "MAX_COST",
    "SERVICE_TERMS",
    "ATTEMPT_TERMS",
    "check_int64_budget",
]

PRESETS_DIR = data_path("costs")

MAX_COST = 2**40
"""Largest accepted value of any cycle cost (see the module docstring: int64 headroom)."""

SERVICE_TERMS = 20
"""Most costs one launch's service time charges with a built-in design when
no interrupt aborts its EINIT: two EINITs (percpu-cache-retry's retry), the
lock, 4 RDMSRs, 8 WRMSRs (4 + 4 on the retry), the ENCLS trap and 4
intercepted guest WRMSRs (VM exits). Each EINIT attempt an interrupt aborts
(a trace's ``unmasked`` column) adds at most :data:`ATTEMPT_TERMS` more."""

ATTEMPT_TERMS = 14
"""Most costs one more EINIT attempt charges (docs/simulator.md, "Interrupts
during EINIT"): the EINIT, the lock, 4 RDMSRs, 4 WRMSRs, the ENCLS trap and
the guest's 4 intercepted WRMSRs."""

_I64_LIMIT = 2**63


@dataclass(frozen=True, slots=True)
class CostParam:
    """One named cost: default, unit, source, and whether it is an assumption."""

    name: str
    default: int
    unit: str
    source: str
    assumption: bool
    doc: str


COST_PARAMS: Mapping[str, CostParam] = MappingProxyType(
    {
        p.name: p
        for p in (
            CostParam(
                "wrmsr_lehash",
                400,
                "cycles",
                "KVM commit b6f084ca5538 changelog: 'on SKL hardware each WRMSR is ~400 cycles'; Sean "
                "Christopherson, LKML 20200922162944.GA30874: '1200+ cycles to write the hash MSRs'",
                False,
                "one WRMSR to an IA32_SGXLEPUBKEYHASHn MSR",
            ),
            CostParam(
                "rdmsr_lehash",
                100,
                "cycles",
                "no published figure for these MSRs; generic RDMSR is tens of cycles and Sean reports the hash "
                "MSRs are '3x slower than other MSRs' for writes, so 100 is a guess",
                True,
                "one RDMSR of an IA32_SGXLEPUBKEYHASHn MSR",
            ),
            CostParam(
                "einit",
                60_000,
                "cycles",
                "Sean Christopherson, LKML 20200922162944.GA30874: 'compared to the 60k cycles'; "
                "arch/x86/kernel/cpu/sgx/ioctl.c: '50k+ cycles on success'",
                False,
                "one ENCLS[EINIT], success or failure",
            ),
            CostParam(
                "encls_trap",
                1_500,
                "cycles",
                "KVM commit b6f084ca5538: 'the ~1500 cycle overhead to trap-and-execute EINIT'",
                False,
                "ENCLS[EINIT] exit, emulation in KVM and VM entry (EINIT itself excluded)",
            ),
            CostParam(
                "vm_exit",
                1_200,
                "cycles",
                "assumption between published round trips: ~2,000 (SplitX, Nehalem, KVM 2.6.34) and "
                "~1,350 (AMD SVM, LKML Dec 2020); newer Intel parts are faster",
                True,
                "one VM exit and re-entry with trivial handling (a plain exit or an intercepted guest "
                "WRMSR of a hash MSR)",
            ),
            CostParam(
                "vcpu_load",
                2_000,
                "cycles",
                "assumption: no published figure (VMPTRLD and MSR switching on schedule-in)",
                True,
                "KVM's vcpu_load work when a vCPU is scheduled in, hash MSRs excluded",
            ),
            CostParam(
                "lock",
                50,
                "cycles",
                "assumption: an uncontended mutex acquire plus release",
                True,
                "taking and dropping the design's lock once, uncontended",
            ),
            CostParam(
                "context_switch",
                3_000,
                "cycles",
                "assumption: a Linux context switch is on the order of 1-2 microseconds",
                True,
                "switching a physical CPU from one vCPU thread to another",
            ),
        )
    }
)
"""Every cost parameter, in display order."""


@dataclass(frozen=True, slots=True)
class CostModel:
    """Cycle costs of the operations the simulator charges (see :data:`COST_PARAMS`).

    ``cpu_ghz`` converts cycles to nanoseconds for display (``ns(cycles)``).
    """

    wrmsr_lehash: int = COST_PARAMS["wrmsr_lehash"].default
    rdmsr_lehash: int = COST_PARAMS["rdmsr_lehash"].default
    einit: int = COST_PARAMS["einit"].default
    encls_trap: int = COST_PARAMS["encls_trap"].default
    vm_exit: int = COST_PARAMS["vm_exit"].default
    vcpu_load: int = COST_PARAMS["vcpu_load"].default
    lock: int = COST_PARAMS["lock"].default
    context_switch: int = COST_PARAMS["context_switch"].default
    cpu_ghz: float = 2.0
    name: str = "default"

    def __post_init__(self) -> None:
        for p in COST_PARAMS:
            v = getattr(self, p)
            if isinstance(v, bool) or not isinstance(v, int):
                raise ConfigError(f"cost {p}", v, "must be a whole number of cycles")
            if v < 0:
                raise ConfigError(f"cost {p}", v, "must not be negative")
            if v > MAX_COST:
                raise ConfigError(f"cost {p}", v, _TOO_BIG)
        g = self.cpu_ghz
        if isinstance(g, bool) or not isinstance(g, (int, float)):
            raise ConfigError("cost cpu_ghz", g, "must be a positive number of GHz")
        try:
            ok = math.isfinite(g) and g > 0
        except OverflowError:  # an int too large for a float
            ok = False
        if not ok:
            raise ConfigError("cost cpu_ghz", g, "must be a finite, positive number of GHz")
        if not isinstance(self.name, str):
            raise ConfigError("cost name", self.name, "must be a string")

    # construction ---------------------------------------------------------

    @classmethod
    def preset(cls, name: str) -> CostModel:
        """Load ``data/costs/NAME.toml`` (see :func:`preset_names`)."""
        bad_name = not isinstance(name, str) or not name or any(c in name for c in "/\\\0")
        path = PRESETS_DIR / f"{name}.toml"
        if bad_name or not path.is_file():
            raise ConfigError("costs", name, f"unknown preset; choose one of {', '.join(preset_names())}")
        try:
            data = tomllib.loads(read_user_text(path, "costs", what="a cost preset"))
        except tomllib.TOMLDecodeError as e:
            raise ConfigError("costs", str(path), f"not valid TOML: {e}") from None
        body = dict(data.get("costs", {}))
        if "cpu_ghz" in data:
            body["cpu_ghz"] = data["cpu_ghz"]
        return cls.from_dict(body, name=name)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], *, name: str | None = None) -> CostModel:
        """Build from a mapping of parameter names to numbers; unknown names are refused."""
        base = cls()
        return base.with_overrides(values, name=name if name is not None else str(values.get("name", "default")))

    def with_overrides(self, values: Mapping[str, Any] | list[str], *, name: str | None = None) -> CostModel:
        """A copy with some parameters changed.

        ``values`` is a mapping, or a list of ``name=value`` strings as the
        command line's ``--cost`` gives them. Unknown names, negative values
        and non-numbers raise :class:`ConfigError` naming the parameter.
        """
        if isinstance(values, list):
            pairs: dict[str, Any] = {}
            for item in values:
                if not isinstance(item, str) or "=" not in item:
                    raise ConfigError("--cost", item, "expected NAME=VALUE, e.g. wrmsr_lehash=1200")
                k, _, v = item.partition("=")
                if k.strip() in pairs:  # as a repeated --param is
                    raise ConfigError("--cost", item, f"{k.strip()} given twice")
                pairs[k.strip()] = v.strip()
            values = pairs
        changes: dict[str, Any] = {}
        for k, v in values.items():
            if k == "name":
                continue
            if k not in COST_PARAMS and k != "cpu_ghz":
                raise ConfigError(
                    f"cost {k}", v, f"unknown cost parameter; known: {', '.join([*COST_PARAMS, 'cpu_ghz'])}"
                )
            changes[k] = _number(k, v)
        model = dataclasses.replace(self, **changes)
        if name is not None:
            model = dataclasses.replace(model, name=name)
        elif changes:
            model = dataclasses.replace(model, name=f"{self.name}+overrides")
        return model

    # use ------------------------------------------------------------------

    def ns(self, cycles: float) -> float:
        """Cycles to nanoseconds at ``cpu_ghz``."""
        return cycles / self.cpu_ghz

    def max_service(self) -> int:
        """An upper bound on one launch's service time (cycles) with a built-in
        design: :data:`SERVICE_TERMS` charged costs (see there)."""
        return (
            2 * self.einit
            + self.lock
            + 4 * self.rdmsr_lehash
            + 8 * self.wrmsr_lehash
            + self.encls_trap
            + 4 * self.vm_exit
        )

    def max_attempt(self) -> int:
        """An upper bound on what one more EINIT attempt adds to a launch's
        service time: :data:`ATTEMPT_TERMS` charged costs (see there)."""
        return (
            self.einit + self.lock + 4 * self.rdmsr_lehash + 4 * self.wrmsr_lehash + self.encls_trap + 4 * self.vm_exit
        )

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {p: getattr(self, p) for p in COST_PARAMS}
        d["cpu_ghz"] = self.cpu_ghz
        d["name"] = self.name
        return d

    def table(self) -> list[dict[str, Any]]:
        """One row per parameter: name, value, unit, default, assumption, source (for display)."""
        return [
            {
                "name": p.name,
                "value": getattr(self, p.name),
                "unit": p.unit,
                "default": p.default,
                "assumption": p.assumption,
                "source": p.source,
            }
            for p in COST_PARAMS.values()
        ]


def _number(name: str, raw: object) -> int | float:
    given = raw  # errors show what the user wrote ("1e30"), not a 100-digit int
    value: object = raw
    if isinstance(value, bool):
        raise ConfigError(f"cost {name}", value, "must be a number, not a boolean")
    if isinstance(value, str):
        s = value.strip().replace("_", "")
        try:
            value = int(s, 0)
        except ValueError:
            try:
                value = float(s)
            except ValueError:
                raise ConfigError(f"cost {name}", given, "is not a number") from None
            if math.isinf(value) and "inf" not in s.lower() and name != "cpu_ghz":
                raise ConfigError(f"cost {name}", given, _TOO_BIG) from None  # digits past float's range
    if not isinstance(value, (int, float)):
        raise ConfigError(f"cost {name}", value, "must be a number")
    if name == "cpu_ghz":
        try:
            g = float(value)
        except OverflowError:
            g = math.inf
        if not (math.isfinite(g) and g > 0):
            raise ConfigError("cost cpu_ghz", given, "must be a finite, positive number of GHz")
        return g
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigError(f"cost {name}", given, "must be a finite whole number of cycles")
        if not value.is_integer():
            raise ConfigError(f"cost {name}", given, "must be a whole number of cycles")
        value = int(value)
    if value < 0:
        raise ConfigError(f"cost {name}", given, "must not be negative")
    if value > MAX_COST:
        raise ConfigError(f"cost {name}", given, _TOO_BIG)
    return value


_TOO_BIG = (
    f"must be at most 2**40 = {MAX_COST:,} cycles (about 9 minutes at 2 GHz), "
    "so the simulators' int64 times and sums stay exact"
)


def check_int64_budget(costs: CostModel, launches: int, t_end: int, *, interrupted: int = 0) -> None:
    """Refuse a run whose int64 times could wrap:
    ``t_end + launches * max_service() + interrupted * max_attempt() >= 2**63``.

    ``t_end`` is the trace's last time (cycles), ``launches`` its number of
    launches and ``interrupted`` its EINIT attempts that an interrupt aborts
    (the sum of its ``unmasked`` column; each is one more attempt). Every
    per-launch time, wait and running sum of service times the engines keep
    is at most that bound (waits included: a launch never waits longer than
    the service of everything queued before it).
    """
    worst = int(t_end) + int(launches) * costs.max_service() + int(interrupted) * costs.max_attempt()
    if worst >= _I64_LIMIT:
        big = max(COST_PARAMS, key=lambda p: getattr(costs, p))
        raise ConfigError(
            f"cost {big}",
            getattr(costs, big),
            f"too large for {launches:,} launches: the run's cycle counts could reach {worst:.3g}, "
            "past int64 (2**63); lower the costs or the number of launches",
        )


def preset_names() -> list[str]:
    """Names of the presets in ``data/costs``."""
    return sorted(p.stem for p in PRESETS_DIR.glob("*.toml"))
