"""sgxlab: replay the 2017 SGX Launch Control debate on a faithful emulator.

The package is layered; each layer imports only from the layers below it
(``docs/design.md``; ``.importlinter`` checks it in CI):

1. :mod:`sgxlab.errors`, :mod:`sgxlab.files` -- typed errors, safe file I/O;
2. :mod:`sgxlab.hw` -- the hardware: MSRs, structures, crypto, EINIT;
3. :mod:`sgxlab.host` -- host software: MSR-update designs, the launch enclave;
4. :mod:`sgxlab.kvm` -- the hypervisor: guests, trapped EINIT, host policies;
5. :mod:`sgxlab.sim` -- costs, workloads, the two engines, results;
6. :mod:`sgxlab.experiments` -- experiments across layers (the policy matrix);
7. :mod:`sgxlab.present` -- what a person sees: text, HTML, ``Result``;
8. :mod:`sgxlab.cli` -- the ``sgxlab`` command.

``import sgxlab`` stays light: this facade loads each name below on first
use, from the module that defines it.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "run": "sgxlab.present.result",
    "compare": "sgxlab.present.result",
    "compare_seeds": "sgxlab.present.result",
    "Comparison": "sgxlab.present.result",
    "run_trace": "sgxlab.present.result",
    "replay": "sgxlab.present.result",
    "Result": "sgxlab.present.result",
    "RunConfig": "sgxlab.sim.result",
    "make_trace": "sgxlab.sim.workloads",
    "policy_matrix": "sgxlab.experiments.matrix",
    "sweep": "sgxlab.present.result",
    "SweepTable": "sgxlab.present.result",
    "Cancelled": "sgxlab.errors",
}
"""Lazily imported attributes and the module that defines each."""

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is not None:
        return getattr(importlib.import_module(mod), name)
    raise AttributeError(f"module 'sgxlab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
