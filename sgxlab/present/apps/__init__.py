"""Widget apps (ipywidgets 8) for the 2017 SGX Launch Control debate: MSRs, EINIT, VMs, policies, runs.

Each app is a plain model (state and methods, no widgets, testable without
a browser) under a thin ipywidgets view. A notebook cell is one call::

    from sgxlab.present.apps import vm_builder
    vm_builder()

The factories: :func:`msr_playground`, :func:`einit_lab`, :func:`vm_builder`,
:func:`policy_chooser`, :func:`runner` and :func:`export_panel`. Each returns
an app that displays itself and exposes ``.model`` and ``.widgets``.
"""

from __future__ import annotations

from sgxlab.present.apps.einit_lab import einit_lab
from sgxlab.present.apps.export_panel import export_panel
from sgxlab.present.apps.msr_playground import msr_playground
from sgxlab.present.apps.policy_chooser import policy_chooser
from sgxlab.present.apps.runner import runner
from sgxlab.present.apps.vm_builder import vm_builder

__all__ = ["msr_playground", "einit_lab", "vm_builder", "policy_chooser", "runner", "export_panel"]
