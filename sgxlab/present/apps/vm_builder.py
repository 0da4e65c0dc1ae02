"""The VM builder app: lewr, lehash (validated as you type), EPC size, host firmware and policy.

It shows the ``-sgx`` option, the QEMU 6.2 equivalent and what the guest
sees. A thin ipywidgets view over :class:`~sgxlab.present.apps.vm_model.VmBuilderModel`;
``vm_builder()`` returns the app, which displays itself in Jupyter.
"""

from __future__ import annotations

from typing import Any

from sgxlab.present.apps.ui import CSS_GUEST_VIEW, CSS_LEHASH, CSS_LEWR, CSS_POLICY, App, ErrorLine, W, esc, html_table
from sgxlab.present.apps.vm_model import LEHASH_PRESETS, GuestSees, VmBuilderModel, feature_control_text, policy_names

__all__ = ["vm_builder", "VmBuilder", "guest_html"]


class VmBuilder(App[VmBuilderModel]):
    """The VM builder (see the module docstring)."""


def _yes(v: bool) -> str:
    return "yes" if v else "no"


def guest_html(g: GuestSees) -> str:
    """The "what the guest sees" table."""
    ok = '<b style="color:#1b5e20">created</b>'
    refused = f'<b style="color:#b00020">refused by {esc(g.refused_by)}</b>: {esc(g.reason)}'
    wr = "allowed" if g.wrmsr_allowed else f"#GP: {g.wrmsr_refusal}"
    rows = [
        ("QEMU (Kai's RFC)", f"<code>{esc(g.option)}</code>"),
        ("QEMU 6.2", f"<code>{esc(g.qemu62)}</code><br><i>{esc(g.qemu62_note)}</i>"),
        ("VM", ok if g.created else refused),
        ("CPUID SGX_LC", esc(_yes(g.cpuid_sgx_lc))),
        ("FEATURE_CONTROL", esc(feature_control_text(g.feature_control))),
        ("initial hash", "<br>".join(f"0x{w:016x}" for w in g.initial_words)),
        ("guest WRMSR of the hash", esc(wr)),
        ("guest EINIT", esc("trapped by KVM" if g.einit_trapped else "native (not trapped)")),
        *(("QEMU warning", esc(x)) for x in g.warnings),
    ]
    return html_table(["", ""], rows, raw=(1,))


def vm_builder() -> VmBuilder:
    """The VM builder; every change recomputes the guest's view (well under a millisecond of KVM)."""
    model = VmBuilderModel()
    err = ErrorLine()
    w: dict[str, Any] = {
        "lewr": W.ToggleButton(value=model.lewr, description="lewr", tooltip="the guest may rewrite its hash"),
        "lehash_preset": W.ToggleButtons(options=list(LEHASH_PRESETS), value=model.lehash_preset),
        "lehash": W.Text(
            value=model.custom_lehash.hex(),
            description="lehash",
            placeholder="64 hex digits, intel, or four MSR words",
            layout=W.Layout(width="70%"),
        ),
        "epc": W.Text(value=model.epc_text(), description="EPC", continuous_update=False),
        "firmware": W.Dropdown(options=list(model.firmware_names()), value=model.firmware, description="firmware"),
        "policy": W.Dropdown(options=list(policy_names()), value=model.policy, description="policy"),
        "guest": W.HTML(value=""),
        "error": err.widget,
    }
    w["lewr"].add_class(CSS_LEWR)
    w["lehash"].add_class(CSS_LEHASH)
    w["policy"].add_class(CSS_POLICY)
    w["guest"].add_class(CSS_GUEST_VIEW)

    def refresh() -> None:
        w["guest"].value = guest_html(model.view())

    def update(field: str, **kw: object) -> None:
        if err.guard(w[field], lambda: model.set(**kw)):  # type: ignore[arg-type]
            if w["lehash_preset"].value != model.lehash_preset:
                w["lehash_preset"].value = model.lehash_preset
            refresh()

    w["lewr"].observe(lambda c: update("lewr", lewr=bool(c["new"])), names="value")
    w["lehash_preset"].observe(lambda c: update("lehash_preset", lehash_preset=c["new"]), names="value")
    w["lehash"].observe(lambda c: update("lehash", lehash=c["new"]), names="value")
    w["epc"].observe(lambda c: update("epc", epc=c["new"]), names="value")
    w["firmware"].observe(lambda c: update("firmware", firmware=c["new"]), names="value")
    w["policy"].observe(lambda c: update("policy", policy=c["new"]), names="value")
    refresh()
    root = W.VBox(
        [
            W.HTML("<b>VM builder</b>: <code>-sgx epc=…,lehash=…,lewr</code> and what the guest sees"),
            W.HBox([w["lewr"], w["epc"]]),
            w["lehash_preset"],
            w["lehash"],
            W.HBox([w["firmware"], w["policy"]]),
            w["error"],
            w["guest"],
        ]
    )
    return VmBuilder(model, w, root)
