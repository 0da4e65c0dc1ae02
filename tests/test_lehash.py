"""One hash parser: every place a user types a signer hash accepts the same spellings.

The spellings are documented once, in :data:`sgxlab.hw.arch.LEHASH_SPELLINGS`,
and parsed once, by :meth:`sgxlab.hw.arch.LeHash.parse`. This file checks the
spellings and then that every entry point goes through it.
"""

from __future__ import annotations

import pytest

from sgxlab.cli import main
from sgxlab.errors import ConfigError, HashSyntaxError
from sgxlab.host.le import LaunchEnclave
from sgxlab.hw.arch import INTEL_LEPUBKEYHASH, LeHash, hex_digest
from sgxlab.hw.crypto import load_test_key
from sgxlab.hw.platform import Firmware, Platform
from sgxlab.kvm import Allowlist, GuestOptionError, SgxGuestConfig

HEX = INTEL_LEPUBKEYHASH.hex()
WORDS = ",".join(f"{w:#x}" for w in INTEL_LEPUBKEYHASH.words)

SPELLINGS = [
    HEX,
    HEX.upper(),
    "0x" + HEX,
    f"'{HEX}'",
    f'"{HEX}"',
    f"  {HEX}  ",
    "intel",
    "Intel",
    WORDS,
    WORDS.replace(",", " "),
    WORDS.upper().replace("0X", "0x"),
]


@pytest.mark.parametrize("text", SPELLINGS)
def test_every_spelling_means_intels_hash(text):
    assert LeHash.parse(text) == INTEL_LEPUBKEYHASH


@pytest.mark.parametrize(
    "text,kind",
    [
        (HEX[:-2], "wrong-length"),
        (HEX + "00", "wrong-length"),
        ("zz" * 32, "bad-hex"),
        ("'" + HEX, "bad-quote"),
        (HEX + '"', "bad-quote"),
        ("0x1,0x2,0x3,0xg", "bad-word"),
        ("0x1,0x2,0x3,0x" + "1" * 17, "bad-word"),
        ("", "wrong-length"),
    ],
)
def test_bad_spellings_are_typed_and_named(text, kind):
    with pytest.raises(HashSyntaxError) as ei:
        LeHash.parse(text, option="--lehash")
    assert ei.value.kind == kind and ei.value.option == "--lehash"


def test_not_a_string():
    with pytest.raises(HashSyntaxError) as ei:
        LeHash.parse(42)  # type: ignore[arg-type]
    assert ei.value.kind == "not-a-string"


def test_words_are_msr_order():
    h = LeHash.parse("0x1 0x2 0x3 0x4")
    assert h.words == (1, 2, 3, 4)


def test_coerce_accepts_keys_bytes_and_text():
    key = load_test_key(1)
    assert LeHash.coerce(key) == key.mrsigner
    assert LeHash.coerce(key.mrsigner.digest) == key.mrsigner
    assert LeHash.coerce(key.mrsigner.hex()) == key.mrsigner
    with pytest.raises(ConfigError, match="expected a signer hash"):
        LeHash.coerce(3.5, option="signers")


def test_mrenclave_shares_the_digest_core():
    assert hex_digest("'0x" + "ab" * 32 + "'", "--mrenclave") == bytes.fromhex("ab" * 32)


@pytest.mark.parametrize("text", ["intel", WORDS, HEX, "0x" + HEX])
def test_entry_points_accept_every_spelling(text, capsys):
    want = INTEL_LEPUBKEYHASH
    # Python API: guest config, platform firmware, launch enclave, host policy.
    assert SgxGuestConfig(epc="64M", lehash=text).lehash == want
    assert Platform(1, Firmware.flexible(text)).cpu(0).lehash == want
    le = LaunchEnclave.create(load_test_key(0), allowlist=[text])
    assert want.digest in le.allowlist
    assert want in Allowlist([text]).signers
    # Kai's option string (no commas inside it, so not the word form).
    if "," not in text:
        assert SgxGuestConfig.parse(f"epc=64M,lehash={text}").lehash == want


def test_guest_option_errors_keep_their_kind():
    with pytest.raises(GuestOptionError) as ei:
        SgxGuestConfig.parse("epc=64M,lehash=" + "zz" * 32)
    assert ei.value.kind == "bad-hex" and isinstance(ei.value, ConfigError)


def test_cli_lehash_accepts_the_word_form(tmp_path, capsys):
    from sgxlab.host.samples import signed_enclave

    e = signed_enclave(3)
    sig = tmp_path / "e.sig"
    sig.write_bytes(e.sigstruct_bytes)
    words = ",".join(f"{w:#x}" for w in e.mrsigner.words)
    rc = main(["einit", "--sigstruct", str(sig), "--mrenclave", e.mrenclave.hex(), "--lehash", words, "--json"])
    out = capsys.readouterr().out
    assert rc == 0 and '"code": 0' in out
