"""MRENCLAVE measurement: real SGXS streams replay to their known hashes, the
SDM's measurement rules hold, and malformed streams raise StructError only."""

from __future__ import annotations

import hashlib
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sgxlab.errors import ConfigError, GeneralProtection, StructError
from sgxlab.hw.arch import Attr
from sgxlab.hw.measure import (
    MEAS_EADD,
    MEAS_ECREATE,
    MEAS_EEXTEND,
    SGXS_UNMEASRD,
    SGXS_UNSIZED,
    Enclave,
    Page,
    SgxsEAdd,
    SgxsECreate,
    SgxsEExtend,
    SgxsUnmeasured,
    SgxsUnsized,
    build_enclave,
    parse_sgxs,
    replay_sgxs,
    write_sgxs,
)
from sgxlab.hw.structs import (
    PT_REG,
    PT_SECS,
    PT_TCS,
    SECINFO_R,
    SECINFO_W,
    SECINFO_X,
    Attributes,
    Secinfo,
    Secs,
)

TEST_ENCLAVE = "fortanix-rust-sgx/test_enclave.sgxs"
REPORT = "fortanix-rust-sgx/report.sgxs"
REG_R = SECINFO_R | PT_REG << 8
REG_RX = SECINFO_R | SECINFO_X | PT_REG << 8
REG_RW = SECINFO_R | SECINFO_W | PT_REG << 8
TCS = PT_TCS << 8


@pytest.fixture(scope="module")
def enclave_stream(vectors) -> bytes:
    return (vectors / TEST_ENCLAVE).read_bytes()


def _eadd_positions(stream: bytes) -> dict[int, int]:
    """Page offset -> byte position of its EADD record (found by walking the stream)."""
    out = {}
    for rec in parse_sgxs(stream):
        if isinstance(rec, SgxsEAdd):
            out[rec.offset] = rec.position
    return out


def _set_eadd_flags(stream: bytes, page: int, flags: int) -> bytes:
    pos = _eadd_positions(stream)[page]
    b = bytearray(stream)
    b[pos + 16 : pos + 24] = flags.to_bytes(8, "little")
    return bytes(b)


# -- real vectors -------------------------------------------------------------


@pytest.mark.vectors
@pytest.mark.parametrize("rel", [TEST_ENCLAVE, REPORT])
def test_replay_matches_expected(vectors, expected, rel):
    path = vectors / rel
    enclave = replay_sgxs(path)
    assert enclave.mrenclave().hex() == expected["sgxs"][rel]
    # SGXS is the measured byte stream itself.
    assert hashlib.sha256(path.read_bytes()).hexdigest() == expected["sgxs"][rel]
    # str paths and raw bytes work too.
    assert replay_sgxs(str(path)).mrenclave() == enclave.mrenclave()
    assert replay_sgxs(path.read_bytes()).mrenclave() == enclave.mrenclave()


@pytest.mark.vectors
def test_test_enclave_matches_its_sigstruct(vectors):
    sig = (vectors / "fortanix-rust-sgx/test_enclave.sig").read_bytes()
    enclavehash = sig[960:992]  # SIGSTRUCT.ENCLAVEHASH
    assert replay_sgxs(vectors / TEST_ENCLAVE).mrenclave() == enclavehash


@pytest.mark.vectors
def test_test_enclave_layout(enclave_stream):
    enclave = replay_sgxs(enclave_stream)
    assert enclave.secs.size == 0x40000
    assert enclave.secs.ssaframesize == 1
    assert enclave.pages == {
        0x0: 0x201,
        0x1000: 0x205,
        0x2000: 0x203,
        0x4000: 0x201,
        0x15000: 0x100,
        0x16000: 0x203,
        0x27000: 0x203,
        0x28000: 0x203,
        0x39000: 0x203,
    }
    # 1 ECREATE + 9 EADD + 144 EEXTEND (5 blocks each)
    assert enclave.update_count == 1 + 9 + 144 * 5
    assert enclave.update_count * 64 == len(enclave_stream)
    assert not enclave.initialized and enclave.mrsigner is None
    recs = parse_sgxs(enclave_stream)
    assert isinstance(recs[0], SgxsECreate) and recs[0].size == 0x40000
    assert sum(isinstance(r, SgxsEAdd) for r in recs) == 9
    assert sum(isinstance(r, SgxsEExtend) for r in recs) == 144
    assert b"".join(r.to_bytes() for r in recs) == enclave_stream


@pytest.mark.vectors
def test_record_reproduces_stream(enclave_stream):
    enclave = replay_sgxs(enclave_stream, record=True)
    assert enclave.measured_stream() == enclave_stream
    assert write_sgxs(enclave) == enclave_stream


@pytest.mark.vectors
def test_one_flag_byte_changes_mrenclave(enclave_stream):
    base = replay_sgxs(enclave_stream).mrenclave()
    changed = _set_eadd_flags(enclave_stream, 0x1000, 0x207)  # RX -> RWX
    enclave = replay_sgxs(changed)
    assert enclave.pages[0x1000] == 0x207
    assert enclave.mrenclave() != base
    assert enclave.mrenclave() == hashlib.sha256(changed).digest()


@pytest.mark.vectors
def test_tcs_measured_with_rwx_cleared(enclave_stream):
    # SDM EADD: for PT_TCS, SCRATCH_SECINFO.FLAGS.R/W/X <- 0 before the
    # EADD block is hashed, so the loader's R/W/X never reach MRENCLAVE.
    base = replay_sgxs(enclave_stream)
    assert base.pages[0x15000] == 0x100
    rwx = _set_eadd_flags(enclave_stream, 0x15000, 0x107)
    other = replay_sgxs(rwx)
    assert other.pages[0x15000] == 0x100
    assert other.mrenclave() == base.mrenclave()
    # ...which is why the 0x107 stream is not itself the measured byte stream.
    assert hashlib.sha256(rwx).digest() != base.mrenclave()


@pytest.mark.vectors
def test_fork_of_replayed_enclave(enclave_stream):
    enclave = replay_sgxs(enclave_stream)
    twin = enclave.fork()
    assert twin.mrenclave() == enclave.mrenclave()
    assert twin.pages == enclave.pages and twin.update_count == enclave.update_count
    enclave.initialized = True
    enclave.mrsigner = bytes(32)
    assert not twin.initialized and twin.mrsigner is None
    assert not enclave.fork().initialized


# -- the measurement rules ----------------------------------------------------


def _blocks_ecreate(ssa: int, size: int) -> bytes:
    return struct.pack("<QIQ", MEAS_ECREATE, ssa, size) + bytes(44)


def _blocks_eadd(offset: int, flags: int) -> bytes:
    return struct.pack("<QQQ", MEAS_EADD, offset, flags) + bytes(40)


def _blocks_eextend(offset: int, chunk: bytes) -> bytes:
    return struct.pack("<QQ", MEAS_EEXTEND, offset) + bytes(48) + chunk


def test_block_layout_by_hand():
    page = bytes(range(256)) * 16
    enclave = Enclave(Secs.new(size=0x2000, ssaframesize=2), record=True)
    assert enclave.update_count == 1
    enclave.eadd(0x1000, REG_RX, page)
    enclave.eextend(0x1300)
    stream = _blocks_ecreate(2, 0x2000) + _blocks_eadd(0x1000, REG_RX) + _blocks_eextend(0x1300, page[0x300:0x400])
    assert enclave.measured_stream() == stream
    assert enclave.mrenclave() == hashlib.sha256(stream).digest()
    assert enclave.update_count == len(stream) // 64 == 7
    assert stream[:8] == b"ECREATE\0" and stream[64:72] == b"EADD\0\0\0\0" and stream[128:136] == b"EEXTEND\0"


def test_mrenclave_does_not_disturb_running_hash():
    a = Enclave(Secs.new(size=0x4000))
    b = Enclave(Secs.new(size=0x4000))
    a.mrenclave()
    for e in (a, b):
        e.add_page(0, REG_R, b"\x01" * 4096)
    a.mrenclave()
    assert a.mrenclave() == b.mrenclave()


def test_add_page_equals_eadd_plus_16_eextends():
    data = bytes((i * 7) & 0xFF for i in range(4096))
    a = Enclave(Secs.new(size=0x4000))
    a.add_page(0x1000, REG_RW, data)
    b = Enclave(Secs.new(size=0x4000))
    b.eadd(0x1000, Secinfo(flags=REG_RW), data)
    for off in range(0x1000, 0x2000, 0x100):
        b.eextend(off)
    assert a.mrenclave() == b.mrenclave() and a.update_count == b.update_count == 1 + 1 + 16 * 5
    c = Enclave(Secs.new(size=0x4000))
    c.add_page(0x1000, REG_RW, data, measure=False)
    assert c.update_count == 2 and c.mrenclave() != a.mrenclave()


def test_tcs_secinfo_and_content_rules():
    tcs = bytearray(4096)
    tcs[0:8] = (1).to_bytes(8, "little")  # STATE
    tcs[8] = 0x1  # FLAGS.DBGOPTIN
    tcs[16:24] = (0x2000).to_bytes(8, "little")  # OSSA survives
    tcs[24:28] = (3).to_bytes(4, "little")  # CSSA
    tcs[40:48] = (0xDEAD).to_bytes(8, "little")  # AEP
    a = Enclave(Secs.new(size=0x4000))
    a.add_page(0, TCS | SECINFO_R | SECINFO_W | SECINFO_X, bytes(tcs))
    clean = bytearray(4096)
    clean[16:24] = (0x2000).to_bytes(8, "little")
    b = Enclave(Secs.new(size=0x4000))
    b.add_page(0, TCS, bytes(clean))
    assert a.pages[0] == b.pages[0] == 0x100
    assert a.page_data(0) == bytes(clean)
    assert a.mrenclave() == b.mrenclave()
    bad = bytearray(4096)
    bad[100] = 1
    with pytest.raises(GeneralProtection, match="TCS reserved"):
        Enclave(Secs.new(size=0x4000)).eadd(0, TCS, bytes(bad))


def test_build_write_replay_round_trip():
    pages = [
        Page(0x3000, TCS),
        Page(0x0, REG_RX, b"\x90" * 100),
        Page(0x1000, REG_R, bytes(range(256)) * 16),
        Page(0x2000, REG_RW, measured=False),
    ]
    enclave = build_enclave(pages, ssaframesize=2)
    assert enclave.secs.size == 0x4000  # next power of two >= 0x4000
    stream = write_sgxs(pages, ssaframesize=2)
    assert hashlib.sha256(stream).digest() == enclave.mrenclave()
    replayed = replay_sgxs(stream)
    assert replayed.mrenclave() == enclave.mrenclave()
    assert replayed.pages == enclave.pages == {0x0: REG_RX, 0x1000: REG_R, 0x2000: REG_RW, 0x3000: 0x100}
    assert replayed.page_data(0x0)[:101] == b"\x90" * 100 + b"\0"
    # canonical: EADDs in ascending order
    eadds = [r.offset for r in parse_sgxs(stream) if isinstance(r, SgxsEAdd)]
    assert eadds == sorted(eadds)
    assert write_sgxs(build_enclave(pages, ssaframesize=2, record=True)) == stream


def test_build_enclave_sizes():
    assert build_enclave([]).secs.size == 0x2000
    assert build_enclave([Page(0)]).secs.size == 0x2000  # ECREATE's 8 KiB minimum
    assert build_enclave([Page(0x4000)]).secs.size == 0x8000
    assert build_enclave([Page(0)], size=0x100000).secs.size == 0x100000
    with pytest.raises(ConfigError):
        Page(0, REG_R, bytes(4097))


def test_write_sgxs_needs_a_record():
    with pytest.raises(ConfigError, match="record=True"):
        write_sgxs(Enclave(Secs.new(size=0x2000)))


def test_fork_is_independent():
    enclave = Enclave(Secs.new(size=0x4000), record=True)
    enclave.add_page(0, REG_R)
    twin = enclave.fork()
    assert twin.mrenclave() == enclave.mrenclave()
    assert twin.secs == enclave.secs and twin.secs is not enclave.secs
    twin.add_page(0x1000, REG_RW)
    assert twin.mrenclave() != enclave.mrenclave()
    assert 0x1000 not in enclave.pages
    assert hashlib.sha256(twin.measured_stream()).digest() == twin.mrenclave()
    assert hashlib.sha256(enclave.measured_stream()).digest() == enclave.mrenclave()
    twin.initialized = True
    twin.secs.attributes = twin.secs.attributes.with_flags(set_=Attr.INIT)
    again = twin.fork()
    assert not again.initialized and not again.secs.attributes.flags & Attr.INIT
    assert not enclave.initialized


def test_with_measurement():
    digest = bytes.fromhex("7881af9f9def547da9908c008f29cde9bd78064e36ac7e14c83c294ca4806150")
    secs = Secs.new(size=0x40000, attributes=Attributes(0x24, 0x3))
    le = Enclave.with_measurement(secs, digest)
    assert le.mrenclave() == digest and not le.replayed and le.pages == {}
    assert Enclave.with_measurement(secs, digest.hex()).mrenclave() == digest
    assert le.fork().mrenclave() == digest
    with pytest.raises(ConfigError):
        le.eadd(0, REG_R)
    with pytest.raises(ConfigError):
        Enclave.with_measurement(secs, b"short")
    with pytest.raises(GeneralProtection):
        Enclave.with_measurement(Secs.new(size=0x3000), digest)


def test_ecreate_does_not_touch_callers_secs():
    secs = Secs.new(size=0x2000)
    enclave = Enclave(secs)
    enclave.secs.isvsvn = 9
    assert secs.isvsvn == 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"size": 0x3000}, "power of two"),
        ({"size": 0x1000}, "at least 8192"),
        ({"size": 0}, "power of two"),
        ({"ssaframesize": 0}, "SSAFRAMESIZE"),
        ({"attributes": Attributes(int(Attr.INIT | Attr.MODE64BIT), 0x3)}, "INIT"),
        ({"attributes": Attributes(int(Attr.MODE64BIT), 0x1)}, "XFRM"),
        ({"size": 0x4000, "baseaddr": 0x2000}, "aligned"),
    ],
)
def test_ecreate_faults(kwargs, match):
    with pytest.raises(GeneralProtection, match=match) as info:
        Enclave(Secs.new(**{"size": 0x2000, **kwargs}))
    assert info.value.instruction == "ECREATE"


def _fresh() -> Enclave:
    e = Enclave(Secs.new(size=0x4000))
    e.add_page(0, REG_R)
    return e


@pytest.mark.parametrize(
    ("offset", "secinfo", "data", "match"),
    [
        (0x800, REG_R, None, "4 KiB aligned"),
        (0x4000, REG_R, None, "outside the enclave"),
        (0, REG_R, None, "already added"),
        (0x1000, PT_SECS << 8, None, "PAGE_TYPE"),
        (0x1000, 3 << 8 | SECINFO_R, None, "PAGE_TYPE"),
        (0x1000, SECINFO_W | PT_REG << 8, None, "writable but not readable"),
        (0x1000, REG_R | 0x8, None, "reserved bits"),
        (0x1000, Secinfo(flags=REG_R, reserved=b"\1" + bytes(55)), None, "reserved bytes"),
        (0x1000, REG_R, bytes(100), "4096 bytes"),
        (-0x1000, REG_R, None, "64-bit"),
    ],
)
def test_eadd_faults(offset, secinfo, data, match):
    e = _fresh()
    before = e.mrenclave()
    with pytest.raises(GeneralProtection, match=match) as info:
        e.eadd(offset, secinfo, data)
    assert info.value.instruction == "EADD"
    assert e.mrenclave() == before  # a faulting instruction measures nothing


@pytest.mark.parametrize(("offset", "match"), [(0x80, "256-byte"), (0x1000, "not inside an added page")])
def test_eextend_faults(offset, match):
    e = _fresh()
    with pytest.raises(GeneralProtection, match=match) as info:
        e.eextend(offset)
    assert info.value.instruction == "EEXTEND"


def test_no_eadd_or_eextend_after_einit():
    e = _fresh()
    e.initialized = True
    with pytest.raises(GeneralProtection, match="initialized"):
        e.eadd(0x1000, REG_R)
    with pytest.raises(GeneralProtection, match="initialized"):
        e.eextend(0)


# -- SGXS parsing: malformed streams ----------------------------------------


def _mini_stream() -> bytes:
    return write_sgxs([Page(0, REG_RX, b"\xcc" * 4096), Page(0x1000, TCS)])


def _err(data: bytes) -> StructError:
    with pytest.raises(StructError) as info:
        replay_sgxs(data)
    assert info.value.structure == "SGXS"
    return info.value


def test_malformed_empty():
    e = _err(b"")
    assert e.offset == 0 and "record[0]" in e.field


def test_malformed_partial_header():
    s = _mini_stream()
    e = _err(s + b"\0" * 10)
    assert e.offset == len(s) and "multiple of 64" in str(e)


def test_malformed_truncated_eextend_data():
    s = _mini_stream()
    cut = 64 + 64 + 64 + 100  # ECREATE, EADD, EEXTEND header, 100 data bytes
    e = _err(s[:cut])
    assert e.offset == 192 and e.field == "record[2].data"


def test_malformed_garbage_and_bad_tag():
    e = _err(b"\xff" * 64)
    assert e.offset == 0 and e.field == "record[0].tag"
    s = bytearray(_mini_stream())
    s[64:72] = b"EFOO\0\0\0\0"
    e = _err(bytes(s))
    assert e.offset == 64 and e.field == "record[1].tag"


def test_malformed_first_not_ecreate_and_second_ecreate():
    s = _mini_stream()
    e = _err(s[64:])
    assert e.offset == 0 and "first record" in str(e)
    e = _err(s[:64] + s)
    assert e.offset == 64 and e.field == "record[1].tag"


def test_malformed_eextend_without_eadd():
    s = _mini_stream()
    # drop the EADD of page 0 (bytes 64..128): its EEXTENDs now dangle
    e = _err(s[:64] + s[128:])
    assert e.offset == 72 and e.field == "record[1].offset"


def test_malformed_offsets_and_reserved():
    s = bytearray(_mini_stream())
    bad = bytearray(s)
    bad[72:80] = (0x10).to_bytes(8, "little")  # EADD offset not page aligned
    assert _err(bytes(bad)).offset == 72
    bad = bytearray(s)
    bad[136:144] = (0x10).to_bytes(8, "little")  # EEXTEND offset not 256-aligned
    assert _err(bytes(bad)).offset == 136
    bad = bytearray(s)
    bad[30] = 1  # ECREATE reserved
    assert _err(bytes(bad)).field == "record[0].reserved"
    bad = bytearray(s)
    bad[150] = 1  # EEXTEND reserved
    assert _err(bytes(bad)).field == "record[2].reserved"
    # duplicate EADD
    eadd = bytes(s[64:128])
    e = _err(bytes(s[:128]) + eadd)
    assert e.field == "record[2].offset" and e.offset == 136


def test_instruction_faults_become_struct_errors():
    s = bytearray(_mini_stream())
    s[12:20] = (0x3000).to_bytes(8, "little")  # ECREATE size not a power of two
    e = _err(bytes(s))
    assert e.field == "record[0].ECREATE" and "power of two" in str(e)
    s = bytearray(_mini_stream())
    s[80:88] = (PT_SECS << 8).to_bytes(8, "little")  # EADD of an SECS page
    e = _err(bytes(s))
    assert e.field == "record[1].EADD" and e.offset == 64 and isinstance(e.__cause__, GeneralProtection)


def test_non_bytes_and_missing_file(tmp_path):
    with pytest.raises(StructError):
        parse_sgxs("not bytes")  # type: ignore[arg-type]
    missing = tmp_path / "nope.sgxs"
    with pytest.raises(ConfigError, match="nope.sgxs") as info:
        replay_sgxs(missing)
    assert info.value.option == "sgxs"
    with pytest.raises(ConfigError):
        replay_sgxs(tmp_path)
    with pytest.raises(ConfigError):
        replay_sgxs(12)  # type: ignore[arg-type]


# -- ESGXS extensions ---------------------------------------------------------


def test_unmeasured_records_are_skipped():
    s = _mini_stream()
    data = b"\x42" * 256
    # the same bytes EEXTEND measured at 0x0, loaded again without measuring
    extra = struct.pack("<QQ", SGXS_UNMEASRD, 0x0) + bytes(48) + b"\xcc" * 256
    e = replay_sgxs(s + extra)
    assert e.mrenclave() == hashlib.sha256(s).digest()
    recs = parse_sgxs(s + extra)
    assert isinstance(recs[-1], SgxsUnmeasured) and not recs[-1].MEASURED
    # unmeasured data that contradicts measured data for the same chunk
    bad = struct.pack("<QQ", SGXS_UNMEASRD, 0x0) + bytes(48) + data
    assert _err(s + bad).field.endswith(".data")


def test_unmeasured_page_contents_loaded():
    s = write_sgxs([Page(0, REG_R), Page(0x1000, REG_RW, measured=False)])
    data = bytes(range(256))
    extra = struct.pack("<QQ", SGXS_UNMEASRD, 0x1100) + bytes(48) + data
    e = replay_sgxs(s + extra)
    assert e.mrenclave() == hashlib.sha256(s).digest()
    assert e.page_data(0x1000)[0x100:0x200] == data


def test_unsized_parses_but_cannot_be_replayed():
    s = bytearray(_mini_stream())
    s[0:8] = SGXS_UNSIZED.to_bytes(8, "little")
    recs = parse_sgxs(bytes(s))
    assert isinstance(recs[0], SgxsUnsized) and recs[0].size_offset == 0x2000
    assert recs[0].to_bytes() == bytes(s[:64])
    e = _err(bytes(s))
    assert "UNSIZED" in str(e) and e.offset == 0


# -- property tests -----------------------------------------------------------

_TAGS = [MEAS_ECREATE, MEAS_EADD, MEAS_EEXTEND, SGXS_UNSIZED, SGXS_UNMEASRD]


def _only_struct_errors(data: bytes) -> None:
    try:
        recs = parse_sgxs(data)
    except StructError:
        recs = None
    try:
        enclave = replay_sgxs(data)
    except StructError:
        return
    assert recs is not None
    assert len(enclave.mrenclave()) == 32


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=1500))
def test_random_bytes_only_raise_struct_error(data):
    _only_struct_errors(data)


@st.composite
def _record_soup(draw) -> bytes:
    """Streams made of plausible records with random fields: mostly an ECREATE
    then EADD/EEXTEND/UNMEASRD records, so the checks past the tag (and the
    ECREATE/EADD/EEXTEND faults) are reached, not just "unknown tag"."""
    out = bytearray()
    for i in range(draw(st.integers(1, 10))):
        if i == 0:
            tag = draw(st.sampled_from([MEAS_ECREATE] * 6 + [SGXS_UNSIZED, MEAS_EADD]))
        else:
            tag = draw(st.sampled_from([MEAS_EADD] * 6 + [MEAS_EEXTEND] * 4 + [SGXS_UNMEASRD, MEAS_ECREATE, 0]))
        if tag in (MEAS_ECREATE, SGXS_UNSIZED):
            size = draw(st.sampled_from([0, 0x1000, 0x2000, 0x3000, 0x4000, 0x4000, 2**63, 2**64 - 1]))
            ssa = draw(st.sampled_from([0, 1, 1, 2**32 - 1]))
            head = struct.pack("<QIQ", tag, ssa, size) + bytes(44)
        else:
            off = draw(st.sampled_from([0, 0, 0x100, 0x1000, 0x1000, 0x1100, 0x3F00, 0x4000, 0x10, 2**64 - 0x1000]))
            if tag == MEAS_EADD:
                word2 = draw(
                    st.sampled_from(
                        [REG_R, REG_RW, REG_RX, TCS, TCS | 7, PT_SECS << 8, SECINFO_W | PT_REG << 8, 2**64 - 1]
                    )
                )
            else:
                word2 = draw(st.sampled_from([0, 0, 0, 1]))
            head = struct.pack("<QQQ", tag, off, word2) + bytes(40)
        out += head
        if tag in (MEAS_EEXTEND, SGXS_UNMEASRD):
            out += draw(st.sampled_from([bytes(256), b"\x01" * 256, b"\x02" * 100]))
    return bytes(out)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_record_soup())
def test_record_soup_only_raises_struct_error(data):
    _only_struct_errors(data)


_WORDS = [0, 1, 0x100, 0x1000, 0x2000, 0x3000, 0x4000, REG_RW, TCS | 7, PT_SECS << 8, 2**63, 2**64 - 1]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(1, 7), st.sampled_from(_WORDS)), min_size=1, max_size=3))
def test_mutated_headers_only_raise_struct_error(edits):
    """Overwrite u64 words in the record headers of a small valid stream."""
    stream = _mini_stream()
    heads = [r.position for r in parse_sgxs(stream)][:6]
    data = bytearray(stream)
    for rec, word, value in edits:
        pos = heads[rec % len(heads)] + 8 * word
        data[pos : pos + 8] = value.to_bytes(8, "little")
    _only_struct_errors(bytes(data))


@pytest.mark.vectors
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    cut=st.integers(min_value=0, max_value=46720),
    flip=st.integers(min_value=-1, max_value=46719),
    byte=st.integers(0, 255),
)
def test_truncated_or_mutated_real_stream_only_raises_struct_error(enclave_stream, cut, flip, byte):
    data = bytearray(enclave_stream[:cut])
    if 0 <= flip < len(data):
        data[flip] = byte
    _only_struct_errors(bytes(data))


@settings(max_examples=50, deadline=None)
@given(
    st.dictionaries(
        st.integers(0, 15).map(lambda i: i * 0x1000),
        st.tuples(
            st.sampled_from([REG_R, REG_RW, REG_RX, REG_RW | SECINFO_X, TCS]), st.binary(max_size=64), st.booleans()
        ),
        max_size=6,
    ),
    st.integers(1, 4),
)
def test_build_write_replay_property(spec, ssa):
    pages = [
        Page(off, flags, None if flags == TCS else data, measured) for off, (flags, data, measured) in spec.items()
    ]
    enclave = build_enclave(pages, ssaframesize=ssa)
    stream = write_sgxs(pages, ssaframesize=ssa)
    assert hashlib.sha256(stream).digest() == enclave.mrenclave()
    assert replay_sgxs(stream).mrenclave() == enclave.mrenclave()


def test_fork_is_copy_on_write_in_both_directions():
    from sgxlab.hw.measure import Enclave
    from sgxlab.hw.structs import Secinfo, Secs

    parent = Enclave(Secs.new(size=0x4000), record=True)
    parent.add_page(0x0, Secinfo.of(5), b"code".ljust(4096, b"\0"))
    before = parent.mrenclave()
    child = parent.fork()
    assert child.mrenclave() == before and child.pages == parent.pages
    child.add_page(0x1000, Secinfo.of(3), bytes(4096))
    assert parent.mrenclave() == before and 0x1000 not in parent.pages
    assert len(parent.measured_stream()) < len(child.measured_stream())
    other = parent.fork()
    parent.add_page(0x2000, Secinfo.of(3), bytes(4096))
    assert other.mrenclave() == before and 0x2000 not in other.pages and 0x2000 not in child.pages
    assert child.mrenclave() != parent.mrenclave() != before
    import hashlib

    for e in (parent, child, other):
        assert hashlib.sha256(e.measured_stream()).digest() == e.mrenclave()


@pytest.mark.parametrize(
    "attrs,misc,what",
    [
        ((0x4 | 0x8, 0x3), 0, "reserved bits 0x8"),  # bit 3 is reserved (Linux SGX_ATTR_RESERVED_MASK)
        ((0x4 | 0x40, 0x3), 0, "reserved bits 0x40"),  # bit 6 (CET) is not supported by this CPU
        ((0x4 | 1 << 8, 0x3), 0, "reserved bits 0x100"),
        ((0x4, 0x3 | 1 << 9), 0, "XFRM"),
        ((0x4, 0x3), 0x2, "MISCSELECT"),
    ],
)
def test_ecreate_refuses_unsupported_bits(attrs, misc, what):
    from sgxlab.errors import GeneralProtection
    from sgxlab.hw.measure import Enclave
    from sgxlab.hw.structs import Attributes, Secs

    with pytest.raises(GeneralProtection, match=what):
        Enclave(Secs.new(attributes=Attributes(*attrs), miscselect=misc))
