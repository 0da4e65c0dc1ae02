"""The MSR playground app: firmware, FEATURE_CONTROL bits, RDMSR/WRMSR of the hash MSRs, S3, per-CPU table.

A thin ipywidgets view over :class:`~sgxlab.present.apps.msr_model.MsrPlaygroundModel`;
``msr_playground()`` returns the app, which displays itself in Jupyter.
"""

from __future__ import annotations

from typing import Any

from sgxlab.hw.crypto import load_test_key
from sgxlab.present.apps.msr_model import FC_BITS, MSR_CHOICES, MsrPlaygroundModel, parse_u64
from sgxlab.present.apps.ui import CSS_SUMMARY, App, ErrorLine, W, esc, html_table

__all__ = ["msr_playground", "MsrPlayground"]


class MsrPlayground(App[MsrPlaygroundModel]):
    """The MSR playground (see the module docstring)."""


def msr_playground(ncpus: int = 4, firmware: str = "flexible") -> MsrPlayground:
    """The MSR playground on a platform of ``ncpus`` CPUs."""
    model = MsrPlaygroundModel(ncpus, firmware)
    err = ErrorLine()
    w: dict[str, Any] = {
        "firmware": W.Dropdown(options=list(model.firmware_names()), value=model.firmware, description="firmware"),
        "firmware_lehash": W.Text(
            value="", placeholder="hash locked-third-party firmware locks in", description="fw lehash"
        ),
        "power_on": W.Button(description="Power on"),
        "cpu": W.Dropdown(options=list(range(ncpus)), value=0, description="CPU"),
        "reset_cpu": W.Button(description="Reset CPU (before firmware)"),
        "fc_bits": W.SelectMultiple(options=list(FC_BITS), value=(), description="FEAT_CTL", rows=3),
        "fc_lock": W.Checkbox(value=True, description="set LOCK (bit 0)"),
        "fc_write": W.Button(description="WRMSR FEATURE_CONTROL"),
        "msr": W.Dropdown(options=list(MSR_CHOICES), description="MSR"),
        "value": W.Text(value="0", description="value"),
        "rdmsr": W.Button(description="RDMSR"),
        "wrmsr": W.Button(description="WRMSR"),
        "lehash": W.Text(value="", placeholder="64 hex digits or intel", description="hash"),
        "write_hash": W.Button(description="WRMSR all four"),
        "s3": W.Button(description="S3 suspend/resume"),
        "result": W.HTML(value=""),
        "table": W.HTML(value=""),
        "error": err.widget,
    }
    w["table"].add_class(CSS_SUMMARY)

    def refresh() -> None:
        last = model.last
        if last is None:
            w["result"].value = f"<b>{esc(model.platform)}</b>"
        else:
            color = "#1b5e20" if last.ok else "#b00020"
            w["result"].value = f'<span style="color:{color}">{esc(last.text())}</span>'
        rows = model.table()
        cols = ["cpu", "feature_control", "locked", "bit17", "bit18", "lc_writable", "hash", "rdmsr", "wrmsr", "gp"]
        w["table"].value = html_table(cols, [[r[c] for c in cols] for r in rows])

    def power_on(_: object = None) -> None:
        if w["firmware"].value == "locked-third-party" and not w["firmware_lehash"].value.strip():
            w["firmware_lehash"].value = load_test_key(3).mrsigner.hex()  # a third party's LE: test key 03
        fw, lehash = w["firmware"].value, w["firmware_lehash"].value
        if err.guard(
            w["firmware_lehash"], lambda: model.set_firmware(fw, lehash if fw == "locked-third-party" else None)
        ):
            refresh()

    def cpu() -> int:
        return int(w["cpu"].value)

    def fc_write(_: object) -> None:
        bits = 0
        for label in w["fc_bits"].value:
            bits |= FC_BITS[label]
        if err.guard(None, lambda: model.set_feature_control(cpu(), bits, lock=bool(w["fc_lock"].value))):
            refresh()

    def rd(_: object) -> None:
        if err.guard(None, lambda: model.rdmsr(cpu(), MSR_CHOICES[w["msr"].value])):
            last = model.last
            if last is not None and last.value is not None:
                w["value"].value = f"{last.value:#x}"
            refresh()

    def wr(_: object) -> None:
        if err.guard(w["value"], lambda: model.wrmsr(cpu(), MSR_CHOICES[w["msr"].value], w["value"].value)):
            refresh()

    def write_hash(_: object) -> None:
        if err.guard(w["lehash"], lambda: model.write_hash(cpu(), w["lehash"].value)):
            refresh()

    def reset(_: object) -> None:
        model.reset_cpu(cpu())
        refresh()

    def s3(_: object) -> None:
        model.s3()
        refresh()

    w["value"].observe(lambda c: err.guard(w["value"], lambda: parse_u64(c["new"], "value")), names="value")
    w["power_on"].on_click(power_on)
    w["firmware"].observe(lambda _: power_on(), names="value")
    w["reset_cpu"].on_click(reset)
    w["fc_write"].on_click(fc_write)
    w["rdmsr"].on_click(rd)
    w["wrmsr"].on_click(wr)
    w["write_hash"].on_click(write_hash)
    w["s3"].on_click(s3)
    refresh()
    root = W.VBox(
        [
            W.HTML("<b>MSR playground</b>: IA32_FEATURE_CONTROL and IA32_SGXLEPUBKEYHASH0..3 per CPU"),
            W.HBox([w["firmware"], w["firmware_lehash"], w["power_on"], w["s3"]]),
            W.HBox([w["cpu"], w["reset_cpu"]]),
            W.HBox([w["fc_bits"], W.VBox([w["fc_lock"], w["fc_write"]])]),
            W.HBox([w["msr"], w["value"], w["rdmsr"], w["wrmsr"]]),
            W.HBox([w["lehash"], w["write_hash"]]),
            w["error"],
            w["result"],
            w["table"],
        ]
    )
    return MsrPlayground(model, w, root)
