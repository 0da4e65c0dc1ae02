"""The EINIT lab app: signer, enclave, token and MSR values in; result code, reason and deciding SDM check out.

A thin ipywidgets view over :class:`~sgxlab.present.apps.einit_model.EinitLabModel`;
``einit_lab()`` returns the app, which displays itself in Jupyter.
"""

from __future__ import annotations

from typing import Any

from sgxlab.hw.crypto import load_test_key
from sgxlab.present.apps.einit_model import ENCLAVES, KEYS, MSR_PRESETS, TOKENS, EinitLabModel
from sgxlab.present.apps.ui import CSS_SUMMARY, App, ErrorLine, W, esc, html_table

__all__ = ["einit_lab", "EinitLab"]


class EinitLab(App[EinitLabModel]):
    """The EINIT lab (see the module docstring)."""


def einit_lab() -> EinitLab:
    """The EINIT lab: every change runs EINIT again (a few milliseconds)."""
    model = EinitLabModel()
    err = ErrorLine()
    keys = [(f"key{i:02d} ({load_test_key(i).mrsigner.short()})", i) for i in KEYS]
    w: dict[str, Any] = {
        "signer": W.Dropdown(options=keys, value=model.signer, description="signer"),
        "enclave": W.Dropdown(options=list(ENCLAVES), value=model.enclave, description="enclave"),
        "token": W.Dropdown(options=list(TOKENS), value=model.token, description="token"),
        "le_key": W.Dropdown(options=keys, value=model.le_key, description="LE key"),
        "msr_preset": W.Dropdown(options=list(MSR_PRESETS), value=model.msr_preset, description="CPU 0 MSRs"),
        "custom_hash": W.Text(
            value=model.custom_hash.hex(), description="custom", continuous_update=False, layout=W.Layout(width="60%")
        ),
        "result": W.HTML(value=""),
        "error": err.widget,
    }
    w["result"].add_class(CSS_SUMMARY)

    def refresh() -> None:
        o = model.outcome
        color = "#1b5e20" if o.ok else "#b00020"
        rows = [
            ("result", f'<b style="color:{color}">{esc(o.name)} ({o.code})</b>'),
            ("reason", esc(o.reason)),
            ("decided by", esc(o.check_text)),
            ("CPU 0 hash", esc(o.msr_hash)),
            ("token", esc(o.token_note)),
        ]
        w["result"].value = html_table(["", ""], rows, raw=(1,))

    def update(field: str) -> None:
        value = w[field].value
        if err.guard(w[field], lambda: model.set(**{field: value})):
            w["msr_preset"].value = model.msr_preset
            refresh()

    for name in ("signer", "enclave", "token", "le_key", "msr_preset", "custom_hash"):
        w[name].observe(lambda _, n=name: update(n), names="value")
    refresh()
    root = W.VBox(
        [
            W.HTML("<b>EINIT lab</b>: which SDM check decides?"),
            W.HBox([w["signer"], w["enclave"]]),
            W.HBox([w["token"], w["le_key"]]),
            W.HBox([w["msr_preset"], w["custom_hash"]]),
            w["error"],
            w["result"],
        ]
    )
    return EinitLab(model, w, root)
