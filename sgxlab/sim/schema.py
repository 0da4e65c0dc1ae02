"""Record schemas: the named, typed columns of every table the kit hands out.

A :class:`Schema` is an ordered list of :class:`Column` (a name, a pandas
dtype and one line of meaning). Each table (per-launch records, per-CPU MSR
counts, the policy matrix) is built through its schema, so its columns, their
order and their types are written down once, here, and readers never slice
positional tuples. Ciw's convention: one flat record per event, turned into a
pandas table. pandas is imported only when a frame is built, so importing a
schema (as :mod:`sgxlab.experiments.matrix` does) stays light.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sgxlab.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Column", "Schema", "LAUNCH_RECORDS", "MSR_COUNTS", "POLICY_MATRIX", "GATE_NAMES"]

GATE_NAMES = {"eacces": "EACCES", "ecreate-gp": "GP"}
"""The ``name`` a launch record gives a gate refusal, by its ``step`` (the gate's
reason codes, :data:`sgxlab.host.provision.GATE_EACCES` and ``GATE_ECREATE_GP``)."""


@dataclass(frozen=True, slots=True)
class Column:
    """One column: its ``name``, its pandas ``dtype`` and what it means."""

    name: str
    dtype: str
    doc: str


@dataclass(frozen=True)
class Schema:
    """An ordered set of columns, and the one way to build a DataFrame of them."""

    name: str
    columns: tuple[Column, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise ConfigError(f"{self.name} column", name, f"unknown; columns: {', '.join(self.names)}")

    def frame(self, data: Mapping[str, Any] | Iterable[Mapping[str, Any]]) -> pd.DataFrame:
        """A DataFrame with exactly these columns, in order, of these dtypes.

        ``data`` is either columns (a mapping of name to sequence or scalar)
        or records (an iterable of mappings). A missing or extra column is a
        :class:`ConfigError` naming it.
        """
        if isinstance(data, Mapping):
            cols = dict(data)
        else:
            rows = list(data)
            keys = set(self.names)
            for r in rows:
                if r.keys() != keys:
                    missing = [n for n in self.names if n not in r]
                    if missing:
                        raise ConfigError(f"{self.name} record", missing[0], "missing column")
                    raise ConfigError(f"{self.name} record", sorted(set(r) - keys)[0], "not a column of this table")
            cols = {n: [r[n] for r in rows] for n in self.names}
        missing = [n for n in self.names if n not in cols]
        if missing:
            raise ConfigError(f"{self.name} record", missing[0], "missing column")
        extra_cols = [k for k in cols if k not in self.names]
        if extra_cols:
            raise ConfigError(f"{self.name} record", extra_cols[0], "not a column of this table")
        import pandas as pd  # here, not at import: the schemas are imported by code that never builds a frame

        df = pd.DataFrame(cols, columns=list(self.names))
        return df.astype({c.name: c.dtype for c in self.columns})

    def describe(self) -> list[dict[str, str]]:
        """The schema as rows of ``{column, dtype, meaning}`` (for docs and notebooks)."""
        return [{"column": c.name, "dtype": c.dtype, "meaning": c.doc} for c in self.columns]


def _schema(name: str, cols: Sequence[tuple[str, str, str]]) -> Schema:
    return Schema(name, tuple(Column(*c) for c in cols))


LAUNCH_RECORDS = _schema(
    "launch records",
    [
        ("time", "int64", "arrival time of the launch request (cycles)"),
        ("cpu", "int64", "physical CPU"),
        ("vm", "int64", "VM index, -1 for the host"),
        ("vcpu", "int64", "vCPU index within the VM, -1 for the host"),
        ("signer", "int64", "signer index (test key)"),
        ("design", "string", "MSR-update design"),
        ("rdmsr", "int64", "hash-MSR reads on the physical CPU for this launch"),
        ("wrmsr", "int64", "hash-MSR writes on the physical CPU for this launch"),
        ("einits", "int64", "ENCLS[EINIT] attempts (retries included)"),
        ("retries", "int64", "EINIT attempts after the first"),
        ("unmasked", "int64", "EINIT attempts aborted by SGX_UNMASKED_EVENT"),
        ("trap_cycles", "int64", "ENCLS exit cost (trapped guest EINIT)"),
        ("msr_exit_cycles", "int64", "guest WRMSR exit cost (lewr guests)"),
        ("lock_cycles", "int64", "uncontended lock acquire and release"),
        ("msr_cycles", "int64", "hash-MSR access cost"),
        ("einit_cycles", "int64", "EINIT cost"),
        ("lock_wait", "int64", "time waiting for a global lock"),
        ("queue_wait", "int64", "time waiting for this CPU"),
        ("latency", "int64", "completion minus arrival (cycles)"),
        (
            "outcome",
            "string",
            "launched, failed (EINIT's final code was not 0) or refused (by the host policy or the "
            "PROVISIONKEY gate; step says which)",
        ),
        (
            "code",
            "int64",
            "the final code the launcher saw (0: success; a refused trapped guest EINIT: the code KVM "
            "reflects; -1: a launch that ran no EINIT: a refused host launch, or a gate refusal)",
        ),
        (
            "name",
            "string",
            "that code's SDM name (NONE for a policy-refused host launch; EACCES for the gate's "
            "-EACCES; GP for the gate's #GP at ECREATE)",
        ),
        (
            "step",
            "string",
            "the EINIT check that decided (sgxlab.hw.einit.CHECKS, or commit), policy, or the gate: "
            "eacces (host sgx_encl_init) or ecreate-gp (guest ECREATE)",
        ),
        ("reason", "string", "why: EINIT's sentence, the host policy's, or the gate's"),
    ],
)
"""Per-launch records of the exact engine (``Result.records()``)."""

MSR_COUNTS = _schema(
    "MSR counts",
    [
        ("cpu", "int64", "logical CPU"),
        ("msr", "int64", "MSR number"),
        ("name", "string", "the MSR's SDM name"),
        ("rdmsr", "int64", "RDMSRs counted on that CPU"),
        ("wrmsr", "int64", "WRMSRs counted on that CPU"),
    ],
)
"""Per-CPU MSR access counts (:meth:`sgxlab.hw.platform.Platform.msr_counts`)."""

POLICY_MATRIX = _schema(
    "policy matrix",
    [
        ("policy", "string", "host launch policy"),
        ("lewr", "bool", "the guest may write its hash"),
        ("lehash", "string", "the guest's initial hash: intel, approved or other"),
        ("signer", "string", "the enclave's signer: approved or forbidden"),
        ("provisionkey", "bool", "the guest's enclave asks for PROVISIONKEY (SECS.ATTRIBUTES bit 4)"),
        (
            "provision",
            "bool",
            "the tenant may open /dev/sgx_provision: its VM holds KVM_CAP_SGX_ATTRIBUTE (QEMU "
            "+sgx-provisionkey), its host enclaves get SGX_IOC_ENCLAVE_PROVISION",
        ),
        (
            "host",
            "string",
            "the same tenant launching the same enclave on the host: einit (reaches ENCLS[EINIT]), "
            "eacces (the PROVISIONKEY gate) or policy",
        ),
        ("vm_created", "bool", "KVM and the policy created the VM"),
        ("launched", "bool", "the guest's enclave initialized"),
        ("code", "Int64", "the guest-visible EINIT code (<NA>: no VM, or #GP at ECREATE)"),
        (
            "step",
            "string",
            "where it was decided: vm (VM refused), ecreate-gp (the gate's #GP at the trapped ECREATE), "
            "policy (a refused trapped EINIT), or EINIT's check (commit on success)",
        ),
        ("bypass", "bool", "the guest ran a signer the host forbids"),
        ("hw_consistent", "bool", "real hardware could have shown the guest this"),
        ("reason", "string", "what happened, step by step"),
    ],
)
"""The rows of :func:`sgxlab.policy_matrix`."""
