"""Workloads: who launches which enclave where and when, as a :class:`~sgxlab.sim.trace.Trace`.

A workload is a named generator with documented parameters. Given parameter
values and a seed it returns a validated trace; the same seed always gives
the same trace (every generator draws from its own
``numpy.random.default_rng(seed)``, never from global random state). Times
are integer CPU cycles.

==================  ========================================================
``host-only``       token-less launches from K signers on N host CPUs
``multi-tenant``    V VMs, each with its own lehash/lewr, whose vCPUs are
                    overcommitted on the CPUs: a scheduler time-slices and
                    migrates them, VM exits and launches come at set rates
``enclave-churn``   many short-lived enclaves, each with its own signer (up
                    to the 64 test keys), as container platforms start them
``suspend-resume``  ``host-only`` plus S3 events at random times, each
                    resetting every CPU's hash MSRs to Intel's value
``mixed``           host CPUs launching and VM CPUs running guests, disjoint
``workshop``        the small default: 2 host CPUs with 3 signers beside 3
                    tenants (one without lewr) whose 6 vCPUs migrate over 2
                    CPUs, 2,000 launches contending for the lock, and exactly
                    one S3 event in the middle
``trace:PATH``      replay a CSV file (format below)
==================  ========================================================

Use :func:`make_trace` (or ``sgxlab.run(workload=..., params=...)``);
:func:`workload_params` lists a workload's parameters (name, type, default,
meaning), which is what ``sgxlab workloads --json`` prints. An unknown
workload, an unknown parameter or a bad value raises :class:`ConfigError`
naming it.

How the generators work
-----------------------

*Host launches* form a Poisson process per CPU (mean gap ``interval``); each
launch picks a signer uniformly, except that with probability ``reuse`` it
repeats the previous signer on its CPU (``host-only``/``suspend-resume``).
*Guests* run on their own CPUs in synchronous time slices of ``slice``
cycles: at each slice boundary a CPU keeps its vCPU with probability
``stay``, otherwise the scheduler gives it a vCPU drawn uniformly from the
vCPUs not running elsewhere, so vCPUs migrate between CPUs (a SCHED row is
written only when the CPU's vCPU changes). A running vCPU launches enclaves
as a Poisson process (mean gap ``interval``) and takes plain VM exits (mean
gap ``exit_interval``), always strictly inside the slice, so the trace
rules hold (a vCPU acts only while it is current on its CPU). A guest with
lewr launches signers from its own set of ``signers_per_vm``; a guest
without lewr launches only its lehash signer.
Generation stops at exactly ``launches`` launches. *S3 events* fall at
uniformly random times between the first and the last launch (``workshop``:
in the middle half).

The generators are vectorised with numpy and draw the same random numbers in
the same order as the per-slice loop they replaced, so a (workload,
parameters, seed) gives the same trace as in every earlier version
(``tests/test_trace_generation.py`` keeps that loop as a reference). The
scheduler's slices depend on each other, so they run in lanes side by side
from a guessed start and each lane is then re-run from its true start until
it meets its guess (:func:`_schedule`); the rows are merged by time in slice
chunks, each with one sort of packed int64 keys, straight into the final
columns, and temporaries are drawn and freed in blocks. A 10 M-launch
``multi-tenant`` trace (about 31 M rows, 17 bytes each) is generated and
validated within 1 GB.

*The PROVISIONKEY gate* (``mixed`` and ``workshop``, with ``policy=mainline``):
``provisionkey`` names the signers whose enclaves ask for PROVISIONKEY,
``provision`` the VMs whose QEMU passed ``/dev/sgx_provision`` and
``host_provision`` whether the host's launcher holds it (defaults: none, none,
no). They go into the trace's static facts, never into its rows, so the
events are the same with or without them.

*Interrupts during EINIT* (every generated workload's ``unmasked_rate``,
default 0): each EINIT attempt is aborted with SGX_UNMASKED_EVENT
independently with that probability, so a launch's count of aborted attempts
before one runs through is geometric, capped at Linux's 1,000 tries
(:data:`~sgxlab.sim.trace.MAX_EINIT_ATTEMPTS`). The counts go into the
trace's optional ``unmasked`` column, drawn from their own generator seeded
with ``(seed, 0x554E4D41)``: the events of a trace do not depend on the rate,
and a rate of 0 leaves the trace exactly as it was (no column).

Bounds
------

Every numeric parameter has a minimum and a maximum (``sgxlab workloads
--json`` lists them): ``launches`` at most :data:`MAX_TRACE_ROWS` (a trace
cannot have more launches than rows); ``cpus``/``host_cpus``/``vm_cpus`` at
most 4,096 (the emulator's :data:`~sgxlab.hw.platform.MAX_CPUS`); ``signers``,
``vms``, ``nolewr``, ``signers_per_vm`` and ``host_signers`` at most 64 (one
test key each); ``vcpus`` at most 256; ``s3`` at most 1,000,000; and every
time (``interval``, ``host_interval``, ``exit_interval``, ``slice``) at most
:data:`MAX_GAP` = 2**36 cycles (about 34 s at 2 GHz), so that even
``MAX_TRACE_ROWS`` launches one ``interval`` apart end before 2**62 cycles
and every time fits int64 with room for the simulators' sums. A value
outside its range, a non-number and a non-finite float (``inf``, ``nan``)
are refused by name.

Before generating anything a workload estimates the size of its trace from
the parameters (launches; VM exits = running vCPUs x duration /
``exit_interval``; schedule-ins <= VM CPUs x slices x (1 - ``stay``); S3
events) and refuses, naming the parameter that makes it big and how to shrink
it, a trace of more than :data:`MAX_TRACE_ROWS` rows (50 M rows are about
0.9 GB of columns) or a schedule of more than :data:`MAX_SCHEDULE_CELLS`
slot draws (slices x (VM CPUs + vCPUs); this bounds the scheduler's time and
memory, and how often it may fall back to re-running slices in Python). A 10 M-launch ``host-only``
trace is 10 M rows and well inside both. The rest of the work (the events a generator draws
before cutting, S3 events x CPUs, VMs' vCPUs, CSV files) is bounded by :mod:`sgxlab.sim.budget`,
whose ``rows`` limit is the one applied here (``budget=`` raises it).

CSV traces (``trace:PATH``)
---------------------------

One event per line under the header ``t,kind,cpu,vm,vcpu,signer`` (columns
in any order, each exactly once), optionally with a seventh column
``unmasked``. ``t`` is a non-negative integer number of
cycles and must not decrease; ``kind`` is ``launch``, ``sched``, ``exit`` or
``s3`` (or 0-3); the other columns are integers, and an empty cell means -1
(the host's VM, no vCPU, no signer). ``unmasked`` is, for a launch, how many
of its EINIT attempts an interrupt aborts (0 to 1,000; see
:mod:`sgxlab.sim.trace`); an empty cell means 0, and other rows must have 0.
A file without the column is a trace without interrupts. Lines starting with ``#`` are comments,
blank lines are skipped, and lines starting with ``#@`` declare the static
facts (so ``pandas.read_csv(path, comment="#")`` still reads the events)::

    #@ cpus=4                       # physical CPUs (default: highest cpu + 1)
    #@ signers=8                    # signer indices 0..7 = data/keys/key00..07 (at most 64)
    #@ vm=0 vcpus=2 lewr=yes lehash=3   # one line per VM; lehash -1 = Intel's
    #@ policy=approved-set          # the host launch policy (default below)
    #@ allowlist=0,1                # the host-approved signers it is built with
    #@ provisionkey=1,3             # signers whose enclaves ask for PROVISIONKEY
    #@ host_provision=yes           # the host holds /dev/sgx_provision (default no)

Undeclared VMs get ``vcpus`` = highest vCPU seen + 1, ``lewr=yes`` and
``lehash=-1``; a ``vm`` line may add ``provision=yes`` (its QEMU passed
``/dev/sgx_provision``: KVM_CAP_SGX_ATTRIBUTE) and ``exits=N``, plain VM
exits the trace counts for that VM without listing them as ``exit`` rows
(``Trace.vm_exits``; what the generators write, as they count theirs). ``policy`` is one of
``allow-all``, ``allowlist``, ``single-le``, ``approved-set``, ``host-only``
and ``mainline`` (:mod:`sgxlab.kvm.policy`;
``single-le`` takes the first ``allowlist`` index as its launch enclave);
without a ``policy`` line a file with an ``allowlist`` line means
``host-only`` and one without ``allow-all``, as before policies had names.
The host may launch any signer: the engines refuse what the policy refuses
and count it. ``signers`` defaults to one more than the highest signer
index anywhere in the file (launches, ``lehash``, ``allowlist``,
``provisionkey``).
:func:`format_trace_csv` writes a trace in this format. Signers are the 64 test keys, so a signer cell or ``lehash``
is at most 63 and ``signers=`` at most 64; a CPU cell is at most 4,095; a
``launch``, ``sched`` or ``exit`` row needs its CPU (only ``s3`` rows leave
it empty). Every problem is a :class:`ConfigError` naming the file's
line number: an unknown or missing column, an unknown kind, a non-integer,
a wrong number of cells, a bad directive, and any rule :meth:`Trace.validate`
enforces (a vCPU acting on a CPU it is not scheduled on, or after another
vCPU was scheduled in there, host and VM CPUs shared, a non-lewr guest
launching another signer, ...).
``data/traces/example.csv`` is a small example.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np

from sgxlab.errors import ConfigError
from sgxlab.files import read_user_text, write_atomic
from sgxlab.hw.platform import MAX_CPUS
from sgxlab.sim.budget import (
    Budget,
    CsvRows,
    check_generator,
    check_trace,
    csv_cells,
    csv_lines,
    resolve_budget,
    vcpu_counts,
)
from sgxlab.sim.trace import (
    KIND_NAMES,
    LAUNCH,
    MAX_EINIT_ATTEMPTS,
    POLICY_NAMES,
    S3,
    SCHED,
    Trace,
    VmSpec,
    canonical_policy,
    cpu_counts,
    stable_cpu_order,
)

__all__ = [
    "MAX_TRACE_ROWS",
    "MAX_SCHEDULE_CELLS",
    "MAX_GAP",
    "Param",
    "Workload",
    "WORKLOADS",
    "workload_names",
    "workload_params",
    "workload_class",
    "make_trace",
    "read_trace_csv",
    "parse_trace_csv",
    "format_trace_csv",
    "write_trace_csv",
    "MAX_SIGNERS",
    "ROW_KINDS",
    "estimated_rows",
]

MAX_SIGNERS = 64
"""Signer *s* is ``data/keys/key{s:02d}.pem``; there are 64 test keys."""

MAX_TRACE_ROWS = 50_000_000
"""Most rows (events) a generated trace may have: about 0.9 GB of columns
(17 bytes a row) plus the generator's temporaries. See "Bounds" above."""

MAX_CSV_BYTES = 2 << 30
"""The largest CSV trace file read: 2 GiB (50 M rows of about 40 bytes)."""

MAX_SCHEDULE_CELLS = 20_000_000
"""Most (slice, CPU or vCPU) draws the vCPU scheduler of the guest workloads
may make. The draws are made and ranked in blocks, but the schedule itself
(int16, slices x VM CPUs) and the keep draws are held whole, and a schedule
whose lanes never meet their guess (``stay`` = 1) is re-run slice by slice in
Python, about 1 us a slice: this keeps both to seconds and tens of MB."""

MAX_GAP = 2**36
"""Largest accepted time parameter (``interval``, ``host_interval``,
``exit_interval``, ``slice``), in cycles: about 34 s at 2 GHz. With at most
:data:`MAX_TRACE_ROWS` launches a trace then ends before 2**62 cycles."""


# --------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class Param:
    """One documented workload parameter: name, type, default, meaning and bounds."""

    name: str
    type: type
    default: Any
    doc: str
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] | None = None
    parse: Callable[[Any, str], Any] | None = None

    def convert(self, value: Any, workload: str) -> Any:
        """``value`` (a Python value or a command-line string) as this parameter's type.

        Floats must be finite, and an integer parameter accepts a float only
        when it is a whole number (``1e6``); the value must lie in
        ``[min, max]``. Errors show the value as given.
        """
        opt = f"{workload} param {self.name}"
        if self.parse is not None:
            return self.parse(value, opt)
        given = value
        t = self.type
        if isinstance(value, str) and t is not str:
            text = value.strip().replace("_", "")
            if t is bool:
                low = text.lower()
                if low in ("1", "true", "yes", "on"):
                    value = True
                elif low in ("0", "false", "no", "off"):
                    value = False
                else:
                    raise ConfigError(opt, given, "expected true/false")
            elif t is int:
                try:
                    value = int(text, 0)
                except ValueError:
                    try:
                        value = float(text)
                    except ValueError:
                        raise ConfigError(opt, given, "expected a whole number") from None
                    if math.isinf(value) and "inf" not in text.lower() and self.max is not None:
                        raise ConfigError(
                            opt, given, f"must be at most {_num(self.max)}"
                        ) from None  # past float's range
            elif t is float:
                try:
                    value = float(text)
                except ValueError:
                    raise ConfigError(opt, given, "expected a number") from None
        if t is bool:
            if not isinstance(value, (bool, np.bool_)):
                raise ConfigError(opt, given, "expected true or false")
            value = bool(value)
        elif t is int:
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer, float, np.floating)):
                raise ConfigError(opt, given, "expected a whole number")
            if isinstance(value, (float, np.floating)):
                if not math.isfinite(value):
                    raise ConfigError(opt, given, "expected a finite whole number")
                if not float(value).is_integer():
                    raise ConfigError(opt, given, "expected a whole number")
            value = int(value)
        elif t is float:
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise ConfigError(opt, given, "expected a number")
            try:
                value = float(value)
            except OverflowError:  # an int beyond float's range
                value = math.inf
            if not math.isfinite(value):
                raise ConfigError(opt, given, "expected a finite number")
        elif t is str and not isinstance(value, str):
            raise ConfigError(opt, given, "expected a string")
        if self.choices is not None and value not in self.choices:
            raise ConfigError(opt, given, f"expected one of {', '.join(self.choices)}")
        if self.min is not None and value < self.min:
            raise ConfigError(opt, given, f"must be at least {_num(self.min)}")
        if self.max is not None and value > self.max:
            raise ConfigError(opt, given, f"must be at most {_num(self.max)}")
        return value

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "type": self.type.__name__, "default": self.default, "doc": self.doc}
        if self.min is not None:
            d["min"] = self.min
        if self.max is not None:
            d["max"] = self.max
        if self.choices is not None:
            d["choices"] = list(self.choices)
        return d


def _num(x: float) -> str:
    if float(x).is_integer():
        n = int(x)
        power = n >= 2**32 and n & (n - 1) == 0
        return f"{n:,} (2**{n.bit_length() - 1})" if power else f"{n:,}"
    return str(x)


ROW_KINDS = ("launch", "sched", "s3")
"""The kinds of :meth:`Workload.estimate` that are rows of the trace (plain exits are counted)."""


def estimated_rows(est: Mapping[str, float]) -> float:
    """The rows of a trace by :meth:`Workload.estimate`: its launches, schedule-ins and S3 events."""
    return sum(est.get(k, 0) for k in ROW_KINDS)


def _size_error(workload: str, names: list[str], values: dict[str, Any], reason: str) -> ConfigError:
    names = [n for n in names if n in values]
    if len(names) == 1:
        return ConfigError(f"{workload} param {names[0]}", values[names[0]], reason)
    return ConfigError(f"{workload} params {', '.join(names)}", {n: values[n] for n in names}, reason)


def _guest_estimate(v: dict[str, Any], host_cpus: int, host_interval: int, vm_cpus: int) -> dict[str, float]:
    """:meth:`Workload.estimate` for :func:`_generate_mixed` (expected values; the
    schedule-ins are an upper bound)."""
    n = v["launches"]
    total_vcpus = v["vms"] * v["vcpus"]
    busy = min(vm_cpus, total_vcpus)
    rate = host_cpus / host_interval + busy / v["interval"]  # launches per cycle
    span = n / rate if n else 0.0
    slices = span / v["slice"] * 1.1 + 2 if n and busy else 0.0  # as _generate_mixed batches them
    return {
        "launch": n,
        "exit": busy * span / v["exit_interval"] if v["exit_interval"] else 0.0,
        "sched": vm_cpus * (slices * (1.0 - v["stay"]) + 1) if slices else 0.0,
        "s3": v.get("s3", 0),
        "span": span,
        "slices": slices,
        "cells": slices * (vm_cpus + total_vcpus),
    }


# Shared parameter definitions (each workload picks its own defaults).
def _launches(default: int) -> Param:
    return Param(
        "launches", int, default, "number of enclave launches (EINIT requests) in the trace", 0, MAX_TRACE_ROWS
    )


def _cpus(default: int, name: str = "cpus", what: str = "physical CPUs") -> Param:
    return Param(name, int, default, what, 1, MAX_CPUS)


def _interval(default: int, who: str) -> Param:
    return Param("interval", int, default, f"mean cycles between launches {who} (exponential gaps)", 1, MAX_GAP)


_P_SIGNERS = Param("signers", int, 4, "number of enclave signers (test keys key00..)", 1, MAX_SIGNERS)
_P_REUSE = Param("reuse", float, 0.5, "probability that a launch repeats the previous signer on its CPU", 0.0, 1.0)
_P_VMS = Param("vms", int, 4, "number of VMs (tenants), each with its own lehash", 1, MAX_SIGNERS)
_P_VCPUS = Param("vcpus", int, 2, "vCPUs per VM", 1, 256)
_P_NOLEWR = Param(
    "nolewr",
    int,
    1,
    "how many of the VMs (the last ones) have no lewr: they only launch their lehash signer",
    0,
    MAX_SIGNERS,
)
_P_SPV = Param("signers_per_vm", int, 2, "signers each lewr VM launches (its lehash signer first)", 1, MAX_SIGNERS)
_P_EXIT = Param(
    "exit_interval", int, 200_000, "mean cycles between plain VM exits of a running vCPU (0: none)", 0, MAX_GAP
)
_P_SLICE = Param("slice", int, 2_000_000, "scheduler time slice in cycles (1 ms at 2 GHz)", 2, MAX_GAP)
_P_STAY = Param(
    "stay",
    float,
    0.25,
    "probability that a CPU keeps its vCPU for the next slice (else it is rescheduled, migrating vCPUs)",
    0.0,
    1.0,
)
_P_S3 = Param("s3", int, 0, "number of S3 suspend/resume events at random times", 0, 1_000_000)
_P_UNMASKED = Param(
    "unmasked_rate",
    float,
    0.0,
    "probability that an interrupt aborts an EINIT attempt with SGX_UNMASKED_EVENT, each attempt "
    "independently (Linux retries, up to 1,000 attempts a launch); 0: never",
    0.0,
    1.0,
)
_UNMASKED_STREAM = 0x554E4D41  # "UNMA": the interrupt draws' own generator, (seed, this)
_P_POLICY = Param(
    "policy",
    str,
    "allow-all",
    "host launch policy (sgxlab.kvm.policy), built with the host's own signers as the approved set: "
    "allow-all (every signer), allowlist (host and trapped guest EINIT), single-le (the first host signer is "
    "the host's one LE, tokens for the others; refuses lewr VMs and other lehashes), approved-set "
    "(refuses lewr VMs and unapproved lehashes), host-only (host EINIT only; guests unchecked, their other "
    "launches count as bypasses), mainline (what Linux merged: every signer, PROVISIONKEY gated; see "
    "provisionkey, provision, host_provision)",
    choices=POLICY_NAMES,
)
NO_INDICES = "none"
"""The value of an index-list parameter (``provisionkey``, ``provision``) that names nothing."""


def _index_list(value: Any, opt: str) -> str:
    """An index-list parameter (``"1,3"``, ``"none"``/``""``, an int or a sequence of ints)
    as its canonical text: sorted, without repeats, ``"none"`` when empty."""
    items: list[Any]
    if isinstance(value, str):
        text = value.strip()
        items = [] if text.lower() in ("", NO_INDICES) else [x.strip() for x in text.split(",")]
    elif isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        items = [value]
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise ConfigError(opt, value, "expected comma-separated indices (e.g. 1,3), a list of them, or none")
    out: set[int] = set()
    for x in items:
        if isinstance(x, str):
            try:
                n = int(x)
            except ValueError:
                raise ConfigError(opt, value, f"{x!r} is not an index; expected e.g. 1,3 or none") from None
        elif isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_)):
            n = int(x)
        else:
            raise ConfigError(opt, value, f"{x!r} is not an index; expected e.g. 1,3 or none")
        if not 0 <= n < MAX_SIGNERS:
            raise ConfigError(opt, value, f"an index is in [0, {MAX_SIGNERS - 1}]")
        out.add(n)
    return ",".join(str(n) for n in sorted(out)) if out else NO_INDICES


def index_set(text: str) -> tuple[int, ...]:
    """The indices of an index-list parameter's canonical text (``"none"``: none)."""
    return () if text == NO_INDICES else tuple(int(x) for x in text.split(","))


def _flag(value: Any, opt: str) -> bool:
    """A yes/no parameter: a bool, 0 or 1, or true/false, yes/no, on/off, 1/0 as text."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        low = value.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
    raise ConfigError(opt, value, "expected 0 or 1 (or true/false)")


_P_PROVISIONKEY = Param(
    "provisionkey",
    str,
    NO_INDICES,
    "signer indices whose enclaves ask for PROVISIONKEY, e.g. 1,3 (none: no signer); under mainline a host "
    "launch of one fails with -EACCES unless host_provision, a guest's with #GP at ECREATE unless its VM "
    "is in provision",
    parse=_index_list,
)
_P_PROVISION = Param(
    "provision",
    str,
    NO_INDICES,
    "VM indices whose QEMU passed /dev/sgx_provision (+sgx-provisionkey), so the VM holds "
    "KVM_CAP_SGX_ATTRIBUTE, e.g. 0,2 (none: no VM)",
    parse=_index_list,
)
_P_HOST_PROVISION = Param(
    "host_provision",
    bool,
    False,
    "the host's launching process holds /dev/sgx_provision (SGX_IOC_ENCLAVE_PROVISION): 0 or 1",
    parse=_flag,
)


# --------------------------------------------------------------------------- workloads


class Workload:
    """Base class: subclasses set ``name``, ``summary``, ``params`` and implement :meth:`generate`."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    params: ClassVar[tuple[Param, ...]] = ()

    def __init__(self, params: Mapping[str, Any] | None = None, budget: Budget | None = None) -> None:
        self.budget = budget
        self.values = self.resolve(params, budget)

    @classmethod
    def resolve(cls, params: Mapping[str, Any] | None, budget: Budget | None = None) -> dict[str, Any]:
        """Defaults overridden by ``params``; unknown names and bad values raise ConfigError."""
        known = {p.name: p for p in cls.params}
        values = {p.name: p.default for p in cls.params}
        if params is None:
            params = {}
        if not isinstance(params, Mapping):
            raise ConfigError("params", params, "expected a mapping of parameter names to values")
        for k, v in params.items():
            if k not in known:
                raise ConfigError(
                    f"{cls.name} param {k}",
                    v,
                    f"unknown parameter; {cls.name} takes {', '.join(known) or 'no parameters'}",
                )
            values[k] = known[k].convert(v, cls.name)
        cls.check(values)
        cls.check_size(values, budget)
        return values

    @classmethod
    def check(cls, values: dict[str, Any]) -> None:
        """Cross-parameter checks (subclasses)."""

    @classmethod
    def estimate(cls, values: dict[str, Any]) -> dict[str, float]:
        """The expected size of the trace, before generating it: rows by kind
        (``launch``, ``sched``, ``s3``; :func:`estimated_rows` is their sum), plain
        exits (``exit``, counted in ``Trace.vm_exits``, not rows), ``span`` (cycles)
        and, for the guest workloads, ``cells`` (scheduler draws; see "Bounds")."""
        return {"launch": values.get("launches", 0), "s3": values.get("s3", 0)}

    @classmethod
    def check_size(cls, values: dict[str, Any], budget: Budget | None = None) -> None:
        """Refuse parameters whose trace would be too big (see "Bounds") or whose generation
        would be over ``budget`` (:mod:`sgxlab.sim.budget`), naming them."""
        est = cls.estimate(values)
        rows = estimated_rows(est)
        max_rows = resolve_budget(budget).rows
        if rows > max_rows:
            parts = {"launch": "launches", "sched": "schedule-ins", "s3": "S3 events"}
            detail = ", ".join(f"{est[k]:,.0f} {what}" for k, what in parts.items() if est.get(k))
            biggest = max(ROW_KINDS, key=lambda k: est.get(k, 0))
            names, advice = {
                "launch": (["launches"], "lower launches"),
                "sched": (["slice", "stay"], "raise slice or stay, or lower launches"),
                "s3": (["s3"], "lower s3 or launches"),
            }[biggest]
            raise _size_error(
                cls.name,
                names,
                values,
                f"the trace would have about {rows:,.0f} rows ({detail}), more than the limit of "
                f"{max_rows:,}; {advice}",
            )
        cells = est.get("cells", 0)
        if cells > MAX_SCHEDULE_CELLS:
            raise _size_error(
                cls.name,
                ["slice", "interval", "launches"],
                values,
                f"the vCPU scheduler would plan about {est['slices']:,.0f} slices of {values['slice']:,} cycles "
                f"({cells:,.0f} draws, more than the limit of {MAX_SCHEDULE_CELLS:,}); raise slice, "
                "launch more often (lower interval/host_interval) or lower launches",
            )
        # A guard: within the maxima the span stays below 50 M x 2**36 (x 1.1 for slice rounding) < 0.9 * 2**62.
        if est.get("span", 0) > 0.9 * 2**62:
            raise _size_error(
                cls.name,
                ["interval", "launches"],
                values,
                f"the trace would last about {est['span']:.3g} cycles; times must stay below 2**62",
            )
        check_generator(cls.name, values, est, budget)

    def trace(self, seed: int = 0) -> Trace:
        """The validated trace for ``seed``."""
        seed = _seed(seed)
        tr = self.generate(np.random.default_rng(seed), self.values)
        rate = self.values.get("unmasked_rate", 0.0)
        if rate > 0:
            tr.unmasked = _unmasked_draws(seed, tr.kind, rate)
        tr.name = self.name
        tr.params = dict(self.values)
        tr.validate()
        return tr

    def generate(self, rng: np.random.Generator, v: dict[str, Any]) -> Trace:
        raise NotImplementedError

    @classmethod
    def describe(cls) -> dict[str, Any]:
        return {"name": cls.name, "summary": cls.summary, "params": [p.as_dict() for p in cls.params]}


def _seed(seed: Any) -> int:
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**63:
        raise ConfigError("seed", seed, "expected a non-negative integer")
    return int(seed)


class HostOnly(Workload):
    """Token-less launches from K signers on N host CPUs (no VMs)."""

    name = "host-only"
    summary = "token-less launches from K signers on N host CPUs"
    params: ClassVar[tuple[Param, ...]] = (
        _launches(10_000),
        _cpus(4),
        _P_SIGNERS,
        _interval(400_000, "on one CPU"),
        _P_REUSE,
        _P_UNMASKED,
    )

    @classmethod
    def estimate(cls, values: dict[str, Any]) -> dict[str, float]:
        est = super().estimate(values)
        est["span"] = values["launches"] * values["interval"] / values["cpus"]
        return est

    def generate(self, rng: np.random.Generator, v: dict[str, Any]) -> Trace:
        t, cpu, signer, order = _host_stream(rng, v["launches"], v["cpus"], v["signers"], v["interval"], v["reuse"])
        return _assemble_host(v["cpus"], v["signers"], t, cpu, signer, _empty_s3(), order)


class SuspendResume(HostOnly):
    """``host-only`` plus S3 suspend/resume events at uniformly random times."""

    name = "suspend-resume"
    summary = "host-only launches plus S3 events at random times (every CPU's hash MSRs reset to Intel's)"
    params = (
        *HostOnly.params[:-1],
        Param("s3", int, 4, "number of S3 suspend/resume events at random times", 0, 1_000_000),
        _P_UNMASKED,
    )

    def generate(self, rng: np.random.Generator, v: dict[str, Any]) -> Trace:
        t, cpu, signer, order = _host_stream(rng, v["launches"], v["cpus"], v["signers"], v["interval"], v["reuse"])
        s3 = _s3_times(rng, t, v["s3"], 0.0, 1.0)
        return _assemble_host(v["cpus"], v["signers"], t, cpu, signer, s3, order)


class EnclaveChurn(Workload):
    """Many short-lived enclaves, each with its own signer (round-robin over up to 64 keys,
    shuffled every round), so consecutive launches on a CPU almost never share a signer."""

    name = "enclave-churn"
    summary = "many short-lived enclaves, each with its own signer (up to the 64 test keys)"
    params = (
        _launches(10_000),
        _cpus(4),
        Param("signers", int, 64, "distinct signers the enclaves cycle through (test keys key00..)", 1, MAX_SIGNERS),
        _interval(100_000, "on one CPU"),
        _P_UNMASKED,
    )

    def generate(self, rng: np.random.Generator, v: dict[str, Any]) -> Trace:
        n, k = v["launches"], v["signers"]
        t = _poisson_times(rng, n, v["interval"] / v["cpus"])
        cpu = rng.integers(0, v["cpus"], n).astype(np.int16)
        rounds = -(-n // k) if n else 0
        signer = np.argsort(rng.random((rounds, k)), axis=1).astype(np.int16).ravel()[:n]
        return _assemble_host(v["cpus"], k, t, cpu, signer, _empty_s3())


_GUEST_PARAMS = (
    _P_VMS,
    _P_VCPUS,
    _P_NOLEWR,
    _P_SPV,
    _interval(400_000, "of a running vCPU"),
    _P_EXIT,
    _P_SLICE,
    _P_STAY,
)


class MultiTenant(Workload):
    """V VMs with their own lehash (signer) and lewr, vCPUs overcommitted on the CPUs."""

    name = "multi-tenant"
    summary = "V VMs with their own lehash/lewr, vCPUs time-sliced and migrated over fewer CPUs"
    params = (_launches(10_000), _cpus(4), *_GUEST_PARAMS, _P_S3, _P_UNMASKED)

    @classmethod
    def check(cls, v: dict[str, Any]) -> None:
        _check_guests(cls.name, v, host_signers=0)

    @classmethod
    def estimate(cls, values: dict[str, Any]) -> dict[str, float]:
        return _guest_estimate(values, 0, 1, values["cpus"])

    def generate(self, rng: np.random.Generator, v: dict[str, Any]) -> Trace:
        return _generate_mixed(
            rng, v, host_cpus=0, host_signers=0, host_interval=1, vm_cpus=v["cpus"], s3_window=(0.0, 1.0)
        )


class Mixed(Workload):
    """Host CPUs launching host enclaves beside VM CPUs running guests (disjoint CPU sets)."""

    name = "mixed"
    summary = "host launches on host CPUs and guests on their own (disjoint) CPUs, together"
    params: ClassVar[tuple[Param, ...]] = (
        _launches(10_000),
        _cpus(2, "host_cpus", "host CPUs (numbered first)"),
        Param("host_signers", int, 3, "signers the host launches (key00..)", 1, MAX_SIGNERS),
        Param("host_interval", int, 400_000, "mean cycles between launches on one host CPU", 1, MAX_GAP),
        _cpus(2, "vm_cpus", "CPUs the vCPUs run on (after the host CPUs)"),
        *_GUEST_PARAMS,
        _P_S3,
        _P_POLICY,
        _P_UNMASKED,
        _P_PROVISIONKEY,
        _P_PROVISION,
        _P_HOST_PROVISION,
    )
    s3_window: ClassVar[tuple[float, float]] = (0.0, 1.0)

    @classmethod
    def check(cls, v: dict[str, Any]) -> None:
        _check_guests(cls.name, v, host_signers=v["host_signers"])
        nsigners = v["host_signers"] + _vm_signer_count(v)
        for s in index_set(v["provisionkey"]):
            if s >= nsigners:
                raise ConfigError(
                    f"{cls.name} param provisionkey",
                    v["provisionkey"],
                    f"signer {s} is not in the trace: it has signers 0..{nsigners - 1} "
                    f"({v['host_signers']} host signers, then the VMs')",
                )
        for j in index_set(v["provision"]):
            if j >= v["vms"]:
                raise ConfigError(
                    f"{cls.name} param provision", v["provision"], f"VM {j} does not exist: VMs are 0..{v['vms'] - 1}"
                )

    @classmethod
    def estimate(cls, values: dict[str, Any]) -> dict[str, float]:
        return _guest_estimate(values, values["host_cpus"], values["host_interval"], values["vm_cpus"])

    def generate(self, rng: np.random.Generator, v: dict[str, Any]) -> Trace:
        return _generate_mixed(
            rng,
            v,
            host_cpus=v["host_cpus"],
            host_signers=v["host_signers"],
            host_interval=v["host_interval"],
            vm_cpus=v["vm_cpus"],
            s3_window=self.s3_window,
        )


def _with_defaults(params: tuple[Param, ...], **defaults: Any) -> tuple[Param, ...]:
    out = []
    for p in params:
        if p.name in defaults:
            p = replace(p, default=defaults[p.name])
        out.append(p)
    return tuple(out)


class Workshop(Mixed):
    """The small default that shows every effect at once: 2 host CPUs launching from 3
    signers beside 3 tenants (one without lewr) whose 6 vCPUs time-share and migrate
    over 2 more CPUs, 2,000 launches contending for the lock, and one S3 event in the
    middle of the run."""

    name = "workshop"
    summary = (
        "small default: 2 host CPUs with 3 signers beside 3 tenants (one without lewr) whose 6 vCPUs "
        "migrate over 2 CPUs; 2,000 launches contend for the lock; one S3 event mid-run"
    )
    params = _with_defaults(Mixed.params, launches=2_000, vms=3, vcpus=2, s3=1, exit_interval=400_000)
    s3_window = (0.25, 0.75)


class TraceFile(Workload):
    """Replay of a CSV trace (``trace:PATH``); see the module docstring for the format."""

    name = "trace"
    summary = "replay a CSV trace: trace:PATH (format in sgxlab.sim.workloads; example data/traces/example.csv)"
    params = ()

    def __init__(self, path: str | Path, params: Mapping[str, Any] | None = None, budget: Budget | None = None) -> None:
        self.path = Path(path)
        super().__init__(params, budget)

    def trace(self, seed: int = 0) -> Trace:
        _seed(seed)
        tr = read_trace_csv(self.path, budget=self.budget)
        tr.name = f"trace:{self.path}"
        return tr


WORKLOADS: Mapping[str, type[Workload]] = MappingProxyType(
    {w.name: w for w in (HostOnly, MultiTenant, EnclaveChurn, SuspendResume, Mixed, Workshop)}
)
"""The generated workloads by name (``trace:PATH`` is handled by :func:`workload_class`)."""


def workload_names() -> list[str]:
    """Every workload name, ``trace:PATH`` last."""
    return [*WORKLOADS, "trace:PATH"]


def workload_class(name: str) -> type[Workload]:
    """The class of a workload name (``trace:...`` gives :class:`TraceFile`)."""
    if isinstance(name, str):
        if name in WORKLOADS:
            return WORKLOADS[name]
        if name.startswith("trace:") or name == "trace":
            return TraceFile
    raise ConfigError("workload", name, f"unknown workload; choose one of {', '.join(workload_names())}")


def workload_params(name: str) -> list[dict[str, Any]]:
    """The parameters of workload ``name``: ``[{name, type, default, doc, [min, max, choices]}]``."""
    return [p.as_dict() for p in workload_class(name).params]


def describe_workloads() -> list[dict[str, Any]]:
    """``[{name, summary, params}]`` for every workload (``sgxlab workloads --json``)."""
    out = [w.describe() for w in WORKLOADS.values()]
    out.append({"name": "trace:PATH", "summary": TraceFile.summary, "params": []})
    return out


def make_workload(name: str, params: Mapping[str, Any] | None = None, *, budget: Budget | None = None) -> Workload:
    """Resolve ``name`` and check ``params`` (and the work they ask for, against ``budget``:
    :mod:`sgxlab.sim.budget`) without generating anything."""
    cls = workload_class(name)
    if cls is TraceFile:
        path = name[len("trace:") :] if name.startswith("trace:") else ""
        if not path:
            raise ConfigError("workload", name, "give the CSV file as trace:PATH")
        return TraceFile(path, params, budget)
    return cls(params, budget)


def make_trace(
    name: str, params: Mapping[str, Any] | None = None, seed: int = 0, *, budget: Budget | None = None
) -> Trace:
    """The validated trace of workload ``name`` with ``params`` for ``seed`` (within ``budget``)."""
    return make_workload(name, params, budget=budget).trace(seed)


# --------------------------------------------------------------------------- generation helpers


def _poisson_times(rng: np.random.Generator, n: int, mean_gap: float, t0: int = 0) -> np.ndarray:
    """``n`` arrival times (int64 cycles) of a Poisson process with mean gap ``mean_gap``."""
    if n == 0:
        return np.zeros(0, np.int64)
    t = rng.exponential(mean_gap, n)
    np.cumsum(t, out=t)
    out = t.view(np.int64)  # convert in place, a block at a time: no second 8-byte column
    for a in range(0, n, _CAST_BLOCK):  # the sums are >= 0, so the cast's truncation is floor
        out[a : a + _CAST_BLOCK] = t[a : a + _CAST_BLOCK]  # (numpy copies the overlapping block first)
    del t
    if t0:
        out += t0
    return out


_CAST_BLOCK = 1 << 16
"""Times per block of :func:`_poisson_times`' in-place conversion (a 512 kB copy each)."""


def _small_ints(rng: np.random.Generator, n: int, high: int) -> np.ndarray:
    """``rng.integers(0, high, n)`` (the same draws) as int16, for ``high`` <= 2**15: drawn
    as int32 a block at a time and narrowed into the result, so no int32 (or int64)
    column of ``n`` values is ever made.

    Bounded int32 draws take 32-bit halves of the bit generator's 64-bit outputs, and
    the bit generator keeps an unused half for its next call, so successive calls
    continue one stream: blocks give exactly the values of one call, rejections
    (Lemire's method) included (``tests/test_trace_generation.py`` checks it), and
    int32 draws are the int64 draws in this range."""
    out = np.empty(n, np.int16)
    for a in range(0, n, _BLOCK):
        b = min(n, a + _BLOCK)
        out[a:b] = rng.integers(0, high, b - a, dtype=np.int32)
    return out


def _reuse_signers(
    rng: np.random.Generator, cpu: np.ndarray, choices: np.ndarray, reuse: float, ncpus: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """Per launch, a signer from ``choices``; with probability ``reuse`` the previous one on its CPU.

    Also returns the launches' stable order by CPU when it was needed (``None``:
    not computed, or one CPU), which is :meth:`Trace.launch_cpu_order` of a trace
    of these launches: the caller hands it over so the engines do not sort again.

    Draws, in order: a pick per launch, then ``rng.random(n) >= reuse`` (fresh).
    A launch takes its own pick when it is fresh or its CPU's first, else the
    signer of the previous launch on its CPU. Along the CPU order that is the
    pick of the last fresh launch so far (a running maximum of positions), done
    a block of the order at a time; a block that starts inside a CPU's run
    carries the run's last signer in (:func:`_reuse_block`).
    """
    n = len(cpu)
    draw = _small_ints(rng, n, len(choices))
    if not np.array_equal(choices, np.arange(len(choices))):
        draw = choices[draw].astype(np.int16)
    if reuse <= 0.0 or n == 0:
        return draw, None
    fresh = _at_least(rng, n, reuse)
    order: np.ndarray | None = None
    starts = np.zeros(1, np.int64)  # each CPU's first launch along the order
    if int(cpu.min()) != int(cpu.max()):
        counts = cpu_counts(cpu, ncpus)
        order = stable_cpu_order(cpu, ncpus, counts)
        starts = np.concatenate([starts, np.cumsum(counts[:-1])])
    carry = 0
    for a in range(0, n, _REUSE_BLOCK):  # in place: a block reads only its own rows, and carry
        b = min(n, a + _REUSE_BLOCK)
        if order is None:
            got = _reuse_block(fresh[a:b], draw[a:b], starts, a, carry)
            draw[a:b] = got
        else:
            rows = order[a:b]  # np.take gathers faster than fancy indexing
            got = _reuse_block(np.take(fresh, rows), np.take(draw, rows), starts, a, carry)
            draw[rows] = got
        carry = int(got[-1])
    return draw, order


_REUSE_BLOCK = 1 << 20
"""Launches per block of :func:`_reuse_signers` along the CPU order."""


def _reuse_block(fresh: np.ndarray, draw: np.ndarray, starts: np.ndarray, a: int, carry: int) -> np.ndarray:
    """The signers of one block of launches in CPU order, its first at position ``a``
    (``fresh`` and ``draw`` are the block's, for this function to change): each takes the pick of the
    last fresh launch up to it, a CPU's first launch (``starts``) being fresh; before
    the block's first fresh launch, ``carry`` (the signer of the launch before ``a``)."""
    lo, hi = np.searchsorted(starts, (a, a + len(fresh)))
    fresh[starts[lo:hi] - a] = True
    if not fresh[0]:  # the block starts inside a CPU's run: its launches reuse the carried signer
        draw[0] = carry
        fresh[0] = True
    src = np.arange(len(fresh), dtype=np.int32)
    src *= fresh  # a fresh launch's own place, else 0 ...
    np.maximum.accumulate(src, out=src)  # ... and the running maximum: the last fresh one
    return np.take(draw, src)


def _at_least(rng: np.random.Generator, n: int, x: float) -> np.ndarray:
    """``rng.random(n) >= x`` (the same draws), through one block-sized buffer: bool, 1 byte a draw."""
    out = np.empty(n, bool)
    buf = np.empty(min(n, _BLOCK), np.float64)
    for a in range(0, n, len(buf)):
        u = buf[: min(n, a + len(buf)) - a]
        rng.random(out=u)
        np.greater_equal(u, x, out=out[a : a + len(u)])
    return out


def _host_stream(
    rng: np.random.Generator, n: int, ncpus: int, nsigners: int, interval: int, reuse: float, cpu0: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Exactly ``n`` host launches: a per-CPU Poisson process (merged), signers with reuse;
    and their stable order by CPU if it was computed (see :func:`_reuse_signers`)."""
    t = _poisson_times(rng, n, interval / ncpus)
    cpu = _small_ints(rng, n, ncpus)
    if cpu0:
        cpu += np.int16(cpu0)
    signer, order = _reuse_signers(rng, cpu, np.arange(nsigners), reuse, ncpus + cpu0)
    return t, cpu, signer, order


def _unmasked_draws(seed: int, kind: np.ndarray, rate: float) -> np.ndarray:
    """The ``unmasked`` column: per launch, the EINIT attempts an interrupt aborts before one
    runs through (geometric: each attempt independently with probability ``rate``), capped at
    :data:`MAX_EINIT_ATTEMPTS`; 0 on other rows. Drawn from ``default_rng((seed, 0x554E4D41))``."""
    out = np.zeros(len(kind), np.int16)
    launch = np.flatnonzero(kind == LAUNCH)
    if not len(launch):
        return out
    if rate >= 1.0:
        out[launch] = MAX_EINIT_ATTEMPTS
        return out
    rng = np.random.default_rng([seed, _UNMASKED_STREAM])
    k = rng.geometric(1.0 - rate, len(launch)) - 1  # failures before the first success
    np.minimum(k, MAX_EINIT_ATTEMPTS, out=k)
    out[launch] = k
    return out


def _empty_s3() -> np.ndarray:
    return np.zeros(0, np.int64)


def _s3_times(rng: np.random.Generator, t: np.ndarray, count: int, lo: float, hi: float) -> np.ndarray:
    """``count`` sorted S3 times uniform in the [lo, hi] fraction of the launches' span (none without launches)."""
    if count == 0 or not len(t):
        return _empty_s3()
    a = int(t[0]) if len(t) else 0
    b = int(t[-1]) if len(t) else 1
    span = max(b - a, 1)
    return np.sort(a + np.floor(span * (lo + (hi - lo) * rng.random(count)))).astype(np.int64)


def _assemble_host(
    ncpus: int,
    nsigners: int,
    t: np.ndarray,
    cpu: np.ndarray,
    signer: np.ndarray,
    s3: np.ndarray,
    order: np.ndarray | None = None,
) -> Trace:
    """A host-only trace from sorted launch columns, with S3 rows merged in (after equal times).

    ``order``: the launches' stable order by CPU if the caller has it (S3 rows are
    not launches, so it stays that of the trace); the trace keeps it for the engines.
    """
    n, m = len(t), len(s3)
    if m == 0:
        minus = np.full(n, -1, np.int16)  # the VM and vCPU columns share it (read-only once validated)
        tr = Trace(ncpus, nsigners, (), t, np.zeros(n, np.int8), cpu, minus, minus, signer)
    else:
        at = np.searchsorted(t, s3, side="right")
        tt = np.insert(t, at, s3)
        kind = np.insert(np.zeros(n, np.int8), at, S3)
        c = np.insert(cpu, at, -1)
        sg = np.insert(signer, at, -1)
        minus = np.full(n + m, -1, np.int16)
        tr = Trace(ncpus, nsigners, (), tt, kind, c, minus, minus, sg)
    if order is not None:
        tr._keep_cpu_order(order)
    return tr


def _check_guests(name: str, v: dict[str, Any], host_signers: int) -> None:
    if v["nolewr"] > v["vms"]:
        raise ConfigError(f"{name} param nolewr", v["nolewr"], f"at most vms={v['vms']}")
    need = host_signers + _vm_signer_count(v)
    if need > MAX_SIGNERS:
        raise ConfigError(
            f"{name} params",
            need,
            f"the host and the VMs need {need} signers but there are only {MAX_SIGNERS} test keys; "
            "lower vms or signers_per_vm",
        )


def _vm_signer_count(v: dict[str, Any]) -> int:
    lewr_vms = v["vms"] - v["nolewr"]
    return int(lewr_vms * v["signers_per_vm"] + v["nolewr"])


def _vm_layout(v: dict[str, Any], base: int) -> tuple[tuple[VmSpec, ...], np.ndarray, np.ndarray]:
    """VM specs and each VM's signer range (first index, count), starting at signer ``base``."""
    specs, first, count = [], [], []
    s = base
    provision = set(index_set(v.get("provision", NO_INDICES)))
    for j in range(v["vms"]):
        lewr = j < v["vms"] - v["nolewr"]
        k = v["signers_per_vm"] if lewr else 1
        specs.append(VmSpec(v["vcpus"], lewr, s, j in provision))
        first.append(s)
        count.append(k)
        s += k
    return tuple(specs), np.array(first, np.int64), np.array(count, np.int64)


# --------------------------------------------------------------------------- the vCPU scheduler

_LANE = 256
"""Slices per lane of the vectorised scheduler (:func:`_schedule`)."""

_BLOCK = 1 << 22
"""Random numbers (or events) handled per block, which bounds the generators' temporaries."""


def _keep_draws(rng: np.random.Generator, nslices: int, ncpus: int, stay: float) -> np.ndarray:
    """``rng.random((nslices, ncpus)) < stay`` (the same draws), in row blocks: bool ``(nslices, ncpus)``."""
    keep = np.empty((nslices, ncpus), bool)
    rows = max(1, _BLOCK // ncpus)
    for a in range(0, nslices, rows):
        b = min(nslices, a + rows)
        np.less(rng.random((b - a, ncpus)), stay, out=keep[a:b])
    return keep


_FULL_SORT_VCPUS = 512
"""Up to this many vCPUs :func:`_candidates` sorts each slice's keys whole: for short rows
numpy's per-row cost dominates, and one ``argsort`` beats ``argpartition`` plus an ``argsort``
of the part (8 vCPUs: 0.08 against 0.22 us a slice; they cross near 1,000 vCPUs)."""


def _candidates(rng: np.random.Generator, nslices: int, nvcpus: int, width: int) -> np.ndarray:
    """Each slice's vCPUs in ascending order of its random keys, the first ``width``.

    Draws ``rng.random((nslices, nvcpus))`` (the same numbers as one call, in row
    blocks) and returns ``(nslices, width)`` int16, padded with -1 when there are
    fewer vCPUs than ``width``. Only that prefix can matter (see :func:`_schedule`).
    """
    out = np.full((nslices, width), -1, np.int16)
    w = min(width, nvcpus)
    rows = max(1, _BLOCK // nvcpus)
    for a in range(0, nslices, rows):
        b = min(nslices, a + rows)
        keys = rng.random((b - a, nvcpus))
        if w == nvcpus or nvcpus <= _FULL_SORT_VCPUS:
            top = np.argsort(keys, axis=1)[:, :w]
        else:  # the w smallest keys, then those in order
            part = np.argpartition(keys, w - 1, axis=1)[:, :w]
            top = np.take_along_axis(part, np.argsort(np.take_along_axis(keys, part, axis=1), axis=1), axis=1)
        out[a:b, :w] = top
        del keys, top
    return out


def _step(state: list[int], keep: list[bool], cand: list[int]) -> list[int]:
    """One slice of the scheduler for one CPU set: kept CPUs keep their vCPU, the others
    take, in CPU order, the candidates not running on a kept CPU (-1 candidates: idle)."""
    kept = {x for x, k in zip(state, keep) if k and x >= 0}
    if not kept:
        return list(cand)
    it = iter([x for x in cand if x < 0 or x not in kept])
    return [x if (k and x >= 0) else next(it) for x, k in zip(state, keep)]


def _lockstep(keep: np.ndarray, cand: np.ndarray, nvcpus: int, state: list[int], lane: int) -> np.ndarray:
    """Run :func:`_step` on every lane of ``lane`` slices at once, lane 0 from ``state`` and
    the others from an idle state (a guess :func:`_fix_lanes` corrects); ``(nslices, ncpus)`` int16."""
    n, ncpus = keep.shape
    nl = -(-n // lane)
    pad = nl * lane - n
    if pad:  # dummy slices after the last one (their results are dropped)
        keep = np.concatenate([keep, np.zeros((pad, ncpus), bool)])
        cand = np.concatenate([cand, np.repeat(cand[-1:], pad, axis=0)])
    K = keep.reshape(nl, lane, ncpus)
    P = cand.reshape(nl, lane, ncpus)
    out = np.empty((nl, lane, ncpus), np.int16)
    st = np.full((nl, ncpus), -1, np.int16)
    st[0] = state
    small = ncpus <= 16
    if not small:  # membership through a per-lane table of the vCPUs running on kept CPUs
        mark = np.zeros((nl, nvcpus + 2), bool)
        rows = np.arange(nl)[:, None]
    for s in range(lane):
        kp = K[:, s] & (st >= 0)
        p = P[:, s]
        if small:  # a candidate is blocked if some kept CPU runs it: one comparison per CPU
            kv = np.where(kp, st, np.int16(-1))
            blocked = p == kv[:, :1]
            for j in range(1, ncpus):
                blocked |= p == kv[:, j : j + 1]
            blocked &= p >= 0
        else:
            kv = np.where(kp, st, np.int16(nvcpus)).astype(np.intp)  # column nvcpus: never asked
            mark[rows, kv] = True
            blocked = mark[rows, np.where(p >= 0, p, np.int16(nvcpus + 1)).astype(np.intp)]
            mark[rows, kv] = False
        free = ~blocked
        need = ncpus - np.count_nonzero(kp, axis=1)
        sel = free & (np.cumsum(free, axis=1) <= need[:, None])
        st = np.where(kp, st, np.int16(-1))
        st[~kp] = p[sel]
        out[:, s] = st
    return out.reshape(nl * lane, ncpus)[:n]


def _fix_lanes(keep: np.ndarray, cand: np.ndarray, out: np.ndarray, lane: int) -> None:
    """Correct the lanes of :func:`_lockstep` in order: re-run each from the true end state
    of the lane before it until it reaches the state the lockstep run recorded (from there
    on both runs agree, as a slice depends only on the state before it and its draws)."""
    n = len(out)
    chunk = 16
    for start in range(lane, n, lane):
        st = out[start - 1].tolist()
        end = min(n, start + lane)
        s = start
        while s < end:
            b = min(end, s + chunk)
            krows, crows, orows = keep[s:b].tolist(), cand[s:b].tolist(), out[s:b].tolist()
            for j in range(b - s):
                st = _step(st, krows[j], crows[j])
                if st == orows[j]:
                    break
                out[s + j] = st
            else:
                s = b
                chunk = min(chunk * 2, lane)
                continue
            break
        chunk = 16


def _schedule(
    rng: np.random.Generator, nslices: int, ncpus: int, nvcpus_total: int, stay: float, state: list[int]
) -> np.ndarray:
    """Which global vCPU each CPU runs in each of ``nslices`` slices (-1: idle), int16.

    ``state`` is the current assignment (updated in place) so batches continue
    seamlessly. Running vCPUs are distinct in every slice. At each slice a CPU
    keeps its vCPU with probability ``stay`` (``rng.random((nslices, ncpus))``);
    the others take, in CPU order, the vCPUs not kept elsewhere in the order of
    that slice's random keys (``rng.random((nslices, nvcpus_total))``), so only
    the first ``ncpus`` of that order matter. A slice depends on the one before,
    so the slices are cut into lanes run side by side with numpy from a guessed
    start (:func:`_lockstep`), then each lane is re-run from its true start until
    it meets its guessed run (:func:`_fix_lanes`; a few slices, as assignments
    forget their past after every CPU has been rescheduled).
    """
    if nslices == 0:
        return np.empty((0, ncpus), np.int16)
    keep = _keep_draws(rng, nslices, ncpus, stay)
    cand = _candidates(rng, nslices, nvcpus_total, ncpus)
    lane = min(_LANE, nslices)
    out = _lockstep(keep, cand, nvcpus_total, state, lane)
    _fix_lanes(keep, cand, out, lane)
    state[:] = out[-1].tolist()
    return out


# --------------------------------------------------------------------------- guest and host events


@dataclass(frozen=True)
class _MixedLayout:
    """The fixed shape of a mixed workload's generation: CPUs, vCPUs, intervals and VM signers."""

    host_cpus: int
    host_signers: int
    host_interval: int
    vm_cpus: int
    vcpus: int  # per VM
    total_vcpus: int
    slice_: int
    interval: int
    exit_iv: int
    stay: Any
    sfirst: np.ndarray  # each VM's first signer
    scount: np.ndarray  # and how many it has


_Cols = tuple[np.ndarray, ...]  # (t, kind, cpu, vm, vcpu, signer)


def _empty_cols() -> _Cols:
    e16 = np.zeros(0, np.int16)
    return np.zeros(0, np.int64), np.zeros(0, np.int8), e16, e16.copy(), e16.copy(), e16.copy()


def _mixed_host_batch(rng: np.random.Generator, lay: _MixedLayout, t_lo: int, t_hi: int) -> _Cols:
    """One batch's host launches in ``[t_lo, t_hi)``: Poisson arrivals on random host CPUs and signers."""
    nh = int(rng.poisson(lay.host_cpus * (t_hi - t_lo) / lay.host_interval))
    ht = np.sort(t_lo + rng.integers(0, t_hi - t_lo, nh)).astype(np.int64)
    hc = _small_ints(rng, nh, lay.host_cpus)
    hs = _small_ints(rng, nh, lay.host_signers)
    m1 = np.full(nh, -1, np.int16)
    return (ht, np.zeros(nh, np.int8), hc, m1, m1, hs)


@dataclass(frozen=True)
class _GuestLaunches:
    """A batch's guest launches: those of each running cell, their offsets in the slice and
    their signers. Launches are in cell order, so a cell's are contiguous."""

    start: np.ndarray  # (cells + 1) int64: the launches of cell j are start[j]:start[j + 1]
    off: np.ndarray  # cycles after the slice start, in [1, slice)
    signer: np.ndarray  # int16 per launch

    def __len__(self) -> int:
        return len(self.off)


@dataclass(frozen=True)
class _VmBatch:
    """One batch of slices on the VM CPUs: the schedule-ins, the running cells and their events."""

    sk: np.ndarray  # SCHED rows: slice (in the batch), VM CPU, global vCPU, running cell
    sc: np.ndarray
    sg: np.ndarray
    ss: np.ndarray
    rk: np.ndarray  # running cells in (slice, CPU) order: slice, VM CPU, global vCPU
    rc: np.ndarray
    rg: np.ndarray
    guest: _GuestLaunches
    exits: np.ndarray | None  # each running cell's plain exits (counted, not rows), or None

    @property
    def launches(self) -> int:
        return len(self.guest)


def _offset_dtype(slice_: int) -> type[np.integer[Any]]:
    """The dtype of offsets drawn in ``[1, slice_)``: int32 while it holds them (numpy's int32
    draws are its int64 draws below 2**31, so the stream is the same), else int64."""
    return np.int32 if slice_ <= 2**31 else np.int64


def _mixed_vm_batch(
    rng: np.random.Generator, lay: _MixedLayout, nsl: int, state: list[int], prev_row: np.ndarray
) -> tuple[_VmBatch, np.ndarray]:
    """One batch of ``nsl`` slices on the VM CPUs: schedule-ins, then guest launches and exits.

    ``state`` (the scheduler's) is updated in place; returns the batch and its
    last schedule row. Draws, in order: the schedule, the launches' counts per
    running cell, their offsets and signers, then the plain exits' counts per
    running cell. Exits change nothing but a counter in either engine, so they
    get no offsets and no rows: the trace counts them per VM (``vm_exits``,
    :func:`_mixed_batches`), which spares a default ``multi-tenant`` trace two
    rows in three.
    """
    slice_, vcpus = lay.slice_, lay.vcpus
    sched = _schedule(rng, nsl, lay.vm_cpus, lay.total_vcpus, lay.stay, state)
    change = np.empty(sched.shape, bool)
    np.not_equal(sched[0], prev_row, out=change[0])
    np.not_equal(sched[1:], sched[:-1], out=change[1:])
    run = sched >= 0
    change &= run
    sk, sc = np.nonzero(change)
    ss = np.flatnonzero(change[run]).astype(np.int32)  # each SCHED's running cell (both in the same order)
    del change
    sg = sched[sk, sc]
    rk, rc = np.nonzero(run)
    del run
    rg = sched[rk, rc]
    last = sched[-1].copy()
    del sched
    rk, rc = rk.astype(np.int32), rc.astype(np.int16)
    ncells = len(rk)
    odt = _offset_dtype(slice_)
    cnt = rng.poisson(slice_ / lay.interval, ncells)
    start = np.zeros(ncells + 1, np.int64)
    np.cumsum(cnt, out=start[1:])
    del cnt
    m = int(start[-1])
    off = rng.integers(1, slice_, m, dtype=odt)
    signer = np.empty(m, np.int16)  # VM's first signer + floor(u * its signer count), in blocks of cells
    vm_cell = rg // vcpus
    first = lay.sfirst.astype(np.int16)[vm_cell]  # per cell, repeated per launch below
    count = lay.scount.astype(np.float64)[vm_cell]
    del vm_cell
    step = max(1, int(ncells * _BLOCK / max(m, 1)))
    for c0 in range(0, ncells, step):
        c1 = min(ncells, c0 + step)
        a, b = int(start[c0]), int(start[c1])
        per = np.diff(start[c0 : c1 + 1])
        u = rng.random(b - a)
        u *= np.repeat(count[c0:c1], per)
        signer[a:b] = u  # the cast truncates: floor, as u >= 0
        signer[a:b] += np.repeat(first[c0:c1], per)
        del per, u
    del first, count
    launches = _GuestLaunches(start, off, signer)
    exits = rng.poisson(slice_ / lay.exit_iv, ncells) if lay.exit_iv > 0 else None
    return _VmBatch(sk.astype(np.int32), sc.astype(np.int16), sg, ss, rk, rc, rg, launches, exits), last


# A row's fields packed into one int64 while its chunk is sorted (see _merge_batch):
# signer + 1 in bits 0-7, kind in 8-9, vCPU + 1 in 10-19, VM + 1 in 20-27, CPU from 28.
# A guest launch's kind field is left 0: LAUNCH.
_P_KIND, _P_VCPU, _P_VM, _P_CPU = 8, 10, 20, 28
assert LAUNCH == 0


def _source_pack(cpu: np.ndarray, vm: np.ndarray, vcpu: np.ndarray) -> np.ndarray:
    """Each source's CPU, VM and vCPU packed as in :func:`_merge_batch` (int64)."""
    pack = cpu.astype(np.int64) << _P_CPU
    pack |= (vm.astype(np.int64) + 1) << _P_VM
    pack |= (vcpu.astype(np.int64) + 1) << _P_VCPU
    return pack


def _cell_packs(
    vmb: _VmBatch, c0: int, c1: int, k0: int, slice_: int, hc0: int, vcpu_pack: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For the running cells ``c0:c1`` of a chunk starting at its slice ``k0``: each cell's
    start in cycles since the chunk's, and its source packed as :func:`_merge_batch` packs
    rows, ready for its launches (kind LAUNCH = 0, and the 1 of the field signer + 1)."""
    cell_t = vmb.rk[c0:c1].astype(np.int64)
    cell_t -= k0
    cell_t *= slice_
    pack = np.take(vcpu_pack, vmb.rg[c0:c1])
    cpu = vmb.rc[c0:c1].astype(np.int64)
    cpu += hc0
    cpu <<= _P_CPU
    pack |= cpu
    pack |= 1
    return cell_t, pack


def _merge_batch(
    lay: _MixedLayout, slice0: int, nsl: int, host: _Cols | None, vmb: _VmBatch | None, need: int | None
) -> _Cols:
    """The batch's rows sorted by time, a SCHED first at equal times, else in the order
    host launches, guest launches (each in generation order); cut after the ``need``-th
    launch (``None``: all rows).

    Works slice chunk by slice chunk: each chunk's rows are sorted with one
    ``np.sort`` of unique int64 keys (time since the chunk's start, then the row's
    place in the chunk). The sorted keys give back the times; the rest of a row
    (kind, signer, and the CPU, VM and vCPU of its *source*: the running cell of a
    guest row, where a SCHED is in the cell it starts, or the host launch itself)
    is packed into one int64 before the sort, so putting the chunk in order is a
    single gather, unpacked straight into the output columns.
    """
    slice_, vcpus, hc0 = lay.slice_, lay.vcpus, lay.host_cpus
    base = slice0 * slice_
    nsched = len(vmb.sk) if vmb is not None else 0
    nhost = len(host[0]) if host is not None else 0
    total = nsched + nhost + (vmb.launches if vmb is not None else 0)
    out = (
        np.empty(total, np.int64),
        np.empty(total, np.int8),
        np.empty(total, np.int16),
        np.empty(total, np.int16),
        np.empty(total, np.int16),
        np.empty(total, np.int16),
    )
    # Each source's CPU, VM and vCPU, packed: a host launch's here; a running cell's per chunk
    # (:func:`_cell_packs`), from each vCPU's VM and vCPU packed once.
    host_pack = np.zeros(0, np.int64)
    if host is not None:
        minus = np.full(nhost, -1, np.int16)
        host_pack = _source_pack(host[2], minus, minus)
        del minus
    gv = np.arange(lay.total_vcpus, dtype=np.int16)
    vcpu_pack = _source_pack(np.zeros_like(gv), gv // vcpus, gv % vcpus)
    del gv
    per_slice = max(1, total // max(nsl, 1))
    g = max(1, (1 << 18) // per_slice)
    o = taken = k0 = 0
    while k0 < nsl:
        while True:  # a chunk of g slices whose keys fit
            k1 = min(nsl, k0 + g)
            t0, t1 = base + k0 * slice_, base + k1 * slice_
            h0 = h1 = s0 = s1 = c0 = c1 = 0
            if host is not None:
                h0, h1 = (int(x) for x in np.searchsorted(host[0], (t0, t1)))
                if k1 == nsl:
                    h1 = nhost
            if vmb is not None:
                ks = np.array((k0, k1), np.int32)  # (the columns' dtype: searchsorted casts none)
                s0, s1 = (int(x) for x in np.searchsorted(vmb.sk, ks))
                c0, c1 = (int(x) for x in np.searchsorted(vmb.rk, ks))
            ga, gb = (int(vmb.guest.start[c0]), int(vmb.guest.start[c1])) if vmb is not None else (0, 0)
            n = (s1 - s0) + (h1 - h0) + (gb - ga)
            bits = max(n, 1).bit_length()
            if k1 - k0 == 1 or ((t1 - t0) << bits) < 2**62:
                break
            g = max(1, g // 2)
        if n:
            key = np.empty(n, np.int64)  # time since t0, then (after the shift) the row's place
            pay = np.empty(n, np.int64)
            nl = h1 - h0
            r = 0
            if vmb is not None:
                cell_t, cell_pack = _cell_packs(vmb, c0, c1, k0, slice_, hc0, vcpu_pack)
            if s1 > s0:
                assert vmb is not None
                q = r + s1 - s0
                np.subtract(vmb.sk[s0:s1], k0, out=key[r:q], casting="unsafe")  # slices since t0
                key[r:q] *= slice_
                np.take(cell_pack, vmb.ss[s0:s1] - c0, out=pay[r:q])
                pay[r:q] ^= 1 | (SCHED << _P_KIND)  # a SCHED row: no signer (field 0), kind SCHED
                r = q
            if h1 > h0:
                assert host is not None
                q = r + h1 - h0
                np.subtract(host[0][h0:h1], t0, out=key[r:q])
                pay[r:q] = host[5][h0:h1]
                pay[r:q] += 1
                pay[r:q] |= host[1][h0:h1].astype(np.int64) << _P_KIND
                pay[r:q] |= host_pack[h0:h1]
                r = q
            if gb > ga:
                assert vmb is not None
                q = r + gb - ga
                per = np.diff(vmb.guest.start[c0 : c1 + 1])  # each cell's launches: its values repeated
                key[r:q] = np.repeat(cell_t, per)
                key[r:q] += vmb.guest.off[ga:gb]
                pay[r:q] = np.repeat(cell_pack, per)
                pay[r:q] += vmb.guest.signer[ga:gb]
                del per
                nl += gb - ga
                r = q
            key <<= bits
            key += np.arange(n, dtype=np.int64)
            key.sort()
            tt = key >> bits  # the rows' times since t0, in order ...
            key &= (1 << bits) - 1  # ... and their places in the chunk
            p = pay[key]
            del pay, key
            f = p >> _P_KIND
            f &= 3
            kind = f.astype(np.int8)
            m = n
            if need is not None and taken + nl >= need:
                m = int(np.flatnonzero(kind == LAUNCH)[need - taken - 1]) + 1
            np.add(tt[:m], t0, out=out[0][o : o + m])
            out[1][o : o + m] = kind[:m]
            del tt, kind
            np.bitwise_and(p[:m], 0xFF, out=f[:m])
            np.subtract(f[:m], 1, out=out[5][o : o + m], casting="unsafe")
            np.right_shift(p[:m], _P_VCPU, out=f[:m])
            f &= 0x3FF
            np.subtract(f[:m], 1, out=out[4][o : o + m], casting="unsafe")
            np.right_shift(p[:m], _P_VM, out=f[:m])
            f &= 0xFF
            np.subtract(f[:m], 1, out=out[3][o : o + m], casting="unsafe")
            np.right_shift(p[:m], _P_CPU, out=out[2][o : o + m], casting="unsafe")
            o += m
            taken += nl
            del p, f
            if need is not None and taken >= need:
                break
        k0 = k1
    if o < total:
        for c in out:
            c.resize(o, refcheck=False)
    return out


def _cut_exits(
    rng: np.random.Generator, lay: _MixedLayout, slice0: int, vmb: _VmBatch, t_end: int | None, more: bool
) -> np.ndarray:
    """Each VM's plain exits in the batch ``vmb`` (which starts at slice ``slice0``) before
    ``t_end`` (``None``: all of them), int64.

    Draws each exit's offset in its slice, as the generator always has (so the
    draws after it, and every launch, stay what they were when exits were
    rows), but keeps only counts: an exit sorts after a launch at the same time,
    so a trace cut after the launch at ``t_end`` holds the exits before it: all
    of a cell that ends by then, none of one that starts at or after it, and
    those of the cells of ``t_end``'s slice whose offset is below ``t_end``'s.
    ``more``: draws follow (another batch, S3 times); if not, the offsets after
    the cut are not drawn, as nothing would see them.
    """
    nvms = len(lay.sfirst)
    cnt = vmb.exits
    if cnt is None:
        return np.zeros(nvms, np.int64)
    vm_of = vmb.rg // lay.vcpus
    ncells = len(cnt)
    c0 = c1 = ncells  # cells before c0 count whole; the exits of cells c0:c1 by their offsets
    x = 0
    if t_end is not None:
        k_end, x = divmod(t_end - slice0 * lay.slice_, lay.slice_)
        c0, c1 = (int(i) for i in np.searchsorted(vmb.rk, (k_end, k_end + 1)))
    out = np.bincount(vm_of[:c0], weights=cnt[:c0], minlength=nvms).astype(np.int64)
    e0 = int(out.sum())
    cut_vm = np.repeat(vm_of[c0:c1], cnt[c0:c1])  # the VM of each of the cut slice's exits
    e1 = e0 + len(cut_vm)
    m = e0 + int(cnt[c0:].sum()) if more or t_end is None else e1
    odt = _offset_dtype(lay.slice_)
    for a in range(0, m, _BLOCK):  # one stream, in blocks (as one call: test_trace_generation)
        b = min(m, a + _BLOCK)
        off = rng.integers(1, lay.slice_, b - a, dtype=odt)
        lo, hi = max(a, e0), min(b, e1)
        if lo < hi:  # the cut slice's exits: which are before t_end
            early = off[lo - a : hi - a] < x
            np.add.at(out, cut_vm[lo - e0 : hi - e0][early], 1)
    return out


def _mixed_batches(
    rng: np.random.Generator, lay: _MixedLayout, target: int, per_slice: float, more: bool = False
) -> tuple[_Cols, np.ndarray]:
    """Generate in slice batches until there are at least ``target`` launches; the rows sorted
    by time (a SCHED first at equal times) and cut after the ``target``-th launch, and each
    VM's plain exits before that launch (counted, :func:`_cut_exits`). ``more``: the caller
    draws more after these."""
    out: list[_Cols] = []
    prev_row = np.full(lay.vm_cpus, -1, np.int16)
    state = [-1] * lay.vm_cpus
    exits = np.zeros(len(lay.sfirst), np.int64)
    got = 0
    slice0 = 0
    while got < target:
        nsl = min(math.ceil((target - got) / per_slice * 1.1) + 2, 1_000_000)
        t_lo, t_hi = slice0 * lay.slice_, (slice0 + nsl) * lay.slice_
        host = vmb = None
        nb = 0
        if lay.host_cpus:
            host = _mixed_host_batch(rng, lay, t_lo, t_hi)
            nb += len(host[0])
        if lay.vm_cpus and lay.total_vcpus:
            vmb, prev_row = _mixed_vm_batch(rng, lay, nsl, state, prev_row)
            nb += vmb.launches
        need = target - got if got + nb >= target else None
        out.append(_merge_batch(lay, slice0, nsl, host, vmb, need))
        if vmb is not None:
            exits += _cut_exits(rng, lay, slice0, vmb, None if need is None else int(out[-1][0][-1]), more)
        del host, vmb
        got += nb
        slice0 += nsl
    if not out:
        return _empty_cols(), exits
    if len(out) == 1:
        return out[0], exits
    return tuple(np.concatenate([p[i] for p in out]) for i in range(6)), exits


def _with_s3(rng: np.random.Generator, cols: _Cols, count: int, s3_window: tuple[float, float]) -> _Cols:
    """Insert ``count`` S3 rows at random times among the launches (see :func:`_s3_times`)."""
    if count == 0:  # (draws nothing, as _s3_times)
        return cols
    t, kind, cpu, vm, vcpu, signer = cols
    s3 = _s3_times(rng, t[kind == LAUNCH], count, *s3_window)
    at = np.searchsorted(t, s3, side="right")
    t = np.insert(t, at, s3)
    kind = np.insert(kind, at, S3)
    cpu, vm, vcpu, signer = (np.insert(a, at, -1) for a in (cpu, vm, vcpu, signer))
    return t, kind, cpu, vm, vcpu, signer


def _generate_mixed(
    rng: np.random.Generator,
    v: dict[str, Any],
    *,
    host_cpus: int,
    host_signers: int,
    host_interval: int,
    vm_cpus: int,
    s3_window: tuple[float, float],
) -> Trace:
    """A trace of host launches and VMs' guest launches, exits and schedule-ins (plus S3 rows)."""
    target = v["launches"]
    specs, sfirst, scount = _vm_layout(v, host_signers)
    lay = _MixedLayout(
        host_cpus=host_cpus,
        host_signers=host_signers,
        host_interval=host_interval,
        vm_cpus=vm_cpus,
        vcpus=v["vcpus"],
        total_vcpus=len(specs) * v["vcpus"],
        slice_=v["slice"],
        interval=v["interval"],
        exit_iv=v["exit_interval"],
        stay=v["stay"],
        sfirst=sfirst,
        scount=scount,
    )
    busy = min(vm_cpus, lay.total_vcpus)
    rate = host_cpus / host_interval + busy / lay.interval  # launches per cycle
    cols, exits = _mixed_batches(rng, lay, target, rate * lay.slice_, more=v.get("s3", 0) > 0)
    t, kind, cpu, vm, vcpu, signer = _with_s3(rng, cols, v.get("s3", 0), s3_window)
    del cols
    nsigners = host_signers + _vm_signer_count(v)
    # The host-approved signers are the host's own (for single-le the first is its LE).
    approved = tuple(range(host_signers)) if host_signers else None
    return Trace(
        host_cpus + vm_cpus,
        nsigners,
        specs,
        t,
        kind,
        cpu,
        vm,
        vcpu,
        signer,
        allowlist=approved,
        policy=v.get("policy", "allow-all"),
        provisionkey=index_set(v.get("provisionkey", NO_INDICES)),
        host_provision=bool(v.get("host_provision", False)),
        vm_exits=tuple(exits.tolist()) if exits.any() else (),
    )


# --------------------------------------------------------------------------- CSV traces

_CSV_COLUMNS = ("t", "kind", "cpu", "vm", "vcpu", "signer")
_CSV_OPTIONAL = ("unmasked",)
_KIND_BY_NAME = {name: k for k, name in KIND_NAMES.items()}
_CSV_LIMITS = {
    "t": (0, 2**62),
    "cpu": (-1, MAX_CPUS - 1),
    "vm": (-1, 32767),
    "vcpu": (-1, 32767),
    "signer": (-1, MAX_SIGNERS - 1),
    "unmasked": (0, MAX_EINIT_ATTEMPTS),
}
_CSV_WHY = {
    "unmasked": f" (EINIT attempts an interrupt aborts; Linux tries at most {MAX_EINIT_ATTEMPTS} times)",
    "signer": f" (a signer is one of the {MAX_SIGNERS} test keys data/keys/key00..key{MAX_SIGNERS - 1:02d}; -1 or empty: none)",
    "cpu": f" (the emulator has at most {MAX_CPUS} CPUs)",
}


_VmDecl = tuple[int | None, bool, int, bool, int]
"""A ``#@ vm=`` line: vCPUs (``None``: as the rows use them), lewr, lehash, provision, exits."""

MAX_CSV_EXITS = 2**62
"""The most plain exits a ``#@ vm=`` line may count (``exits=``)."""


def read_trace_csv(path: str | Path, *, budget: Budget | None = None) -> Trace:
    """Read and validate a CSV trace (format in the module docstring) within ``budget``
    (:mod:`sgxlab.sim.budget`: the file's bytes, rows, line length and VMs' vCPUs)."""
    max_bytes = resolve_budget(budget).csv_bytes
    text = read_user_text(path, "workload trace", max_bytes=max_bytes, what="a CSV trace")
    return parse_trace_csv(text, source=str(path), budget=budget)


@dataclass(frozen=True)
class _CsvSource:
    """Where CSV text came from, for error messages that name it and the line."""

    name: str

    def bad(self, line: int, what: str, value: Any, reason: str) -> ConfigError:
        """The error for ``value`` on ``line`` (``what``: e.g. ``", column t"``)."""
        return ConfigError(f"{self.name} line {line}{what}", value, reason)


def _csv_header(cells: list[str], lineno: int, src: _CsvSource) -> tuple[dict[str, int], tuple[str, ...]]:
    """Read the header line: each column's cell index, and the column names in row order."""
    header = [c.lower() for c in cells]
    col_index: dict[str, int] = {}
    for c in header:
        if c not in _CSV_COLUMNS and c not in _CSV_OPTIONAL:
            raise src.bad(
                lineno,
                "",
                c,
                f"unknown column; the columns are {','.join(_CSV_COLUMNS)} (and optionally {','.join(_CSV_OPTIONAL)})",
            )
        if c in col_index:
            raise src.bad(lineno, "", c, "column named twice")
        col_index[c] = len(col_index)
    missing = [c for c in _CSV_COLUMNS if c not in col_index]
    if missing:
        raise src.bad(lineno, "", ",".join(header), f"missing column(s) {', '.join(missing)}")
    return col_index, _CSV_COLUMNS + tuple(c for c in _CSV_OPTIONAL if c in col_index)


def _csv_row(
    cells: list[str], line: str, lineno: int, col_index: dict[str, int], names: tuple[str, ...], src: _CsvSource
) -> tuple[int, ...]:
    """Read one data line's cells into integers, in the order of ``names``; check each one's range."""
    if len(cells) != len(col_index):
        raise src.bad(lineno, "", line, f"expected {len(col_index)} cells, got {len(cells)}")
    vals = []
    for name in names:
        cell = cells[col_index[name]]
        if name == "kind":
            low = cell.lower()
            if low in _KIND_BY_NAME:
                vals.append(_KIND_BY_NAME[low])
                continue
            try:
                k = int(low)
            except ValueError:
                k = -1
            if k not in KIND_NAMES:
                raise src.bad(lineno, ", column kind", cell, "unknown kind; expected launch, sched, exit or s3")
            vals.append(k)
            continue
        if cell == "":
            if name == "t":
                raise src.bad(lineno, ", column t", cell, "the time is required")
            vals.append(0 if name == "unmasked" else -1)
            continue
        try:
            x = int(cell)
        except ValueError:
            raise src.bad(lineno, f", column {name}", cell, "not an integer") from None
        lim = _CSV_LIMITS[name]
        if not lim[0] <= x <= lim[1]:
            raise src.bad(lineno, f", column {name}", x, f"must be in [{lim[0]}, {lim[1]}]{_CSV_WHY.get(name, '')}")
        vals.append(x)
    if vals[2] < 0 and vals[1] != S3:
        raise src.bad(
            lineno,
            ", column cpu",
            cells[col_index["cpu"]],
            f"a {KIND_NAMES[vals[1]]} row needs its CPU, 0 or more (only s3 rows leave cpu empty)",
        )
    return tuple(vals)


def _csv_vm_specs(vm: np.ndarray, vcpu: np.ndarray, ns: np.ndarray, vm_decl: dict[int, _VmDecl]) -> tuple[VmSpec, ...]:
    """The VMs: those declared by ``#@ vm=`` lines, else as the rows use them (vCPUs seen, lewr)."""
    nvms = max([int(vm.max()) + 1 if len(vm) else 0, *(j + 1 for j in vm_decl)])
    specs = []
    used = vcpu_counts(vm, vcpu, ns, nvms)  # per VM: highest vCPU seen + 1 (0: none)
    for j in range(nvms):
        if j in vm_decl:
            nv, lewr, lh, prov, _ = vm_decl[j]
            nv = nv if nv is not None else int(used[j])
        else:
            nv, lewr, lh, prov = int(used[j]), True, -1, False
        specs.append(VmSpec(max(nv, 1), lewr, lh, prov))
    return tuple(specs)


def _csv_trace(
    rows: CsvRows,
    names: tuple[str, ...],
    directives: dict[str, Any],
    vm_decl: dict[int, _VmDecl],
) -> Trace:
    """Build the (unvalidated) trace from the rows; CPUs, signers and VMs default to what the rows use."""
    arr = rows.columns()
    t, kind, cpu, vm, vcpu, signer = arr[:6]
    unmasked = arr[6] if len(names) == 7 else None
    ns = kind != S3
    ncpus = directives.get("cpus", int(cpu[ns].max()) + 1 if ns.any() else 1)
    launch = kind == LAUNCH
    max_signer = int(signer[launch].max()) if launch.any() else -1
    decl_hash = max((d[2] for d in vm_decl.values()), default=-1)
    approved_max = max(directives.get("allowlist", ()), default=-1)
    pk_max = max(directives.get("provisionkey", ()), default=-1)
    nsigners = directives.get("signers", max(max_signer, decl_hash, approved_max, pk_max) + 1)
    specs = _csv_vm_specs(vm, vcpu, ns, vm_decl)
    return Trace(
        int(ncpus),
        int(nsigners),
        specs,
        t,
        kind,
        cpu,
        vm,
        vcpu,
        signer,
        allowlist=directives.get("allowlist"),
        unmasked=unmasked,
        policy=directives.get("policy"),
        provisionkey=directives.get("provisionkey", ()),
        host_provision=directives.get("host_provision", False),
        vm_exits=_csv_vm_exits(vm_decl, len(specs)),
    )


def _csv_vm_exits(vm_decl: dict[int, _VmDecl], nvms: int) -> tuple[int, ...]:
    """Each VM's counted exits (``exits=`` of its ``vm`` line, else 0), or ``()`` if no line counts any."""
    if not any(d[4] for d in vm_decl.values()):
        return ()
    return tuple(vm_decl[j][4] if j in vm_decl else 0 for j in range(nvms))


def _validated_csv_trace(tr: Trace, lines: Sequence[int], source: str) -> Trace:
    """Validate the trace, naming the CSV line of a bad row (or the directives) in the error."""
    try:
        tr.validate()
    except ConfigError as e:
        row = getattr(e, "row", None)
        if row is None:
            raise ConfigError(f"{source} directives: {e.option}", e.value, e.reason) from None
        raise ConfigError(
            f"{source} line {lines[row]}{e.option[len(f'trace row {row}') :]}", e.value, e.reason
        ) from None
    return tr


def parse_trace_csv(text: str, source: str = "trace", *, budget: Budget | None = None) -> Trace:
    """Parse CSV text (see the module docstring); errors name ``source`` and the line number.

    A leading BOM is dropped. The text is read line by line into compact columns,
    within ``budget`` (:mod:`sgxlab.sim.budget`): its size, rows and line length,
    and the VMs' vCPUs, each refused on the line that goes over.
    """
    src = _CsvSource(source)
    directives: dict[str, Any] = {}
    vm_decl: dict[int, _VmDecl] = {}
    col_index: dict[str, int] | None = None  # None: before the header line
    rows = CsvRows(source, len(_CSV_COLUMNS), budget)
    rows.check_text(text)
    names: tuple[str, ...] = _CSV_COLUMNS
    for lineno, raw in enumerate(csv_lines(text), start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#@"):
            rows.check_line(line, lineno)
            _directive(line[2:], lineno, directives, vm_decl, src.bad)
            rows.declared(vm_decl, lineno)
            continue
        if line.startswith("#"):
            continue
        rows.check_line(line, lineno)
        cells = csv_cells(line, lineno, source)
        if col_index is None:
            col_index, names = _csv_header(cells, lineno, src)
            rows.width(len(names))
            continue
        rows.add(_csv_row(cells, line, lineno, col_index, names, src), lineno)
    if col_index is None:
        raise ConfigError(source, "", f"no header line ({','.join(_CSV_COLUMNS)})")
    tr = _csv_trace(rows, names, directives, vm_decl)
    check_trace(tr, budget)
    return _validated_csv_trace(tr, rows.lines, source)


_DIRECTIVES = "cpus=, signers=, vm=, policy=, allowlist=, provisionkey=, host_provision="


def _directive(
    body: str,
    lineno: int,
    directives: dict[str, Any],
    vm_decl: dict[int, _VmDecl],
    bad: Callable[..., ConfigError],
) -> None:
    items: dict[str, str] = {}
    for tok in body.split("#")[0].split():
        if "=" not in tok:
            raise bad(lineno, "", tok, f"a #@ directive is key=value ({_DIRECTIVES})")
        k, _, val = tok.partition("=")
        k = k.strip().lower()
        if k in items:
            raise bad(lineno, "", k, "key given twice")
        items[k] = val.strip()
    if not items:
        return

    def num(key: str, lo: int, hi: int) -> int:
        try:
            x = int(items[key])
        except ValueError:
            raise bad(lineno, f", {key}", items[key], "not an integer") from None
        if not lo <= x <= hi:
            raise bad(lineno, f", {key}", x, f"must be in [{lo}, {hi}]")
        return x

    def yes_no(key: str, default: str) -> bool:
        text = items.get(key, default).lower()
        if text not in ("yes", "no", "true", "false", "1", "0"):
            raise bad(lineno, f", {key}", items[key], "expected yes or no")
        return text in ("yes", "true", "1")

    first = next(iter(items))
    if first == "vm":
        unknown = set(items) - {"vm", "vcpus", "lewr", "lehash", "provision", "exits"}
        if unknown:
            raise bad(
                lineno,
                "",
                sorted(unknown)[0],
                "unknown VM key; a vm line takes vcpus=, lewr=, lehash=, provision=, exits=",
            )
        j = num("vm", 0, 32767)
        if j in vm_decl:
            raise bad(lineno, ", vm", j, "VM declared twice")
        nv = num("vcpus", 1, 32767) if "vcpus" in items else None
        lh = num("lehash", -1, MAX_SIGNERS - 1) if "lehash" in items else -1
        ex = num("exits", 0, MAX_CSV_EXITS) if "exits" in items else 0
        vm_decl[j] = (nv, yes_no("lewr", "yes"), lh, yes_no("provision", "no"), ex)
        return
    for k in items:
        if k in directives:
            raise bad(lineno, "", k, "directive given twice")
        if k == "cpus":
            directives[k] = num(k, 1, 4096)
        elif k == "signers":
            try:
                directives[k] = num(k, 0, MAX_SIGNERS)
            except ConfigError as e:
                raise bad(
                    lineno,
                    ", signers",
                    e.value,
                    f"{e.reason}: there are {MAX_SIGNERS} test keys (data/keys/key00..key63)",
                ) from None
        elif k in ("allowlist", "provisionkey"):
            out = []
            for part in items[k].split(","):
                part = part.strip()
                if not part or (k == "provisionkey" and part.lower() == NO_INDICES):
                    continue
                try:
                    x = int(part)
                except ValueError:
                    raise bad(lineno, f", {k}", part, "not an integer") from None
                if not 0 <= x < MAX_SIGNERS:
                    raise bad(lineno, f", {k}", x, f"a signer index is in [0, {MAX_SIGNERS - 1}] (the test keys)")
                out.append(x)
            directives[k] = tuple(out)
        elif k == "host_provision":
            directives[k] = yes_no(k, "no")
        elif k == "policy":
            try:
                directives[k] = canonical_policy(items[k])
            except ConfigError as e:
                raise bad(lineno, ", policy", items[k], e.reason) from None
        else:
            raise bad(lineno, "", k, f"unknown directive; expected {_DIRECTIVES}")


def format_trace_csv(trace: Trace) -> str:
    """``trace`` as CSV text in the format above, static facts as ``#@`` lines.

    :func:`parse_trace_csv` reads it back to the same columns, VMs, signers,
    policy and approved signers (the name and the parameters of a generated
    trace are not kept: a file is ``trace:PATH``). A row of Python per event:
    fine for thousands of events, slow for millions.
    """
    out = [
        f"# {trace.name}: written by sgxlab.sim.workloads.format_trace_csv",
        f"#@ cpus={trace.ncpus}",
        f"#@ signers={trace.nsigners}",
    ]
    for j, spec in enumerate(trace.vms):
        line = f"#@ vm={j} vcpus={spec.nvcpus} lewr={'yes' if spec.lewr else 'no'} lehash={spec.lehash}"
        line += " provision=yes" if spec.provision else ""
        out.append(line + (f" exits={trace.vm_exits[j]}" if trace.vm_exits and trace.vm_exits[j] else ""))
    out.append(f"#@ policy={trace.policy_name}")
    if trace.allowlist is not None:
        out.append(f"#@ allowlist={','.join(str(s) for s in trace.allowlist)}")
    if trace.provisionkey:
        out.append(f"#@ provisionkey={','.join(str(s) for s in trace.provisionkey)}")
    if trace.host_provision:
        out.append("#@ host_provision=yes")
    cols = [trace.t.tolist(), trace.kind.tolist(), trace.cpu.tolist(), trace.vm.tolist(), trace.vcpu.tolist()]
    cols.append(trace.signer.tolist())
    header = list(_CSV_COLUMNS)
    if trace.unmasked is not None:
        cols.append(trace.unmasked.tolist())
        header.append("unmasked")
    out.append(",".join(header))

    def cell(x: int) -> str:
        return "" if x < 0 else str(x)

    for row in zip(*cols):
        cells = [str(row[0]), KIND_NAMES[row[1]], *(cell(x) for x in row[2:6])]
        if len(row) == 7:
            cells.append(str(row[6]))
        out.append(",".join(cells))
    return "\n".join(out) + "\n"


def write_trace_csv(trace: Trace, path: str | Path) -> Path:
    """Write :func:`format_trace_csv` of ``trace`` to ``path`` atomically; return the path."""
    return write_atomic(path, format_trace_csv(trace), "trace")
