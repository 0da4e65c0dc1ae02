"""SGX data structures, byte for byte: SIGSTRUCT, EINITTOKEN, SECS, SECINFO, KEYREQUEST, ATTRIBUTES.

Each structure is a dataclass whose fields carry the SDM names in lower case,
in layout order. ``from_bytes`` parses and ``to_bytes`` serializes; the two are
exact inverses, so a real SIGSTRUCT read from disk re-serializes bit for bit,
reserved bytes included.

Decisions
---------
Validation is split from parsing because EINIT must be able to *see* a
malformed SIGSTRUCT and answer SGX_INVALID_SIG_STRUCT, as the hardware does.
``from_bytes(data)`` checks the length and, unless ``validate=False``, the
architectural constants; :meth:`Sigstruct.problems` lists every violation as a
:class:`~sgxlab.errors.StructError` naming the field, its offset and what the
SDM expects.

Sources
-------
* SDM Vol. 3D Table 38-19 (SIGSTRUCT), Table 38-20 (EINITTOKEN), Table 38-3
  (ATTRIBUTES), §38.7 (SECS), §38.11 (SECINFO)
  (https://xem.github.io/minix86/manual/intel-x86-and-64-manual-vol3/o_fe12b1e2a880e0ce-1783.html
  and neighbouring pages);
* the KSS-era split of SIGSTRUCT's reserved bytes follows intel/linux-sgx
  ``common/inc/internal/arch.h`` (``css_body_t``) and Fortanix ``sgx-isa``
  (``Sigstruct``);
* Linux names are from ``arch/x86/include/asm/sgx.h``.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, ClassVar, Self

from sgxlab.errors import ConfigError, StructError
from sgxlab.hw.arch import Attr, LeHash

__all__ = [
    "Attributes",
    "Sigstruct",
    "Einittoken",
    "Secs",
    "Secinfo",
    "Keyrequest",
    "SIGSTRUCT_HEADER",
    "SIGSTRUCT_HEADER2",
    "SECINFO_R",
    "SECINFO_W",
    "SECINFO_X",
    "PT_SECS",
    "PT_TCS",
    "PT_REG",
    "PT_VA",
    "PT_TRIM",
]

SIGSTRUCT_HEADER = bytes.fromhex("06000000e10000000000010000000000")
"""SIGSTRUCT.HEADER as the SDM fixes it."""
SIGSTRUCT_HEADER2 = bytes.fromhex("01010000600000006000000001000000")
"""SIGSTRUCT.HEADER2 as the SDM fixes it."""

SECINFO_R = 0x1
SECINFO_W = 0x2
SECINFO_X = 0x4
PT_SECS = 0
PT_TCS = 1
PT_REG = 2
PT_VA = 3
PT_TRIM = 4

_U64 = (1 << 64) - 1


def _need_bytes(data: object, structure: str) -> bytes:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise StructError(structure, "<buffer>", None, "a bytes-like object", type(data).__name__)


def _u(data: bytes, off: int, size: int) -> int:
    return int.from_bytes(data[off : off + size], "little")


@dataclass(frozen=True, slots=True)
class Attributes:
    """The 128-bit ATTRIBUTES value: a 64-bit ``flags`` word and a 64-bit ``xfrm``.

    Printed the way the reference and the notebooks do, ``flags/xfrm`` in hex
    (``0x4/0x3``). ``a & b`` masks both halves, which is what EINIT's
    ``(SECS.ATTRIBUTES & MASK) == (SIGSTRUCT.ATTRIBUTES & MASK)`` rule needs.
    """

    flags: int = 0
    xfrm: int = 0

    SIZE: ClassVar[int] = 16

    def __post_init__(self) -> None:
        for name in ("flags", "xfrm"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= _U64:
                raise ConfigError(f"attributes.{name}", v, "must be an integer in [0, 2**64)")

    @classmethod
    def from_bytes(
        cls, data: bytes, *, structure: str = "ATTRIBUTES", field: str = "ATTRIBUTES", offset: int = 0
    ) -> Attributes:
        data = _need_bytes(data, structure)
        if len(data) != 16:
            raise StructError(structure, field, offset, "16 bytes", data)
        return cls(_u(data, 0, 8), _u(data, 8, 8))

    @classmethod
    def parse(cls, text: str, *, option: str = "attributes") -> Attributes:
        """Parse ``FLAGS[/XFRM]`` (hex or decimal, or ``|``-joined flag names:
        ``DEBUG|MODE64BIT/0x3``). XFRM defaults to 0x3 (x87 and SSE)."""
        if not isinstance(text, str) or not text.strip():
            raise ConfigError(option, text, "expected FLAGS[/XFRM], e.g. 0x4/0x3 or MODE64BIT|DEBUG/0x7")
        flags_s, _, xfrm_s = text.strip().partition("/")

        def num(s: str, what: str) -> int:
            s = s.strip()
            total = 0
            for part in s.split("|"):
                part = part.strip()
                if part.upper() in Attr.__members__:
                    total |= int(Attr[part.upper()])
                    continue
                try:
                    total |= int(part, 0)
                except ValueError:
                    raise ConfigError(
                        option, text, f"{what} {part!r} is neither a number nor one of {', '.join(Attr.__members__)}"
                    ) from None
            return total

        flags = num(flags_s, "flag")
        xfrm = num(xfrm_s, "XFRM") if xfrm_s else 0x3
        if not (0 <= flags <= _U64 and 0 <= xfrm <= _U64):
            raise ConfigError(option, text, "flags and XFRM must each fit in 64 bits")
        return cls(flags, xfrm)

    @classmethod
    def _trusted(cls, flags: int, xfrm: int) -> Attributes:
        """Build without validation, for values already known to be u64s."""
        obj = object.__new__(cls)
        object.__setattr__(obj, "flags", flags)
        object.__setattr__(obj, "xfrm", xfrm)
        return obj

    def to_bytes(self) -> bytes:
        return self.flags.to_bytes(8, "little") + self.xfrm.to_bytes(8, "little")

    def __and__(self, other: Attributes) -> Attributes:
        return Attributes._trusted(self.flags & other.flags, self.xfrm & other.xfrm)

    def __or__(self, other: Attributes) -> Attributes:
        return Attributes._trusted(self.flags | other.flags, self.xfrm | other.xfrm)

    def with_flags(self, set_: int = 0, clear: int = 0) -> Attributes:
        return Attributes((self.flags | set_) & ~clear & _U64, self.xfrm)

    def names(self) -> str:
        """Flag names set, e.g. ``DEBUG|MODE64BIT``."""
        names = [m.name for m in Attr if self.flags & m.value and m.name]
        return "|".join(n for n in names if n) or "0"

    def as_json(self) -> dict[str, str]:
        return {"flags": f"{self.flags:#x}", "xfrm": f"{self.xfrm:#x}"}

    def __str__(self) -> str:
        return f"{self.flags:#x}/{self.xfrm:#x}"


# A layout is a list of (field, offset, size, kind) with kind "u" (little-endian
# unsigned), "b" (raw bytes) or "a" (Attributes). Offsets are checked to tile
# the structure exactly when the class is built.
_Layout = tuple[tuple[str, int, int, str], ...]


def _check_layout(name: str, layout: _Layout, size: int) -> None:
    pos = 0
    for fname, off, sz, _ in layout:
        assert off == pos, f"{name}.{fname}: layout gap at {pos}"
        pos += sz
    assert pos == size, f"{name}: layout covers {pos} of {size} bytes"


class _Struct:
    """Shared parse/serialize machinery driven by a class-level ``LAYOUT``.

    Every subclass is a dataclass; the ``__dataclass_fields__`` annotation
    says so to the type checker (it is only an annotation, not an attribute).
    """

    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]
    NAME: ClassVar[str]
    SIZE: ClassVar[int]
    LAYOUT: ClassVar[_Layout]
    _GET: ClassVar[Callable[[object], tuple[Any, ...]] | None] = None

    def copy(self) -> Self:
        """A shallow copy (fields are immutable values), far cheaper than
        ``dataclasses.replace``: the simulator copies a SECS per launch."""
        cls = type(self)
        get = cls._GET
        if get is None:
            get = cls._GET = attrgetter(*(f.name for f in dataclasses.fields(cls)))
        return cls(*get(self))

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Parse exactly ``SIZE`` bytes (SECS, SECINFO, KEYREQUEST; SIGSTRUCT
        and EINITTOKEN add their own rules)."""
        data = _need_bytes(data, cls.NAME)
        cls._check_length(data)
        return cls(**cls._fields_from(data))

    @classmethod
    def _fields_from(cls, data: bytes) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for fname, off, sz, kind in cls.LAYOUT:
            chunk = data[off : off + sz]
            if kind == "u":
                out[fname] = int.from_bytes(chunk, "little")
            elif kind == "a":
                out[fname] = Attributes(_u(chunk, 0, 8), _u(chunk, 8, 8))
            else:
                out[fname] = chunk
        return out

    def _check_fields(self) -> None:
        """Type- and size-check every field; raise StructError on the first bad one."""
        for fname, off, sz, kind in self.LAYOUT:
            v = getattr(self, fname)
            if kind == "u":
                if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < 1 << (8 * sz):
                    raise StructError(self.NAME, fname.upper(), off, f"an unsigned {8 * sz}-bit integer", v)
            elif kind == "a":
                if not isinstance(v, Attributes):
                    raise StructError(self.NAME, fname.upper(), off, "an Attributes value", v)
            elif not isinstance(v, (bytes, bytearray)) or len(v) != sz:
                raise StructError(self.NAME, fname.upper(), off, f"{sz} bytes", v)

    def to_bytes(self) -> bytes:
        self._check_fields()
        parts: list[bytes] = []
        for fname, _off, sz, kind in self.LAYOUT:
            v = getattr(self, fname)
            if kind == "u":
                parts.append(v.to_bytes(sz, "little"))
            elif kind == "a":
                parts.append(v.to_bytes())
            else:
                parts.append(bytes(v))
        return b"".join(parts)

    @classmethod
    def offset_of(cls, fname: str) -> int:
        for f, off, _sz, _k in cls.LAYOUT:
            if f == fname:
                return off
        raise KeyError(fname)

    @classmethod
    def _check_length(cls, data: bytes, allowed: tuple[int, ...] | None = None) -> None:
        allowed = allowed or (cls.SIZE,)
        if len(data) not in allowed:
            exp = " or ".join(f"{n} bytes" for n in allowed)
            raise StructError(cls.NAME, "<length>", None, exp, len(data))


_SIGSTRUCT_LAYOUT: _Layout = (
    ("header", 0, 16, "b"),
    ("vendor", 16, 4, "u"),
    ("date", 20, 4, "u"),
    ("header2", 24, 16, "b"),
    ("swdefined", 40, 4, "u"),
    ("reserved1", 44, 84, "b"),
    ("modulus", 128, 384, "b"),
    ("exponent", 512, 4, "u"),
    ("signature", 516, 384, "b"),
    ("miscselect", 900, 4, "u"),
    ("miscmask", 904, 4, "u"),
    ("reserved2", 908, 4, "b"),
    ("isvfamilyid", 912, 16, "b"),
    ("attributes", 928, 16, "a"),
    ("attributemask", 944, 16, "a"),
    ("enclavehash", 960, 32, "b"),
    ("reserved3", 992, 16, "b"),
    ("isvextprodid", 1008, 16, "b"),
    ("isvprodid", 1024, 2, "u"),
    ("isvsvn", 1026, 2, "u"),
    ("reserved4", 1028, 12, "b"),
    ("q1", 1040, 384, "b"),
    ("q2", 1424, 384, "b"),
)
_check_layout("SIGSTRUCT", _SIGSTRUCT_LAYOUT, 1808)


@dataclass(eq=True, slots=True)
class Sigstruct(_Struct):
    """SIGSTRUCT (1808 bytes): the enclave author's signed statement.

    The signature is RSA-3072 with e = 3, PKCS#1 v1.5 over SHA-256 of the two
    signed runs, bytes ``[0, 128)`` and ``[900, 1028)`` (:meth:`signed_data`).
    MODULUS, SIGNATURE, Q1 and Q2 are stored little-endian. The KSS-era layout
    is used: reserved 908-911 (newer SDMs put CET_ATTRIBUTES there),
    ISVFAMILYID at 912, reserved 992-1007 and ISVEXTPRODID at 1008; on a
    pre-KSS SIGSTRUCT these are zero, so both readings agree.
    """

    header: bytes = SIGSTRUCT_HEADER
    vendor: int = 0
    date: int = 0
    header2: bytes = SIGSTRUCT_HEADER2
    swdefined: int = 0
    reserved1: bytes = bytes(84)
    modulus: bytes = bytes(384)
    exponent: int = 3
    signature: bytes = bytes(384)
    miscselect: int = 0
    miscmask: int = 0
    reserved2: bytes = bytes(4)
    isvfamilyid: bytes = bytes(16)
    attributes: Attributes = Attributes(int(Attr.MODE64BIT), 0x3)
    attributemask: Attributes = Attributes(_U64, _U64)
    enclavehash: bytes = bytes(32)
    reserved3: bytes = bytes(16)
    isvextprodid: bytes = bytes(16)
    isvprodid: int = 0
    isvsvn: int = 0
    reserved4: bytes = bytes(12)
    q1: bytes = bytes(384)
    q2: bytes = bytes(384)

    NAME: ClassVar[str] = "SIGSTRUCT"
    SIZE: ClassVar[int] = 1808
    LAYOUT: ClassVar[_Layout] = _SIGSTRUCT_LAYOUT

    @classmethod
    def from_bytes(cls, data: bytes, *, validate: bool = True) -> Sigstruct:
        """Parse 1808 bytes. With ``validate`` (the default) the first
        architectural violation (:meth:`problems`) is raised as a StructError."""
        data = _need_bytes(data, cls.NAME)
        cls._check_length(data)
        sig = cls(**cls._fields_from(data))
        if validate:
            sig.validate()
        return sig

    @classmethod
    def new(
        cls,
        *,
        enclavehash: bytes,
        attributes: Attributes | None = None,
        attributemask: Attributes | None = None,
        vendor: int = 0,
        date: int = 0,
        isvprodid: int = 0,
        isvsvn: int = 0,
        miscselect: int = 0,
        miscmask: int = 0,
        swdefined: int = 0,
        isvfamilyid: bytes = bytes(16),
        isvextprodid: bytes = bytes(16),
    ) -> Sigstruct:
        """An unsigned SIGSTRUCT with the SDM's constant headers and exponent 3;
        sign it with :func:`sgxlab.hw.crypto.sign_sigstruct`. The default masks
        compare every attribute and XFRM bit except DEBUG, so a debug build of
        the enclave passes too. (Intel's signing tool also leaves bits 48-55
        and several XFRM bits out of its masks; pass ``attributemask`` for that.)"""
        if attributemask is None:
            attributemask = Attributes(_U64 & ~int(Attr.DEBUG), _U64)
        sig = cls(
            vendor=vendor,
            date=date,
            swdefined=swdefined,
            miscselect=miscselect,
            miscmask=miscmask,
            isvfamilyid=bytes(isvfamilyid),
            attributes=attributes if attributes is not None else Attributes(int(Attr.MODE64BIT), 0x3),
            attributemask=attributemask,
            enclavehash=bytes(enclavehash),
            isvextprodid=bytes(isvextprodid),
            isvprodid=isvprodid,
            isvsvn=isvsvn,
        )
        sig._check_fields()
        return sig

    def signed_data(self) -> bytes:
        """The 256 bytes the signature covers: HEADER..reserved1 and MISCSELECT..ISVSVN."""
        b = self.to_bytes()
        return b[0:128] + b[900:1028]

    @property
    def mrsigner(self) -> LeHash:
        """SHA-256 of MODULUS as stored (SDM: TMP_MRSIGNER ← SHA256(MODULUS))."""
        return LeHash(hashlib.sha256(bytes(self.modulus)).digest())

    def problems(self) -> list[StructError]:
        """Every SIGSTRUCT format violation EINIT checks first (SGX_INVALID_SIG_STRUCT):
        HEADER, VENDOR, HEADER2, EXPONENT and the reserved fields, in layout order."""
        try:
            self._check_fields()
        except StructError as e:
            return [e]
        out: list[StructError] = []
        if self.header != SIGSTRUCT_HEADER:
            out.append(StructError("SIGSTRUCT", "HEADER", 0, SIGSTRUCT_HEADER.hex(), self.header))
        if self.vendor not in (0, 0x8086):
            out.append(StructError("SIGSTRUCT", "VENDOR", 16, "0x0 or 0x8086", self.vendor))
        if self.header2 != SIGSTRUCT_HEADER2:
            out.append(StructError("SIGSTRUCT", "HEADER2", 24, SIGSTRUCT_HEADER2.hex(), self.header2))
        if any(self.reserved1):
            out.append(StructError("SIGSTRUCT", "RESERVED", 44, "84 zero bytes", self.reserved1))
        if self.exponent != 3:
            out.append(StructError("SIGSTRUCT", "EXPONENT", 512, "3", self.exponent))
        if any(self.reserved2):
            out.append(StructError("SIGSTRUCT", "RESERVED", 908, "4 zero bytes", self.reserved2))
        if any(self.reserved3):
            out.append(StructError("SIGSTRUCT", "RESERVED", 992, "16 zero bytes", self.reserved3))
        if any(self.reserved4):
            out.append(StructError("SIGSTRUCT", "RESERVED", 1028, "12 zero bytes", self.reserved4))
        return out

    def validate(self) -> None:
        probs = self.problems()
        if probs:
            raise probs[0]

    def replace(self, **changes: Any) -> Sigstruct:
        return dataclasses.replace(self, **changes)


_TOKEN_LAYOUT: _Layout = (
    ("valid", 0, 4, "u"),
    ("reserved1", 4, 44, "b"),
    ("attributes", 48, 16, "a"),
    ("mrenclave", 64, 32, "b"),
    ("reserved2", 96, 32, "b"),
    ("mrsigner", 128, 32, "b"),
    ("reserved3", 160, 32, "b"),
    ("cpusvnle", 192, 16, "b"),
    ("isvprodidle", 208, 2, "u"),
    ("isvsvnle", 210, 2, "u"),
    ("reserved4", 212, 24, "b"),
    ("maskedmiscselectle", 236, 4, "u"),
    ("maskedattributesle", 240, 16, "a"),
    ("keyid", 256, 32, "b"),
    ("mac", 288, 16, "b"),
)
_check_layout("EINITTOKEN", _TOKEN_LAYOUT, 304)


@dataclass(eq=True, slots=True)
class Einittoken(_Struct):
    """EINITTOKEN (304 bytes): a launch enclave's permission to launch one enclave.

    The first 192 bytes are MACed (AES-128-CMAC under the launch key); the LE
    fills CPUSVNLE..KEYID with the inputs it used to derive that key. VALID=0
    (:meth:`zero`) selects EINIT's token-less path, which Linux uses under
    Flexible Launch Control. The SDK stores a token inside a 1024-byte
    ``sgx_launch_token_t`` blob; :meth:`from_bytes` accepts that too and keeps
    the trailing 720 bytes in ``blob_tail`` so :meth:`to_blob` round-trips it.
    Parsing never rejects content: reserved bytes and VALID bits are EINIT's
    business (SGX_INVALID_EINITTOKEN).
    """

    valid: int = 0
    reserved1: bytes = bytes(44)
    attributes: Attributes = Attributes()
    mrenclave: bytes = bytes(32)
    reserved2: bytes = bytes(32)
    mrsigner: bytes = bytes(32)
    reserved3: bytes = bytes(32)
    cpusvnle: bytes = bytes(16)
    isvprodidle: int = 0
    isvsvnle: int = 0
    reserved4: bytes = bytes(24)
    maskedmiscselectle: int = 0
    maskedattributesle: Attributes = Attributes()
    keyid: bytes = bytes(32)
    mac: bytes = bytes(16)
    blob_tail: bytes = field(default=b"", compare=False, repr=False)

    NAME: ClassVar[str] = "EINITTOKEN"
    SIZE: ClassVar[int] = 304
    BLOB_SIZE: ClassVar[int] = 1024
    MACED_SIZE: ClassVar[int] = 192
    LAYOUT: ClassVar[_Layout] = _TOKEN_LAYOUT

    @classmethod
    def from_bytes(cls, data: bytes) -> Einittoken:
        data = _need_bytes(data, cls.NAME)
        cls._check_length(data, (cls.SIZE, cls.BLOB_SIZE))
        tok = cls(**cls._fields_from(data[: cls.SIZE]))
        tok.blob_tail = data[cls.SIZE :]
        return tok

    @classmethod
    def zero(cls) -> Einittoken:
        """The all-zero token (VALID=0) Linux passes to EINIT."""
        return cls()

    def mac_data(self) -> bytes:
        """The 192 bytes covered by the MAC."""
        return self.to_bytes()[: self.MACED_SIZE]

    def to_blob(self) -> bytes:
        """The token followed by the SDK padding it was read with (or 720 zero bytes)."""
        tail = self.blob_tail if len(self.blob_tail) == self.BLOB_SIZE - self.SIZE else bytes(720)
        return self.to_bytes() + tail

    def reserved_problems(self) -> list[StructError]:
        """Non-zero reserved space, VALID bits 31:1 included (EINIT → SGX_INVALID_EINITTOKEN)."""
        out: list[StructError] = []
        if self.valid & ~1:
            out.append(StructError("EINITTOKEN", "VALID", 0, "bits 31:1 zero", self.valid))
        for name in ("reserved1", "reserved2", "reserved3", "reserved4"):
            v = getattr(self, name)
            if any(v):
                out.append(StructError("EINITTOKEN", "RESERVED", self.offset_of(name), f"{len(v)} zero bytes", v))
        return out

    def replace(self, **changes: Any) -> Einittoken:
        return dataclasses.replace(self, **changes)


_SECS_LAYOUT: _Layout = (
    ("size", 0, 8, "u"),
    ("baseaddr", 8, 8, "u"),
    ("ssaframesize", 16, 4, "u"),
    ("miscselect", 20, 4, "u"),
    ("reserved1", 24, 24, "b"),
    ("attributes", 48, 16, "a"),
    ("mrenclave", 64, 32, "b"),
    ("reserved2", 96, 32, "b"),
    ("mrsigner", 128, 32, "b"),
    ("reserved3", 160, 32, "b"),
    ("configid", 192, 64, "b"),
    ("isvprodid", 256, 2, "u"),
    ("isvsvn", 258, 2, "u"),
    ("configsvn", 260, 2, "u"),
    ("reserved4", 262, 3834, "b"),
)
_check_layout("SECS", _SECS_LAYOUT, 4096)


@dataclass(eq=True)
class Secs(_Struct):
    """SECS (4096 bytes): the enclave control structure, with the fields EINIT uses.

    ECREATE fills SIZE, BASEADDR, SSAFRAMESIZE, MISCSELECT and ATTRIBUTES;
    EINIT commits MRENCLAVE, MRSIGNER, ISVPRODID and ISVSVN. The SDM keeps
    EID, PADDING, ISVFAMILYID and ISVEXTPRODID in implementation-specific
    reserved space; this emulator keeps them on :class:`sgxlab.hw.measure.Enclave`
    and leaves RESERVED as read.
    """

    size: int = 0x2000
    baseaddr: int = 0
    ssaframesize: int = 1
    miscselect: int = 0
    reserved1: bytes = bytes(24)
    attributes: Attributes = Attributes(int(Attr.MODE64BIT), 0x3)
    mrenclave: bytes = bytes(32)
    reserved2: bytes = bytes(32)
    mrsigner: bytes = bytes(32)
    reserved3: bytes = bytes(32)
    configid: bytes = bytes(64)
    isvprodid: int = 0
    isvsvn: int = 0
    configsvn: int = 0
    reserved4: bytes = bytes(3834)

    NAME: ClassVar[str] = "SECS"
    SIZE: ClassVar[int] = 4096
    LAYOUT: ClassVar[_Layout] = _SECS_LAYOUT

    def copy(self) -> Secs:
        """A shallow copy. SECS keeps its fields in ``__dict__`` (no slots) so
        that this is one dict copy: the simulator copies a SECS per launch."""
        new = object.__new__(Secs)
        new.__dict__ = self.__dict__.copy()
        return new

    @classmethod
    def new(
        cls,
        *,
        size: int = 0x2000,
        ssaframesize: int = 1,
        attributes: Attributes | None = None,
        miscselect: int = 0,
        baseaddr: int = 0,
    ) -> Secs:
        secs = cls(
            size=size,
            baseaddr=baseaddr,
            ssaframesize=ssaframesize,
            miscselect=miscselect,
            attributes=attributes if attributes is not None else Attributes(int(Attr.MODE64BIT), 0x3),
        )
        secs._check_fields()
        return secs

    def replace(self, **changes: Any) -> Secs:
        return dataclasses.replace(self, **changes)


_SECINFO_LAYOUT: _Layout = (("flags", 0, 8, "u"), ("reserved", 8, 56, "b"))
_check_layout("SECINFO", _SECINFO_LAYOUT, 64)


@dataclass(eq=True, slots=True)
class Secinfo(_Struct):
    """SECINFO (64 bytes): page permissions R/W/X (bits 0-2) and PAGE_TYPE (bits 15:8)."""

    flags: int = SECINFO_R | (PT_REG << 8)
    reserved: bytes = bytes(56)

    NAME: ClassVar[str] = "SECINFO"
    SIZE: ClassVar[int] = 64
    LAYOUT: ClassVar[_Layout] = _SECINFO_LAYOUT

    @classmethod
    def of(cls, perms: int = SECINFO_R, page_type: int = PT_REG) -> Secinfo:
        return cls(flags=(perms & 7) | (page_type << 8))

    @property
    def page_type(self) -> int:
        return (self.flags >> 8) & 0xFF


_KEYREQUEST_LAYOUT: _Layout = (
    ("keyname", 0, 2, "u"),
    ("keypolicy", 2, 2, "u"),
    ("isvsvn", 4, 2, "u"),
    ("reserved1", 6, 2, "b"),
    ("cpusvn", 8, 16, "b"),
    ("attributemask", 24, 16, "a"),
    ("keyid", 40, 32, "b"),
    ("miscmask", 72, 4, "u"),
    ("configsvn", 76, 2, "u"),
    ("reserved2", 78, 434, "b"),
)
_check_layout("KEYREQUEST", _KEYREQUEST_LAYOUT, 512)


@dataclass(eq=True, slots=True)
class Keyrequest(_Struct):
    """KEYREQUEST (512 bytes): the EGETKEY argument (intel/linux-sgx ``sgx_key_request_t``)."""

    keyname: int = 0
    keypolicy: int = 0
    isvsvn: int = 0
    reserved1: bytes = bytes(2)
    cpusvn: bytes = bytes(16)
    attributemask: Attributes = Attributes()
    keyid: bytes = bytes(32)
    miscmask: int = 0
    configsvn: int = 0
    reserved2: bytes = bytes(434)

    NAME: ClassVar[str] = "KEYREQUEST"
    SIZE: ClassVar[int] = 512
    LAYOUT: ClassVar[_Layout] = _KEYREQUEST_LAYOUT
