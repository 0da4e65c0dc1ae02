"""The widget apps (sgxlab/present/apps): their models driven from Python, their views through widgets.

Models: each is set from Python and the test asserts what changes; a bad
value raises a typed error naming the field and leaves the last good state.
Views: widget values are set (``w.value = ...``) and buttons clicked, and the
outputs must change; a bad value typed into a field is refused in place (an
``sgxlab-error`` line, the field marked ``sgxlab-invalid``) while the model
keeps its last good state. Jobs run inline (``background=False``), except in
the tests that run one on the worker thread and join it (no sleeps). The slow
pieces (the policy matrix, runs, figures) are built once per module where
they can be.
"""

from __future__ import annotations

import threading

import pytest

from sgxlab.errors import ConfigError
from sgxlab.hw.arch import FEAT_CTL_SGX_LC_ENABLED, INTEL_LEPUBKEYHASH, MSR_IA32_FEATURE_CONTROL
from sgxlab.hw.crypto import load_test_key
from sgxlab.kvm import policy as kvm_policy
from sgxlab.present.apps import einit_lab, export_panel, msr_playground, policy_chooser, runner, vm_builder
from sgxlab.present.apps.einit_model import EinitLabModel
from sgxlab.present.apps.export_model import ExportModel
from sgxlab.present.apps.msr_model import MsrPlaygroundModel, parse_u64
from sgxlab.present.apps.policy_model import PolicyChooserModel
from sgxlab.present.apps.runner_model import Cancelled, RunnerModel, VmChoice
from sgxlab.present.apps.ui import CSS_ERROR, CSS_INVALID, Worker
from sgxlab.present.apps.vm_model import VmBuilderModel, policy_names, policy_summary
from sgxlab.sim.costs import CostModel

H0 = 0x8C


# --------------------------------------------------------------------------- MSR playground


def test_msr_flexible_write_then_s3_restores_intel():
    m = MsrPlaygroundModel(2)
    out = m.wrmsr(1, H0, "0x1234")
    assert out.ok and m.table()[1]["hash"].startswith("0000000000001234")
    assert m.table()[1]["wrmsr"] == 1
    m.s3()
    assert m.table()[1]["lehash"] == INTEL_LEPUBKEYHASH.short()
    assert m.rdmsr(1, H0).value == INTEL_LEPUBKEYHASH.words[0]


def test_msr_locked_intel_faults_with_the_reason():
    m = MsrPlaygroundModel(2, "locked-intel")
    out = m.wrmsr(0, H0, 5)
    assert not out.ok and "bit 17" in (out.fault or "")
    assert "#GP" in out.text()
    assert m.table()[0]["gp"] == 1 and not m.table()[0]["lc_writable"]


def test_msr_no_lc_read_faults():
    m = MsrPlaygroundModel(1, "no-lc")
    assert not m.rdmsr(0, H0).ok
    assert "(hard-wired)" in str(m.table()[0]["hash"])


def test_msr_set_and_lock_feature_control_by_hand():
    m = MsrPlaygroundModel(2)
    m.reset_cpu(0)
    assert m.table()[0]["feature_control"] == "0x0" and not m.table()[0]["locked"]
    assert m.set_feature_control(0, FEAT_CTL_SGX_LC_ENABLED, lock=True).ok
    row = m.table()[0]
    assert row["locked"] and row["bit17"] and row["lc_writable"]
    again = m.set_feature_control(0, 0, lock=False)
    assert not again.ok and "locked" in (again.fault or "")
    assert m.write_hash(0, load_test_key(3).mrsigner.hex()).ok
    assert m.table()[0]["lehash"] == load_test_key(3).mrsigner.short()
    assert m.last is not None and m.last.msr == 0x8F


def test_msr_bad_input_is_refused_and_nothing_changes():
    m = MsrPlaygroundModel(2)
    before = m.table()
    with pytest.raises(ConfigError, match="value"):
        m.wrmsr(0, H0, "0xnothex")
    with pytest.raises(ConfigError, match="value"):
        m.wrmsr(0, H0, 1 << 64)
    with pytest.raises(ConfigError, match="cpu"):
        m.rdmsr(7, H0)
    with pytest.raises(ConfigError, match="firmware"):
        m.set_firmware("bogus")
    with pytest.raises(ConfigError, match="lehash"):
        m.set_firmware("locked-third-party")
    assert m.table() == before and m.firmware == "flexible"
    assert parse_u64("1_000", "v") == 1000


def test_msr_third_party_firmware_locks_its_hash():
    h = load_test_key(0).mrsigner
    m = MsrPlaygroundModel(1, "locked-third-party", h.hex())
    assert m.table()[0]["lehash"] == h.short()
    m.wrmsr(0, H0, 1)
    m.s3()
    assert m.table()[0]["lehash"] == h.short()
    assert m.rdmsr(0, MSR_IA32_FEATURE_CONTROL).value == m.platform.firmware.feature_control


# --------------------------------------------------------------------------- EINIT lab


def test_einit_lab_every_check_it_offers():
    m = EinitLabModel()
    assert m.outcome.name == "SUCCESS" and m.outcome.check == "commit"
    assert m.set(msr_preset="intel").check == "tokenless-mrsigner"
    assert m.set(msr_preset="signer", enclave="modified copy").name == "SGX_INVALID_MEASUREMENT"
    assert m.set(enclave="as signed", token="LE-issued").check == "token-mac"  # MSRs hold the signer, not the LE
    ok = m.set(msr_preset="launch enclave")
    assert ok.name == "SUCCESS" and "issued" in ok.token_note
    bad = m.set(token="tampered")
    assert bad.check == "token-mac" and "flipped" in bad.token_note
    le = m.set(token="none", enclave="launch enclave", msr_preset="intel")
    assert le.check == "controlled-attributes" and le.check_text.startswith("6.")


def test_einit_lab_custom_hash_and_bad_input():
    m = EinitLabModel()
    o = m.set(custom_hash=load_test_key(1).mrsigner.hex())
    assert m.msr_preset == "custom" and o.name == "SUCCESS"
    before = (m.msr_preset, m.custom_hash, m.outcome)
    with pytest.raises(ConfigError, match="MSR hash"):
        m.set(custom_hash="12zz")
    with pytest.raises(ConfigError, match="token"):
        m.set(token="forged")
    with pytest.raises(ConfigError, match="signer"):
        m.set(signer=99, token="none")
    assert (m.msr_preset, m.custom_hash, m.outcome) == before and m.token == "none"


# --------------------------------------------------------------------------- VM builder


def test_vm_builder_lewr_sets_bit_17_and_allows_wrmsr():
    m = VmBuilderModel()
    g = m.view()
    assert g.option == "-sgx epc=64M,lewr" and g.created
    assert g.cpuid_sgx_lc and g.feature_control & FEAT_CTL_SGX_LC_ENABLED and g.wrmsr_allowed
    assert "+sgxlc" in g.qemu62 and "size=64M" in g.qemu62
    assert g.initial_words == INTEL_LEPUBKEYHASH.words
    g = m.set(lewr=False)
    assert not g.feature_control & FEAT_CTL_SGX_LC_ENABLED and not g.wrmsr_allowed
    assert "bit 17" in (g.wrmsr_refusal or "") or "locked" in (g.wrmsr_refusal or "")
    assert "-sgxlc" in g.qemu62


def test_vm_builder_presets_policy_and_firmware():
    m = VmBuilderModel()
    approved = m.approved[0]
    g = m.set(lehash_preset="host-approved", lewr=False, policy="approved-set")
    assert g.created and g.initial_hash == approved.hex() and approved.hex() in g.option
    assert "no lehash" in g.qemu62_note
    g = m.set(lewr=True)
    assert not g.created and g.refused_by == "approved-set"
    g = m.set(firmware="no-lc", policy="allow-all")
    assert not g.created and g.refused_by == "kvm" and not g.cpuid_sgx_lc
    g = m.set(firmware="flexible", lehash=load_test_key(5).mrsigner.hex(), epc="128M")
    assert m.lehash_preset == "custom" and g.option.startswith("-sgx epc=128M,lehash=")


def test_vm_builder_bad_values_keep_the_last_good_state():
    m = VmBuilderModel()
    m.set(epc="32M", lehash_preset="intel")
    before = m.view()
    for kw, field in (
        ({"lehash": "xyz"}, "lehash"),
        ({"lehash": "ab" * 31}, "lehash"),
        ({"epc": "12Q"}, "epc"),
        ({"epc": "1000"}, "epc"),
        ({"firmware": "bios"}, "firmware"),
        ({"policy": "nope"}, "policy"),
        ({"lehash_preset": "mine"}, "lehash preset"),
    ):
        with pytest.raises(ConfigError, match=field):
            m.set(lewr=False, **kw)
        assert m.view() == before and m.lewr


def test_policy_names_come_from_the_kvm_registry():
    assert VmBuilderModel().set().created

    registry = getattr(kvm_policy, "HOST_POLICY_NAMES", kvm_policy.POLICY_NAMES)
    assert policy_names() == tuple(registry)
    assert all(policy_summary(n) for n in registry)


# --------------------------------------------------------------------------- policy chooser


@pytest.fixture(scope="module")
def chooser() -> PolicyChooserModel:
    return PolicyChooserModel()


def test_policy_chooser_summaries_show_bypass_and_inconsistency(chooser):
    chooser.set(policy="host-only")
    by = {s.policy: s for s in chooser.summaries()}
    assert list(by) == list(policy_names())  # the registry's, every one (the sixth included)
    assert by["host-only"].bypasses > 0 and by["host-only"].vms_created == by["host-only"].vms
    for name in kvm_policy.ENFORCING_POLICIES:
        assert by[name].bypasses == 0
    assert any(s.inconsistent for s in by.values())
    rows = chooser.rows()
    assert rows and {r["policy"] for r in rows} == {"host-only"}
    assert len(rows) == sum(r["policy"] == "host-only" for r in chooser.matrix_for("always-write"))
    assert chooser.source()


def test_policy_chooser_refuses_unknown_and_keeps_state(chooser):
    chooser.set(policy="allowlist")
    with pytest.raises(ConfigError, match="policy"):
        chooser.set(policy="bogus")
    with pytest.raises(ConfigError, match="design"):
        chooser.set(design="bogus")
    assert chooser.policy == "allowlist" and chooser.design == "always-write"


# --------------------------------------------------------------------------- runner and export


def small_runner() -> RunnerModel:
    m = RunnerModel()
    m.set_param("launches", 200)
    m.set_designs(["percpu-cache", "always-write"])
    return m


def test_runner_settings_validate_in_place():
    m = small_runner()
    assert m.values()["launches"] == 200 and m.policy == "allow-all"
    with pytest.raises(ConfigError, match="launches"):
        m.set_param("launches", "many")
    with pytest.raises(ConfigError, match="einit"):
        m.set_cost("einit", -1)
    with pytest.raises(ConfigError, match="cost"):
        m.set_cost("bogus", 1)
    with pytest.raises(ConfigError, match="designs"):
        m.set_designs([])
    with pytest.raises(ConfigError, match="seeds"):
        m.set_seeds(0)
    with pytest.raises(ConfigError, match="costs"):
        m.set_preset("nope")
    assert m.values()["launches"] == 200 and m.cost_model().einit == 60_000 and m.designs[0] == "percpu-cache"
    m.set_cost("einit", "70000")
    assert m.cost_model().einit == 70_000
    m.set_preset("pessimistic-msr")  # every cost is the preset's again
    assert m.preset == "pessimistic-msr" and m.cost_model() == CostModel.preset("pessimistic-msr")
    m.set_cost("lock", 75)
    assert m.cost_model().lock == 75 and m.cost_model().wrmsr_lehash == CostModel.preset("pessimistic-msr").wrmsr_lehash
    m.set_workload("multi-tenant")
    with pytest.raises(ConfigError, match="policy"):
        m.set_policy("allowlist")


def test_runner_vm_layout_and_changes():
    m = small_runner()
    assert m.vm_layout() == [VmChoice(True), VmChoice(True), VmChoice(False)]
    with pytest.raises(ConfigError, match="vm2 lehash"):
        m.set_vm(2, lehash="intel")
    with pytest.raises(ConfigError, match="vm"):
        m.set_vm(3, lewr=True)
    m.set_vm(0, lewr=False, lehash="host-approved")
    m.set_vm(1, lehash="intel")
    assert m.vm_layout()[:2] == [VmChoice(False, "host-approved"), VmChoice(True, "intel")]
    m.set_vm(1, lehash="own")
    assert 1 not in m.vm_changes
    m.set_param("vms", 1)
    m.set_param("nolewr", 0)
    assert m.vm_layout() == [VmChoice(False, "host-approved")]


def test_runner_run_progress_cancel_and_policy():
    m = small_runner()
    seen: list[tuple[int, int]] = []
    out = m.run(progress=lambda done, total, _: seen.append((done, total)))
    assert seen == [(1, 2), (2, 2)]
    s = out.summary()
    assert list(s["design"]) == ["percpu-cache", "always-write"]
    assert int(s.loc[s["design"] == "always-write", "wrmsr"].iloc[0]) > 0
    m.set_seeds(2)
    calls = iter([False, False, True])
    with pytest.raises(Cancelled, match="2 of 4"):
        m.run(cancel=lambda: next(calls))
    assert m.outcome is out  # a cancelled run keeps the last outcome
    m.set_seeds(1)
    m.set_policy("approved-set")
    refused = m.run().summary()
    assert (refused["vms_refused"] == 3).all()
    m.set_vm(0, lewr=False, lehash="host-approved")
    changed = m.run()
    assert (changed.summary()["vms_refused"] == 2).all() and changed.latencies is not None
    assert set(changed.latencies) == {"percpu-cache", "always-write"}
    table = changed.comparison
    for lab, lat in changed.latencies.items():
        assert len(lat) == int(table.loc[table["design"] == lab, "launches"].sum())


def test_export_model_writes_figure_text_and_command(tmp_path):
    m = small_runner()
    e = ExportModel(m, tmp_path)
    with pytest.raises(ConfigError, match="export"):
        e.command()
    with pytest.raises(ConfigError, match="folder"):
        e.set_folder(tmp_path / "missing")
    assert e.folder == tmp_path
    m.set_cost("wrmsr_lehash", 1200)
    m.run()
    assert e.command().startswith("sgxlab compare --designs percpu-cache,always-write --workload workshop")
    assert "--cost wrmsr_lehash=1200" in e.command()
    png = e.save_figure("png")
    assert png.read_bytes()[:4] == b"\x89PNG"
    text = e.save_text().read_text()
    assert "to reproduce" in text.lower() and max(len(x) for x in text.splitlines()) <= 72
    with pytest.raises(ConfigError, match="format"):
        e.save_figure("gif")


# --------------------------------------------------------------------------- views


def classes(widget) -> set[str]:
    return set(widget._dom_classes)


def shown(error) -> bool:
    return error.layout.display != "none" and bool(error.value)


def test_every_app_displays_itself_and_has_its_hooks():
    apps = {"msr": msr_playground(), "einit": einit_lab(), "vm": vm_builder()}
    for app in apps.values():
        bundle = app._repr_mimebundle_()
        assert "application/vnd.jupyter.widget-view+json" in bundle
        assert CSS_ERROR in classes(app.widgets["error"])
    vm = apps["vm"].widgets
    assert "sgxlab-lewr" in classes(vm["lewr"]) and "sgxlab-lehash" in classes(vm["lehash"])
    assert "sgxlab-policy" in classes(vm["policy"]) and "sgxlab-guest-view" in classes(vm["guest"])


def test_msr_playground_view():
    app = msr_playground(2)
    w = app.widgets
    w["msr"].value = "IA32_SGXLEPUBKEYHASH0"
    w["value"].value = "0xabc"
    w["wrmsr"].click()
    assert "accepted" in w["result"].value and "0000000000000abc" in w["table"].value
    w["firmware"].value = "locked-intel"  # powers the machine on again
    assert "0000000000000abc" not in w["table"].value
    w["wrmsr"].click()
    assert "#GP(0)" in w["result"].value and "bit 17" in w["result"].value
    table = w["table"].value
    w["value"].value = "not a number"
    w["wrmsr"].click()
    assert shown(w["error"]) and CSS_INVALID in classes(w["value"]) and w["table"].value == table
    w["value"].value = "0x1"
    w["rdmsr"].click()
    assert not shown(w["error"]) and CSS_INVALID not in classes(w["value"])
    assert w["value"].value.startswith("0x")  # the RDMSR result
    w["reset_cpu"].click()
    w["fc_bits"].value = ("SGX_LC_ENABLED (bit 17)", "SGX_ENABLE (bit 18)")
    w["fc_write"].click()
    assert "0x60001" in w["table"].value
    w["lehash"].value = load_test_key(2).mrsigner.hex()
    w["write_hash"].click()
    assert "accepted" in w["result"].value
    w["s3"].click()
    assert "S3" in w["result"].value
    w["firmware"].value = "locked-third-party"  # fills in a third party's hash (test key 03)
    third = load_test_key(3).mrsigner
    assert app.model.firmware == "locked-third-party" and f"{third.words[0]:016x}" in w["table"].value
    w["firmware_lehash"].value = "bad"
    w["power_on"].click()
    assert shown(w["error"]) and app.model.firmware_lehash == third


def test_einit_lab_view():
    app = einit_lab()
    w = app.widgets
    assert "SUCCESS" in w["result"].value
    w["msr_preset"].value = "intel"
    assert "SGX_INVALID_EINITTOKEN" in w["result"].value and "9. token-less" in w["result"].value
    w["token"].value = "LE-issued"
    w["msr_preset"].value = "launch enclave"
    assert "SUCCESS" in w["result"].value
    w["token"].value = "tampered"
    assert "13. token MAC" in w["result"].value
    before = w["result"].value
    w["custom_hash"].value = "zz"
    assert shown(w["error"]) and w["result"].value == before and app.model.msr_preset == "launch enclave"
    w["custom_hash"].value = load_test_key(0).mrsigner.hex()
    assert not shown(w["error"]) and w["msr_preset"].value == "custom"


def test_vm_builder_view():
    app = vm_builder()
    w = app.widgets
    g = w["guest"].value
    assert "epc=64M,lewr" in g and "bit 17 set" in g and "allowed" in g
    w["lewr"].value = False
    g = w["guest"].value
    assert "bit 17 clear" in g and "#GP" in g and "-sgxlc" in g
    w["lehash_preset"].value = "host-approved"
    w["policy"].value = "approved-set"
    assert "created" in w["guest"].value and app.model.lehash.hex() in w["guest"].value
    good = w["guest"].value
    w["lehash"].value = "12345"
    assert shown(w["error"]) and CSS_INVALID in classes(w["lehash"]) and w["guest"].value == good
    w["epc"].value = "3K"
    assert "epc" in w["error"].value and w["guest"].value == good
    w["epc"].value = "128M"
    assert not shown(w["error"]) and "epc=128M" in w["guest"].value
    w["lehash"].value = load_test_key(4).mrsigner.hex()
    assert w["lehash_preset"].value == "custom" and load_test_key(4).mrsigner.hex() in w["guest"].value
    assert CSS_INVALID not in classes(w["lehash"])
    w["firmware"].value = "no-lc"
    assert "refused by kvm" in w["guest"].value


def test_policy_chooser_view_on_the_worker_thread(chooser):
    chooser.set(policy="allow-all", design="always-write")
    app = policy_chooser(model=chooser)  # the matrix and its figure are made on the worker thread
    app.worker.join()
    w = app.widgets
    assert tuple(w["policy"].options) == policy_names()  # the registry's, the sixth included
    assert "sgxlab-policy" in classes(w["policy"]) and "sgxlab-figure" in classes(w["figure"])
    assert "sgxlab-summary" in classes(w["summary"]) and "allow-all" in w["summary"].value
    assert bytes(w["figure"].value) == b""  # the figure is drawn on demand
    w["policy"].value = "host-only"
    assert "bypass" in w["rows"].value and "<b>host-only</b>" in w["summary"].value
    rows = w["rows"].value
    w["policy"].value = "allowlist"
    assert w["rows"].value != rows
    w["show_figure"].value = True
    app.worker.join()
    assert app.worker.error is None and w["status"].value == ""
    assert bytes(w["figure"].value)[:4] == b"\x89PNG" and w["figure"].layout.display == ""
    w["show_figure"].value = False
    w["design"].value = "eager-load"
    app.worker.join()
    assert app.model.design == "eager-load" and bytes(w["figure"].value) == b""  # no stale figure
    assert app.model.has_matrix("eager-load") and w["figure"].layout.display == "none"


def test_runner_view_run_summary_figures_and_export(tmp_path):
    app = runner(folder=str(tmp_path))  # jobs on the worker thread, joined
    w = app.widgets
    assert "sgxlab-run" in classes(w["run"]) and "sgxlab-policy" in classes(w["policy"])
    assert "sgxlab-summary" in classes(w["summary"]) and "sgxlab-figure" in classes(w["figure"])
    assert all("sgxlab-lewr" in classes(w[f"vm_{j}_lewr"]) for j in range(3))
    assert all(not w[f"cost_{n}"].continuous_update for n in ("einit", "wrmsr_lehash", "lock"))
    w["param_launches"].value = "200"
    w["designs"].value = ("percpu-cache", "always-write")
    w["param_launches"].value = "lots"
    assert shown(w["error"]) and CSS_INVALID in classes(w["param_launches"])
    assert app.model.values()["launches"] == 200
    w["cost_einit"].value = 70_000
    assert w["cost_einit_text"].value == "70000" and app.model.cost_model().einit == 70_000
    w["cost_lock_text"].value = "-3"
    assert "lock" in w["error"].value and app.model.cost_model().lock == 50
    w["preset"].value = "pessimistic-msr"  # the sliders jump to the preset's costs
    preset = CostModel.preset("pessimistic-msr")
    assert w["cost_wrmsr_lehash"].value == preset.wrmsr_lehash and w["cost_einit"].value == preset.einit
    w["preset"].value = "default"
    w["cost_einit"].value = 70_000
    w["vm_2_lehash"].value = "intel"
    assert "vm2 lehash" in w["error"].value and CSS_INVALID in classes(w["vm_2_lehash"])
    assert app.model.vm_layout()[2].lehash == "own"
    w["vm_2_lehash"].value = "own"
    assert CSS_INVALID not in classes(w["vm_2_lehash"])
    w["vm_0_lewr"].value = False
    assert app.model.vm_layout()[0].lewr is False
    w["policy"].value = "host-only"
    assert app.model.policy == "host-only"
    w["run"].click()
    app.join()
    assert app.worker.error is None
    assert w["status"].value == "done" and w["progress"].value == w["progress"].max
    assert "percpu-cache" in w["summary"].value and "vm0" in w["summary"].value
    png = bytes(w["figure"].value)
    assert png[:4] == b"\x89PNG"
    assert app.model.outcome is not None and list(app.model.outcome.figures) == ["msr traffic"]  # others on demand
    w["figure_choice"].value = "latency"
    app.join()
    assert bytes(w["figure"].value) != png and w["status"].value == "done"
    if "timeline" in w["figure_choice"].options:
        w["figure_choice"].value = "timeline"  # VMs were changed by hand: no timeline, and it says why
        assert "changed by hand" in w["figure_note"].value
        w["figure_choice"].value = "latency"
    w["save_svg"].click()
    w["save_text"].click()
    assert (tmp_path / "sgxlab-latency.svg").is_file() and (tmp_path / "sgxlab-report.txt").is_file()
    assert "sgxlab compare" in w["command"].value
    w["folder"].value = str(tmp_path / "nope")
    assert "folder" in w["export_error"].value and app.export.folder == tmp_path
    w["seeds"].value = "two"
    assert "seeds" in w["error"].value and app.model.seeds == 1


def test_runner_cancel_button_stops_between_runs(tmp_path):
    app = runner(background=False, folder=str(tmp_path))
    w = app.widgets
    model = app.model
    real_run = model.run

    def run_and_press_cancel(progress=None, cancel=None):
        w["cancel"].click()  # what a person does while the job runs
        assert cancel is not None and cancel()
        return real_run(progress=progress, cancel=cancel)

    model.run = run_and_press_cancel  # type: ignore[method-assign]
    w["run"].click()
    assert "cancelled after 0 of" in w["status"].value and model.outcome is None
    assert not w["run"].disabled and w["cancel"].disabled


def test_worker_runs_jobs_in_the_background_and_joins():
    go, done = threading.Event(), []
    worker = Worker(background=True)
    assert worker.start(lambda: (go.wait(), done.append(1)))
    assert worker.busy and not worker.start(lambda: done.append(2))  # one job at a time
    go.set()
    worker.join()
    assert done == [1] and not worker.busy and worker.error is None
    worker.start(lambda: (_ for _ in ()).throw(Cancelled("x")))
    worker.join()
    assert isinstance(worker.error, Cancelled)


def test_export_panel_needs_a_run_first(tmp_path):
    app = runner(background=False, folder=str(tmp_path))
    panel = export_panel(app, tmp_path)
    assert "run a comparison" in panel.widgets["command"].value
    panel.widgets["save_png"].click()
    assert "nothing to export" in panel.widgets["export_error"].value
    with pytest.raises(Exception, match="folder"):
        export_panel(app.model, tmp_path / "missing")
