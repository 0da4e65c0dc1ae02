"""sgxlab: replay the 2017 SGX Launch Control debate on a faithful emulator.

``import sgxlab`` stays light: the modules are imported by name
(``sgxlab.kvm``, ``sgxlab.platform`` ...), and the notebook-facing functions
that need numpy/pandas are loaded on first use: :func:`policy_matrix` from
:mod:`sgxlab.kvm`; :func:`run`, :func:`compare`, :class:`Result` and
:class:`RunConfig` from :mod:`sgxlab.sim.run` / :mod:`sgxlab.sim.result`;
:func:`make_trace` from :mod:`sgxlab.workloads`.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "policy_matrix": "kvm",
    "run": "sim.run",
    "compare": "sim.run",
    "Result": "sim.result",
    "RunConfig": "sim.result",
    "make_trace": "workloads",
}
"""Lazily imported attributes and the submodule that defines each."""

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is not None:
        import importlib

        return getattr(importlib.import_module(f".{mod}", __name__), name)
    raise AttributeError(f"module 'sgxlab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
