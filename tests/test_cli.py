"""The ``sgxlab`` command: ``einit``, ``sigstruct`` and ``measure``, as a user runs them.

Most tests call :func:`sgxlab.cli.main` in-process (fast); a few run
``python -m sgxlab`` in a subprocess to check the real exit status and that no
traceback ever reaches stderr. Bad input always means exit status 2, nothing
on stdout and exactly one line on stderr.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from cli_in_process import sgxlab_cli as cli

from sgxlab.cli import COMMANDS
from sgxlab.host.le import LaunchEnclave
from sgxlab.hw.arch import MSR_IA32_SGXLEPUBKEYHASH, SgxError
from sgxlab.hw.crypto import SigningKey, load_test_key, sign_sigstruct
from sgxlab.hw.measure import Page, SgxsEAdd, parse_sgxs, write_sgxs
from sgxlab.hw.platform import Platform
from sgxlab.hw.structs import PT_TCS, SECINFO_R, SECINFO_X, Attributes, Einittoken, Secinfo, Sigstruct

ROOT = Path(__file__).resolve().parent.parent
FB4B = "fb4bab3d6036ac1d730fa83d7366df1dd2dfeac194ef335d6854d8a6c6475542"
LE_PROD_HASH = "7881af9f9def547da9908c008f29cde9bd78064e36ac7e14c83c294ca4806150"


def einit_json(capsys, *argv) -> dict:
    rc, out, err = cli(capsys, "einit", *argv, "--json")
    assert (rc, err) == (0, ""), err
    d = json.loads(out)
    assert list(d) == ["code", "name", "reason"]
    assert isinstance(d["code"], int) and isinstance(d["name"], str) and isinstance(d["reason"], str)
    assert d["name"] == SgxError(d["code"]).name
    return d


def assert_bad_input(rc: int, out: str, err: str, *words: str) -> None:
    assert rc == 2, (rc, out, err)
    assert out == ""
    assert len(err.splitlines()) == 1 and err.endswith("\n"), err
    assert "Traceback" not in err
    for w in words:
        assert w in err, (w, err)


# --------------------------------------------------------------------------- an enclave built here


@pytest.fixture(scope="module")
def own(tmp_path_factory) -> dict:
    """An enclave built and signed here (test key 5), as files, plus an LE token for it."""
    d = tmp_path_factory.mktemp("own")
    key = load_test_key(5)
    pages = [Page(0, Secinfo.of(SECINFO_R | SECINFO_X), b"\xf4" * 4096), Page(0x1000, Secinfo.of(0, PT_TCS))]
    stream = write_sgxs(pages)
    sig = sign_sigstruct(key, Sigstruct.new(enclavehash=hashlib.sha256(stream).digest()))
    (d / "enclave.sgxs").write_bytes(stream)
    (d / "enclave.sig").write_bytes(sig.to_bytes())
    # The legacy flow: an LE signed by test key 6 on a platform like the command's (seed 0, one CPU).
    le_key = load_test_key(6)
    cpu = Platform(1, "flexible").cpu(0)
    for msr, w in zip(MSR_IA32_SGXLEPUBKEYHASH, le_key.mrsigner.words):
        cpu.wrmsr(msr, w)
    le = LaunchEnclave.create(le_key, allowlist=[key.mrsigner])
    assert le.launch(cpu).ok
    tok = le.get_token(sig, sig.attributes).token
    (d / "enclave.token").write_bytes(tok.to_bytes())
    (d / "enclave.token.blob").write_bytes(tok.to_blob())
    return {"dir": d, "key": key, "sig": sig, "le_key": le_key}


def test_einit_is_a_registered_command():
    assert "einit" in COMMANDS


def test_einit_own_enclave_tokenless(capsys, own):
    d, key = own["dir"], own["key"]
    base = ("--sigstruct", d / "enclave.sig", "--sgxs", d / "enclave.sgxs")
    ok = einit_json(capsys, *base, "--lehash", key.mrsigner.hex())
    assert ok["code"] == 0 and ok["name"] == "SUCCESS" and "token-less launch" in ok["reason"]
    assert einit_json(capsys, *base, "--lehash", "0x" + key.mrsigner.hex().upper())["code"] == 0
    refused = einit_json(capsys, *base)  # default: Intel's hash
    assert (refused["code"], refused["name"]) == (16, "SGX_INVALID_EINITTOKEN")
    assert refused["reason"] == (
        f"MRSIGNER {key.mrsigner.short()} ≠ CPU 0's IA32_SGXLEPUBKEYHASH acb77012… (token-less launch)"
    )
    assert einit_json(capsys, *base, "--lehash", "intel") == refused
    assert einit_json(capsys, *base, "--lehash", "INTEL") == refused


def test_einit_own_enclave_with_an_le_token(capsys, own):
    d = own["dir"]
    base = ("--sigstruct", d / "enclave.sig", "--sgxs", d / "enclave.sgxs")
    le_hash = own["le_key"].mrsigner.hex()
    for tok in ("enclave.token", "enclave.token.blob"):
        r = einit_json(capsys, *base, "--token", d / tok, "--lehash", le_hash)
        assert r["code"] == 0 and "EINITTOKEN" in r["reason"]
    moved = einit_json(capsys, *base, "--token", d / "enclave.token")  # MSRs moved away from the LE
    assert (moved["code"], moved["name"]) == (16, "SGX_INVALID_EINITTOKEN") and "EINITTOKEN.MAC" in moved["reason"]


def test_einit_secs_attributes(capsys, own):
    d, key = own["dir"], own["key"]
    base = ("--sigstruct", d / "enclave.sig", "--sgxs", d / "enclave.sgxs", "--lehash", key.mrsigner.hex())
    assert einit_json(capsys, *base, "--secs-attributes", "DEBUG|MODE64BIT")["code"] == 0  # DEBUG not in the mask
    assert einit_json(capsys, *base, "--secs-attributes", "0x6/0x3")["code"] == 0
    r = einit_json(capsys, *base, "--secs-attributes", "0x4/0x7")
    assert r["code"] == 2 and "ATTRIBUTEMASK" in r["reason"]
    r = einit_json(capsys, *base, "--secs-attributes", "MODE64BIT|EINITTOKEN_KEY")
    assert r["code"] == 2 and "ATTRIBUTEMASK" in r["reason"]  # its own signer is in the MSRs: the mask refuses


def test_einit_text_output(capsys, own):
    d = own["dir"]
    rc, out, err = cli(capsys, "einit", "--sigstruct", d / "enclave.sig", "--sgxs", d / "enclave.sgxs")
    assert (rc, err) == (0, "")
    lines = out.splitlines()
    assert 3 <= len(lines) <= 16 and all(len(ln) <= 72 for ln in lines)  # wrapped, never cut
    assert any(ln.startswith("result") and "SGX_INVALID_EINITTOKEN (16)" in ln for ln in lines)
    assert any(ln.startswith("reason") for ln in lines) and "(token-less launch)" in " ".join(out.split())
    assert "0xa6053e051270b7ac 0x6cfbe8ba8b3b413d 0xc4916d99f2b3735d 0xd4f8c05909f9bb3b" in " ".join(out.split())
    assert own["key"].mrsigner.hex() in out


def test_einit_malformed_sigstruct_still_runs(capsys, own, tmp_path):
    """A SIGSTRUCT with the right size but bad content is EINIT's business: code 1, exit 0."""
    data = bytearray(own["sig"].to_bytes())
    data[0] ^= 0xFF  # HEADER
    bad = tmp_path / "bad.sig"
    bad.write_bytes(bytes(data))
    r = einit_json(capsys, "--sigstruct", bad, "--sgxs", own["dir"] / "enclave.sgxs")
    assert (r["code"], r["name"]) == (1, "SGX_INVALID_SIG_STRUCT") and "HEADER" in r["reason"]
    zero = tmp_path / "zero.sig"
    zero.write_bytes(bytes(1808))
    r = einit_json(capsys, "--sigstruct", zero, "--mrenclave", "00" * 32, "--secs-attributes", "0x4/0x3")
    assert r["code"] == 1


# --------------------------------------------------------------------------- bad input


@pytest.fixture()
def files(tmp_path, own) -> dict[str, Path]:
    f = {
        "sig": own["dir"] / "enclave.sig",
        "sgxs": own["dir"] / "enclave.sgxs",
        "short": tmp_path / "short.bin",
        "truncated_sgxs": tmp_path / "truncated.sgxs",
        "garbage_sgxs": tmp_path / "garbage.sgxs",
        "empty": tmp_path / "empty.bin",
        "missing": tmp_path / "does-not-exist.bin",
        "dir": tmp_path,
    }
    f["short"].write_bytes(b"\x06" * 100)
    f["truncated_sgxs"].write_bytes(f["sgxs"].read_bytes()[:-10])
    f["garbage_sgxs"].write_bytes(b"\xab" * 128)
    f["empty"].write_bytes(b"")
    return f


SIG = ["--sigstruct", "{sig}"]
SGXS = [*SIG, "--sgxs", "{sgxs}"]
GIVEN = [*SIG, "--mrenclave", "00" * 32]
BAD_EINIT = {
    "missing sigstruct": (["--sigstruct", "{missing}", "--mrenclave", "00" * 32], ["--sigstruct", "no such file"]),
    "sigstruct is a directory": (["--sigstruct", "{dir}", "--mrenclave", "00" * 32], ["directory"]),
    "wrong-size sigstruct": (["--sigstruct", "{short}", "--mrenclave", "00" * 32], ["SIGSTRUCT", "1808 bytes"]),
    "sgxs as sigstruct": (["--sigstruct", "{sgxs}", "--mrenclave", "00" * 32], ["SIGSTRUCT", "1808"]),
    "garbage mrenclave": ([*SIG, "--mrenclave", "zz" * 32], ["--mrenclave", "hexadecimal"]),
    "short mrenclave": ([*SIG, "--mrenclave", "ab" * 31], ["--mrenclave", "64 hex digits"]),
    "63-digit lehash": ([*SGXS, "--lehash", "a" * 63], ["--lehash", "got 63"]),
    "garbage lehash": ([*SGXS, "--lehash", "x" * 64], ["--lehash", "hexadecimal"]),
    "unknown flag": ([*SGXS, "--secs-attributes", "FOO"], ["--secs-attributes", "FOO"]),
    "empty attributes": ([*SGXS, "--secs-attributes", ""], ["--secs-attributes"]),
    "INIT in attributes": ([*SGXS, "--secs-attributes", "0x5"], ["--secs-attributes", "INIT"]),
    "XFRM without SSE": ([*GIVEN, "--secs-attributes", "0x4/0x1"], ["--secs-attributes", "XFRM"]),
    "attributes over 64 bits": ([*SGXS, "--secs-attributes", hex(1 << 64)], ["--secs-attributes"]),
    "missing sgxs": ([*SIG, "--sgxs", "{missing}"], ["--sgxs", "no such file"]),
    "truncated sgxs": ([*SIG, "--sgxs", "{truncated_sgxs}"], ["SGXS"]),
    "garbage sgxs": ([*SIG, "--sgxs", "{garbage_sgxs}"], ["SGXS"]),
    "empty sgxs": ([*SIG, "--sgxs", "{empty}"], ["SGXS"]),
    "wrong-size token": ([*SGXS, "--token", "{short}"], ["EINITTOKEN", "304 bytes"]),
    "missing token": ([*SGXS, "--token", "{missing}"], ["--token", "no such file"]),
    "no enclave": (SIG, ["--sgxs", "--mrenclave"]),
    "two enclaves": ([*SGXS, "--mrenclave", "00" * 32], ["not allowed"]),
    "no sigstruct": (["--sgxs", "{sgxs}"], ["--sigstruct"]),
    "unknown option": ([*SGXS, "--cpu", "3"], ["--cpu"]),
}


@pytest.mark.parametrize("case", list(BAD_EINIT))
def test_einit_bad_input(capsys, files, case):
    argv, words = BAD_EINIT[case]
    argv = [a.format(**{k: str(v) for k, v in files.items()}) for a in argv]
    assert_bad_input(*cli(capsys, "einit", *argv), *words)
    assert_bad_input(*cli(capsys, "einit", *argv, "--json"), *words)


# --------------------------------------------------------------------------- the vectors, through the command


@pytest.mark.vectors
def test_einit_cli_test_enclave(capsys, vectors, tmp_path):
    sig = vectors / "fortanix-rust-sgx/test_enclave.sig"
    sgxs = vectors / "fortanix-rust-sgx/test_enclave.sgxs"
    base = ("--sigstruct", sig, "--sgxs", sgxs)
    assert einit_json(capsys, *base, "--lehash", FB4B)["code"] == 0
    r = einit_json(capsys, *base)
    assert r == {
        "code": 16,
        "name": "SGX_INVALID_EINITTOKEN",
        "reason": "MRSIGNER fb4bab3d… ≠ CPU 0's IA32_SGXLEPUBKEYHASH acb77012… (token-less launch)",
    }
    r = einit_json(capsys, *base, "--lehash", FB4B, "--secs-attributes", "MODE64BIT|EINITTOKEN_KEY/0x3")
    assert (r["code"], r["name"]) == (2, "SGX_INVALID_ATTRIBUTE")
    assert einit_json(capsys, *base, "--secs-attributes", "0x24/0x3")["code"] == 2
    # One EADD flag changed in the replay: the measurement differs.
    stream = sgxs.read_bytes()
    first = next(r for r in parse_sgxs(stream) if isinstance(r, SgxsEAdd))
    pos = first.position + 16
    changed = tmp_path / "changed.sgxs"
    changed.write_bytes(stream[:pos] + (first.flags | SECINFO_X).to_bytes(8, "little") + stream[pos + 8 :])
    r = einit_json(capsys, "--sigstruct", sig, "--sgxs", changed, "--lehash", FB4B)
    assert (r["code"], r["name"]) == (4, "SGX_INVALID_MEASUREMENT") and "784acfd7…" in r["reason"]
    # And with a broken signature as well, the signature decides.
    bad = bytearray(sig.read_bytes())
    bad[960] ^= 1  # ENCLAVEHASH, a signed field
    (tmp_path / "bad.sig").write_bytes(bytes(bad))
    r = einit_json(capsys, "--sigstruct", tmp_path / "bad.sig", "--sgxs", changed, "--lehash", FB4B)
    assert (r["code"], r["name"]) == (8, "SGX_INVALID_SIGNATURE")


@pytest.mark.vectors
def test_einit_cli_le_prod(capsys, vectors, expected):
    le = vectors / "intel-linux-sgx/le_prod_css.bin"
    assert expected["sigstructs"]["intel-linux-sgx/le_prod_css.bin"]["enclavehash"] == LE_PROD_HASH
    ok = einit_json(capsys, "--sigstruct", le, "--mrenclave", LE_PROD_HASH)
    assert ok["code"] == 0
    assert einit_json(capsys, "--sigstruct", le, "--mrenclave", "0x" + LE_PROD_HASH, "--lehash", "intel")["code"] == 0
    rc, out, _ = cli(capsys, "einit", "--sigstruct", le, "--mrenclave", LE_PROD_HASH)
    assert rc == 0 and "(given)" in out
    assert "0x24/0x3 (MODE64BIT|EINITTOKEN_KEY)" in out  # SECS attributes default to the SIGSTRUCT's
    for other in (FB4B, "00" * 32, "ff" * 32):
        r = einit_json(capsys, "--sigstruct", le, "--mrenclave", LE_PROD_HASH, "--lehash", other)
        assert (r["code"], r["name"]) == (2, "SGX_INVALID_ATTRIBUTE") and "EINITTOKEN_KEY" in r["reason"]


@pytest.mark.vectors
@pytest.mark.parametrize("name", ["enclave-hello", "sip-sgx"])
def test_einit_cli_sdk_simulation_tokens(capsys, vectors, expected, name):
    sig = vectors / f"intel-sdk-sim-tokens/{name}.sigstruct.bin"
    tok = vectors / f"intel-sdk-sim-tokens/{name}.enclave.token"
    mr = expected["sigstructs"][f"intel-sdk-sim-tokens/{name}.sigstruct.bin"]["enclavehash"]
    signer = expected["tokens"][f"intel-sdk-sim-tokens/{name}.enclave.token"]["mrsigner"]
    for extra in ((), ("--secs-attributes", "0x6/0x7"), ("--lehash", signer)):
        r = einit_json(capsys, "--sigstruct", sig, "--mrenclave", mr, "--token", tok, *extra)
        assert (r["code"], r["name"]) == (16, "SGX_INVALID_EINITTOKEN") and "RESERVED" in r["reason"]


@pytest.mark.vectors
def test_einit_cli_hashmachine(capsys, vectors, expected):
    want = expected["sigstructs"]["real-hw-attested/hashmachine.sigstruct.bin"]
    base = ("--sigstruct", vectors / "real-hw-attested/hashmachine.sigstruct.bin", "--mrenclave", want["enclavehash"])
    for attrs in ("DEBUG|MODE64BIT/0x7", "0x6/0x7", "0x4/0x3"):
        assert einit_json(capsys, *base, "--lehash", want["mrsigner"], "--secs-attributes", attrs)["code"] == 0
    r = einit_json(capsys, *base, "--lehash", want["mrsigner"], "--secs-attributes", "0x6/0xf")
    assert r["code"] == 2


@pytest.mark.vectors
def test_einit_cli_real_hw_token(capsys, vectors, tmp_path):
    key = SigningKey.from_pem(vectors / "real-hw-token/minimal-sgx.private-key.pem")
    tokfile = vectors / "real-hw-token/minimal-sgx.enclave.token"
    tok = Einittoken.from_bytes(tokfile.read_bytes())
    sig = sign_sigstruct(
        key,
        Sigstruct.new(
            enclavehash=tok.mrenclave,
            attributes=Attributes(0x4, 0x3),
            attributemask=Attributes(0xFFFFFFFFFFFFFFFD, 0xFFFFFFFFFFFFFF1B),
        ),
    )
    (tmp_path / "minimal.sig").write_bytes(sig.to_bytes())
    r = einit_json(
        capsys,
        "--sigstruct",
        tmp_path / "minimal.sig",
        "--mrenclave",
        tok.mrenclave.hex(),
        "--token",
        tokfile,
        "--secs-attributes",
        "0x6/0x7",
    )
    assert (r["code"], r["name"]) == (16, "SGX_INVALID_EINITTOKEN") and "EINITTOKEN.MAC c56df82f…" in r["reason"]


# --------------------------------------------------------------------------- sgxlab sigstruct


SIGSTRUCT_KEYS = (
    "mrsigner",
    "enclavehash",
    "lepubkeyhash",
    "signature_valid",
    "q1q2_valid",
    "vendor",
    "date",
    "attributes",
    "attributemask",
    "isvprodid",
    "isvsvn",
)


@pytest.mark.vectors
def test_sigstruct_json_against_expected(capsys, vectors, expected):
    for rel, want in expected["sigstructs"].items():
        rc, out, err = cli(capsys, "sigstruct", vectors / rel, "--json")
        assert (rc, err) == (0, ""), (rel, err)
        d = json.loads(out)
        for k in SIGSTRUCT_KEYS:
            assert k in d, (rel, k)
        assert d["mrsigner"] == want["mrsigner"] and d["enclavehash"] == want["enclavehash"]
        assert d["signature_valid"] is True and d["q1q2_valid"] is True
        assert len(d["lepubkeyhash"]) == 4 and all(w.startswith("0x") and len(w) == 18 for w in d["lepubkeyhash"])
        if "lepubkeyhash" in want:
            assert d["lepubkeyhash"] == want["lepubkeyhash"]
        assert set(d["attributes"]) == set(d["attributemask"]) == {"flags", "xfrm"}
        assert all(v.startswith("0x") for v in (*d["attributes"].values(), *d["attributemask"].values()))
        assert isinstance(d["isvprodid"], int) and isinstance(d["isvsvn"], int)


@pytest.mark.vectors
def test_sigstruct_json_le_prod_fields(capsys, vectors):
    rc, out, _ = cli(capsys, "sigstruct", vectors / "intel-linux-sgx/le_prod_css.bin", "--json")
    d = json.loads(out)
    assert rc == 0
    assert (d["vendor"], d["date"]) == ("0x8086", "0x20240811")
    assert d["attributes"] == {"flags": "0x24", "xfrm": "0x3"}
    assert d["attributemask"] == {"flags": "0xff00ffffffffffff", "xfrm": "0xffffffffffffff1b"}
    assert (d["isvprodid"], d["isvsvn"]) == (32, 7)
    assert d["lepubkeyhash"] == ["0xa6053e051270b7ac", "0x6cfbe8ba8b3b413d", "0xc4916d99f2b3735d", "0xd4f8c05909f9bb3b"]


def test_sigstruct_own_file_and_text(capsys, own):
    rc, out, err = cli(capsys, "sigstruct", own["dir"] / "enclave.sig", "--json")
    d = json.loads(out)
    assert (rc, err) == (0, "") and d["mrsigner"] == own["key"].mrsigner.hex()
    assert d["lepubkeyhash"] == [f"{w:#018x}" for w in own["key"].mrsigner.words]
    assert d["vendor"] == "0x0" and d["attributes"] == {"flags": "0x4", "xfrm": "0x3"}
    rc, out, err = cli(capsys, "sigstruct", own["dir"] / "enclave.sig")
    assert rc == 0 and "MRSIGNER" in out and own["key"].mrsigner.hex() in out and "valid" in out


def test_sigstruct_bad_input(capsys, files, tmp_path):
    zero = tmp_path / "zero.sig"
    zero.write_bytes(bytes(1808))  # right size, malformed: this command validates
    for path, words in (
        (files["missing"], ["no such file"]),
        (files["dir"], ["directory"]),
        (files["short"], ["SIGSTRUCT", "1808"]),
        (files["empty"], ["SIGSTRUCT"]),
        (zero, ["SIGSTRUCT.HEADER"]),
    ):
        for extra in ((), ("--json",)):
            assert_bad_input(*cli(capsys, "sigstruct", path, *extra), *words)
    assert_bad_input(*cli(capsys, "sigstruct"))


# --------------------------------------------------------------------------- sgxlab measure


@pytest.mark.vectors
def test_measure_json_against_expected(capsys, vectors, expected):
    for rel, mr in expected["sgxs"].items():
        rc, out, err = cli(capsys, "measure", vectors / rel, "--json")
        assert (rc, err) == (0, "")
        assert json.loads(out) == {"mrenclave": mr}
        rc, out, _ = cli(capsys, "measure", vectors / rel)
        assert rc == 0 and mr in out and "MRENCLAVE" in out


def test_measure_own_stream(capsys, own):
    rc, out, _ = cli(capsys, "measure", own["dir"] / "enclave.sgxs", "--json")
    assert rc == 0 and json.loads(out) == {"mrenclave": own["sig"].enclavehash.hex()}


def test_measure_bad_input(capsys, files):
    for path, words in (
        (files["missing"], ["no such file"]),
        (files["dir"], ["directory"]),
        (files["truncated_sgxs"], ["SGXS"]),
        (files["garbage_sgxs"], ["SGXS"]),
        (files["empty"], ["SGXS"]),
        (files["sig"], ["SGXS"]),
    ):
        for extra in ((), ("--json",)):
            assert_bad_input(*cli(capsys, "measure", path, *extra), *words)


# --------------------------------------------------------------------------- a real process


def _run(*argv: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sgxlab", *map(str, argv)],
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=ROOT,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONIOENCODING": "utf-8"},
    )


def test_subprocess_einit_exit_status(own, tmp_path):
    d = own["dir"]
    p = _run("einit", "--sigstruct", d / "enclave.sig", "--sgxs", d / "enclave.sgxs", "--json")
    assert p.returncode == 0 and p.stderr == ""
    assert json.loads(p.stdout)["code"] == 16  # EINIT ran: exit 0 whatever its result
    p = _run("einit", "--sigstruct", d / "enclave.sig", "--sgxs", d / "enclave.sgxs")
    assert p.returncode == 0 and "SGX_INVALID_EINITTOKEN (16)" in p.stdout and "≠" in p.stdout
    p = _run("einit", "--sigstruct", tmp_path / "nope.sig", "--mrenclave", "00" * 32)
    assert p.returncode == 2 and p.stdout == "" and len(p.stderr.splitlines()) == 1
    assert "Traceback" not in p.stderr and "no such file" in p.stderr
    p = _run("einit", "--sigstruct", d / "enclave.sig", "--sgxs", d / "enclave.sgxs", "--lehash", "a" * 63)
    assert p.returncode == 2 and len(p.stderr.splitlines()) == 1 and "Traceback" not in p.stderr


def test_subprocess_help_lists_einit():
    p = _run("--help")
    assert p.returncode == 0 and "einit" in p.stdout
    p = _run("einit", "--help")
    assert p.returncode == 0 and "--secs-attributes" in p.stdout and "--lehash" in p.stdout
