"""Byte-exact SGX structures: real vectors round-trip; malformed input gives StructError."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sgxlab.errors import ConfigError, StructError
from sgxlab.hw.arch import INTEL_LEPUBKEYHASH, Attr
from sgxlab.hw.structs import (
    PT_TCS,
    SIGSTRUCT_HEADER,
    Attributes,
    Einittoken,
    Secinfo,
    Secs,
    Sigstruct,
)


def _sigstructs(expected):
    return sorted(expected["sigstructs"])


def test_every_vector_sigstruct_round_trips(vectors, expected):
    for rel in _sigstructs(expected):
        raw = (vectors / rel).read_bytes()
        sig = Sigstruct.from_bytes(raw)
        assert sig.to_bytes() == raw, rel
        assert sig.mrsigner.hex() == expected["sigstructs"][rel]["mrsigner"], rel
        assert sig.enclavehash.hex() == expected["sigstructs"][rel]["enclavehash"], rel
        words = expected["sigstructs"][rel].get("lepubkeyhash")
        if words:
            assert [f"{w:#x}" for w in sig.mrsigner.words] == words


def test_intel_le_fields(vectors):
    sig = Sigstruct.from_bytes((vectors / "intel-linux-sgx/le_prod_css.bin").read_bytes())
    assert sig.vendor == 0x8086 and sig.date == 0x20240811 and sig.swdefined == 0x10
    assert sig.attributes == Attributes(0x24, 0x3)
    assert sig.attributemask == Attributes(0xFF00FFFFFFFFFFFF, 0xFFFFFFFFFFFFFF1B)
    assert (sig.isvprodid, sig.isvsvn) == (0x20, 7)
    assert sig.mrsigner == INTEL_LEPUBKEYHASH


def test_tokens_round_trip_including_sdk_blob(vectors, expected):
    for rel, exp in expected["tokens"].items():
        raw = (vectors / rel).read_bytes()
        tok = Einittoken.from_bytes(raw)
        assert tok.to_blob() == raw
        assert tok.to_bytes() == raw[:304]
        assert tok.valid == exp["valid"]
        assert tok.mrenclave.hex() == exp["mrenclave"]
        assert tok.mrsigner.hex() == exp["mrsigner"]
        if "reserved2_zero" in exp:
            assert (not any(tok.reserved2)) == exp["reserved2_zero"]
    real = Einittoken.from_bytes((vectors / "real-hw-token/minimal-sgx.enclave.token").read_bytes())
    assert real.isvprodidle == 32 and real.isvsvnle == 1
    assert real.maskedattributesle == Attributes(0x21, 0)
    assert real.attributes == Attributes(0x6, 0x7)
    assert real.cpusvnle.hex() == "020602ff010100000000000000000000"
    assert real.reserved_problems() == []
    sim = Einittoken.from_bytes((vectors / "intel-sdk-sim-tokens/sip-sgx.enclave.token").read_bytes())
    assert [p.offset for p in sim.reserved_problems()] == [96, 160]


def test_secs_and_secinfo_round_trip():
    secs = Secs.new(size=0x40000, ssaframesize=1, attributes=Attributes(0x6, 0x7), miscselect=1)
    raw = secs.to_bytes()
    assert len(raw) == 4096 and Secs.from_bytes(raw) == secs
    assert raw[48:64] == Attributes(0x6, 0x7).to_bytes()
    si = Secinfo.of(0, PT_TCS)
    assert si.flags == 0x100 and si.page_type == PT_TCS
    assert Secinfo.from_bytes(si.to_bytes()) == si


def _valid_sigstruct() -> bytes:
    return Sigstruct.new(enclavehash=bytes(range(32)), isvprodid=7).to_bytes()


@pytest.mark.parametrize(
    "offset,value,field",
    [
        (0, b"\x07", "HEADER"),
        (16, (0x1234).to_bytes(4, "little"), "VENDOR"),
        (24, b"\x02", "HEADER2"),
        (60, b"\x01", "RESERVED"),
        (512, (65537).to_bytes(4, "little"), "EXPONENT"),
        (909, b"\x01", "RESERVED"),
        (1000, b"\x01", "RESERVED"),
        (1030, b"\x01", "RESERVED"),
    ],
)
def test_sigstruct_format_errors_name_field_and_offset(offset, value, field):
    raw = bytearray(_valid_sigstruct())
    raw[offset : offset + len(value)] = value
    with pytest.raises(StructError) as ei:
        Sigstruct.from_bytes(bytes(raw))
    assert ei.value.field == field
    assert ei.value.offset is not None and ei.value.offset <= offset
    assert field in str(ei.value) and "expected" in str(ei.value)
    # Without validation EINIT can still look at it.
    sig = Sigstruct.from_bytes(bytes(raw), validate=False)
    assert sig.to_bytes() == bytes(raw)
    assert sig.problems()[0].field == field


@pytest.mark.parametrize("n", [0, 1, 1807, 1809, 4096])
def test_sigstruct_wrong_length(n):
    with pytest.raises(StructError, match="1808 bytes"):
        Sigstruct.from_bytes(bytes(n))


@pytest.mark.parametrize("n", [0, 303, 305, 1023, 1025])
def test_token_wrong_length(n):
    with pytest.raises(StructError, match="304 bytes or 1024 bytes"):
        Einittoken.from_bytes(bytes(n))


def test_not_bytes_is_a_struct_error():
    with pytest.raises(StructError):
        Sigstruct.from_bytes("hello")  # type: ignore[arg-type]
    with pytest.raises(StructError):
        Secs.from_bytes(None)  # type: ignore[arg-type]


def test_bad_field_values_on_serialize():
    sig = Sigstruct.new(enclavehash=bytes(32))
    sig.isvprodid = 1 << 16
    with pytest.raises(StructError, match="ISVPRODID"):
        sig.to_bytes()
    sig = Sigstruct.new(enclavehash=bytes(32))
    sig.modulus = b"short"
    with pytest.raises(StructError, match="MODULUS at offset 128"):
        sig.to_bytes()
    with pytest.raises(StructError, match="ENCLAVEHASH"):
        Sigstruct.new(enclavehash=b"x")


def test_attributes_parse_and_print():
    assert Attributes.parse("0x4/0x3") == Attributes(4, 3)
    assert Attributes.parse("DEBUG|MODE64BIT/0x7") == Attributes(6, 7)
    assert Attributes.parse("MODE64BIT") == Attributes(4, 3)
    assert str(Attributes(0x24, 3)) == "0x24/0x3"
    assert Attributes(0x24, 3).names() == "MODE64BIT|EINITTOKEN_KEY"
    assert Attributes(0x7, 0x7) & Attributes(0xFFFFFFFFFFFFFFFD, 0xFFFFFFFFFFFFFF1B) == Attributes(0x5, 0x3)
    for bad in ["", "nope/3", "0x4/zz", "0x1" + "0" * 17]:
        with pytest.raises(ConfigError):
            Attributes.parse(bad)
    with pytest.raises(ConfigError):
        Attributes(-1, 0)


def test_signed_data_is_the_two_runs():
    sig = Sigstruct.new(enclavehash=b"\xaa" * 32, isvsvn=3)
    raw = sig.to_bytes()
    assert sig.signed_data() == raw[:128] + raw[900:1028]
    assert raw[:16] == SIGSTRUCT_HEADER
    assert int(Attr.EINITTOKEN_KEY) == 0x20


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=0, max_size=2100))
def test_random_bytes_only_raise_struct_error(data):
    for parse in (Sigstruct.from_bytes, Einittoken.from_bytes, Secs.from_bytes, Secinfo.from_bytes):
        try:
            parse(data)
        except StructError:
            pass


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=1808, max_size=1808))
def test_any_1808_bytes_round_trip_unvalidated(data):
    assert Sigstruct.from_bytes(data, validate=False).to_bytes() == data
    try:
        Sigstruct.from_bytes(data)
    except StructError as e:
        assert not isinstance(e, struct.error)


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=304, max_size=304))
def test_any_304_bytes_token_round_trip(data):
    assert Einittoken.from_bytes(data).to_bytes() == data
