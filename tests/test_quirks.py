"""The small quirks of the hardening issue, one test each, through the command line."""

from __future__ import annotations

import pytest
from cli_in_process import sgxlab_cli as cli

from sgxlab.sim.workloads import parse_trace_csv

RUN = ("run", "--design", "always-write", "--engine", "fast", "--workload", "workshop")


def one_line(rc: int, err: str) -> str:
    assert rc == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_size_error_is_plain(capsys, tmp_path, vectors):
    short = tmp_path / "short.bin"
    short.write_bytes((vectors / "intel-linux-sgx/le_prod_css.bin").read_bytes()[:1294])
    err = one_line(*cli(capsys, "sigstruct", short)[::2])
    assert "expected 1808 bytes, got 1294\n" in err
    assert "'" not in err.split(":", 1)[1]


def test_repeated_cost_is_refused_like_a_repeated_param(capsys):
    err_p = one_line(*cli(capsys, *RUN, "--param", "launches=5", "--param", "launches=7")[::2])
    err_c = one_line(*cli(capsys, *RUN, "--cost", "einit=5", "--cost", "einit=7")[::2])
    assert "launches given twice" in err_p and "einit given twice" in err_c


@pytest.mark.parametrize("cost", ["einit=abc", "einit=", "einit=1e3x", "einit=nan"])
def test_non_numeric_cost_is_refused(capsys, cost):
    err = one_line(*cli(capsys, *RUN, "--cost", cost)[::2])
    assert "einit" in err


@pytest.mark.parametrize(
    "argv,word",
    [
        (("--param", "launches="), "launches"),
        (("--cost", "einit="), "einit"),
        (("--costs", ""), "costs"),
        (("--seed", ""), "seed"),
    ],
)
def test_empty_option_values_are_refused(capsys, argv, word):
    err = one_line(*cli(capsys, *RUN, *argv)[::2])
    assert word in err


def test_lehash_and_mrenclave_take_the_same_quoting(capsys, vectors):
    v = vectors / "fortanix-rust-sgx"
    mre = "784acfd7d5096a8f0fbd3265760bff21b120f62407a9a9e5ba31aa3c8ed198fc"
    signer = "fb4bab3d6036ac1d730fa83d7366df1dd2dfeac194ef335d6854d8a6c6475542"
    outs = set()
    for q in ("", "'", '"'):
        rc, out, err = cli(
            capsys,
            "einit",
            "--sigstruct",
            v / "test_enclave.sig",
            "--mrenclave",
            f"{q}{mre}{q}",
            "--lehash",
            f"{q}{signer}{q}",
        )
        assert rc == 0, err
        outs.add(out)
    assert len(outs) == 1


def test_percpu_cache_lock_option_is_accepted(capsys):
    rc, out, err = cli(capsys, *RUN, "--design", "percpu-cache:lock=percpu", "--param", "launches=10")
    assert rc == 0, err
    assert "percpu-cache:percpu" in out


def test_csv_with_a_bom_is_accepted(tmp_path):
    text = "t,kind,cpu,vm,vcpu,signer\n0,launch,0,-1,-1,0\n"
    plain = parse_trace_csv(text)
    bom = parse_trace_csv("\ufeff" + text)
    assert len(bom.t) == len(plain.t) == 1


def test_error_lines_stay_short_for_huge_inputs(capsys):
    huge = "x" * 100_000
    for argv in (
        (*RUN, "--param", f"launches={huge}"),
        (*RUN, "--cost", f"einit={huge}"),
        ("guest", "--sgx", f"epc={huge}"),
        (*RUN[:-1], huge),
    ):
        err = one_line(*cli(capsys, *argv)[::2])
        assert len(err) < 400, len(err)
