"""The host policy chooser's model: one host launch policy against every guest configuration.

For the chosen policy and MSR-update design it reads the policy matrix
(:func:`sgxlab.experiments.matrix.policy_matrix_records`, really run on the
emulator): whether each VM is created, whether a forbidden enclave gets
through (bypass), and where the guest sees what no hardware would show.
Policies come from the KVM layer's registry. No widgets here.
"""

from __future__ import annotations

from dataclasses import dataclass

from matplotlib.figure import Figure

from sgxlab.errors import ConfigError
from sgxlab.experiments.matrix import policy_matrix_records
from sgxlab.host.designs import DESIGNS
from sgxlab.present import plots
from sgxlab.present.apps.vm_model import policy_names, policy_summary

__all__ = ["PolicyChooserModel", "PolicySummary", "MATRIX_DESIGNS"]

MATRIX_DESIGNS = ("always-write", "eager-load")
"""The designs offered: one that traps guest EINIT (every trapping design gives the
same matrix) and Kai Huang's eager-load, which does not."""


@dataclass(frozen=True, slots=True)
class PolicySummary:
    """One policy at a glance: VM configurations created, bypass rows, rows a real machine could not show."""

    policy: str
    vms_created: int
    vms: int
    bypasses: int
    inconsistent: int
    rows: int


class PolicyChooserModel:
    """The chosen ``policy`` and ``design``; the matrix is run once per design and kept."""

    def __init__(self, policy: str = "allow-all", design: str = "always-write") -> None:
        """Nothing runs yet: the matrix runs on first use (:meth:`matrix_for`)."""
        self._matrix: dict[str, list[dict[str, object]]] = {}
        self._figures: dict[str, Figure] = {}
        self.policy = ""
        self.design = ""
        self.set(policy=policy, design=design)

    @staticmethod
    def policy_names() -> tuple[str, ...]:
        return policy_names()

    def set(self, *, policy: str | None = None, design: str | None = None) -> None:
        if policy is not None and policy not in policy_names():
            raise ConfigError("policy", policy, f"expected one of {', '.join(policy_names())}")
        if design is not None and design not in DESIGNS:
            raise ConfigError("design", design, f"expected one of {', '.join(DESIGNS)}")
        if design is not None:
            self.design = design
        if policy is not None:
            self.policy = policy

    def has_matrix(self, design: str | None = None) -> bool:
        """Whether the matrix under ``design`` (default: the chosen one) has been run."""
        return (self.design if design is None else design) in self._matrix

    def matrix_for(self, design: str) -> list[dict[str, object]]:
        """Every policy's rows under ``design`` (run on the emulator on first use)."""
        rows = self._matrix.get(design)
        if rows is None:
            rows = self._matrix[design] = policy_matrix_records(design)
        return rows

    def rows(self) -> list[dict[str, object]]:
        """The chosen policy's 12 rows (lewr × lehash × signer)."""
        return [r for r in self.matrix_for(self.design) if r["policy"] == self.policy]

    def summaries(self) -> list[PolicySummary]:
        """Every policy under the chosen design, in registry order."""
        out = []
        matrix = self.matrix_for(self.design)
        for name in dict.fromkeys(str(r["policy"]) for r in matrix):
            rows = [r for r in matrix if r["policy"] == name]
            vms = {(r["lewr"], r["lehash"]): bool(r["vm_created"]) for r in rows}
            out.append(
                PolicySummary(
                    name,
                    sum(vms.values()),
                    len(vms),
                    sum(bool(r["bypass"]) for r in rows),
                    sum(not r["hw_consistent"] for r in rows),
                    len(rows),
                )
            )
        return out

    def source(self) -> str:
        """What the chosen policy does and where it comes from (the registry's words)."""
        return policy_summary(self.policy)

    def figure(self, design: str | None = None) -> Figure:
        """The whole matrix under ``design`` (default: the chosen one;
        :func:`sgxlab.present.plots.plot_policy_matrix`), drawn once per design."""
        d = self.design if design is None else design
        fig = self._figures.get(d)
        if fig is None:
            fig = self._figures[d] = plots.plot_policy_matrix(self.matrix_for(d), subtitle=f"design {d}")
        return fig
