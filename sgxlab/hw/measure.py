"""MRENCLAVE: how an enclave's identity is measured while it is built.

:class:`Enclave` is the emulator's view of one enclave in the EPC, built with
ECREATE, EADD and EEXTEND; :func:`parse_sgxs` / :func:`replay_sgxs` read SGXS
streams, :func:`build_enclave` / :func:`write_sgxs` make them.

What the processor measures
---------------------------
An enclave is built outside the enclave by privileged software issuing three
ENCLS leaves, and the processor measures every step into a running SHA-256
held in the SECS:

* **ECREATE** starts the hash and feeds it one 64-byte block: the tag
  ``"ECREATE\\0"``, the SSA frame size (u32, in pages) and the enclave SIZE
  (u64), zero-padded.
* **EADD** copies a 4 KiB page into the EPC and feeds one block: the tag
  ``"EADD\\0\\0\\0\\0"``, the page's offset from the enclave base (u64) and the
  first 48 bytes of its SECINFO (the FLAGS word, then zeros). For a TCS page
  the processor clears R/W/X *before* measuring, so every TCS measures with
  flags 0x100 whatever the loader asked for.
* **EEXTEND** measures 256 bytes of an added page: a block with the tag
  ``"EEXTEND\\0"`` and the chunk's offset, then the 256 bytes themselves as four
  more 64-byte updates. Pages are usually measured whole (16 EEXTENDs); a
  loader may also add a page without measuring its contents.

EINIT finalizes the hash (SHA256FINAL with the message length
``update_count × 512`` bits) and compares it with SIGSTRUCT.ENCLAVEHASH. All
fields are little-endian and every update is exactly one block, so MRENCLAVE
is simply SHA-256 over the concatenation of the blocks. That is why the SGXS
file format (Fortanix) *is* that byte stream: hashing an ``.sgxs`` file gives
its MRENCLAVE, and this module can check itself against real files.

The emulator's enclave
----------------------
:class:`Enclave` holds the SECS, the running hash, which pages were added with
which measured flags, and the SECS state EINIT later commits (MRSIGNER,
ISVPRODID, ...). It checks the faults the SDM lists for these leaves and
raises :class:`GeneralProtection` (page-fault conditions are reported as #GP
too, with the reason saying so, because the emulator has no separate
page-fault type). :meth:`Enclave.with_measurement` stands for an enclave known
only by its hash (Intel's launch enclave, whose image is not available);
:meth:`Enclave.fork` copies a built enclave cheaply so a simulator can launch
one image many times.

Sources
-------
Paraphrased, no code copied:

* Intel SDM Vol. 3D, ENCLS[ECREATE], [EADD], [EEXTEND] and [EINIT] pseudocode
  (May 2018 text in github.com/0xMentats/gadgetExplorer
  ``docs/x86/instructions/{ECREATE,EADD,EEXTEND,EINIT}.md``, commit a5565324;
  also https://www.felixcloutier.com/x86/). ECREATE requires SIZE to be a
  power of two of at least 8192 bytes, BASEADDR aligned on SIZE and XFRM bits
  0-1 set; EADD accepts only PT_REG and PT_TCS, refuses W without R for a
  regular page, and for a TCS zeroes STATE, CSSA, AEP and FLAGS.DBGOPTIN in the
  page before any EEXTEND can see it.
* Linux ``tools/testing/selftests/sgx/sigstruct.c`` (``encl_measure``,
  ``mrenclave_ecreate``/``_eadd``/``_eextend``), which computes the same hash in
  software for its test enclave, and ``arch/x86/kernel/cpu/sgx/ioctl.c``
  (``sgx_validate_secinfo``) for the SECINFO flag bits the kernel rejects.
* Fortanix rust-sgx ``doc/SGXS.md``: the SGXS stream format, its canonical
  form, and the ESGXS extension records UNSIZED (the enclave size is not yet
  known, so the stream cannot be measured) and UNMEASRD (loaded but not
  measured data, skipped when hashing).
"""

from __future__ import annotations

import dataclasses
import hashlib
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from os import PathLike
from typing import TYPE_CHECKING, ClassVar, Union

from sgxlab.errors import ConfigError, GeneralProtection, StructError
from sgxlab.files import read_user_bytes
from sgxlab.hw.arch import SUPPORTED_ATTRIBUTES, SUPPORTED_MISCSELECT, SUPPORTED_XFRM, Attr, hex_digest
from sgxlab.hw.structs import (
    PT_REG,
    PT_TCS,
    SECINFO_R,
    SECINFO_W,
    SECINFO_X,
    Attributes,
    Secinfo,
    Secs,
)

if TYPE_CHECKING:
    from hashlib import _Hash

    from sgxlab.hw.platform import Platform

__all__ = [
    "PAGE_SIZE",
    "CHUNK_SIZE",
    "MEAS_ECREATE",
    "MEAS_EADD",
    "MEAS_EEXTEND",
    "SGXS_UNSIZED",
    "SGXS_UNMEASRD",
    "Enclave",
    "Page",
    "build_enclave",
    "write_sgxs",
    "SgxsRecord",
    "SgxsECreate",
    "SgxsUnsized",
    "SgxsEAdd",
    "SgxsEExtend",
    "SgxsUnmeasured",
    "parse_sgxs",
    "replay_sgxs",
]

PAGE_SIZE = 0x1000
CHUNK_SIZE = 0x100
"""Bytes measured by one EEXTEND."""

MEAS_ECREATE = 0x0045544145524345
"""``b"ECREATE\\0"`` read as a little-endian u64 (SDM ECREATE)."""
MEAS_EADD = 0x0000000044444145
"""``b"EADD\\0\\0\\0\\0"`` (SDM EADD)."""
MEAS_EEXTEND = 0x00444E4554584545
"""``b"EEXTEND\\0"`` (SDM EEXTEND)."""
SGXS_UNSIZED = 0x0044455A49534E55
"""``b"UNSIZED\\0"``: Fortanix ESGXS record standing in for ECREATE."""
SGXS_UNMEASRD = 0x44525341454D4E55
"""``b"UNMEASRD"``: Fortanix ESGXS record for loaded but unmeasured data."""

_ECREATE = struct.Struct("<QIQ44x")
_EADD = struct.Struct("<QQQ40x")
_EEXTEND = struct.Struct("<QQ48x")
_U64 = (1 << 64) - 1
MAX_SGXS_BYTES = 1 << 30
"""The largest SGXS file read from disk: 1 GiB (an enclave of about 900 MiB of measured pages)."""

_ZERO_PAGE = bytes(PAGE_SIZE)
_MIN_SIZE = 2 * PAGE_SIZE
_SECINFO_FLAGS_RESERVED = _U64 & ~0xFF07
"""SECINFO.FLAGS bits 7:3 and 63:16 (Linux ``SGX_SECINFO_RESERVED_MASK``)."""
_RWX = SECINFO_R | SECINFO_W | SECINFO_X

# SECS fields that must be zero at ECREATE ("reserved fields are not zero").
_SECS_RESERVED = ("reserved1", "reserved2", "reserved3", "reserved4")
# TCS layout bits EADD touches (SDM TCS table): STATE @0, FLAGS @8 (bit 0
# DBGOPTIN), CSSA @24, AEP @40, FSLIMIT @64, GSLIMIT @68. Bytes 72..87 are
# reserved in older SDMs and hold OCETSSA/PREVSSP in CET-era ones, so only
# [88, 4096) is checked as reserved.
_TCS_RESERVED_FROM = 88


def _gp(instruction: str, reason: str) -> GeneralProtection:
    return GeneralProtection(reason, instruction=instruction)


def _is_u(value: object, bits: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1 << bits


_ZERO16 = bytes(16)


class Enclave:
    """One enclave as the EPC holds it: SECS, running MRENCLAVE, pages, EINIT state.

    ``Enclave(secs)`` performs ECREATE on a copy of ``secs`` (so the caller's
    object is never changed) and raises :class:`GeneralProtection` with
    ``instruction="ECREATE"`` when the SDM would. Then :meth:`eadd`,
    :meth:`eextend` (or :meth:`add_page`) build it, and :meth:`mrenclave`
    gives the finalized measurement at any time without disturbing the
    running hash.

    Attributes:

    * ``secs`` -- the in-EPC SECS. EINIT sets ATTRIBUTES.INIT, MRENCLAVE,
      MRSIGNER, ISVPRODID and ISVSVN here.
    * ``update_count`` -- 64-byte blocks measured so far (ECREATE 1, EADD 1,
      EEXTEND 5).
    * ``initialized`` -- False until EINIT succeeds; EADD/EEXTEND then #GP.
    * ``pages`` -- page offset -> SECINFO.FLAGS as measured (a TCS shows
      0x100).
    * ``epc`` -- ``(platform, epc_generation)`` of the EPC the enclave lives
      in: set by ECREATE when given ``platform=``, else by a successful EINIT
      (None until then). An S3 or other loss of EPC on that platform destroys
      the enclave: EINIT and EGETKEY on it then fault.
    * ``mrsigner``, ``isvprodid``, ``isvsvn``, ``isvfamilyid``,
      ``isvextprodid``, ``padding`` -- SECS state that EINIT commits from the
      SIGSTRUCT and that the SDM keeps in implementation-specific space.
      ``mrsigner`` is None before EINIT; ``padding`` holds the 352-byte
      signature padding EINIT saves (empty before).

    With ``record=True`` every measured block is also kept, so
    :meth:`measured_stream` (and :func:`write_sgxs`) return the SGXS stream
    whose SHA-256 is :meth:`mrenclave`.
    """

    __slots__ = (
        "secs",
        "update_count",
        "initialized",
        "pages",
        "mrsigner",
        "isvprodid",
        "isvsvn",
        "isvfamilyid",
        "isvextprodid",
        "padding",
        "epc",
        "_hash",
        "_shared",
        "_final",
        "_given",
        "_content",
        "_stream",
        "_secs0",
    )

    secs: Secs
    update_count: int
    initialized: bool
    pages: dict[int, int]
    mrsigner: bytes | None
    isvprodid: int
    isvsvn: int
    isvfamilyid: bytes
    isvextprodid: bytes
    padding: bytes
    epc: tuple[Platform, int] | None

    def __init__(self, secs: Secs, *, record: bool = False, platform: Platform | None = None) -> None:
        if not isinstance(secs, Secs):
            raise ConfigError("secs", secs, "ECREATE needs a sgxlab.hw.structs.Secs")
        self._ecreate_checks(secs)
        # ECREATE copies the page into the EPC and clears what EINIT will set.
        self._secs0 = dataclasses.replace(secs, mrenclave=bytes(32), mrsigner=bytes(32), isvprodid=0, isvsvn=0)
        self.secs = dataclasses.replace(self._secs0)
        block = _ECREATE.pack(MEAS_ECREATE, secs.ssaframesize, secs.size)
        self._hash: _Hash | None = hashlib.sha256(block)  # None when the measurement is given
        self._shared = False  # True while _hash is shared with a fork (copy on write)
        self._final: bytes | None = None  # SHA256FINAL of the current state, once computed
        self._given: bytes | None = None
        self.update_count = 1
        self.pages = {}
        self._content: dict[int, bytes] = {}
        self._stream: list[bytes] | None = [block] if record else None
        self._reset_einit_state()
        if platform is not None:
            # ECREATE into this platform's EPC: an S3 there destroys the enclave.
            self.epc = (platform, platform.epc_generation)

    # -- ECREATE -----------------------------------------------------------

    @staticmethod
    def _ecreate_checks(secs: Secs) -> None:
        def bad(reason: str) -> GeneralProtection:
            return _gp("ECREATE", reason)

        size, base, ssa = secs.size, secs.baseaddr, secs.ssaframesize
        attrs = secs.attributes
        if not _is_u(size, 64) or not _is_u(base, 64) or not _is_u(ssa, 32) or not isinstance(attrs, Attributes):
            raise bad("SECS SIZE/BASEADDR/SSAFRAMESIZE/ATTRIBUTES are not well-formed integers")
        if size < _MIN_SIZE or size & (size - 1):
            raise bad(f"SECS.SIZE {size:#x} must be a power of two of at least 8192 bytes (two pages)")
        if base & (size - 1):
            raise bad(f"SECS.BASEADDR {base:#x} is not naturally aligned on SECS.SIZE {size:#x}")
        if not attrs.flags & Attr.MODE64BIT and base >> 32:
            raise bad(f"SECS.BASEADDR {base:#x} is above 4 GiB for a 32-bit enclave")
        if ssa < 1:
            raise bad("SECS.SSAFRAMESIZE is 0; an SSA frame needs at least one page")
        if attrs.flags & Attr.INIT:
            raise bad("SECS.ATTRIBUTES.INIT is set; only EINIT may set it")
        if attrs.flags & ~SUPPORTED_ATTRIBUTES:
            raise bad(
                f"SECS.ATTRIBUTES {attrs.flags:#x} sets reserved bits {attrs.flags & ~SUPPORTED_ATTRIBUTES:#x} "
                f"(supported: {SUPPORTED_ATTRIBUTES:#x})"
            )
        if attrs.xfrm & ~SUPPORTED_XFRM:
            raise bad(
                f"SECS.ATTRIBUTES.XFRM {attrs.xfrm:#x} sets bits the CPU does not support (XCR0 {SUPPORTED_XFRM:#x})"
            )
        if not _is_u(secs.miscselect, 32) or secs.miscselect & ~SUPPORTED_MISCSELECT:
            raise bad(
                f"SECS.MISCSELECT {secs.miscselect!r} sets bits the CPU does not support ({SUPPORTED_MISCSELECT:#x})"
            )
        if attrs.xfrm & 0x3 != 0x3:
            raise bad(f"SECS.ATTRIBUTES.XFRM {attrs.xfrm:#x} must have bits 0 and 1 (x87, SSE) set")
        for name in _SECS_RESERVED:
            value = getattr(secs, name)
            if not isinstance(value, (bytes, bytearray)) or value.count(0) != len(value):
                raise bad(f"SECS.{name.upper()} (reserved) is not zero")
        if not attrs.flags & Attr.KSS and (any(secs.configid) or secs.configsvn):
            raise bad("SECS.CONFIGID/CONFIGSVN are set but ATTRIBUTES.KSS is clear")

    def _reset_einit_state(self) -> None:
        self.epc = None
        self.initialized = False
        self.mrsigner = None
        self.isvprodid = 0
        self.isvsvn = 0
        self.isvfamilyid = _ZERO16
        self.isvextprodid = _ZERO16
        self.padding = b""

    @classmethod
    def with_measurement(cls, secs: Secs, mrenclave: bytes | str) -> Enclave:
        """An enclave whose finalized MRENCLAVE is *given*, not replayed.

        Use it when only the hash is known -- Intel's production launch
        enclave, whose SIGSTRUCT is public but whose image is not available
        here. ECREATE's checks still apply to ``secs``, and :meth:`mrenclave`
        returns ``mrenclave`` (32 bytes, or 64 hex digits). There is no page
        content: ``pages`` is empty, ``update_count`` stays 1, EADD and EEXTEND
        raise :class:`ConfigError`, and :func:`write_sgxs` cannot produce a
        stream for it. Everything EINIT needs (SECS, measurement) is there.
        """
        digest = _digest(mrenclave, "mrenclave")
        enc = cls(secs)
        enc._given = digest
        enc._hash = None
        return enc

    @property
    def replayed(self) -> bool:
        """True if the measurement was computed here; False for :meth:`with_measurement`."""
        return self._given is None

    # -- EADD / EEXTEND ----------------------------------------------------

    def _check_buildable(self, instruction: str) -> None:
        if self._given is not None:
            raise ConfigError(
                "enclave", self._given, f"{instruction}: the measurement of this enclave was given, not replayed"
            )
        if self.initialized:
            raise _gp(instruction, "the enclave is already initialized (EINIT done)")

    def _prepare_eadd(self, offset: int, secinfo: Secinfo | int, data: bytes | None) -> tuple[int, bytes]:
        """Check an EADD and return (measured flags, page content as stored)."""
        self._check_buildable("EADD")
        if not _is_u(offset, 64):
            raise _gp("EADD", f"page offset {offset!r} is not an unsigned 64-bit integer")
        if isinstance(secinfo, Secinfo):
            flags, reserved = secinfo.flags, secinfo.reserved
            if not isinstance(reserved, (bytes, bytearray)) or len(reserved) != 56:
                raise _gp("EADD", "SECINFO.RESERVED must be 56 bytes")
            if reserved.count(0) != 56:
                raise _gp("EADD", "SECINFO reserved bytes are not zero")
        else:
            flags = secinfo
        if not _is_u(flags, 64):
            raise _gp("EADD", f"SECINFO.FLAGS {flags!r} is not an unsigned 64-bit integer")
        if flags & _SECINFO_FLAGS_RESERVED:
            raise _gp("EADD", f"SECINFO.FLAGS {flags:#x} sets reserved bits (7:3 or 63:16)")
        page_type = (flags >> 8) & 0xFF
        if page_type not in (PT_REG, PT_TCS):
            raise _gp("EADD", f"SECINFO.FLAGS.PAGE_TYPE {page_type} is neither PT_REG (2) nor PT_TCS (1)")
        if offset & (PAGE_SIZE - 1):
            raise _gp("EADD", f"page offset {offset:#x} is not 4 KiB aligned")
        if offset >= self.secs.size:
            raise _gp("EADD", f"page offset {offset:#x} is outside the enclave (SIZE {self.secs.size:#x})")
        if offset in self.pages:
            raise _gp("EADD", f"page {offset:#x} was already added (EPCM entry valid; #PF on hardware)")
        if data is None:
            content = _ZERO_PAGE
        elif isinstance(data, (bytes, bytearray, memoryview)):
            content = bytes(data)
            if len(content) != PAGE_SIZE:
                raise _gp("EADD", f"the source page must be 4096 bytes, got {len(content)}")
        else:
            raise _gp("EADD", f"the source page must be 4096 bytes, got {type(data).__name__}")
        if page_type == PT_REG:
            if flags & SECINFO_W and not flags & SECINFO_R:
                raise _gp("EADD", f"SECINFO.FLAGS {flags:#x}: a regular page cannot be writable but not readable")
        else:
            content = self._prepare_tcs(content)
            flags &= ~_RWX
        return flags, content

    def _prepare_tcs(self, content: bytes) -> bytes:
        if content[_TCS_RESERVED_FROM:].count(0) != PAGE_SIZE - _TCS_RESERVED_FROM:
            raise _gp("EADD", "TCS reserved bytes (from offset 88) are not zero")
        if not self.secs.attributes.flags & Attr.MODE64BIT:
            fslimit = int.from_bytes(content[64:68], "little")
            gslimit = int.from_bytes(content[68:72], "little")
            if fslimit & 0xFFF != 0xFFF or gslimit & 0xFFF != 0xFFF:
                raise _gp("EADD", "a 32-bit enclave's TCS needs FSLIMIT and GSLIMIT ending in 0xFFF")
        # The processor zeroes STATE, CSSA, AEP and FLAGS.DBGOPTIN in the page.
        if content[0:8].count(0) != 8 or content[8] & 1 or content[24:28].count(0) != 4 or content[40:48].count(0) != 8:
            page = bytearray(content)
            page[0:8] = bytes(8)
            page[8] &= 0xFE
            page[24:28] = bytes(4)
            page[40:48] = bytes(8)
            content = bytes(page)
        return content

    def _measure(self, blocks: bytes) -> None:
        # Every change to the measurement, pages or stream comes through here,
        # so this is where a fork stops sharing them with its parent.
        h = self._hash
        assert h is not None  # _check_buildable refused a given measurement
        if self._shared:
            h = self._hash = h.copy()
            self.pages = dict(self.pages)
            self._content = dict(self._content)
            if self._stream is not None:
                self._stream = list(self._stream)
            self._shared = False
        self._final = None
        h.update(blocks)
        self.update_count += len(blocks) >> 6
        if self._stream is not None:
            self._stream.append(blocks)

    def eadd(self, offset: int, secinfo: Secinfo | int, data: bytes | None = None) -> None:
        """ENCLS[EADD]: add the page at ``offset`` (from the enclave base) with
        ``secinfo`` (a :class:`Secinfo` or its FLAGS word) and 4096 bytes of
        ``data`` (zeros if omitted), and measure offset and SECINFO.

        #GP if the enclave is initialized, the offset is not page aligned,
        outside SIZE or already added, the page type is not REG or TCS, FLAGS
        has reserved bits or W without R, or a TCS has reserved bytes set.
        """
        flags, content = self._prepare_eadd(offset, secinfo, data)
        self._measure(_EADD.pack(MEAS_EADD, offset, flags))
        self.pages[offset] = flags
        self._content[offset] = content

    def _chunk_page(self, offset: int) -> int:
        self._check_buildable("EEXTEND")
        if not _is_u(offset, 64):
            raise _gp("EEXTEND", f"chunk offset {offset!r} is not an unsigned 64-bit integer")
        if offset & (CHUNK_SIZE - 1):
            raise _gp("EEXTEND", f"chunk offset {offset:#x} is not 256-byte aligned")
        page: int = offset & ~(PAGE_SIZE - 1)
        if page not in self.pages:
            raise _gp("EEXTEND", f"chunk offset {offset:#x} is not inside an added page (#PF on hardware)")
        return page

    def eextend(self, offset: int) -> None:
        """ENCLS[EEXTEND]: measure the 256 bytes at ``offset`` of an added page.

        #GP if the enclave is initialized, the offset is not 256-byte aligned,
        or no page was added there.
        """
        page = self._chunk_page(offset)
        within = offset - page
        chunk = self._content[page][within : within + CHUNK_SIZE]
        self._measure(_EEXTEND.pack(MEAS_EEXTEND, offset) + chunk)

    def add_page(self, offset: int, secinfo: Secinfo | int, data: bytes | None = None, measure: bool = True) -> None:
        """EADD the page, then (if ``measure``) EEXTEND all 16 chunks of it,
        which is what SGX loaders do for every measured page."""
        flags, content = self._prepare_eadd(offset, secinfo, data)
        parts = [_EADD.pack(MEAS_EADD, offset, flags)]
        if measure:
            for within in range(0, PAGE_SIZE, CHUNK_SIZE):
                parts.append(_EEXTEND.pack(MEAS_EEXTEND, offset + within))
                parts.append(content[within : within + CHUNK_SIZE])
        self._measure(b"".join(parts))
        self.pages[offset] = flags
        self._content[offset] = content

    # -- results -----------------------------------------------------------

    def mrenclave(self) -> bytes:
        """SHA256FINAL of the measurement so far (what EINIT compares with
        SIGSTRUCT.ENCLAVEHASH); the running hash is left untouched."""
        if self._given is not None:
            return self._given
        final = self._final
        if final is None:
            h = self._hash
            assert h is not None  # only a given measurement has no hash, and it returned above
            final = self._final = h.copy().digest()
        return final

    def page_data(self, offset: int) -> bytes:
        """The 4096 bytes of the page added at ``offset``, as the EPC holds them
        (for a TCS, after EADD zeroed STATE, CSSA, AEP and DBGOPTIN)."""
        try:
            return self._content[offset]
        except (KeyError, TypeError):
            raise ConfigError("offset", offset, "no page was added at this offset") from None

    def measured_stream(self) -> bytes:
        """The SGXS stream measured so far (needs ``record=True``);
        ``sha256(measured_stream()) == mrenclave()``."""
        if self._stream is None:
            raise ConfigError("enclave", self, "created without record=True, so its measured stream was not kept")
        if len(self._stream) > 1:
            self._stream[:] = [b"".join(self._stream)]
        return self._stream[0]

    def fork(self) -> Enclave:
        """A fresh, not yet initialized enclave with the same SECS (as
        ECREATE left it), pages and measurement state.

        Forking is copy-on-write: the two share the running hash, the page
        tables and the recorded stream until either measures more, so a fork
        costs about a microsecond however large the image. Both enclaves go on
        independently: EINIT on one does not initialize the other, and further
        EADDs measure only into their own hash.
        """
        new = Enclave.__new__(Enclave)
        new._secs0 = self._secs0
        new.secs = self._secs0.copy()
        new._hash = self._hash
        new.pages = self.pages
        new._content = self._content
        new._stream = self._stream
        new._shared = self._shared = True
        new._final = self._final
        new._given = self._given
        new.update_count = self.update_count
        # _reset_einit_state(), inlined: forks are made once per simulated launch.
        # A fork is the same build done again now, on the same platform if any.
        epc = self.epc
        new.epc = None if epc is None else (epc[0], epc[0].epc_generation)
        new.initialized = False
        new.mrsigner = None
        new.isvprodid = 0
        new.isvsvn = 0
        new.isvfamilyid = _ZERO16
        new.isvextprodid = _ZERO16
        new.padding = b""
        return new

    def __repr__(self) -> str:
        how = "" if self._given is None else ", given"
        return (
            f"Enclave(size={self.secs.size:#x}, pages={len(self.pages)}, updates={self.update_count}, "
            f"mrenclave={self.mrenclave()[:4].hex()}…{how}, initialized={self.initialized})"
        )


def _digest(value: object, option: str) -> bytes:
    if isinstance(value, str):
        value = hex_digest(value, option, what="a MRENCLAVE")
    if not isinstance(value, (bytes, bytearray)) or len(value) != 32:
        raise ConfigError(option, value, "a MRENCLAVE is exactly 32 bytes (SHA-256)")
    return bytes(value)


# -- building enclaves from pages -----------------------------------------


@dataclass(frozen=True, slots=True)
class Page:
    """One enclave page for :func:`build_enclave`.

    ``secinfo`` is a :class:`Secinfo` or its FLAGS word (e.g.
    ``SECINFO_R | SECINFO_X | PT_REG << 8``). ``data`` shorter than 4096 bytes
    is zero-padded; None means a zero page. ``measured=False`` adds the page
    without EEXTEND (its content then does not reach MRENCLAVE).
    """

    offset: int
    secinfo: Secinfo | int = SECINFO_R | (PT_REG << 8)
    data: bytes | None = None
    measured: bool = True

    def __post_init__(self) -> None:
        if self.data is not None:
            if not isinstance(self.data, (bytes, bytearray, memoryview)):
                raise ConfigError("page.data", self.data, "expected bytes")
            if len(self.data) > PAGE_SIZE:
                raise ConfigError("page.data", self.data, f"a page holds at most {PAGE_SIZE} bytes")
            data = bytes(self.data)
            object.__setattr__(self, "data", data + bytes(PAGE_SIZE - len(data)))

    @property
    def flags(self) -> int:
        """SECINFO.FLAGS as given (before EADD clears a TCS's R/W/X)."""
        return self.secinfo.flags if isinstance(self.secinfo, Secinfo) else self.secinfo


def _default_size(pages: list[Page]) -> int:
    end = max((p.offset + PAGE_SIZE for p in pages if isinstance(p.offset, int)), default=0)
    size = _MIN_SIZE
    while size < end:
        size <<= 1
    return size


def build_enclave(
    pages: Iterable[Page],
    *,
    ssaframesize: int = 1,
    size: int | None = None,
    attributes: Attributes | None = None,
    miscselect: int = 0,
    record: bool = False,
) -> Enclave:
    """ECREATE an enclave and add ``pages`` in ascending offset order (the
    canonical SGXS order), EEXTENDing every chunk of each measured page.

    ``size`` defaults to the smallest power of two that covers the highest
    page, but at least 8192 (ECREATE's minimum). ``attributes`` defaults to
    MODE64BIT with XFRM 0x3, as in :meth:`Secs.new`.
    """
    plist = list(pages)
    for p in plist:
        if not isinstance(p, Page):
            raise ConfigError("pages", p, "expected sgxlab.hw.measure.Page items")
    plist.sort(key=lambda p: p.offset if isinstance(p.offset, int) else -1)
    secs = Secs.new(
        size=_default_size(plist) if size is None else size,
        ssaframesize=ssaframesize,
        attributes=attributes,
        miscselect=miscselect,
    )
    enclave = Enclave(secs, record=record)
    for p in plist:
        enclave.add_page(p.offset, p.secinfo, p.data, measure=p.measured)
    return enclave


def write_sgxs(
    source: Enclave | Iterable[Page],
    *,
    ssaframesize: int = 1,
    size: int | None = None,
    attributes: Attributes | None = None,
    miscselect: int = 0,
) -> bytes:
    """The canonical SGXS stream of an enclave: ``sha256(stream) == mrenclave``.

    ``source`` is an :class:`Enclave` created with ``record=True`` (the
    keyword arguments are then ignored) or pages for :func:`build_enclave`.
    """
    if isinstance(source, Enclave):
        return source.measured_stream()
    enclave = build_enclave(
        source, ssaframesize=ssaframesize, size=size, attributes=attributes, miscselect=miscselect, record=True
    )
    return enclave.measured_stream()


# -- reading SGXS streams ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class SgxsRecord:
    """One record of an SGXS stream: ``index`` is its number (0 = first) and
    ``position`` the byte offset of its 64-byte header in the stream."""

    index: int
    position: int

    NAME: ClassVar[str] = "?"
    MEASURED: ClassVar[bool] = True

    def header(self) -> bytes:
        raise NotImplementedError

    def to_bytes(self) -> bytes:
        """Header plus data, exactly as in the stream."""
        return self.header()


@dataclass(frozen=True, slots=True)
class SgxsECreate(SgxsRecord):
    ssaframesize: int
    size: int

    NAME: ClassVar[str] = "ECREATE"

    def header(self) -> bytes:
        return _ECREATE.pack(MEAS_ECREATE, self.ssaframesize, self.size)


@dataclass(frozen=True, slots=True)
class SgxsUnsized(SgxsRecord):
    """ESGXS: ECREATE whose SIZE is not known yet; ``size_offset`` is where in
    enclave memory the final size must be written. Such a stream cannot be
    measured until the record is replaced with an ECREATE."""

    ssaframesize: int
    size_offset: int

    NAME: ClassVar[str] = "UNSIZED"
    MEASURED: ClassVar[bool] = False

    def header(self) -> bytes:
        return _ECREATE.pack(SGXS_UNSIZED, self.ssaframesize, self.size_offset)


@dataclass(frozen=True, slots=True)
class SgxsEAdd(SgxsRecord):
    """``secinfo`` is the 48 measured SECINFO bytes; ``flags`` their first u64."""

    offset: int
    secinfo: bytes

    NAME: ClassVar[str] = "EADD"

    @property
    def flags(self) -> int:
        return int.from_bytes(self.secinfo[:8], "little")

    def header(self) -> bytes:
        return MEAS_EADD.to_bytes(8, "little") + self.offset.to_bytes(8, "little") + self.secinfo


@dataclass(frozen=True, slots=True)
class SgxsEExtend(SgxsRecord):
    offset: int
    data: bytes

    NAME: ClassVar[str] = "EEXTEND"

    def header(self) -> bytes:
        return _EEXTEND.pack(MEAS_EEXTEND, self.offset)

    def to_bytes(self) -> bytes:
        return self.header() + self.data


@dataclass(frozen=True, slots=True)
class SgxsUnmeasured(SgxsRecord):
    """ESGXS: 256 bytes loaded at ``offset`` but not measured."""

    offset: int
    data: bytes

    NAME: ClassVar[str] = "UNMEASRD"
    MEASURED: ClassVar[bool] = False

    def header(self) -> bytes:
        return _EEXTEND.pack(SGXS_UNMEASRD, self.offset)

    def to_bytes(self) -> bytes:
        return self.header() + self.data


_TAG_NAMES = {
    MEAS_ECREATE: "ECREATE",
    MEAS_EADD: "EADD",
    MEAS_EEXTEND: "EEXTEND",
    SGXS_UNSIZED: "UNSIZED",
    SGXS_UNMEASRD: "UNMEASRD",
}


def _serr(index: int, field: str, offset: int | None, expected: str, got: object = None) -> StructError:
    return StructError("SGXS", f"record[{index}].{field}", offset, expected, got)


def parse_sgxs(data: bytes) -> list[SgxsRecord]:
    """Split an SGXS (or ESGXS) stream into records, checking its structure.

    Raises :class:`StructError` (structure ``"SGXS"``, field
    ``record[i].<what>``, offset = byte position in the stream) for: an empty
    or partial trailing header, an unknown tag, a first record that is not
    ECREATE/UNSIZED or a later one that is, non-zero reserved header bytes, an
    EADD offset that is not page aligned or repeats a page, an
    EEXTEND/UNMEASRD offset that is not 256-byte aligned or lies in a page
    not EADDed before it, and truncated EEXTEND data. Semantic checks
    (enclave size, SECINFO flags, ...) are ECREATE's and EADD's business; see
    :func:`replay_sgxs`.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise StructError("SGXS", "<buffer>", None, "a bytes-like object", type(data).__name__)
    buf = bytes(data)
    n = len(buf)
    if n == 0:
        raise _serr(0, "tag", 0, "an ECREATE record (the stream is empty)", "0 bytes")
    records: list[SgxsRecord] = []
    added: set[int] = set()
    pos = 0
    index = 0
    while pos < n:
        if n - pos < 64:
            expected = "a 64-byte record header (stream length must be a multiple of 64)"
            raise _serr(index, "header", pos, expected, f"{n - pos} bytes")
        tag, word1 = struct.unpack_from("<QQ", buf, pos)
        name = _TAG_NAMES.get(tag)
        if name is None:
            raise _serr(index, "tag", pos, "ECREATE, EADD, EEXTEND, UNSIZED or UNMEASRD", buf[pos : pos + 8])
        if index == 0 and name not in ("ECREATE", "UNSIZED"):
            raise _serr(index, "tag", pos, "ECREATE (or UNSIZED) as the first record", name)
        if index > 0 and name in ("ECREATE", "UNSIZED"):
            raise _serr(index, "tag", pos, "EADD, EEXTEND or UNMEASRD (only the first record may be ECREATE)", name)
        rec: SgxsRecord
        if name in ("ECREATE", "UNSIZED"):
            ssa, size = struct.unpack_from("<IQ", buf, pos + 8)
            if buf[pos + 20 : pos + 64].count(0) != 44:
                raise _serr(index, "reserved", pos + 20, "44 zero bytes", buf[pos + 20 : pos + 64])
            rec = SgxsECreate(index, pos, ssa, size) if name == "ECREATE" else SgxsUnsized(index, pos, ssa, size)
            pos += 64
        elif name == "EADD":
            if word1 & (PAGE_SIZE - 1):
                raise _serr(index, "offset", pos + 8, "a 4 KiB aligned page offset", word1)
            if word1 in added:
                raise _serr(index, "offset", pos + 8, "a page not added before", word1)
            added.add(word1)
            rec = SgxsEAdd(index, pos, word1, buf[pos + 16 : pos + 64])
            pos += 64
        else:
            if buf[pos + 16 : pos + 64].count(0) != 48:
                raise _serr(index, "reserved", pos + 16, "48 zero bytes", buf[pos + 16 : pos + 64])
            if word1 & (CHUNK_SIZE - 1):
                raise _serr(index, "offset", pos + 8, "a 256-byte aligned chunk offset", word1)
            if word1 & ~(PAGE_SIZE - 1) not in added:
                expected = f"an offset inside a page added by an earlier EADD ({name})"
                raise _serr(index, "offset", pos + 8, expected, word1)
            have = n - pos - 64
            if have < CHUNK_SIZE:
                raise _serr(index, "data", pos + 64, f"{CHUNK_SIZE} bytes of {name} data", f"{have} bytes")
            chunk = buf[pos + 64 : pos + 64 + CHUNK_SIZE]
            if name == "EEXTEND":
                rec = SgxsEExtend(index, pos, word1, chunk)
            else:
                rec = SgxsUnmeasured(index, pos, word1, chunk)
            pos += 64 + CHUNK_SIZE
        records.append(rec)
        index += 1
    return records


SgxsSource = Union[bytes, bytearray, memoryview, str, "PathLike[str]"]
"""What :func:`replay_sgxs` reads: the stream itself, or a path to it."""


def _read_source(source: object) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    if isinstance(source, (str, PathLike)):
        return read_user_bytes(source, "sgxs", max_bytes=MAX_SGXS_BYTES, what="an SGXS file")
    raise ConfigError("sgxs", source, "expected SGXS bytes or a path to an .sgxs file")


def replay_sgxs(
    source: SgxsSource,
    *,
    attributes: Attributes | None = None,
    miscselect: int = 0,
    record: bool = False,
) -> Enclave:
    """Build an :class:`Enclave` by replaying an SGXS stream (bytes or a path)
    through ECREATE, EADD and EEXTEND.

    An SGXS stream carries no page contents besides the EEXTEND (and
    UNMEASRD) data, so each page is loaded with the chunks the stream gives
    for it and zeros elsewhere; a chunk given twice with different bytes is an
    error. UNMEASRD data is loaded but not measured. The SECS gets the
    stream's SIZE and SSAFRAMESIZE and ``attributes`` (default MODE64BIT,
    XFRM 0x3) and ``miscselect``, which SGXS does not record.

    For a stream the processor would accept unchanged, ``mrenclave()`` equals
    SHA-256 of its measured records. Where the processor measures something
    else -- a TCS added with R/W/X set is measured as 0x100 -- the replay
    follows the processor. A missing file raises :class:`ConfigError`; a
    malformed stream, or one an instruction would refuse (#GP), raises
    :class:`StructError` naming the record and its byte offset.
    """
    records = parse_sgxs(_read_source(source))
    first = records[0]
    if not isinstance(first, SgxsECreate):
        expected = "an ECREATE record; an UNSIZED stream cannot be measured until its size is fixed"
        raise _serr(0, "tag", 0, expected, "UNSIZED")

    # Gather each page's contents from every chunk the stream gives for it.
    contents: dict[int, bytearray] = {}
    seen: dict[int, bytes] = {}
    for rec in records:
        if isinstance(rec, (SgxsEExtend, SgxsUnmeasured)):
            old = seen.get(rec.offset)
            if old is not None and old != rec.data:
                expected = "the same bytes as an earlier record for this chunk"
                raise _serr(rec.index, "data", rec.position + 64, expected, rec.data)
            seen[rec.offset] = rec.data
            page = rec.offset & ~(PAGE_SIZE - 1)
            within = rec.offset - page
            contents.setdefault(page, bytearray(PAGE_SIZE))[within : within + CHUNK_SIZE] = rec.data

    rec = first
    try:
        secs = Secs.new(size=first.size, ssaframesize=first.ssaframesize, attributes=attributes, miscselect=miscselect)
        enclave = Enclave(secs, record=record)
        for rec in records[1:]:
            if isinstance(rec, SgxsEAdd):
                secinfo = Secinfo(flags=rec.flags, reserved=rec.secinfo[8:] + bytes(16))
                page_data = contents.get(rec.offset)
                enclave.eadd(rec.offset, secinfo, bytes(page_data) if page_data is not None else None)
            elif isinstance(rec, SgxsEExtend):
                enclave.eextend(rec.offset)
    except GeneralProtection as e:
        raise _serr(rec.index, rec.NAME, rec.position, f"a record {e.instruction} accepts ({e.reason})") from e
    return enclave
