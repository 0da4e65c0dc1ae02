"""SIGSTRUCT cryptography: RSA-3072 with e = 3, PKCS#1 v1.5 over SHA-256, Q1/Q2, MRSIGNER, CMAC.

Signing keys (:class:`SigningKey`, the test keys in ``data/keys``), SIGSTRUCT
signing and EINIT's signature check, MRSIGNER, and the AES-CMAC of the
EINITTOKEN.

What the hardware does
----------------------
An enclave author signs 256 bytes of the SIGSTRUCT (bytes [0,128) and
[900,1028)) with RSASSA-PKCS1-v1_5 / SHA-256 under a 3072-bit key whose public
exponent is 3. The modulus, the signature and two helper quotients Q1 and Q2
are stored little-endian. EINIT then checks the signature "using embedded
public key, q1, and q2", keeps the top 352 bytes of the encoded message as
SECS.PADDING, and computes MRSIGNER as SHA-256 of the modulus as stored.

Q1 = floor(s^2 / n) and Q2 = floor((s^3 - Q1*s*n) / n) let a verifier get
s^3 mod n with multiplications and subtractions only; they are public and a
faithful emulator checks them as well as the signature.

Decisions
---------
This module mirrors that arithmetic rather than calling a library verifier:
:func:`verify_signature` computes ``pow(s, 3, n)`` and compares it with the
exact EMSA-PKCS1-v1_5 encoding, the way the hardware does.

Sources
-------
Paraphrased, no code copied:

* Intel SDM Vol. 3D, ENCLS[EINIT] (https://www.felixcloutier.com/x86/einit):
  signature check with modulus, q1 and q2; ``TMP_SIG_PADDING``;
  ``HARDCODED_PKCS1_5_PADDING``; ``TMP_MRSIGNER <- SHA256(TMP_SIG.MODULUS)``.
* Linux ``tools/testing/selftests/sgx/sigstruct.c``: SHA-256 over header and
  body, RSA_sign with NID_sha256, byte reversal of modulus and signature
  ("BE -> LE"), and ``calc_q1q2``.
* fortanix/rust-sgx ``intel-sgx/sgxs/src/crypto/mod.rs`` (the Q1/Q2 formulas,
  little-endian output) and ``sigstruct.rs`` (keys must be 3072-bit with e = 3).
* RFC 8017 §9.2 (EMSA-PKCS1-v1_5, the DigestInfo for SHA-256) and RFC 4493
  (AES-CMAC, used for the EINITTOKEN MAC).
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import cmac, hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils
from cryptography.hazmat.primitives.ciphers import algorithms

from sgxlab.errors import ConfigError, SgxlabError
from sgxlab.files import data_path, read_user_bytes
from sgxlab.hw.arch import LeHash

if TYPE_CHECKING:
    from sgxlab.hw.structs import Sigstruct

__all__ = [
    "MODULUS_SIZE",
    "KEY_BITS",
    "EXPONENT",
    "NUM_TEST_KEYS",
    "DIGESTINFO_SHA256_PREFIX",
    "HARDCODED_PKCS1_5_PADDING",
    "SigningKey",
    "SignatureCheck",
    "mrsigner",
    "q1q2",
    "pkcs1_v15_encode",
    "sign_sigstruct",
    "verify_signature",
    "verify_sigstruct",
    "aes_cmac",
    "load_test_key",
]

MODULUS_SIZE = 384
"""Bytes in the SIGSTRUCT MODULUS, SIGNATURE, Q1 and Q2 fields."""
KEY_BITS = 3072
EXPONENT = 3
NUM_TEST_KEYS = 64
"""Keys ``data/keys/key00.pem`` .. ``key63.pem`` (see ``data/keys/README.md``)."""

_KEYS_DIR = data_path("keys")


# --- EMSA-PKCS1-v1_5 (RFC 8017 §9.2) --------------------------------------------------------


def _der(tag: int, body: bytes) -> bytes:
    """A short-form DER TLV (every length here is < 128)."""
    assert len(body) < 0x80
    return bytes((tag, len(body))) + body


def _der_oid(dotted: str) -> bytes:
    arcs = [int(a) for a in dotted.split(".")]
    out = bytearray()
    for arc in [40 * arcs[0] + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        while arc > 0x7F:
            arc >>= 7
            chunk.append(0x80 | (arc & 0x7F))
        out += bytes(reversed(chunk))
    return _der(0x06, bytes(out))


_SHA256_ALGID = _der(0x30, _der_oid("2.16.840.1.101.3.4.2.1") + _der(0x05, b""))
DIGESTINFO_SHA256_PREFIX = _der(0x30, _SHA256_ALGID + _der(0x04, bytes(32)))[:-32]
"""DER DigestInfo for SHA-256 up to the digest itself: ``30 31 30 0d 06 09 60 86 48 01 65 03 04 02 01 05 00 04 20``."""

HARDCODED_PKCS1_5_PADDING = (
    b"\x00\x01" + b"\xff" * (MODULUS_SIZE - 3 - len(DIGESTINFO_SHA256_PREFIX) - 32) + b"\x00" + DIGESTINFO_SHA256_PREFIX
)
"""The SDM constant: the top 352 bytes of every SHA-256 PKCS#1 v1.5 encoded message
(``00 01 FF*330 00 || DigestInfo prefix``). EINIT saves them as SECS.PADDING and
EGETKEY mixes them into the seal, EINITTOKEN and provisioning keys."""
assert len(HARDCODED_PKCS1_5_PADDING) == 352


def pkcs1_v15_encode(digest: bytes) -> bytes:
    """The 384-byte encoded message EM = PADDING ‖ SHA-256 digest (big-endian as an integer)."""
    if len(digest) != 32:
        raise ConfigError("digest", digest, "a SHA-256 digest is exactly 32 bytes")
    return HARDCODED_PKCS1_5_PADDING + bytes(digest)


# --- keys -----------------------------------------------------------------------------------


def mrsigner(modulus_le: bytes) -> LeHash:
    """MRSIGNER: SHA-256 of the 384-byte little-endian modulus as stored in SIGSTRUCT
    (SDM EINIT ``TMP_MRSIGNER``; Linux ioctl.c ``sha256(sigstruct->modulus, ...)``)."""
    if not isinstance(modulus_le, (bytes, bytearray, memoryview)) or len(modulus_le) != MODULUS_SIZE:
        raise ConfigError("modulus", modulus_le, f"a SIGSTRUCT modulus is exactly {MODULUS_SIZE} bytes")
    return LeHash(hashlib.sha256(modulus_le).digest())


class SigningKey:
    """An SGX enclave signing key: RSA-3072 with public exponent 3.

    Build one with :meth:`generate`, :meth:`from_pem` or :func:`load_test_key`.
    A key loaded from a public-key PEM is verify-only: :attr:`mrsigner` and
    :attr:`modulus_le` work, :meth:`sign` raises :class:`ConfigError`.
    """

    __slots__ = ("_public", "_private", "name")

    def __init__(
        self, public: rsa.RSAPublicKey, private: rsa.RSAPrivateKey | None = None, *, name: str = "key"
    ) -> None:
        self.name = name
        nums = public.public_numbers()
        if public.key_size != KEY_BITS:
            raise ConfigError("key", name, f"is {public.key_size}-bit RSA; a SIGSTRUCT needs a {KEY_BITS}-bit modulus")
        if nums.e != EXPONENT:
            raise ConfigError("key", name, f"has public exponent {nums.e}; SGX requires e = {EXPONENT}")
        if private is not None:
            # Cheap consistency check standing in for the skipped OpenSSL validation.
            p = private.private_numbers()
            if p.p * p.q != nums.n:
                raise ConfigError("key", name, "is inconsistent: p*q != n")
        self._public = public
        self._private = private

    @classmethod
    def generate(cls, *, name: str = "generated") -> SigningKey:
        """A fresh random key (about a second of CPU; never do this on a test path)."""
        priv = rsa.generate_private_key(public_exponent=EXPONENT, key_size=KEY_BITS)
        return cls(priv.public_key(), priv, name=name)

    @classmethod
    def from_pem(cls, data: bytes | str | Path, *, name: str | None = None) -> SigningKey:
        """Load a private (PKCS#1 or PKCS#8) or public PEM key.

        ``data`` is a :class:`Path`, a ``str`` (PEM text if it contains
        ``-----BEGIN``, else a file name) or PEM ``bytes``. Private keys are
        loaded with ``unsafe_skip_rsa_key_validation=True``: OpenSSL's full
        check (primality of p and q, CRT values) costs tens of milliseconds
        per 3072-bit key and the tests load dozens of keys. Skipping it is safe
        here because the keys are test material, ``p*q == n`` is still checked,
        and a wrong signature from a corrupt key would be caught by
        :func:`verify_signature`. Any failure is a :class:`ConfigError`.
        """
        if isinstance(data, str) and "-----BEGIN" not in data:
            data = Path(data)
        if isinstance(data, Path):
            name = name or str(data)
            pem = read_user_bytes(data, "key", max_bytes=1 << 20, what="a PEM key file")
        else:
            pem = data.encode() if isinstance(data, str) else bytes(data)
            name = name or "PEM data"
        try:
            if b"PRIVATE KEY" in pem:
                priv = serialization.load_pem_private_key(pem, password=None, unsafe_skip_rsa_key_validation=True)
                if not isinstance(priv, rsa.RSAPrivateKey):
                    raise ConfigError("key", name, f"is not an RSA key ({type(priv).__name__})")
                return cls(priv.public_key(), priv, name=name)
            pub = serialization.load_pem_public_key(pem)
        except (ValueError, TypeError, UnsupportedAlgorithm) as e:
            if isinstance(e, SgxlabError):
                raise
            raise ConfigError("key", name, f"is not a usable unencrypted PEM key ({e})") from None
        if not isinstance(pub, rsa.RSAPublicKey):
            raise ConfigError("key", name, f"is not an RSA key ({type(pub).__name__})")
        return cls(pub, None, name=name)

    def to_pem(self, *, public: bool = False) -> bytes:
        """Unencrypted PKCS#8 PEM of the private key, or SubjectPublicKeyInfo PEM
        if ``public`` is set or the key is verify-only."""
        if public or self._private is None:
            return self._public.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        return self._private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    @property
    def has_private(self) -> bool:
        return self._private is not None

    @property
    def n(self) -> int:
        return self._public.public_numbers().n

    @property
    def modulus_le(self) -> bytes:
        """The modulus as SIGSTRUCT.MODULUS stores it: 384 bytes, little-endian."""
        return self.n.to_bytes(MODULUS_SIZE, "little")

    @property
    def mrsigner(self) -> LeHash:
        return mrsigner(self.modulus_le)

    def sign(self, data: bytes, *, prehashed: bool = False) -> bytes:
        """PKCS#1 v1.5 / SHA-256 signature of ``data`` (or of the 32-byte digest
        ``data`` if ``prehashed``), returned little-endian as SIGSTRUCT stores it.
        Deterministic: PKCS#1 v1.5 signing has no randomness."""
        if self._private is None:
            raise ConfigError("key", self.name, "is a public key only; signing needs the private key")
        if prehashed and len(data) != 32:
            raise ConfigError("digest", data, "a SHA-256 digest is exactly 32 bytes")
        algo: hashes.HashAlgorithm | utils.Prehashed = (
            utils.Prehashed(hashes.SHA256()) if prehashed else hashes.SHA256()
        )
        sig_be = self._private.sign(bytes(data), padding.PKCS1v15(), algo)
        return sig_be[::-1]

    def __repr__(self) -> str:
        kind = "private" if self.has_private else "public"
        return f"SigningKey({self.name!r}, {kind}, mrsigner={self.mrsigner.short()})"


def load_test_key(i: int, keys_dir: Path | None = None) -> SigningKey:
    """Load public test key ``data/keys/key{i:02d}.pem`` (0 <= i < 64) of this checkout."""
    if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < NUM_TEST_KEYS:
        raise ConfigError("test key", i, f"index must be an integer in 0..{NUM_TEST_KEYS - 1}")
    path = (keys_dir or _KEYS_DIR) / f"key{i:02d}.pem"
    if not path.is_file():
        raise ConfigError("test key", str(path), "file is missing; run `python data/keys/generate.py`")
    return SigningKey.from_pem(path, name=f"test key {i:02d}")


# --- signature arithmetic -------------------------------------------------------------------


def q1q2(s: int, n: int) -> tuple[int, int]:
    """Q1 = floor(s^2/n) and Q2 = floor((s^3 - Q1*s*n)/n) (SDM EINIT; selftest ``calc_q1q2``)."""
    if n <= 0:
        raise ConfigError("modulus", n, "must be positive")
    q1 = s * s // n
    q2 = (s * s * s - q1 * s * n) // n
    return q1, q2


@dataclass(frozen=True, slots=True)
class SignatureCheck:
    """Outcome of an EINIT-style signature check. ``reason`` says what failed (or "ok")."""

    signature_valid: bool
    q1q2_valid: bool
    reason: str

    @property
    def ok(self) -> bool:
        return self.signature_valid and self.q1q2_valid


def verify_signature(
    signed_data: bytes, modulus_le: bytes, signature_le: bytes, q1_le: bytes, q2_le: bytes
) -> SignatureCheck:
    """Check a SIGSTRUCT signature as the hardware does; never raises.

    s and n are the little-endian integers stored; the exponent is always 3
    (EXPONENT != 3 is a format error EINIT reports separately). The signature
    is valid iff 1 < n, s < n and s^3 mod n equals the PKCS#1 v1.5 encoding
    of SHA-256(signed_data). Q1/Q2 are valid iff they equal :func:`q1q2`.
    """
    try:
        n = int.from_bytes(modulus_le, "little")
        s = int.from_bytes(signature_le, "little")
        q1 = int.from_bytes(q1_le, "little")
        q2 = int.from_bytes(q2_le, "little")
        em = pkcs1_v15_encode(hashlib.sha256(signed_data).digest())
    except (TypeError, ValueError) as e:
        return SignatureCheck(False, False, f"unreadable signature fields ({e})")
    if n <= 1:
        return SignatureCheck(False, False, "the embedded modulus is zero or one")
    reasons = []
    sig_ok = s < n and pow(s, EXPONENT, n) == int.from_bytes(em, "big")
    if s >= n:
        reasons.append("signature s is not less than the modulus n")
    elif not sig_ok:
        reasons.append("signature does not verify under the embedded modulus")
    want1, want2 = q1q2(s, n)
    if q1 != want1:
        reasons.append("Q1 does not equal floor(s^2/n)")
    if q2 != want2:
        reasons.append("Q2 does not equal floor((s^3 - q1*s*n)/n)")
    q_ok = q1 == want1 and q2 == want2
    return SignatureCheck(sig_ok, q_ok, "; ".join(reasons) or "ok")


def sign_sigstruct(key: SigningKey, sig: Sigstruct) -> Sigstruct:
    """A signed copy of ``sig``: MODULUS, EXPONENT = 3, SIGNATURE, Q1 and Q2 filled in.

    The signature covers ``sig.signed_data()`` (header ‖ body), none of whose
    bytes are the fields written here, so the input's old values do not matter.
    """
    s_le = key.sign(sig.signed_data())
    q1, q2 = q1q2(int.from_bytes(s_le, "little"), key.n)
    return dataclasses.replace(
        sig,
        modulus=key.modulus_le,
        exponent=EXPONENT,
        signature=s_le,
        q1=q1.to_bytes(MODULUS_SIZE, "little"),
        q2=q2.to_bytes(MODULUS_SIZE, "little"),
    )


def verify_sigstruct(sig: Sigstruct) -> SignatureCheck:
    """Verify a SIGSTRUCT's signature and Q1/Q2 with its embedded modulus (see :func:`verify_signature`)."""
    try:
        data = sig.signed_data()
    except (SgxlabError, TypeError, ValueError, AttributeError) as e:
        return SignatureCheck(False, False, f"cannot serialize the signed fields ({e})")
    return verify_signature(data, sig.modulus, sig.signature, sig.q1, sig.q2)


# --- AES-CMAC -------------------------------------------------------------------------------


def aes_cmac(key: bytes, data: bytes) -> bytes:
    """AES-128-CMAC (RFC 4493): the EINITTOKEN MAC over its first 192 bytes (SDM EINIT)."""
    if not isinstance(key, (bytes, bytearray)) or len(key) != 16:
        raise ConfigError("cmac key", key, "AES-128-CMAC needs a 16-byte key")
    c = cmac.CMAC(algorithms.AES(bytes(key)))
    c.update(bytes(data))
    return c.finalize()
