"""Every text the command line prints fits 72 columns: long values wrap, never get cut."""

from __future__ import annotations

import pytest

from sgxlab.cli import main
from sgxlab.hw.crypto import load_test_key, sign_sigstruct
from sgxlab.hw.measure import Page, build_enclave, write_sgxs
from sgxlab.hw.structs import PT_TCS, SECINFO_R, SECINFO_X, Secinfo, Sigstruct


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("width")
    pages = [Page(0, Secinfo.of(SECINFO_R | SECINFO_X), b"width test"), Page(0x1000, Secinfo.of(0, PT_TCS))]
    enc = build_enclave(pages)
    sig = sign_sigstruct(load_test_key(9), Sigstruct.new(enclavehash=enc.mrenclave(), attributes=enc.secs.attributes))
    (d / "e.sig").write_bytes(sig.to_bytes())
    (d / "e.sgxs").write_bytes(write_sgxs(pages))
    return d


COMMANDS = [
    ["sigstruct", "{d}/e.sig"],
    ["measure", "{d}/e.sgxs"],
    ["einit", "--sigstruct", "{d}/e.sig", "--sgxs", "{d}/e.sgxs"],
    ["einit", "--sigstruct", "{d}/e.sig", "--sgxs", "{d}/e.sgxs", "--lehash", "intel"],
    ["guest", "--sgx", "epc=64M,lehash=" + "ab" * 32 + ",lewr", "--policy", "allowlist"],
    ["guest", "--sgx=-cpu host,+sgxlc -object memory-backend-epc,id=m,size=8M -M sgx-epc.0.memdev=m"],
    ["policy-matrix", "--reasons"],
    ["run", "--design", "percpu-cache", "--workload", "suspend-resume", "--param", "launches=100"],
    ["designs"],
    ["workloads"],
]


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda a: " ".join(a)[:40])
def test_text_output_fits_72_columns(argv, files, capsys):
    rc = main([a.format(d=files) for a in argv])
    out = capsys.readouterr().out
    assert rc == 0 and out
    wide = [line for line in out.splitlines() if len(line) > 72]
    assert not wide, wide[:3]
