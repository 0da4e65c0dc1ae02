"""Tests of sgxlab.hw.crypto: CMAC, PKCS#1 v1.5 padding, keys, Q1/Q2, SIGSTRUCT sign/verify.

Deterministic and offline: no key is generated here except small, fast
non-SGX keys used to provoke errors (2048-bit RSA, e = 65537, EC).
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from types import ModuleType

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from sgxlab.errors import ConfigError, SgxlabError
from sgxlab.hw.arch import LeHash
from sgxlab.hw.crypto import (
    DIGESTINFO_SHA256_PREFIX,
    HARDCODED_PKCS1_5_PADDING,
    MODULUS_SIZE,
    NUM_TEST_KEYS,
    SignatureCheck,
    SigningKey,
    aes_cmac,
    load_test_key,
    mrsigner,
    pkcs1_v15_encode,
    q1q2,
    sign_sigstruct,
    verify_signature,
    verify_sigstruct,
)


def le(b: bytes) -> int:
    return int.from_bytes(b, "little")


@pytest.fixture(scope="module")
def key0() -> SigningKey:
    return load_test_key(0)


@pytest.fixture(scope="module")
def structs() -> ModuleType:
    return pytest.importorskip("sgxlab.hw.structs", reason="sgxlab/hw/structs.py not written yet")


# --- AES-CMAC -------------------------------------------------------------------------------

RFC4493_KEY = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")
RFC4493_MSG = bytes.fromhex(
    "6bc1bee22e409f96e93d7e117393172a"
    "ae2d8a571e03ac9c9eb76fac45af8e51"
    "30c81c46a35ce411e5fbc1191a0a52ef"
    "f69f2445df4f9b17ad2b417be66c3710"
)


@pytest.mark.parametrize(
    ("length", "mac"),
    [
        (0, "bb1d6929e95937287fa37d129b756746"),
        (16, "070a16b46b4d4144f79bdd9dd04a287c"),
        (40, "dfa66747de9ae63030ca32611497c827"),
        (64, "51f0bebf7e3b9d92fc49741779363cfe"),
    ],
)
def test_aes_cmac_rfc4493(length: int, mac: str) -> None:
    assert aes_cmac(RFC4493_KEY, RFC4493_MSG[:length]).hex() == mac


def test_aes_cmac_rejects_wrong_key_size() -> None:
    with pytest.raises(ConfigError, match="16-byte"):
        aes_cmac(bytes(32), b"x")


# --- PKCS#1 v1.5 ----------------------------------------------------------------------------


def test_hardcoded_padding_matches_sdm_constant() -> None:
    typed = bytes.fromhex("0001" + "ff" * 330 + "00" + "3031300d060960864801650304020105000420")
    assert typed == HARDCODED_PKCS1_5_PADDING
    assert len(HARDCODED_PKCS1_5_PADDING) == 352
    assert DIGESTINFO_SHA256_PREFIX.hex() == "3031300d060960864801650304020105000420"
    em = pkcs1_v15_encode(bytes(range(32)))
    assert len(em) == MODULUS_SIZE and em[:352] == typed and em[352:] == bytes(range(32))
    with pytest.raises(ConfigError):
        pkcs1_v15_encode(b"short")


# --- Q1/Q2 ----------------------------------------------------------------------------------


@settings(derandomize=True, max_examples=200)
@given(st.integers(min_value=2, max_value=1 << 3072), st.data())
def test_q1q2_reduce_s_cubed(n: int, data: st.DataObject) -> None:
    s = data.draw(st.integers(min_value=0, max_value=n - 1))
    q1, q2 = q1q2(s, n)
    assert s * s - q1 * n == s * s % n
    assert s**3 - q1 * s * n - q2 * n == pow(s, 3, n)
    assert 0 <= q1 < n and 0 <= q2 < n


def test_q1q2_rejects_zero_modulus() -> None:
    with pytest.raises(ConfigError):
        q1q2(5, 0)


# --- keys -----------------------------------------------------------------------------------


def test_vector_keys_mrsigner(vectors: Path, expected: dict) -> None:
    assert expected["keys"]
    for rel, want in expected["keys"].items():
        key = SigningKey.from_pem(vectors / rel)
        assert key.mrsigner.hex() == want, rel
        assert key.mrsigner == LeHash(bytes.fromhex(want))
        assert key.has_private == ("PRIVATE" in (vectors / rel).read_text()), rel
        # the public half, re-exported and re-loaded, has the same signer
        pub = SigningKey.from_pem(key.to_pem(public=True))
        assert not pub.has_private and pub.mrsigner.hex() == want
        # PEM text given as a str and a file name given as a str both work
        assert SigningKey.from_pem((vectors / rel).read_text()).n == key.n
        assert SigningKey.from_pem(str(vectors / rel)).n == key.n


def test_private_and_public_pems_pair_up(vectors: Path, expected: dict) -> None:
    for stem in ("ref_le_le", "ref_le_enclave"):
        priv = SigningKey.from_pem(vectors / f"intel-linux-sgx/{stem}_private_test_key.pem")
        pub = SigningKey.from_pem(vectors / f"intel-linux-sgx/{stem}_public_test_key.pem")
        assert priv.has_private and not pub.has_private
        assert priv.mrsigner == pub.mrsigner
        assert priv.mrsigner.hex() == expected["keys"][f"intel-linux-sgx/{stem}_public_test_key.pem"]


def test_verify_only_key_cannot_sign(key0: SigningKey) -> None:
    pub = SigningKey.from_pem(key0.to_pem(public=True), name="pubkey")
    with pytest.raises(SgxlabError, match="public key only"):
        pub.sign(b"data")


def test_pem_round_trip_and_properties(key0: SigningKey) -> None:
    again = SigningKey.from_pem(key0.to_pem())
    assert again.has_private and again.n == key0.n
    assert key0.to_pem().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert len(key0.modulus_le) == MODULUS_SIZE and le(key0.modulus_le) == key0.n
    assert key0.n.bit_length() == 3072
    assert key0.mrsigner == mrsigner(key0.modulus_le)
    assert key0.mrsigner.digest == hashlib.sha256(key0.modulus_le).digest()
    assert "test key 00" in repr(key0)


def test_mrsigner_rejects_wrong_length() -> None:
    with pytest.raises(ConfigError):
        mrsigner(bytes(256))


def test_all_test_keys_load_and_match_readme(data_dir: Path) -> None:
    readme = (data_dir / "keys" / "README.md").read_text()
    assert "PUBLIC TEST KEYS" in readme.upper()
    signers = {load_test_key(i).mrsigner.hex() for i in range(NUM_TEST_KEYS)}
    assert len(signers) == NUM_TEST_KEYS
    for h in signers:
        assert h in readme


def test_load_test_key_errors(tmp_path: Path) -> None:
    for bad in (-1, NUM_TEST_KEYS, True, "0"):
        with pytest.raises(ConfigError, match="index"):
            load_test_key(bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="missing"):
        load_test_key(3, tmp_path)


def _pem(priv: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return priv.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _e65537_key() -> rsa.RSAPrivateKey:
    """A 3072-bit key with e = 65537, built instantly from test key 0's primes."""
    pem = (Path(__file__).resolve().parent.parent / "data/keys/key00.pem").read_bytes()
    k = serialization.load_pem_private_key(pem, None, unsafe_skip_rsa_key_validation=True)
    assert isinstance(k, rsa.RSAPrivateKey)
    p, q = k.private_numbers().p, k.private_numbers().q
    d = pow(65537, -1, (p - 1) * (q - 1))
    return rsa.RSAPrivateNumbers(
        p,
        q,
        d,
        rsa.rsa_crt_dmp1(d, p),
        rsa.rsa_crt_dmq1(d, q),
        rsa.rsa_crt_iqmp(p, q),
        rsa.RSAPublicNumbers(65537, p * q),
    ).private_key()


def test_bad_keys_raise_config_error(tmp_path: Path) -> None:
    small = rsa.generate_private_key(public_exponent=3, key_size=2048)
    cases: list[tuple[bytes | Path, str]] = [
        (b"-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n", "PEM"),
        (b"garbage", "PEM"),
        (_pem(small), "2048-bit"),
        (
            small.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
            "2048-bit",
        ),
        (_pem(_e65537_key()), "exponent 65537"),
        (
            _e65537_key()
            .public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
            "exponent 65537",
        ),
        (_pem(ec.generate_private_key(ec.SECP256R1())), "not an RSA key"),
        (
            small.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(b"pw"),
            ),
            "PEM",
        ),
        (tmp_path / "nope.pem", "no such file"),
    ]
    for data, why in cases:
        with pytest.raises(ConfigError, match=why) as info:
            SigningKey.from_pem(data, name="suspect") if not isinstance(data, Path) else SigningKey.from_pem(data)
        assert "key=" in str(info.value)
    bad = tmp_path / "bad.pem"
    bad.write_bytes(_pem(small))
    with pytest.raises(ConfigError, match="bad.pem"):
        SigningKey.from_pem(bad)


# --- Fortanix raw RSA vectors ---------------------------------------------------------------


def test_fortanix_raw_signature_and_q1q2(vectors: Path, expected: dict) -> None:
    d = vectors / "fortanix-rust-sgx"
    key = SigningKey.from_pem(d / "sig1.key.pem")
    digest = (d / "sig1.data.bin").read_bytes()
    s_le = key.sign(digest, prehashed=True)
    assert s_le == (d / "sig1.sig.bin").read_bytes()
    assert key.sign(digest, prehashed=True) == s_le  # deterministic
    n_le = (d / "sig1.key_n.bin").read_bytes()
    assert n_le == key.modulus_le
    q1, q2 = q1q2(le(s_le), key.n)
    assert q1.to_bytes(MODULUS_SIZE, "little") == (d / "sig1.q1.bin").read_bytes()
    assert q2.to_bytes(MODULUS_SIZE, "little") == (d / "sig1.q2.bin").read_bytes()
    assert hashlib.sha256(n_le).hexdigest() == key.mrsigner.hex()
    assert key.mrsigner.hex() == expected["keys"]["fortanix-rust-sgx/sig1.key.pem"]
    assert pow(le(s_le), 3, key.n) == int.from_bytes(pkcs1_v15_encode(digest), "big")


# --- byte-level verify (no Sigstruct needed) ------------------------------------------------


def _signed_fields(key: SigningKey, data: bytes) -> tuple[bytes, bytes, bytes, bytes]:
    s = key.sign(data)
    q1, q2 = q1q2(le(s), key.n)
    return key.modulus_le, s, q1.to_bytes(MODULUS_SIZE, "little"), q2.to_bytes(MODULUS_SIZE, "little")


def test_verify_signature_flags(key0: SigningKey) -> None:
    data = bytes(range(256))
    n, s, q1, q2 = _signed_fields(key0, data)
    assert verify_signature(data, n, s, q1, q2) == SignatureCheck(True, True, "ok")
    r = verify_signature(data[:-1] + b"\x00", n, s, q1, q2)
    assert (r.signature_valid, r.q1q2_valid) == (False, True)
    assert r.reason == "signature does not verify under the embedded modulus"
    bad_q1 = bytes([q1[0] ^ 1]) + q1[1:]
    r = verify_signature(data, n, s, bad_q1, q2)
    assert (r.signature_valid, r.q1q2_valid, r.reason) == (True, False, "Q1 does not equal floor(s^2/n)")
    bad_q2 = q2[:-1] + bytes([q2[-1] ^ 0x80])
    r = verify_signature(data, n, s, q1, bad_q2)
    assert (r.signature_valid, r.q1q2_valid) == (True, False) and "Q2" in r.reason
    # s + n has the same cube mod n but is not a valid SIGSTRUCT signature
    big = (le(s) + key0.n).to_bytes(MODULUS_SIZE + 1, "little")
    r = verify_signature(data, n, big, q1, q2)
    assert not r.signature_valid and "not less than the modulus" in r.reason


@pytest.mark.parametrize(
    "fields",
    [
        (bytes(384),) * 4,
        (b"\xff" * 384,) * 4,
        (b"\x01" + bytes(383), b"\x05", b"", b""),
        (b"\x07", b"\x05" * 10, b"\x01", b"\x02"),
        (b"", b"", b"", b""),
    ],
)
def test_verify_signature_never_raises_on_garbage(fields: tuple[bytes, ...]) -> None:
    r = verify_signature(b"anything", *fields)
    assert not r.signature_valid and not r.ok and r.reason


def test_signing_is_deterministic(key0: SigningKey) -> None:
    assert key0.sign(b"abc") == key0.sign(b"abc")
    assert len(key0.sign(b"abc")) == MODULUS_SIZE


# --- SIGSTRUCTs (need sgxlab.hw.structs) -------------------------------------------------------


def test_vector_sigstructs_verify(structs: ModuleType, vectors: Path, expected: dict) -> None:
    assert expected["sigstructs"]
    for rel, want in expected["sigstructs"].items():
        sig = structs.Sigstruct.from_bytes((vectors / rel).read_bytes())
        check = verify_sigstruct(sig)
        assert check == SignatureCheck(True, True, "ok"), (rel, check)
        assert mrsigner(sig.modulus).hex() == want["mrsigner"], rel


def test_resigning_sig1_is_byte_exact(structs: ModuleType, vectors: Path) -> None:
    d = vectors / "fortanix-rust-sgx"
    raw = (d / "sig1.sigstruct.bin").read_bytes()
    blank = dataclasses.replace(
        structs.Sigstruct.from_bytes(raw),
        modulus=bytes(384),
        signature=bytes(384),
        q1=bytes(384),
        q2=bytes(384),
    )
    assert not verify_sigstruct(blank).signature_valid
    signed = sign_sigstruct(SigningKey.from_pem(d / "sig1.key.pem"), blank)
    assert signed is not blank and blank.signature == bytes(384)
    assert signed.to_bytes() == raw


def test_flipped_bytes_fail_with_the_right_flag(structs: ModuleType, vectors: Path) -> None:
    raw = (vectors / "fortanix-rust-sgx/sig1.sigstruct.bin").read_bytes()
    for offset in (20, 960, 1027):  # DATE, ENCLAVEHASH, last byte of ISVSVN: all signed
        b = bytearray(raw)
        b[offset] ^= 1
        r = verify_sigstruct(structs.Sigstruct.from_bytes(bytes(b), validate=False))
        assert (r.signature_valid, r.q1q2_valid) == (False, True), offset
        assert "does not verify" in r.reason
    b = bytearray(raw)
    b[1040 + 100] ^= 1  # a Q1 byte
    r = verify_sigstruct(structs.Sigstruct.from_bytes(bytes(b), validate=False))
    assert (r.signature_valid, r.q1q2_valid) == (True, False) and "Q1" in r.reason
    b = bytearray(raw)
    b[1424] ^= 1  # a Q2 byte
    r = verify_sigstruct(structs.Sigstruct.from_bytes(bytes(b), validate=False))
    assert (r.signature_valid, r.q1q2_valid) == (True, False) and "Q2" in r.reason


def test_sign_verify_round_trip_with_test_key(structs: ModuleType, key0: SigningKey) -> None:
    unsigned = structs.Sigstruct.new(
        enclavehash=hashlib.sha256(b"enclave").digest(),
        attributes=structs.Attributes(0x4, 0x3),
        attributemask=structs.Attributes(0xFFFFFFFFFFFFFFFD, 0xFFFFFFFFFFFFFF1B),
        isvprodid=7,
        isvsvn=2,
    )
    check = verify_sigstruct(unsigned)  # zero modulus: invalid, and no exception
    assert not check.signature_valid and not check.q1q2_valid
    for garbage in (dataclasses.replace(unsigned, modulus=b"\x01"), dataclasses.replace(unsigned, isvsvn=-1)):
        assert not verify_sigstruct(garbage).signature_valid
    signed = sign_sigstruct(key0, unsigned)
    assert verify_sigstruct(signed).ok
    assert signed.exponent == 3 and signed.modulus == key0.modulus_le
    assert mrsigner(signed.modulus) == key0.mrsigner
    again = structs.Sigstruct.from_bytes(signed.to_bytes())
    assert verify_sigstruct(again).ok and again.to_bytes() == signed.to_bytes()
    assert sign_sigstruct(key0, unsigned).to_bytes() == signed.to_bytes()  # deterministic
    other = sign_sigstruct(key0, dataclasses.replace(unsigned, isvsvn=3))
    spliced = dataclasses.replace(other, signature=signed.signature, q1=signed.q1, q2=signed.q2)
    r = verify_sigstruct(spliced)
    assert not r.signature_valid and r.q1q2_valid
