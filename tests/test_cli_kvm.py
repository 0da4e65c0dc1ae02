"""Command-line tests of `sgxlab guest` and `sgxlab policy-matrix`."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from cli_in_process import sgxlab_cli as run

from sgxlab.cli import main
from sgxlab.experiments.matrix import MATRIX_COLUMNS

HEX = "cd" * 32


def test_policy_matrix_json_keys_are_exactly_the_columns(capsys):
    rc, out, err = run(capsys, "policy-matrix", "--json")
    assert rc == 0 and err == ""
    rows = json.loads(out)
    assert isinstance(rows, list) and len(rows) == 108  # 6 policies x 18 guests
    for r in rows:
        assert list(r) == list(MATRIX_COLUMNS)
        assert set(r) == {
            "policy",
            "lewr",
            "lehash",
            "signer",
            "provisionkey",
            "provision",
            "host",
            "vm_created",
            "launched",
            "code",
            "step",
            "bypass",
            "hw_consistent",
            "reason",
        }
        assert (r["code"] is None) == (not r["vm_created"] or r["step"] == "ecreate-gp")
        assert isinstance(r["lewr"], bool) and isinstance(r["bypass"], bool) and isinstance(r["reason"], str)
    assert any(r["bypass"] for r in rows)


def test_policy_matrix_text_table_fits_72_columns(capsys):
    rc, out, _ = run(capsys, "policy-matrix", "--reasons")
    assert rc == 0
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 72
    assert lines[0].split() == [
        "#",
        "policy",
        "lewr",
        "lehash",
        "signer",
        "pk",
        "host",
        "vm",
        "run",
        "code",
        "byp",
        "hw",
    ]
    assert sum(1 for line in lines if line.split()[:1] and line.split()[0].isdigit()) >= 108
    assert "POLICY BYPASS" in out


def test_policy_matrix_unknown_design(capsys):
    rc, out, err = run(capsys, "policy-matrix", "--design", "nope")
    assert rc == 2 and out == "" and len(err.strip().splitlines()) == 1 and "unknown design" in err


def test_guest_json_created(capsys):
    rc, out, err = run(capsys, "guest", "--sgx", f"epc=64M,lehash={HEX},lewr", "--json")
    assert rc == 0 and err == ""
    d = json.loads(out)
    assert d["created"] is True and d["reason"] is None and d["refused_by"] is None
    assert d["mode"] == "rfc2017" and d["epc"] == 64 << 20 and d["lehash"] == HEX and d["lewr"] is True
    assert d["option"] == f"epc=64M,lehash={HEX},lewr"
    assert d["guest"]["cpuid_sgx_lc"] is True and d["guest"]["feature_control"] == 0x60001
    assert d["guest"]["initial_lehash"] == HEX and d["guest"]["einit_trapped"] is True
    assert d["host"]["policy"] == "allow-all" and d["host"]["lc_writable"] is True


@pytest.mark.parametrize("policy", ["single-le", "approved-set"])
def test_guest_json_refused_by_policy(capsys, policy):
    rc, out, _ = run(capsys, "guest", "--sgx", "epc=64M,lewr", "--policy", policy, "--json")
    assert rc == 0
    d = json.loads(out)
    assert d["created"] is False and d["refused_by"] == policy and "lewr refused" in d["reason"]


def test_guest_refused_by_hardware_and_text_output(capsys):
    rc, out, _ = run(capsys, "guest", "--sgx", "epc=64M,lewr", "--firmware", "locked-intel")
    assert rc == 0
    assert "created         no" in out and "kvm:" in out and "qemu-sgx#14" in out
    rc, out, _ = run(capsys, "guest", "--sgx", "epc=64M", "--policy", "approved-set", "--approve", HEX)
    assert "created         no" in out and "host-approved set" in out
    rc, out, _ = run(capsys, "guest", "--sgx", f"epc=64M,lehash={HEX}", "--policy", "approved-set", "--approve", HEX)
    assert "created         yes" in out and "bit 17 clear" in out


def test_guest_merged_form(capsys):
    rc, out, _ = run(
        capsys,
        "guest",
        "--sgx=-cpu host,+sgxlc -object memory-backend-epc,id=m,size=8M -M sgx-epc.0.memdev=m",
        "--json",
    )
    d = json.loads(out)
    assert rc == 0 and d["mode"] == "merged" and d["sgxlc"] is True and d["lehash"] is None and d["created"]


@pytest.mark.parametrize(
    "opts,word",
    [
        ("epc=64M,foo", "unknown key"),
        ("epc=64M,epc=64M", "twice"),
        ("epc=64X", "size"),
        ("epc=6K", "4 KiB"),
        ("epc=64M,lehash=xyz", "hexadecimal"),
        ("epc=64M,lehash=abcd", "64 hex digits"),
        ("epc=64M,lewr=1", "flag"),
        ("epc=64M,,lewr", "empty item"),
        ("lewr", "epc=<size> is required"),
    ],
)
def test_guest_bad_option_strings_exit_2(capsys, opts, word):
    rc, out, err = run(capsys, "guest", "--sgx", opts)
    assert rc == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sgxlab guest: ") and word in lines[0]
    assert "Traceback" not in err


def test_guest_bad_policy_and_missing_sgx(capsys):
    rc, _, err = run(capsys, "guest", "--sgx", "epc=64M", "--policy", "nope")
    assert rc == 2 and "valid names" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(SystemExit) as ei:
        main(["guest"])
    assert ei.value.code == 2


def test_module_entry_point_exit_status():
    p = subprocess.run(
        [sys.executable, "-m", "sgxlab", "guest", "--sgx", "epc=64M,lehash=12"],
        capture_output=True,
        text=True,
    )
    assert p.returncode == 2 and p.stdout == ""
    assert len(p.stderr.strip().splitlines()) == 1 and "64 hex digits" in p.stderr


QEMU_EPC = "-object memory-backend-epc,id=m,size=8M -M sgx-epc.0.memdev=m"


def test_guest_sgxlc_on_a_locked_host_warns_and_is_created(capsys):
    """QEMU 6.2 drops +sgxlc with a warning where KVM cannot offer SGX_LC (enforce is off)."""
    rc, out, _ = run(capsys, "guest", f"--sgx=-cpu host,+sgxlc {QEMU_EPC}", "--firmware", "locked-intel", "--json")
    d = json.loads(out)
    assert rc == 0 and d["created"] is True and d["enforce"] is False and d["sgxlc"] is True
    assert d["warnings"] == ["host doesn't support requested feature: CPUID.07H:ECX.sgxlc [bit 30]"]
    assert d["guest"]["cpuid_sgx_lc"] is False and d["guest"]["feature_control"] == 0x40001
    rc, out, _ = run(capsys, "guest", f"--sgx=-cpu host,+sgxlc {QEMU_EPC}", "--firmware", "no-lc")
    assert rc == 0 and "created         yes" in out and "enforce         no" in out
    assert all(len(line) <= 72 for line in out.splitlines())  # long values wrap, never cut
    assert "warning QEMU: host doesn't support requested feature: CPUID.07H:ECX.sgxlc" in " ".join(out.split())
    assert "guest SGX_LC    no" in out and "bit 17 clear" in out


def test_guest_sgxlc_with_enforce_on_a_locked_host_is_refused(capsys):
    rc, out, _ = run(
        capsys, "guest", f"--sgx=-cpu host,+sgxlc,enforce=on {QEMU_EPC}", "--firmware", "locked-intel", "--json"
    )
    d = json.loads(out)
    assert rc == 0 and d["created"] is False and d["refused_by"] == "kvm" and d["enforce"] is True
    assert "Host doesn't support requested features" in d["reason"]
    rc, out, _ = run(capsys, "guest", "--sgx", "epc=64M,lewr", "--json")
    assert json.loads(out)["warnings"] == []
