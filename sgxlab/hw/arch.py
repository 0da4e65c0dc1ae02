"""Architectural constants of SGX launch control, with the names the SDM and Linux use.

Everything a reader needs to map this emulator to its sources starts here: the
MSR numbers, the IA32_FEATURE_CONTROL bits, the ATTRIBUTES flags, the ENCLS
error codes and Intel's reset value of IA32_SGXLEPUBKEYHASH0..3.

Sources
-------
See ``../shared/reference/hardware-and-einit.md`` and ``linux-kvm-qemu.md``:

* SDM Vol. 3C ch. 35, architectural MSRs 0x3A and 0x8C-0x8F
  (https://xem.github.io/minix86/manual/intel-x86-and-64-manual-vol3/o_fe12b1e2a880e0ce-1286.html);
* SDM Vol. 3D Table 40-4, the ENCLS error codes;
* Linux ``arch/x86/include/asm/msr-index.h`` (``FEAT_CTL_*``) and
  ``arch/x86/include/asm/sgx.h`` (``enum sgx_return_code``, ``enum sgx_attribute``);
* KVM ``arch/x86/kvm/vmx/sgx.c`` ``setup_default_sgx_lepubkeyhash()``, which
  hard-codes Intel's hash; it equals the MRSIGNER of Intel's production launch
  enclave (``le_prod_css.bin``).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from sgxlab.errors import ConfigError, HashSyntaxError

__all__ = [
    "LEHASH_SPELLINGS",
    "hex_digest",
    "MSR_IA32_FEATURE_CONTROL",
    "MSR_IA32_SGXLEPUBKEYHASH0",
    "MSR_IA32_SGXLEPUBKEYHASH",
    "FEAT_CTL_LOCKED",
    "FEAT_CTL_SGX_LC_ENABLED",
    "FEAT_CTL_SGX_ENABLED",
    "SgxError",
    "Attr",
    "CONTROLLED_ATTRIBUTES",
    "SUPPORTED_ATTRIBUTES",
    "SUPPORTED_XFRM",
    "SUPPORTED_MISCSELECT",
    "KeyName",
    "LeHash",
    "Words",
    "INTEL_LEPUBKEYHASH",
    "msr_name",
]

MSR_IA32_FEATURE_CONTROL = 0x3A
"""IA32_FEATURE_CONTROL (Linux: ``MSR_IA32_FEAT_CTL``)."""

MSR_IA32_SGXLEPUBKEYHASH0 = 0x8C
"""IA32_SGXLEPUBKEYHASH0; hash words 1..3 follow at 0x8D..0x8F."""

MSR_IA32_SGXLEPUBKEYHASH = (0x8C, 0x8D, 0x8E, 0x8F)

Words = tuple[int, int, int, int]
"""The values of IA32_SGXLEPUBKEYHASH0..3, hash0 first (:attr:`LeHash.words`)."""

FEAT_CTL_LOCKED = 1 << 0
"""Bit 0, Lock: once set, further writes to IA32_FEATURE_CONTROL raise #GP."""

FEAT_CTL_SGX_LC_ENABLED = 1 << 17
"""Bit 17, SGX Launch Control Enable: the LE hash MSRs are writable at run time."""

FEAT_CTL_SGX_ENABLED = 1 << 18
"""Bit 18, SGX Global Enable."""


def msr_name(msr: int) -> str:
    """The SDM name of an MSR this emulator knows, or its number in hex."""
    if msr == MSR_IA32_FEATURE_CONTROL:
        return "IA32_FEATURE_CONTROL"
    if msr in MSR_IA32_SGXLEPUBKEYHASH:
        return f"IA32_SGXLEPUBKEYHASH{msr - MSR_IA32_SGXLEPUBKEYHASH0}"
    return f"MSR {msr:#x}"


class SgxError(enum.IntEnum):
    """ENCLS status codes returned in RAX (SDM Vol. 3D Table 40-4).

    The names are the SDM's; Linux's ``enum sgx_return_code`` uses the same
    numbers. Only the codes EINIT and EGETKEY can return are listed.
    """

    SUCCESS = 0
    SGX_INVALID_SIG_STRUCT = 1
    SGX_INVALID_ATTRIBUTE = 2
    SGX_INVALID_MEASUREMENT = 4
    SGX_INVALID_SIGNATURE = 8
    SGX_INVALID_EINITTOKEN = 16
    SGX_INVALID_CPUSVN = 32
    SGX_INVALID_ISVSVN = 64
    SGX_UNMASKED_EVENT = 128
    SGX_INVALID_KEYNAME = 256


class Attr(enum.IntFlag):
    """SECS.ATTRIBUTES flag bits (SDM Table 38-3; Linux ``enum sgx_attribute``)."""

    INIT = 1 << 0
    DEBUG = 1 << 1
    MODE64BIT = 1 << 2
    PROVISIONKEY = 1 << 4
    EINITTOKEN_KEY = 1 << 5
    CET = 1 << 6
    KSS = 1 << 7
    AEXNOTIFY = 1 << 10


SUPPORTED_ATTRIBUTES = int(Attr.INIT | Attr.DEBUG | Attr.MODE64BIT | Attr.PROVISIONKEY | Attr.EINITTOKEN_KEY | Attr.KSS)
"""ATTRIBUTES.flags bits the emulated CPU supports (CPUID.(12H,1)): every bit
outside Linux's ``SGX_ATTR_RESERVED_MASK`` (BIT(3) | BIT(6) | GENMASK(63, 8),
``arch/x86/include/asm/sgx.h``). ECREATE faults on any other bit."""

SUPPORTED_XFRM = 0xFF
"""XFRM bits the emulated CPU supports: x87, SSE, AVX, MPX and AVX-512 (a
Skylake-SP-class XCR0). ECREATE faults on any other bit."""

SUPPORTED_MISCSELECT = 0x1
"""MISCSELECT bits the emulated CPU supports: EXINFO (bit 0)."""

CONTROLLED_ATTRIBUTES = int(Attr.EINITTOKEN_KEY)
"""The SDM's CONTROLLED_ATTRIBUTES mask (0x20): only an enclave signed by the
key in IA32_SGXLEPUBKEYHASH may have these set."""


class KeyName(enum.IntEnum):
    """KEYREQUEST.KEYNAME values for EGETKEY."""

    EINITTOKEN_KEY = 0
    PROVISION_KEY = 1
    PROVISION_SEAL_KEY = 2
    REPORT_KEY = 3
    SEAL_KEY = 4


LEHASH_SPELLINGS = (
    "64 hex digits in MRSIGNER byte order (optionally 0x-prefixed or quoted), "
    "'intel', or four 0x-prefixed IA32_SGXLEPUBKEYHASH0..3 words"
)
"""The ways a user may write a signer hash, everywhere one is typed: the CLI's
``--lehash``, :class:`~sgxlab.kvm.config.SgxGuestConfig` (and ``-sgx
lehash=``), :class:`~sgxlab.hw.platform.Platform` firmware, the launch
enclave's and host policies' signer lists, and the widgets. All go through
:meth:`LeHash.parse`:

* ``acb77012…f8d4`` -- 64 hex digits, MRSIGNER byte order (what ``sgxlab
  sigstruct`` prints and what Intel's tools call the MRSIGNER), upper or lower
  case, optionally with a ``0x`` prefix or in matching single or double quotes
  (Kai Huang's ``lehash='<SHA-256>'``);
* ``intel`` -- Intel's hash, the MSRs' reset value (:data:`INTEL_LEPUBKEYHASH`);
* ``0xa6053e051270b7ac,0x6cfbe8ba8b3b413d,0xc4916d99f2b3735d,0xd4f8c05909f9bb3b``
  -- the four MSR values IA32_SGXLEPUBKEYHASH0..3 as RDMSR shows them, each
  ``0x`` with 1 to 16 hex digits, separated by commas or spaces.
"""

_HEXDIGITS = frozenset("0123456789abcdefABCDEF")


def _unquote(t: str, option: str, original: str) -> str:
    if t[:1] in ("'", '"'):
        q = t[0]
        if len(t) < 2 or t[-1] != q:
            raise HashSyntaxError("bad-quote", option, original, f"unbalanced quote {q}")
        return t[1:-1].strip()
    if t[-1:] in ("'", '"'):
        raise HashSyntaxError("bad-quote", option, original, f"unbalanced quote {t[-1]}")
    return t


def hex_digest(text: str, option: str, *, original: str | None = None, what: str = "a SHA-256") -> bytes:
    """32 bytes from 64 hex digits (``0x`` prefix and matching quotes allowed).

    The core of :meth:`LeHash.parse`, shared with every other 32-byte digest a
    user types (``--mrenclave``), so that both accept the same spellings.
    """
    original = text if original is None else original
    if not isinstance(text, str):
        raise HashSyntaxError("not-a-string", option, text, "expected 64 hex digits")
    t = _unquote(text.strip(), option, original)
    if t[:2].lower() == "0x":
        t = t[2:]
    for pos, ch in enumerate(t):
        if ch not in _HEXDIGITS:
            raise HashSyntaxError("bad-hex", option, original, f"not a hexadecimal digit: {ch!r} at position {pos}")
    if len(t) != 64:
        raise HashSyntaxError(
            "wrong-length", option, original, f"expected 64 hex digits ({what}, 32 bytes), got {len(t)}"
        )
    return bytes.fromhex(t)


@dataclass(frozen=True, slots=True)
class LeHash:
    """A 256-bit launch-enclave signer hash, as held in IA32_SGXLEPUBKEYHASH0..3.

    ``digest`` is the MRSIGNER byte string (SHA-256 of the SIGSTRUCT modulus as
    stored). ``words`` are the four MSR values: word *n* is the little-endian
    u64 of bytes ``[8n, 8n+8)`` (the convention of intel/linux-sgx
    ``sgx_pubkey_hash_gen`` and the kernel's ``u64 mrsigner[4]``).
    """

    digest: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.digest, (bytes, bytearray)) or len(self.digest) != 32:
            raise ConfigError("lehash", self.digest, "a signer hash is exactly 32 bytes")
        object.__setattr__(self, "digest", bytes(self.digest))

    @classmethod
    def from_words(cls, words: Iterable[int]) -> LeHash:
        """Build from the four MSR values hash0..hash3."""
        ws = list(words)
        if len(ws) != 4:
            raise ConfigError("lehash", ws, "expected four 64-bit MSR words")
        out = bytearray()
        for i, w in enumerate(ws):
            if not isinstance(w, int) or not 0 <= w < 1 << 64:
                raise ConfigError(f"IA32_SGXLEPUBKEYHASH{i}", w, "not a 64-bit value")
            out += w.to_bytes(8, "little")
        return cls(bytes(out))

    @classmethod
    def parse(cls, text: str, *, option: str = "lehash") -> LeHash:
        """Parse a signer hash as a user types it (see :data:`LEHASH_SPELLINGS`).

        Errors are :class:`~sgxlab.errors.HashSyntaxError` naming ``option``,
        with a ``kind`` (``not-a-string``, ``bad-quote``, ``bad-hex``,
        ``wrong-length``, ``bad-word``).
        """
        if not isinstance(text, str):
            raise HashSyntaxError("not-a-string", option, text, f"expected {LEHASH_SPELLINGS}")
        t = _unquote(text.strip(), option, text)
        if t.lower() == "intel":
            return INTEL_LEPUBKEYHASH
        parts = t.replace(",", " ").split()
        if len(parts) == 4 and all(p[:2].lower() == "0x" for p in parts):
            words = []
            for i, p in enumerate(parts):
                digits = p[2:]
                if not digits or len(digits) > 16 or any(c not in _HEXDIGITS for c in digits):
                    raise HashSyntaxError(
                        "bad-word", option, text, f"IA32_SGXLEPUBKEYHASH{i} word {p!r} is not 1 to 16 hex digits"
                    )
                words.append(int(digits, 16))
            return cls.from_words(words)
        return cls(hex_digest(t, option, original=text))

    @classmethod
    def coerce(cls, value: object, *, option: str = "lehash") -> LeHash:
        """A :class:`LeHash` from any way the API accepts one: a ``LeHash``, its 32
        bytes, text (:meth:`parse`), or an object with an ``mrsigner`` (a key, a
        launch enclave)."""
        if isinstance(value, LeHash):
            return value
        if isinstance(value, (bytes, bytearray)) and len(value) == 32:
            return cls(bytes(value))
        if isinstance(value, str):
            return cls.parse(value, option=option)
        mr = getattr(value, "mrsigner", None)
        if isinstance(mr, LeHash):
            return mr
        raise ConfigError(option, value, f"expected a signer hash: a LeHash, 32 bytes, a key, or {LEHASH_SPELLINGS}")

    @property
    def words(self) -> Words:
        d = self.digest
        return (
            int.from_bytes(d[0:8], "little"),
            int.from_bytes(d[8:16], "little"),
            int.from_bytes(d[16:24], "little"),
            int.from_bytes(d[24:32], "little"),
        )

    def hex(self) -> str:
        return self.digest.hex()

    def short(self) -> str:
        """First four bytes and an ellipsis, as the notebooks print hashes."""
        return self.digest[:4].hex() + "…"

    def __str__(self) -> str:
        return self.hex()


INTEL_LEPUBKEYHASH = LeHash.from_words((0xA6053E051270B7AC, 0x6CFBE8BA8B3B413D, 0xC4916D99F2B3735D, 0xD4F8C05909F9BB3B))
"""Intel's reset value of IA32_SGXLEPUBKEYHASH0..3 (KVM ``setup_default_sgx_lepubkeyhash``,
QEMU ``x86_cpu_set_sgxlepubkeyhash``), i.e. MRSIGNER acb77012…f8d4 of Intel's LE."""
