"""ENCLS[EINIT], the launch key, EGETKEY(EINITTOKEN_KEY) and the launch enclave.

Every check of EINIT is driven to fail on its own with an enclave built and
signed here (public test keys from ``data/keys``), then in pairs and triples
to show that the first failing check in SDM order decides the result. The
third-party vectors in ``../shared/vectors`` are used through the
``vectors``/``expected`` fixtures and skipped where that folder is absent.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sgxlab.hw.einit as einit_mod
from sgxlab.errors import ConfigError, GeneralProtection, SgxlabError
from sgxlab.host.le import INTEL_LE_ISVPRODID, LaunchEnclave
from sgxlab.hw.arch import (
    INTEL_LEPUBKEYHASH,
    MSR_IA32_SGXLEPUBKEYHASH,
    Attr,
    KeyName,
    LeHash,
    SgxError,
)
from sgxlab.hw.crypto import HARDCODED_PKCS1_5_PADDING, SigningKey, aes_cmac, load_test_key, sign_sigstruct
from sgxlab.hw.einit import CHECKS, KeyDependencies, SigInfo, derivekey, egetkey, einit, launch_key
from sgxlab.hw.measure import Enclave, SgxsEAdd, parse_sgxs, replay_sgxs
from sgxlab.hw.platform import DEFAULT_CPUSVN, Cpu, Platform
from sgxlab.hw.structs import (
    PT_TCS,
    SECINFO_R,
    SECINFO_X,
    Attributes,
    Einittoken,
    Keyrequest,
    Secinfo,
    Secs,
    Sigstruct,
)

U64 = (1 << 64) - 1
BASE = Attributes(int(Attr.MODE64BIT), 0x3)
CODE_OF = dict(zip(CHECKS, (1, 128, 8, 1, 4, 2, 2, 2, 16, 16, 16, 32, 16, 4, 2)))
"""The SGX code each check returns, in SDM order (the issue's list)."""


# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def le_key() -> SigningKey:
    return load_test_key(1)


@pytest.fixture(scope="module")
def key_a() -> SigningKey:
    return load_test_key(2)


@pytest.fixture(scope="module")
def key_b() -> SigningKey:
    return load_test_key(3)


def set_lehash(cpu: Cpu, h: LeHash) -> None:
    """Write the four MSRs, as the kernel's sgx_update_lepubkeyhash() does."""
    for msr, word in zip(MSR_IA32_SGXLEPUBKEYHASH, h.words):
        cpu.wrmsr(msr, word)


def build(attrs: Attributes = BASE, miscselect: int = 0, code: bytes = b"\xcc" * 4096) -> Enclave:
    """ECREATE, a measured RX code page and a TCS."""
    e = Enclave(Secs.new(size=0x2000, attributes=attrs, miscselect=miscselect))
    e.add_page(0x0, Secinfo.of(SECINFO_R | SECINFO_X), code)
    e.add_page(0x1000, Secinfo.of(0, PT_TCS))
    return e


def sign(key: SigningKey, enclavehash: bytes, **kw) -> Sigstruct:
    kw.setdefault("miscmask", 0xFFFFFFFF)
    kw.setdefault("attributes", BASE)
    return sign_sigstruct(key, Sigstruct.new(enclavehash=enclavehash, **kw))


def tokenless_setup(key: SigningKey, **sig_kw) -> tuple[Cpu, Sigstruct, Enclave]:
    """A one-CPU flexible platform whose MSRs hold ``key``'s hash, and an enclave signed by it."""
    cpu = Platform(1).cpu(0)
    set_lehash(cpu, key.mrsigner)
    enc = build()
    return cpu, sign(key, enc.mrenclave(), **sig_kw), enc


def le_platform(
    le_key: SigningKey,
    *,
    allow=(),
    provision=(),
    debug: bool = False,
    seed: int = 0,
    ncpus: int = 1,
    isvsvn: int = 1,
) -> tuple[Platform, Cpu, LaunchEnclave]:
    """A platform whose CPU 0 holds the LE signer, with the LE launched on it."""
    p = Platform(ncpus, seed=seed)
    cpu = p.cpu(0)
    set_lehash(cpu, le_key.mrsigner)
    le = LaunchEnclave.create(le_key, allowlist=allow, provision_allowlist=provision, debug=debug, isvsvn=isvsvn)
    r = le.launch(cpu)
    assert r.ok, r
    return p, cpu, le


def flip(b: bytes, i: int = 0) -> bytes:
    return b[:i] + bytes([b[i] ^ 1]) + b[i + 1 :]


# --------------------------------------------------------------------------- the table


def test_check_table_in_docstring_matches_checks_and_codes():
    rows = re.findall(r"^(\d+)\s+(.+?)\s+(SGX_\w+) \((\d+)\)$", einit_mod.__doc__, flags=re.M)
    assert [int(r[0]) for r in rows] == list(range(1, 16))
    assert [int(r[3]) for r in rows] == [CODE_OF[c] for c in CHECKS]
    assert [SgxError[r[2]] for r in rows] == [SgxError(CODE_OF[c]) for c in CHECKS]


def test_issue_error_codes_are_architectural():
    want = {
        "SGX_INVALID_SIG_STRUCT": 1,
        "SGX_INVALID_ATTRIBUTE": 2,
        "SGX_INVALID_MEASUREMENT": 4,
        "SGX_INVALID_SIGNATURE": 8,
        "SGX_INVALID_EINITTOKEN": 16,
        "SGX_INVALID_CPUSVN": 32,
        "SGX_UNMASKED_EVENT": 128,
    }
    assert {n: int(SgxError[n]) for n in want} == want


# --------------------------------------------------------------------------- success and commit


def test_tokenless_success_commits_the_secs(key_a):
    cpu, sig, enc = tokenless_setup(key_a, isvprodid=0x1234, isvsvn=7)
    mr = enc.mrenclave()
    r = einit(cpu, sig, enc)
    assert r.ok and r.code == SgxError.SUCCESS and r.name == "SUCCESS" and r.rax == 0 and not r.zf
    assert r.check == "commit" and r.cpu == 0
    assert "token-less launch" in r.reason and key_a.mrsigner.short() in r.reason
    assert r.as_json() == {"code": 0, "name": "SUCCESS", "reason": r.reason}
    assert enc.initialized
    assert enc.secs.mrenclave == mr and enc.secs.mrsigner == key_a.mrsigner.digest
    assert (enc.secs.isvprodid, enc.secs.isvsvn) == (0x1234, 7)
    assert enc.secs.attributes == Attributes(int(Attr.MODE64BIT | Attr.INIT), 0x3)
    assert type(enc.secs.attributes.flags) is int
    assert enc.padding == HARDCODED_PKCS1_5_PADDING and enc.mrsigner == key_a.mrsigner.digest


def test_second_einit_raises_general_protection(key_a):
    cpu, sig, enc = tokenless_setup(key_a)
    assert einit(cpu, sig, enc).ok
    with pytest.raises(GeneralProtection, match="already initialized") as info:
        einit(cpu, sig, enc)
    assert info.value.instruction == "EINIT" and info.value.cpu == 0
    # The fault comes before any check: even a malformed SIGSTRUCT or a pending event faults.
    cpu.inject_event()
    with pytest.raises(GeneralProtection):
        einit(cpu, sig.replace(exponent=65537), enc)
    assert cpu.pending_event  # the event window never opened


def test_failed_einit_leaves_the_secs_uninitialized_and_can_be_retried(key_a):
    cpu, sig, enc = tokenless_setup(key_a)
    set_lehash(cpu, INTEL_LEPUBKEYHASH)
    r = einit(cpu, sig, enc)
    assert r.code == SgxError.SGX_INVALID_EINITTOKEN and not enc.initialized
    assert enc.secs.mrsigner == bytes(32) and not enc.secs.attributes.flags & Attr.INIT
    set_lehash(cpu, key_a.mrsigner)  # what Linux does before the retry
    assert einit(cpu, sig, enc).ok


def test_sigstruct_may_be_bytes_or_siginfo(key_a):
    cpu, sig, enc = tokenless_setup(key_a)
    data = sig.to_bytes()
    assert einit(cpu, data, enc.fork()).ok
    assert einit(cpu, SigInfo.of(data), enc.fork()).ok
    assert cpu.platform.siginfo(data) is cpu.platform.siginfo(data)
    bare = Cpu(0)  # no platform, and no firmware yet: FEATURE_CONTROL is unlocked
    with pytest.raises(GeneralProtection, match="SGX is not enabled"):
        einit(bare, data, enc.fork())  # ENCLS #GPs until firmware locks SGX_ENABLE
    set_lehash(bare, key_a.mrsigner)  # before firmware locks FEATURE_CONTROL the MSRs are writable
    bare.wrmsr(0x3A, 0x60001)  # firmware: locked, SGX and LC enabled
    assert einit(bare, data, enc.fork()).ok  # the token-less path works without a platform


def test_token_path_on_a_bare_cpu_is_a_config_error(key_a, le_key):
    _, _, le = le_platform(le_key, allow=[key_a.mrsigner])
    enc = build()
    sig = sign(key_a, enc.mrenclave())
    tok = le.get_token(sig, BASE).token
    bare = Cpu(0)
    bare.wrmsr(0x3A, 0x60001)  # firmware: locked, SGX and LC enabled
    set_lehash(bare, le_key.mrsigner)
    with pytest.raises(ConfigError, match="Platform"):
        einit(bare, sig, enc, tok)


def test_vendor_0x8086_is_allowed(key_a):
    cpu, sig, enc = tokenless_setup(key_a, vendor=0x8086)
    assert einit(cpu, sig, enc).ok


# --------------------------------------------------------------------------- each check, token-less


@pytest.mark.parametrize(
    ("field_", "value", "label", "offset"),
    [
        ("header", bytes(16), "HEADER", 0),
        ("vendor", 0x1234, "VENDOR", 16),
        ("header2", bytes(16), "HEADER2", 24),
        ("reserved1", b"\x01" + bytes(83), "RESERVED", 44),
        ("exponent", 65537, "EXPONENT", 512),
        ("reserved2", b"\x01\0\0\0", "RESERVED", 908),
        ("reserved3", b"\x01" + bytes(15), "RESERVED", 992),
        ("reserved4", b"\x01" + bytes(11), "RESERVED", 1028),
    ],
)
def test_sigstruct_format(key_a, field_, value, label, offset):
    cpu, sig, enc = tokenless_setup(key_a)
    r = einit(cpu, sig.replace(**{field_: value}), enc)
    assert (r.code, r.name, r.check) == (1, "SGX_INVALID_SIG_STRUCT", "sigstruct-format")
    assert f"SIGSTRUCT.{label} at offset {offset}" in r.reason and "expected" in r.reason
    assert not enc.initialized


def test_unmasked_event_then_retry(key_a):
    cpu, sig, enc = tokenless_setup(key_a)
    cpu.inject_event()
    r = einit(cpu, sig, enc)
    assert (r.code, r.name, r.check) == (128, "SGX_UNMASKED_EVENT", "unmasked-event")
    assert "interrupt" in r.reason and "CPU 0" in r.reason and "retry" in r.reason
    assert not cpu.pending_event and not enc.initialized
    assert einit(cpu, sig, enc).ok  # Linux's retry loop succeeds


def test_event_is_only_seen_inside_the_event_window(key_a):
    """A malformed SIGSTRUCT is refused before the window opens; the event stays pending."""
    cpu, sig, enc = tokenless_setup(key_a)
    cpu.inject_event()
    assert einit(cpu, sig.replace(vendor=1), enc).code == 1
    assert cpu.pending_event
    assert einit(cpu, sig, enc).code == 128


def test_event_on_another_cpu_does_not_matter(key_a):
    p = Platform(2)
    for c in p.cpus:
        set_lehash(c, key_a.mrsigner)
    enc = build()
    sig = sign(key_a, enc.mrenclave())
    p.cpu(1).inject_event()
    assert einit(p.cpu(0), sig, enc).ok


@pytest.mark.parametrize(
    ("mutate", "words"),
    [
        (lambda s: s.replace(signature=flip(s.signature, 5)), "does not verify"),
        (lambda s: s.replace(q1=flip(s.q1)), "Q1"),
        (lambda s: s.replace(q2=flip(s.q2)), "Q2"),
        (lambda s: s.replace(isvsvn=s.isvsvn + 1), "does not verify"),  # a signed field changed
        (lambda s: s.replace(enclavehash=flip(s.enclavehash)), "does not verify"),
        (lambda s: s.replace(signature=s.modulus), "not less than the modulus"),
    ],
)
def test_signature(key_a, mutate, words):
    cpu, sig, enc = tokenless_setup(key_a)
    r = einit(cpu, mutate(sig), enc)
    assert (r.code, r.name, r.check) == (8, "SGX_INVALID_SIGNATURE", "signature")
    assert words in r.reason and key_a.mrsigner.short() in r.reason


def test_signature_by_another_key_with_this_modulus(key_a, key_b):
    """A SIGSTRUCT signed by B but carrying A's modulus: the signature is checked with the *embedded* key."""
    cpu, sig, enc = tokenless_setup(key_a)
    forged = sign(key_b, enc.mrenclave()).replace(modulus=key_a.modulus_le)
    assert einit(cpu, forged, enc).code == SgxError.SGX_INVALID_SIGNATURE


def test_kss_family_id_rule(key_a):
    fam = bytes.fromhex("0102030405060708090a0b0c0d0e0f10")
    cpu, sig, enc = tokenless_setup(key_a, isvfamilyid=fam)
    r = einit(cpu, sig, enc)
    assert (r.code, r.name, r.check) == (1, "SGX_INVALID_SIG_STRUCT", "kss-familyid")
    assert "ISVFAMILYID" in r.reason and fam.hex() in r.reason and "KSS" in r.reason
    # With KSS in the SECS (and in the signed attributes) the family ID is allowed and committed.
    kss = Attributes(int(Attr.MODE64BIT | Attr.KSS), 0x3)
    enc2 = build(attrs=kss)
    sig2 = sign(key_a, enc2.mrenclave(), attributes=kss, isvfamilyid=fam)
    assert einit(cpu, sig2, enc2).ok and enc2.isvfamilyid == fam


def test_measurement(key_a):
    cpu, sig, _ = tokenless_setup(key_a)
    other = build(code=b"\x90" * 4096)
    r = einit(cpu, sig, other)
    assert (r.code, r.name, r.check) == (4, "SGX_INVALID_MEASUREMENT", "measurement")
    assert r.reason == (
        f"MRENCLAVE {other.mrenclave()[:4].hex()}… ≠ SIGSTRUCT.ENCLAVEHASH {sig.enclavehash[:4].hex()}…"
    )


def test_measurement_of_a_given_hash(key_a):
    cpu, sig, _ = tokenless_setup(key_a)
    secs = Secs.new(size=0x2000)
    assert einit(cpu, sig, Enclave.with_measurement(secs, sig.enclavehash)).ok
    assert einit(cpu, sig, Enclave.with_measurement(secs, flip(sig.enclavehash))).code == 4


def test_controlled_attribute_needs_the_le_hash(key_a, key_b):
    lek = Attributes(int(Attr.MODE64BIT | Attr.EINITTOKEN_KEY), 0x3)
    cpu = Platform(1).cpu(0)
    enc = build(attrs=lek)
    sig = sign(key_a, enc.mrenclave(), attributes=lek)
    set_lehash(cpu, key_b.mrsigner)
    r = einit(cpu, sig, enc)
    assert (r.code, r.name, r.check) == (2, "SGX_INVALID_ATTRIBUTE", "controlled-attributes")
    assert "EINITTOKEN_KEY" in r.reason and "0x24/0x3" in r.reason
    assert f"MRSIGNER {key_a.mrsigner.short()} ≠ CPU 0's IA32_SGXLEPUBKEYHASH {key_b.mrsigner.short()}" in r.reason
    set_lehash(cpu, key_a.mrsigner)  # now key A *is* the LE signer
    assert einit(cpu, sig, enc).ok


@pytest.mark.parametrize(
    ("secs", "sig_attrs", "mask", "ok"),
    [
        (Attributes(0x4, 0x7), BASE, None, False),  # XFRM bit 2 compared
        (Attributes(0x4, 0x7), BASE, Attributes(U64 & ~2, U64 & ~4), True),  # XFRM bit 2 masked out
        (Attributes(0x14, 0x3), BASE, None, False),  # PROVISIONKEY not signed
        (Attributes(0x6, 0x3), BASE, None, True),  # DEBUG is outside the default mask
        (Attributes(0x6, 0x3), BASE, Attributes(U64, U64), False),  # ...unless the author masks it in
        (Attributes(0x4, 0x3), Attributes(0x84, 0x3), None, False),  # signed KSS, SECS without
        (Attributes(0x4, 0x3), Attributes(0x6, 0x3), None, True),  # both sides masked (pseudocode, not prose)
        (Attributes(0x84, 0x3), BASE, None, False),  # KSS in the SECS, not signed
        (Attributes(0x84, 0x7), BASE, Attributes(0, 0), True),  # all masked out: anything goes
    ],
)
def test_attributes_and_xfrm_mask(key_a, secs, sig_attrs, mask, ok):
    cpu = Platform(1).cpu(0)
    set_lehash(cpu, key_a.mrsigner)
    enc = build(attrs=secs)
    sig = sign(key_a, enc.mrenclave(), attributes=sig_attrs, attributemask=mask)
    r = einit(cpu, sig, enc)
    if ok:
        assert r.ok, r
    else:
        assert (r.code, r.name, r.check) == (2, "SGX_INVALID_ATTRIBUTE", "attributes-mask")
        m = sig.attributemask
        assert f"SECS.ATTRIBUTES {secs} & ATTRIBUTEMASK {m} = {secs & m}" in r.reason
        assert f"SIGSTRUCT.ATTRIBUTES {sig_attrs} & mask = {sig_attrs & m}" in r.reason


@pytest.mark.parametrize(
    ("secs_misc", "sig_misc", "mask", "ok"),
    [(1, 0, 0xFFFFFFFF, False), (1, 0, 0xFFFFFFFE, True), (0, 1, 1, False), (1, 1, 1, True), (0, 0, 0, True)],
)
def test_miscselect_mask(key_a, secs_misc, sig_misc, mask, ok):
    cpu = Platform(1).cpu(0)
    set_lehash(cpu, key_a.mrsigner)
    enc = build(miscselect=secs_misc)
    sig = sign(key_a, enc.mrenclave(), miscselect=sig_misc, miscmask=mask)
    r = einit(cpu, sig, enc)
    if ok:
        assert r.ok, r
    else:
        assert (r.code, r.name, r.check) == (2, "SGX_INVALID_ATTRIBUTE", "miscselect-mask")
        assert f"SECS.MISCSELECT {secs_misc:#x} & MISCMASK {mask:#x} = {secs_misc & mask:#x}" in r.reason
        assert f"SIGSTRUCT.MISCSELECT {sig_misc:#x} & mask = {sig_misc & mask:#x}" in r.reason


def test_tokenless_mrsigner_is_compared_with_the_executing_cpu(key_a):
    """The MSRs are per logical CPU: writing them on CPU 0 does not help an EINIT on CPU 2."""
    p = Platform(4)
    set_lehash(p.cpu(0), key_a.mrsigner)
    enc = build()
    sig = sign(key_a, enc.mrenclave())
    r = einit(p.cpu(2), sig, enc)
    assert (r.code, r.name, r.check, r.cpu) == (16, "SGX_INVALID_EINITTOKEN", "tokenless-mrsigner", 2)
    assert r.reason == (
        f"MRSIGNER {key_a.mrsigner.short()} ≠ CPU 2's IA32_SGXLEPUBKEYHASH acb77012… (token-less launch)"
    )
    assert einit(p.cpu(0), sig, enc).ok


def test_valid_bit0_clear_takes_the_tokenless_path(key_a):
    """VALID=2: bit 0 clear, so the token-less path runs and reserved bit 1 is never looked at."""
    cpu, sig, enc = tokenless_setup(key_a)
    assert einit(cpu, sig, enc, Einittoken(valid=2, reserved1=b"\xee" * 44)).ok


def test_no_lc_cpu_uses_the_hardwired_intel_hash(key_a):
    cpu = Platform(1, "no-lc").cpu(0)
    enc = build()
    r = einit(cpu, sign(key_a, enc.mrenclave()), enc)
    assert r.code == 16 and "acb77012…" in r.reason


# --------------------------------------------------------------------------- the launch enclave


def test_le_launches_only_where_the_msrs_hold_its_signer(le_key):
    p = Platform(1)
    cpu = p.cpu(0)
    le = LaunchEnclave.create(le_key)
    assert le.sigstruct.attributes.flags & Attr.EINITTOKEN_KEY
    r = le.launch(cpu)  # Intel's reset value in the MSRs
    assert (r.code, r.check) == (SgxError.SGX_INVALID_ATTRIBUTE, "controlled-attributes")
    assert le.enclave is None
    assert not le.get_token(le.sigstruct).granted
    assert "not running" in le.get_token(le.sigstruct).reason
    set_lehash(cpu, le_key.mrsigner)
    assert le.launch(cpu).ok
    assert le.enclave.initialized and le.enclave.secs.attributes.flags == 0x25
    assert le.mrsigner == le_key.mrsigner


def test_le_token_passes_einit_and_looks_like_intels(le_key, key_a):
    p, cpu, le = le_platform(le_key, allow=[key_a.mrsigner])
    enc = build()
    sig = sign(key_a, enc.mrenclave())
    tr = le.get_token(sig, BASE)
    assert tr.granted and le_key.mrsigner.short() in tr.reason
    t = tr.token
    assert t.valid == 1 and t.mrenclave == enc.mrenclave() and t.mrsigner == key_a.mrsigner.digest
    assert t.attributes == BASE
    assert t.cpusvnle == p.cpusvn == DEFAULT_CPUSVN
    assert (t.isvprodidle, t.isvsvnle) == (INTEL_LE_ISVPRODID, 1)
    assert t.maskedattributesle == Attributes(0x21, 0)  # as in the real Intel-LE token
    assert t.reserved_problems() == []
    assert len(Einittoken.from_bytes(t.to_bytes()).to_bytes()) == 304
    r = einit(cpu, sig, enc, t)
    assert r.ok and "launched with an EINITTOKEN" in r.reason


def test_tokens_are_good_on_every_cpu_with_the_same_msrs(le_key, key_a):
    p, cpu, le = le_platform(le_key, allow=[key_a.mrsigner], ncpus=3)
    enc = build()
    sig = sign(key_a, enc.mrenclave())
    tok = le.get_token(sig, BASE).token
    r = einit(p.cpu(2), sig, enc.fork(), tok)  # CPU 2 still holds Intel's hash
    assert (r.code, r.check, r.cpu) == (16, "token-mac", 2)
    set_lehash(p.cpu(2), le_key.mrsigner)
    assert einit(p.cpu(2), sig, enc.fork(), tok).ok


def test_both_launch_flows_work_for_the_same_enclave(le_key, key_a):
    p, cpu, le = le_platform(le_key, allow=[key_a.mrsigner])
    enc = build()
    sig = sign(key_a, enc.mrenclave())
    assert einit(cpu, sig, enc.fork(), le.get_token(sig, BASE).token).ok  # legacy: LE token
    set_lehash(cpu, key_a.mrsigner)
    assert einit(cpu, sig, enc.fork()).ok  # FLC: the enclave's own signer, VALID=0
    assert einit(cpu, sig, enc.fork(), Einittoken.zero()).ok


def test_le_policy_allowlist(le_key, key_a, key_b):
    _, cpu, le = le_platform(le_key, allow=[key_a.mrsigner.hex()])
    enc = build()
    sig_b = sign(key_b, enc.mrenclave())
    tr = le.get_token(sig_b, BASE)
    assert not tr.granted and tr.token is None
    assert "allowlist" in tr.reason and key_b.mrsigner.short() in tr.reason
    assert le.get_token(sign(key_a, enc.mrenclave()), BASE).granted


def test_le_policy_debug_enclaves_always_allowed(le_key, key_b):
    _, cpu, le = le_platform(le_key)  # empty allowlist
    dbg = Attributes(int(Attr.MODE64BIT | Attr.DEBUG), 0x3)
    enc = build(attrs=dbg)
    sig = sign(key_b, enc.mrenclave())  # DEBUG is outside the default mask
    tr = le.get_token(sig, dbg)
    assert tr.granted
    assert einit(cpu, sig, enc, tr.token).ok


def test_le_policy_provisionkey_only_for_listed_signers(le_key, key_a, key_b):
    _, cpu, le = le_platform(le_key, allow=[key_a.mrsigner, key_b.mrsigner], provision=[key_a.mrsigner])
    prov = Attributes(int(Attr.MODE64BIT | Attr.PROVISIONKEY), 0x3)
    enc = build(attrs=prov)
    sig_a = sign(key_a, enc.mrenclave(), attributes=prov)
    sig_b = sign(key_b, enc.mrenclave(), attributes=prov)
    refused = le.get_token(sig_b, prov)
    assert not refused.granted and "PROVISIONKEY" in refused.reason and "provisioning list" in refused.reason
    # Not even for a debug enclave: Intel's LE checks PROVISIONKEY before it lets debug enclaves through.
    dbg_prov = Attributes(prov.flags | int(Attr.DEBUG), 0x3)
    assert not le.get_token(sig_b, dbg_prov).granted
    granted = le.get_token(sig_a, prov)
    assert granted.granted
    assert einit(cpu, sig_a, enc, granted.token).ok


def test_le_built_directly_accepts_hash_spellings(le_key, key_a):
    le = LaunchEnclave(le_key, allowlist=[key_a.mrsigner.hex()], provision_allowlist=[key_a.mrsigner])
    assert le.allowlist == frozenset({key_a.mrsigner.digest}) == le.provision_allowlist
    with pytest.raises(ConfigError):
        LaunchEnclave.create(le_key, allowlist=[42])


def test_token_fails_after_the_msrs_change_away_from_the_le(le_key, key_a):
    p, cpu, le = le_platform(le_key, allow=[key_a.mrsigner])
    enc = build()
    sig = sign(key_a, enc.mrenclave())
    tok = le.get_token(sig, BASE).token
    for h in (INTEL_LEPUBKEYHASH, key_a.mrsigner):  # even the enclave's own signer: VALID=1 takes the token path
        set_lehash(cpu, h)
        r = einit(cpu, sig, enc, tok)
        assert (r.code, r.check) == (16, "token-mac")
        assert f"IA32_SGXLEPUBKEYHASH {h.short()}" in r.reason
    set_lehash(cpu, le_key.mrsigner)  # the LE's signer is back: the token is good again
    assert einit(cpu, sig, enc, tok).ok


def test_token_fails_after_s3(le_key, key_a):
    p, cpu, le = le_platform(le_key, allow=[key_a.mrsigner])
    enc = build()
    sig = sign(key_a, enc.mrenclave())
    tok = le.get_token(sig, BASE).token
    p.s3_resume()  # the MSRs return to Intel's value
    assert einit(cpu, sig, enc, tok).check == "token-mac"


def test_token_from_platform_a_fails_on_platform_b(le_key, key_a):
    _, cpu_a, le = le_platform(le_key, allow=[key_a.mrsigner], seed=1)
    p_b = Platform(1, seed=2)
    cpu_b = p_b.cpu(0)
    set_lehash(cpu_b, le_key.mrsigner)  # same MSRs, same CPUSVN, other fuses
    enc = build()
    sig = sign(key_a, enc.mrenclave())
    tok = le.get_token(sig, BASE).token
    r = einit(cpu_b, sig, enc.fork(), tok)
    assert (r.code, r.name, r.check) == (16, "SGX_INVALID_EINITTOKEN", "token-mac")
    assert "EINITTOKEN.MAC" in r.reason and tok.mac[:4].hex() in r.reason
    assert einit(cpu_a, sig, enc.fork(), tok).ok


# --------------------------------------------------------------------------- token checks


def test_debug_le_rule(le_key, key_a):
    _, cpu, dle = le_platform(le_key, allow=[key_a.mrsigner], debug=True)
    assert dle.enclave.secs.attributes.flags & Attr.DEBUG
    enc = build()
    sig = sign(key_a, enc.mrenclave())
    tok = dle.get_token(sig, BASE).token
    assert tok.maskedattributesle == Attributes(0x23, 0)
    r = einit(cpu, sig, enc, tok)
    assert (r.code, r.name, r.check) == (16, "SGX_INVALID_EINITTOKEN", "token-debug-le")
    assert "MASKEDATTRIBUTESLE 0x23/0x0" in r.reason and "SECS.ATTRIBUTES 0x4/0x3" in r.reason
    # A debug LE may launch a debug enclave.
    dbg = Attributes(int(Attr.MODE64BIT | Attr.DEBUG), 0x3)
    enc_d = build(attrs=dbg)
    sig_d = sign(key_a, enc_d.mrenclave())
    assert einit(cpu, sig_d, enc_d, dle.get_token(sig_d, dbg).token).ok


@pytest.mark.parametrize(
    ("change", "offset"),
    [
        ({"valid": 3}, 0),
        ({"valid": 0x80000001}, 0),
        ({"reserved1": b"\x01" + bytes(43)}, 4),
        ({"reserved2": bytes(31) + b"\x01"}, 96),
        ({"reserved3": b"\xee" * 32}, 160),
        ({"reserved4": b"\x01" + bytes(23)}, 212),
    ],
)
def test_token_reserved_space(le_key, key_a, change, offset):
    _, cpu, le = le_platform(le_key, allow=[key_a.mrsigner])
    enc = build()
    sig = sign(key_a, enc.mrenclave())
    tok = le.get_token(sig, BASE).token
    r = einit(cpu, sig, enc, tok.replace(**change))
    assert (r.code, r.name, r.check) == (16, "SGX_INVALID_EINITTOKEN", "token-reserved")
    assert f"offset {offset}" in r.reason and ("VALID" in r.reason or "RESERVED" in r.reason)


def _token_with_cpusvn(cpu: Cpu, le: LaunchEnclave, sig: Sigstruct, cpusvn: bytes) -> Einittoken:
    """A token MACed with a key requested for ``cpusvn``, the way an LE on an older TCB would."""
    secs = le.enclave.secs
    tok = Einittoken(
        valid=1,
        attributes=BASE,
        mrenclave=sig.enclavehash,
        mrsigner=sig.mrsigner.digest,
        cpusvnle=cpusvn,
        isvprodidle=secs.isvprodid,
        isvsvnle=secs.isvsvn,
        maskedattributesle=secs.attributes & Attributes(U64 & ~4, 0),
        keyid=b"k" * 32,
    )
    req = Keyrequest(
        keyname=0,
        isvsvn=secs.isvsvn,
        cpusvn=cpusvn,
        attributemask=Attributes(U64 & ~4, 0),
        keyid=tok.keyid,
        miscmask=0xFFFFFFFF,
    )
    k = egetkey(cpu, le.enclave, req)
    assert k.ok, k
    tok.mac = aes_cmac(k.key, tok.mac_data())
    return tok


def test_token_cpusvn_rule(le_key, key_a):
    _, cpu, le = le_platform(le_key, allow=[key_a.mrsigner])
    enc = build()
    sig = sign(key_a, enc.mrenclave())
    tok = le.get_token(sig, BASE).token
    beyond = bytes([2, 6, 3]) + DEFAULT_CPUSVN[3:]  # one component above the CPU's
    r = einit(cpu, sig, enc, tok.replace(cpusvnle=beyond))
    assert (r.code, r.name, r.check) == (32, "SGX_INVALID_CPUSVN", "token-cpusvn")
    assert beyond.hex() in r.reason and DEFAULT_CPUSVN.hex() in r.reason
    # Component-wise: a larger first byte but a smaller later one is still "beyond".
    mixed = bytes([3, 0]) + bytes(14)
    assert einit(cpu, sig, enc, tok.replace(cpusvnle=mixed)).code == 32
    # A token from an older TCB (every component <= the CPU's) passes if its MAC used that CPUSVN.
    older = bytes([2, 5, 2, 0x10, 1, 0]) + bytes(10)
    assert einit(cpu, sig, enc, _token_with_cpusvn(cpu, le, sig, older)).ok


def test_token_cpusvn_against_a_platform_cpusvn(le_key, key_a):
    """After a microcode rollback (lower CPUSVN), tokens made on the newer TCB are refused."""
    new = bytes([9] * 16)
    p = Platform(1, cpusvn=new)
    cpu = p.cpu(0)
    set_lehash(cpu, le_key.mrsigner)
    le = LaunchEnclave.create(le_key, allowlist=[key_a.mrsigner])
    assert le.launch(cpu).ok
    enc = build()
    sig = sign(key_a, enc.mrenclave())
    tok = le.get_token(sig, BASE).token
    assert tok.cpusvnle == new
    p.cpusvn = bytes([8] * 16)
    assert einit(cpu, sig, enc, tok).check == "token-cpusvn"


def test_token_mac(le_key, key_a):
    _, cpu, le = le_platform(le_key, allow=[key_a.mrsigner])
    enc = build()
    sig = sign(key_a, enc.mrenclave())
    tok = le.get_token(sig, BASE).token
    r = einit(cpu, sig, enc, tok.replace(mac=flip(tok.mac)))
    assert (r.code, r.name, r.check) == (16, "SGX_INVALID_EINITTOKEN", "token-mac")
    assert "launch key" in r.reason and le_key.mrsigner.short() in r.reason
    # A MACed field changed without re-MACing fails at the MAC, before the token's own checks.
    assert einit(cpu, sig, enc, tok.replace(attributes=Attributes(0x6, 0x3))).check == "token-mac"
    # Fields outside the 192 MACed bytes still change the key, so they fail here too.
    for change in ({"keyid": b"x" * 32}, {"isvprodidle": 1}, {"maskedmiscselectle": 1}):
        assert einit(cpu, sig, enc, tok.replace(**change)).check == "token-mac", change
    assert einit(cpu, sig, enc, tok).ok


def test_token_mrenclave_and_mrsigner(le_key, key_a, key_b):
    _, cpu, le = le_platform(le_key, allow=[key_a.mrsigner, key_b.mrsigner])
    enc = build()
    sig = sign(key_a, enc.mrenclave())
    other_enc = sig.replace(enclavehash=hashlib.sha256(b"another enclave").digest())
    r = einit(cpu, sig, enc.fork(), le.get_token(other_enc, BASE).token)
    assert (r.code, r.name, r.check) == (4, "SGX_INVALID_MEASUREMENT", "token-measurement")
    assert "EINITTOKEN.MRENCLAVE" in r.reason and enc.mrenclave()[:4].hex() in r.reason
    other_signer = sign(key_b, enc.mrenclave())
    r = einit(cpu, sig, enc.fork(), le.get_token(other_signer, BASE).token)
    assert (r.code, r.check) == (4, "token-measurement")
    assert f"EINITTOKEN.MRSIGNER {key_b.mrsigner.short()} ≠ the enclave's MRSIGNER {key_a.mrsigner.short()}" in (
        r.reason
    )


def test_token_attributes(le_key, key_a):
    _, cpu, le = le_platform(le_key, allow=[key_a.mrsigner])
    enc = build()
    sig = sign(key_a, enc.mrenclave())
    tok = le.get_token(sig, Attributes(0x4, 0x7)).token  # made for other SECS attributes
    r = einit(cpu, sig, enc, tok)
    assert (r.code, r.name, r.check) == (2, "SGX_INVALID_ATTRIBUTE", "token-attributes")
    assert r.reason == "EINITTOKEN.ATTRIBUTES 0x4/0x7 ≠ SECS.ATTRIBUTES 0x4/0x3"


# --------------------------------------------------------------------------- the SDM's contradictions


def test_docstring_documents_the_three_choices():
    doc = einit_mod.__doc__
    for words in ("Controlled attributes", "TMP_TOKEN.ISVSVN", "SGX_INVALID_EINIT_ATTRIBUTE"):
        assert words in doc


def test_contradiction_controlled_attributes_tests_the_secs(le_key, key_a):
    """Prose: SIGSTRUCT.ATTRIBUTES; pseudocode: SECS.ATTRIBUTES. sgxlab follows the pseudocode."""
    _, cpu, le = le_platform(le_key, allow=[key_a.mrsigner])
    no_bit5 = Attributes(U64 & ~(2 | 0x20), U64)  # the author leaves EINITTOKEN_KEY out of the mask
    lek = Attributes(int(Attr.MODE64BIT | Attr.EINITTOKEN_KEY), 0x3)
    # (a) Signed with EINITTOKEN_KEY, SECS without: the prose would refuse; the pseudocode launches.
    enc = build()
    sig = sign(key_a, enc.mrenclave(), attributes=lek, attributemask=no_bit5)
    assert einit(cpu, sig, enc, le.get_token(sig, BASE).token).ok
    # (b) SECS with EINITTOKEN_KEY, signed without: the prose would pass it; the pseudocode refuses.
    enc = build(attrs=lek)
    sig = sign(key_a, enc.mrenclave(), attributes=BASE, attributemask=no_bit5)
    r = einit(cpu, sig, enc, le.get_token(sig, lek).token)
    assert (r.code, r.check) == (2, "controlled-attributes")


def test_contradiction_launch_key_isvsvn_is_the_tokens_isvsvnle(le_key, key_a):
    """The pseudocode's TMP_TOKEN.ISVSVN does not exist; sgxlab uses ISVSVNLE."""
    _, cpu, le = le_platform(le_key, allow=[key_a.mrsigner], isvsvn=5)
    enc = build()
    sig = sign(key_a, enc.mrenclave())
    tok = le.get_token(sig, BASE).token
    assert tok.isvsvnle == 5
    assert einit(cpu, sig, enc.fork(), tok).ok  # EINIT derived with 5, as the LE's EGETKEY did
    # ISVSVNLE is outside the MAC: only the key binds it. Change it and the MAC fails.
    assert einit(cpu, sig, enc.fork(), tok.replace(isvsvnle=4)).check == "token-mac"
    # An LE may ask for a key for a lower ISVSVN; a token carrying that value passes.
    req = Keyrequest(
        keyname=0,
        isvsvn=4,
        cpusvn=tok.cpusvnle,
        attributemask=Attributes(U64 & ~4, 0),
        keyid=tok.keyid,
        miscmask=0xFFFFFFFF,
    )
    k = egetkey(cpu, le.enclave, req).key
    t4 = tok.replace(isvsvnle=4)
    t4.mac = aes_cmac(k, t4.mac_data())
    assert launch_key(cpu, t4) == k
    assert einit(cpu, sig, enc.fork(), t4).ok


def test_contradiction_token_attributes_code(le_key, key_a):
    """SGX_INVALID_EINIT_ATTRIBUTE has no number; sgxlab returns SGX_INVALID_ATTRIBUTE (2)."""
    assert "SGX_INVALID_EINIT_ATTRIBUTE" not in SgxError.__members__
    _, cpu, le = le_platform(le_key, allow=[key_a.mrsigner])
    enc = build()
    sig = sign(key_a, enc.mrenclave())
    r = einit(cpu, sig, enc, le.get_token(sig, Attributes(0x4, 0xF)).token)
    assert (r.code, r.rax, r.name) == (SgxError.SGX_INVALID_ATTRIBUTE, 2, "SGX_INVALID_ATTRIBUTE")
    assert r.check == "token-attributes"


# --------------------------------------------------------------------------- launch key and EGETKEY


def _deps(**over) -> KeyDependencies:
    base = dict(
        keyname=0,
        isvfamilyid=bytes(16),
        isvextprodid=bytes(16),
        isvprodid=0x20,
        isvsvn=1,
        ownerepoch=bytes(16),
        attributes=Attributes(0x21, 0),
        attributesmask=Attributes(),
        mrenclave=bytes(32),
        mrsigner=bytes(32),
        keyid=bytes(32),
        cpusvn=bytes(16),
        padding=HARDCODED_PKCS1_5_PADDING,
        miscselect=0,
        miscmask=0,
    )
    base.update(over)
    return KeyDependencies(**base)


@pytest.mark.parametrize(
    "change",
    [
        {"keyname": 4},
        {"keypolicy": 1},
        {"isvfamilyid": b"\x01" + bytes(15)},
        {"isvextprodid": b"\x01" + bytes(15)},
        {"isvprodid": 0x21},
        {"isvsvn": 2},
        {"ownerepoch": b"\x01" + bytes(15)},
        {"attributes": Attributes(0x23, 0)},
        {"attributesmask": Attributes(1, 0)},
        {"mrenclave": b"\x01" + bytes(31)},
        {"mrsigner": b"\x01" + bytes(31)},
        {"keyid": b"\x01" + bytes(31)},
        {"cpusvn": b"\x01" + bytes(15)},
        {"padding": bytes(352)},
        {"miscselect": 1},
        {"miscmask": 1},
        {"configid": b"\x01" + bytes(63)},
        {"configsvn": 1},
    ],
    ids=lambda c: next(iter(c)),
)
def test_derivekey_depends_on_every_sdm_field(change):
    p = Platform(1)
    assert derivekey(p, _deps(**change)) != derivekey(p, _deps())


def test_derivekey_is_cmac_under_the_fuses():
    p, q = Platform(1, seed=1), Platform(1, seed=2)
    d = _deps()
    assert derivekey(p, d) == aes_cmac(p.fuses, d.serialize()) and len(derivekey(p, d)) == 16
    assert derivekey(p, d) != derivekey(q, d)
    assert len(d.serialize()) == len(_deps(isvsvn=0xFFFF).serialize())  # fixed width


def test_launch_key_uses_the_msrs_not_the_tokens_mrsigner(le_key, key_a):
    p, cpu, le = le_platform(le_key, allow=[key_a.mrsigner])
    enc = build()
    tok = le.get_token(sign(key_a, enc.mrenclave()), BASE).token
    k = launch_key(cpu, tok)
    assert launch_key(cpu, tok.replace(mrsigner=bytes(32), mrenclave=bytes(32))) == k
    set_lehash(cpu, key_a.mrsigner)
    assert launch_key(cpu, tok) != k
    set_lehash(cpu, le_key.mrsigner)
    p.owner_epoch = bytes(16)  # a new owner
    assert launch_key(cpu, tok) != k


def test_egetkey_equals_einits_launch_key(le_key, key_a):
    _, cpu, le = le_platform(le_key, allow=[key_a.mrsigner])
    tok = le.get_token(sign(key_a, build().mrenclave()), BASE).token
    req = Keyrequest(
        keyname=int(KeyName.EINITTOKEN_KEY),
        isvsvn=1,
        cpusvn=DEFAULT_CPUSVN,
        attributemask=Attributes(U64 & ~4, 0),
        keyid=tok.keyid,
        miscmask=0xFFFFFFFF,
    )
    r = egetkey(cpu, le.enclave, req)
    assert r.ok and r.code == 0 and len(r.key) == 16 and r.key == launch_key(cpu, tok)


def _initialized(key: SigningKey, attrs: Attributes = BASE, isvsvn: int = 3) -> tuple[Cpu, Enclave]:
    cpu = Platform(1).cpu(0)
    set_lehash(cpu, key.mrsigner)
    enc = build(attrs=attrs)
    assert einit(cpu, sign(key, enc.mrenclave(), attributes=attrs, isvsvn=isvsvn), enc).ok
    return cpu, enc


def test_egetkey_without_einittoken_key_attribute(key_a):
    cpu, enc = _initialized(key_a)
    r = egetkey(cpu, enc, Keyrequest(keyname=0))
    assert (r.code, r.key, r.ok) == (SgxError.SGX_INVALID_ATTRIBUTE, None, False)
    assert int(r.code) == 2 and "EINITTOKEN_KEY" in r.reason


def test_egetkey_errors_in_sdm_order(key_a):
    lek = Attributes(int(Attr.MODE64BIT | Attr.EINITTOKEN_KEY), 0x3)
    cpu, enc = _initialized(key_a, lek, isvsvn=3)
    beyond = bytes([3]) + DEFAULT_CPUSVN[1:]
    r = egetkey(cpu, enc, Keyrequest(keyname=0, cpusvn=beyond))
    assert (r.code, int(r.code)) == (SgxError.SGX_INVALID_CPUSVN, 32) and beyond.hex() in r.reason
    r = egetkey(cpu, enc, Keyrequest(keyname=0, isvsvn=4))
    assert (r.code, int(r.code)) == (SgxError.SGX_INVALID_ISVSVN, 64) and "ISVSVN 4" in r.reason
    # Both beyond: CPUSVN is checked first (SDM EGETKEY, case EINITTOKEN_KEY).
    assert egetkey(cpu, enc, Keyrequest(keyname=0, isvsvn=4, cpusvn=beyond)).code == 32
    assert egetkey(cpu, enc, Keyrequest(keyname=0, isvsvn=3)).ok
    # The attribute comes before both.
    cpu2, plain = _initialized(key_a)
    assert egetkey(cpu2, plain, Keyrequest(keyname=0, isvsvn=99, cpusvn=beyond)).code == 2


def test_egetkey_faults_and_keynames(key_a):
    lek = Attributes(int(Attr.MODE64BIT | Attr.EINITTOKEN_KEY), 0x3)
    cpu, enc = _initialized(key_a, lek)
    assert egetkey(cpu, enc, Keyrequest(keyname=5)).code == SgxError.SGX_INVALID_KEYNAME
    with pytest.raises(SgxlabError, match="not modelled"):
        egetkey(cpu, enc, Keyrequest(keyname=int(KeyName.SEAL_KEY)))
    with pytest.raises(GeneralProtection, match="reserved"):
        egetkey(cpu, enc, Keyrequest(keyname=0, reserved2=b"\x01" + bytes(433)))
    with pytest.raises(GeneralProtection, match="reserved"):
        egetkey(cpu, enc, Keyrequest(keyname=0, keypolicy=0x40))
    with pytest.raises(GeneralProtection, match="KSS"):
        egetkey(cpu, enc, Keyrequest(keyname=0, configsvn=1))
    with pytest.raises(GeneralProtection, match="initialized"):
        egetkey(cpu, build(attrs=lek), Keyrequest(keyname=0))


# --------------------------------------------------------------------------- first failing check wins


@dataclass
class Scenario:
    """How to build one EINIT; each breaker makes exactly one check fail."""

    secs_mods: list[Callable[[Attributes], Attributes]] = field(default_factory=list)
    sig_attr_mods: list[Callable[[Attributes], Attributes]] = field(default_factory=list)
    secs_misc: int = 0
    sig_kw: dict = field(default_factory=dict)
    post_sign: list[Callable[[Sigstruct], Sigstruct]] = field(default_factory=list)
    tokenless: bool = False
    debug_le: bool = False
    req_sig: list[Callable[[Sigstruct], Sigstruct]] = field(default_factory=list)
    req_attrs: list[Callable[[Attributes], Attributes]] = field(default_factory=list)
    token_post: list[Callable[[Einittoken], Einittoken]] = field(default_factory=list)
    event: bool = False


def _or_flags(bits: int) -> Callable[[Attributes], Attributes]:
    return lambda a: Attributes(a.flags | bits, a.xfrm)


BREAKERS: dict[str, Callable[[Scenario], None]] = {
    "sigstruct-format": lambda s: s.post_sign.append(lambda g: g.replace(exponent=65537)),
    "unmasked-event": lambda s: setattr(s, "event", True),
    "signature": lambda s: s.post_sign.append(lambda g: g.replace(signature=flip(g.signature, 7))),
    "kss-familyid": lambda s: s.sig_kw.update(isvfamilyid=b"\x01" + bytes(15)),
    "measurement": lambda s: s.sig_kw.update(enclavehash=hashlib.sha256(b"not this enclave").digest()),
    "controlled-attributes": lambda s: (
        s.secs_mods.append(_or_flags(int(Attr.EINITTOKEN_KEY))),
        s.sig_attr_mods.append(_or_flags(int(Attr.EINITTOKEN_KEY))),
    ),
    "attributes-mask": lambda s: s.secs_mods.append(lambda a: Attributes(a.flags, a.xfrm | 0x4)),
    "miscselect-mask": lambda s: setattr(s, "secs_misc", 1),
    "tokenless-mrsigner": lambda s: setattr(s, "tokenless", True),
    "token-debug-le": lambda s: setattr(s, "debug_le", True),
    "token-reserved": lambda s: s.token_post.append(lambda t: t.replace(reserved4=b"\x01" + bytes(23))),
    "token-cpusvn": lambda s: s.token_post.append(lambda t: t.replace(cpusvnle=b"\x03" + t.cpusvnle[1:])),
    "token-mac": lambda s: s.token_post.append(lambda t: t.replace(mac=flip(t.mac))),
    "token-measurement": lambda s: s.req_sig.append(
        lambda g: g.replace(enclavehash=hashlib.sha256(b"some other enclave").digest())
    ),
    "token-attributes": lambda s: s.req_attrs.append(lambda a: Attributes(a.flags, a.xfrm ^ 0x80)),
}
assert tuple(BREAKERS) == CHECKS

TOKEN_ONLY = set(CHECKS[9:])


def compatible(names: tuple[str, ...]) -> bool:
    """The token-less path and the token checks exclude each other."""
    return not ("tokenless-mrsigner" in names and TOKEN_ONLY & set(names))


@dataclass
class Keys:
    le: SigningKey
    enclave: SigningKey


@pytest.fixture(scope="module")
def keys(le_key, key_a) -> Keys:
    return Keys(le_key, key_a)


def run_scenario(keys: Keys, names: tuple[str, ...]) -> tuple:
    sc = Scenario()
    for n in names:
        BREAKERS[n](sc)
    p = Platform(1, seed=7)
    cpu = p.cpu(0)
    set_lehash(cpu, keys.le.mrsigner)  # the legacy flow: the LE's signer is in the MSRs
    le = LaunchEnclave.create(keys.le, allowlist=[keys.enclave.mrsigner], debug=sc.debug_le)
    assert le.launch(cpu).ok
    secs_attrs = BASE
    for f in sc.secs_mods:
        secs_attrs = f(secs_attrs)
    sig_attrs = BASE
    for f in sc.sig_attr_mods:
        sig_attrs = f(sig_attrs)
    enc = build(attrs=secs_attrs, miscselect=sc.secs_misc)
    kw = {"enclavehash": enc.mrenclave(), "attributes": sig_attrs, **sc.sig_kw}
    sig = sign(keys.enclave, kw.pop("enclavehash"), **kw)
    for f in sc.post_sign:
        sig = f(sig)
    if sc.tokenless:
        tok = Einittoken.zero()
    else:
        rsig, rattrs = sig, secs_attrs
        for f in sc.req_sig:
            rsig = f(rsig)
        for f in sc.req_attrs:
            rattrs = f(rattrs)
        tr = le.get_token(rsig, rattrs)
        assert tr.granted, tr.reason
        tok = tr.token
        for f in sc.token_post:
            tok = f(tok)
    if sc.event:
        cpu.inject_event()
    return einit(cpu, sig, enc, tok), enc


def test_base_scenario_succeeds(keys):
    r, enc = run_scenario(keys, ())
    assert r.ok and enc.initialized


@pytest.mark.parametrize("name", CHECKS)
def test_each_breaker_alone_fails_its_own_check(keys, name):
    r, enc = run_scenario(keys, (name,))
    assert (r.check, int(r.code)) == (name, CODE_OF[name]), r
    assert r.name == SgxError(CODE_OF[name]).name and not enc.initialized


PAIRS = [p for p in itertools.combinations(CHECKS, 2) if compatible(p)]


@pytest.mark.parametrize(("first", "second"), PAIRS, ids=[f"{a}+{b}" for a, b in PAIRS])
def test_pairs_first_in_sdm_order_wins(keys, first, second):
    for names in ((first, second), (second, first)):  # the order breakers are applied in is irrelevant
        r, _ = run_scenario(keys, names)
        assert (r.check, int(r.code)) == (first, CODE_OF[first]), (names, r)


def test_triples_first_in_sdm_order_wins(keys):
    triples = [t for t in itertools.combinations(CHECKS, 3) if compatible(t)]
    assert len(triples) > 350
    for t in triples:
        r, _ = run_scenario(keys, t)
        assert r.check == t[0], (t, r)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=st.sets(st.sampled_from(CHECKS), min_size=1).filter(lambda s: compatible(tuple(s))))
def test_any_combination_first_in_sdm_order_wins(keys, names):
    r, enc = run_scenario(keys, tuple(sorted(names)))
    first = min(names, key=CHECKS.index)
    assert (r.check, int(r.code)) == (first, CODE_OF[first]) and not enc.initialized


def test_everything_broken_gives_sigstruct_format(keys):
    token_path = tuple(c for c in CHECKS if c != "tokenless-mrsigner")
    assert run_scenario(keys, token_path)[0].check == "sigstruct-format"
    tokenless = tuple(c for c in CHECKS if c not in TOKEN_ONLY)
    assert run_scenario(keys, tokenless)[0].check == "sigstruct-format"
    # Peel the checks off one at a time: each time the next one in SDM order decides.
    for i, c in enumerate(token_path):
        assert run_scenario(keys, token_path[i:])[0].check == c


# --------------------------------------------------------------------------- real data (../shared/vectors)


@pytest.fixture(scope="module")
def test_enclave(vectors: Path) -> tuple[Sigstruct, bytes]:
    sig = Sigstruct.from_bytes((vectors / "fortanix-rust-sgx/test_enclave.sig").read_bytes())
    return sig, (vectors / "fortanix-rust-sgx/test_enclave.sgxs").read_bytes()


@pytest.mark.vectors
def test_vector_test_enclave_tokenless(test_enclave, expected):
    sig, sgxs = test_enclave
    want = expected["sigstructs"]["fortanix-rust-sgx/test_enclave.sig"]
    assert sig.mrsigner.hex() == want["mrsigner"] and sig.mrsigner.hex().startswith("fb4bab3d")
    cpu = Platform(1).cpu(0)
    set_lehash(cpu, LeHash.parse(want["mrsigner"]))
    assert [f"{w:#018x}" for w in cpu.lehash_words] == want["lepubkeyhash"]
    enc = replay_sgxs(sgxs, attributes=sig.attributes)
    r = einit(cpu, sig, enc, Einittoken.zero())
    assert r.ok and enc.secs.mrenclave.hex() == expected["sgxs"]["fortanix-rust-sgx/test_enclave.sgxs"]
    assert enc.secs.isvprodid == 0xFFFF


@pytest.mark.vectors
def test_vector_test_enclave_under_intels_msrs(test_enclave):
    sig, sgxs = test_enclave
    cpu = Platform(1).cpu(0)  # flexible firmware, MSRs at Intel's reset value
    r = einit(cpu, sig, replay_sgxs(sgxs, attributes=sig.attributes))
    assert (r.code, r.check) == (16, "tokenless-mrsigner")
    assert r.reason == "MRSIGNER fb4bab3d… ≠ CPU 0's IA32_SGXLEPUBKEYHASH acb77012… (token-less launch)"


@pytest.mark.vectors
def test_vector_test_enclave_with_einittoken_key(test_enclave):
    sig, sgxs = test_enclave
    lek = sig.attributes.with_flags(int(Attr.EINITTOKEN_KEY))
    cpu = Platform(1).cpu(0)
    set_lehash(cpu, sig.mrsigner)
    r = einit(cpu, sig, replay_sgxs(sgxs, attributes=lek))
    assert (r.code, r.check) == (2, "attributes-mask")  # its signer is "the LE", but the mask refuses bit 5
    set_lehash(cpu, INTEL_LEPUBKEYHASH)
    r = einit(cpu, sig, replay_sgxs(sgxs, attributes=lek))
    assert (r.code, r.check) == (2, "controlled-attributes")


def _one_eadd_flag_changed(sgxs: bytes) -> bytes:
    first = next(r for r in parse_sgxs(sgxs) if isinstance(r, SgxsEAdd))
    assert first.flags == 0x201  # R, PT_REG
    pos = first.position + 16
    return sgxs[:pos] + (0x205).to_bytes(8, "little") + sgxs[pos + 8 :]  # now R|X


@pytest.mark.vectors
def test_vector_test_enclave_with_one_eadd_flag_changed(test_enclave):
    sig, sgxs = test_enclave
    cpu = Platform(1).cpu(0)
    set_lehash(cpu, sig.mrsigner)
    enc = replay_sgxs(_one_eadd_flag_changed(sgxs), attributes=sig.attributes)
    r = einit(cpu, sig, enc)
    assert (r.code, r.name, r.check) == (4, "SGX_INVALID_MEASUREMENT", "measurement")
    assert "≠ SIGSTRUCT.ENCLAVEHASH 784acfd7…" in r.reason


@pytest.mark.vectors
def test_vector_bad_signature_and_bad_measurement(test_enclave):
    """Flip an ENCLAVEHASH byte: the signature breaks first (8), even with a bad measurement too."""
    sig, sgxs = test_enclave
    bad = sig.replace(enclavehash=flip(sig.enclavehash, 31))
    cpu = Platform(1).cpu(0)
    set_lehash(cpu, sig.mrsigner)
    assert einit(cpu, bad, replay_sgxs(sgxs, attributes=sig.attributes)).code == 8
    r = einit(cpu, bad, replay_sgxs(_one_eadd_flag_changed(sgxs), attributes=sig.attributes))
    assert (r.code, r.check) == (8, "signature")
    # ... and under Intel's hash as well (token-less failure comes much later).
    set_lehash(cpu, INTEL_LEPUBKEYHASH)
    assert einit(cpu, bad, replay_sgxs(sgxs, attributes=sig.attributes)).code == 8
    # A bad measurement plus the wrong MSRs: the measurement (4) decides.
    r = einit(cpu, sig, replay_sgxs(_one_eadd_flag_changed(sgxs), attributes=sig.attributes))
    assert (r.code, r.check) == (4, "measurement")


@pytest.fixture(scope="module")
def le_prod(vectors: Path) -> bytes:
    return (vectors / "intel-linux-sgx/le_prod_css.bin").read_bytes()


def _le_prod_enclave(sig: Sigstruct) -> Enclave:
    return Enclave.with_measurement(Secs.new(size=0x2000, attributes=sig.attributes), sig.enclavehash)


@pytest.mark.vectors
def test_vector_le_prod_passes_controlled_attributes_under_intels_hash(le_prod, expected):
    sig = Sigstruct.from_bytes(le_prod)
    assert sig.attributes == Attributes(0x24, 0x3)
    assert sig.mrsigner.hex() == expected["sigstructs"]["intel-linux-sgx/le_prod_css.bin"]["mrsigner"]
    for fw in ("flexible", "locked-intel", "no-lc"):
        cpu = Platform(1, fw).cpu(0)
        enc = _le_prod_enclave(sig)
        r = einit(cpu, le_prod, enc)
        assert r.ok, (fw, r)
        assert enc.secs.attributes == Attributes(0x25, 0x3) and (enc.secs.isvprodid, enc.secs.isvsvn) == (0x20, 7)


@pytest.mark.vectors
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(digest=st.binary(min_size=32, max_size=32))
def test_vector_le_prod_fails_under_any_other_hash(le_prod, digest):
    h = LeHash(digest)
    if h == INTEL_LEPUBKEYHASH:
        return
    sig = Sigstruct.from_bytes(le_prod)
    cpu = Platform(1).cpu(0)
    set_lehash(cpu, h)
    r = einit(cpu, le_prod, _le_prod_enclave(sig))
    assert (r.code, r.name, r.check) == (2, "SGX_INVALID_ATTRIBUTE", "controlled-attributes")
    assert f"IA32_SGXLEPUBKEYHASH {h.short()}" in r.reason and "acb77012…" in r.reason


@pytest.mark.vectors
def test_vector_le_prod_fails_under_the_test_enclave_signer(le_prod, expected):
    fb4b = LeHash.parse(expected["sigstructs"]["fortanix-rust-sgx/test_enclave.sig"]["mrsigner"])
    for fw in (Platform(1, "flexible", lehash=fb4b), Platform(1, "locked-third-party", lehash=fb4b)):
        r = einit(fw.cpu(0), le_prod, _le_prod_enclave(Sigstruct.from_bytes(le_prod)))
        assert (r.code, r.check) == (2, "controlled-attributes")


@pytest.mark.vectors
@pytest.mark.parametrize("name", ["enclave-hello", "sip-sgx"])
@pytest.mark.parametrize("lehash", ["intel", "83d719e77deaca1470f6baf62a4d774303c899db69020f9c70ee1dfc08c7ce9e"])
def test_vector_sdk_simulation_tokens_are_rejected(vectors, expected, name, lehash):
    sig = Sigstruct.from_bytes((vectors / f"intel-sdk-sim-tokens/{name}.sigstruct.bin").read_bytes())
    tok = Einittoken.from_bytes((vectors / f"intel-sdk-sim-tokens/{name}.enclave.token").read_bytes())
    want = expected["tokens"][f"intel-sdk-sim-tokens/{name}.enclave.token"]
    # MRENCLAVE and MRSIGNER match; the simulator fills the rest with 0xEE.
    assert tok.valid == want["valid"] == 1
    assert tok.mrenclave == sig.enclavehash and tok.mrenclave.hex() == want["mrenclave"]
    assert tok.mrsigner == sig.mrsigner.digest and tok.mrsigner.hex() == want["mrsigner"]
    assert tok.reserved2 == b"\xee" * 32 and len(tok.to_blob()) == 1024
    cpu = Platform(1).cpu(0)
    set_lehash(cpu, LeHash.parse(lehash))
    enc = Enclave.with_measurement(Secs.new(size=0x2000, attributes=tok.attributes), sig.enclavehash)
    r = einit(cpu, sig, enc, tok)
    assert (r.code, r.name, r.check) == (16, "SGX_INVALID_EINITTOKEN", "token-reserved")
    assert "RESERVED at offset 96" in r.reason and "eeee" in r.reason


@pytest.mark.vectors
def test_vector_hashmachine_attribute_masks(vectors, expected):
    """Real hardware initialized it with SECS DEBUG|MODE64BIT, XFRM 0x7 and reported 0x7/0x7."""
    sig = Sigstruct.from_bytes((vectors / "real-hw-attested/hashmachine.sigstruct.bin").read_bytes())
    want = expected["sigstructs"]["real-hw-attested/hashmachine.sigstruct.bin"]
    assert (sig.mrsigner.hex(), sig.enclavehash.hex()) == (want["mrsigner"], want["enclavehash"])
    assert (sig.attributes, sig.attributemask) == (
        Attributes(0x4, 0x3),
        Attributes(0xFFFFFFFFFFFFFFFD, 0xFFFFFFFFFFFFFF1B),
    )
    cpu = Platform(1).cpu(0)
    set_lehash(cpu, sig.mrsigner)
    enc = Enclave.with_measurement(Secs.new(size=0x2000, attributes=Attributes(0x6, 0x7)), sig.enclavehash)
    assert einit(cpu, sig, enc).ok
    assert enc.secs.attributes == Attributes(0x7, 0x7)  # as the IAS-signed report says
    # XFRM bit 3 is inside the mask, so 0xF would have been refused.
    enc = Enclave.with_measurement(Secs.new(size=0x2000, attributes=Attributes(0x6, 0xF)), sig.enclavehash)
    assert einit(cpu, sig, enc).check == "attributes-mask"


@pytest.mark.vectors
def test_vector_real_hw_token_reaches_the_mac_check(vectors, expected):
    tok = Einittoken.from_bytes((vectors / "real-hw-token/minimal-sgx.enclave.token").read_bytes())
    want = expected["tokens"]["real-hw-token/minimal-sgx.enclave.token"]
    assert tok.valid == want["valid"]
    assert (tok.mrsigner.hex(), tok.mrenclave.hex()) == (want["mrsigner"], want["mrenclave"])
    assert (tok.isvprodidle, tok.isvsvnle) == (want["isvprodidle"], want["isvsvnle"])
    assert [f"{tok.maskedattributesle.flags:#x}", f"{tok.maskedattributesle.xfrm:#x}"] == want["maskedattributesle"]
    assert [f"{tok.attributes.flags:#x}", f"{tok.attributes.xfrm:#x}"] == want["attributes"]
    assert tok.cpusvnle.hex() == want["cpusvnle"] and tok.reserved_problems() == []
    blob = (vectors / "real-hw-token/minimal-sgx.enclave.token").read_bytes()
    assert Einittoken.from_bytes(blob).to_blob() == blob  # the SDK padding round-trips
    # Re-create its SIGSTRUCT with the published key: same MRSIGNER, ENCLAVEHASH from the token.
    key = SigningKey.from_pem(vectors / "real-hw-token/minimal-sgx.private-key.pem")
    assert key.mrsigner.hex() == want["mrsigner"]
    sig = sign_sigstruct(
        key,
        Sigstruct.new(
            enclavehash=tok.mrenclave,
            attributes=Attributes(0x4, 0x3),
            attributemask=Attributes(U64 & ~2, 0xFFFFFFFFFFFFFF1B),
        ),
    )
    cpu = Platform(1).cpu(0)  # Intel's LE made it, so Intel's hash is the right one
    enc = Enclave.with_measurement(Secs.new(size=0x2000, attributes=tok.attributes), tok.mrenclave)
    r = einit(cpu, sig, enc, tok)
    assert (r.code, r.name, r.check) == (16, "SGX_INVALID_EINITTOKEN", "token-mac")
    assert "c56df82f…" in r.reason  # its MAC needs that CPU's fuses


def test_s3_destroys_the_launch_enclave_until_it_is_relaunched(le_key, key_a):
    """Loss of EPC wipes enclaves (Sean Christopherson, LKML Sep 2020): the LE
    cannot derive keys any more; relaunched, it issues tokens again."""
    platform = Platform(1, "flexible")
    cpu = platform.cpu(0)
    le = LaunchEnclave.create(le_key, allowlist=[key_a.mrsigner])
    set_lehash(cpu, le_key.mrsigner)
    assert le.launch(cpu).ok
    enc = build()
    sig = sign(key_a, enc.mrenclave())
    assert le.get_token(sig, BASE).granted
    platform.s3_resume()
    refused = le.get_token(sig, BASE)
    assert not refused.granted and "lost with the EPC" in refused.reason
    set_lehash(cpu, le_key.mrsigner)  # the MSRs were reset too
    assert le.launch(cpu).ok
    tok = le.get_token(sig, BASE).token
    assert einit(cpu, sig, enc, tok).ok


def test_an_enclave_created_before_s3_is_gone(key_a):
    """ECREATE with platform= puts the SECS in that platform's EPC; S3 loses it."""
    from sgxlab.hw.measure import Enclave
    from sgxlab.hw.structs import Secinfo, Secs

    platform = Platform(1, "flexible")
    cpu = platform.cpu(0)
    set_lehash(cpu, key_a.mrsigner)
    enc = Enclave(Secs.new(), platform=platform)
    enc.add_page(0, Secinfo.of(5), b"x" * 4096)
    sig = sign(key_a, enc.mrenclave())
    rebuilt = enc.fork()  # the same build, done again now
    platform.s3_resume()
    set_lehash(cpu, key_a.mrsigner)
    with pytest.raises(GeneralProtection, match="EPC lost since"):
        einit(cpu, sig, enc)
    with pytest.raises(GeneralProtection, match="EPC lost since"):
        einit(cpu, sig, rebuilt)
    assert einit(cpu, sig, enc.fork()).ok  # rebuilt after the resume
    other = Platform(1, "flexible").cpu(0)
    set_lehash(other, key_a.mrsigner)
    with pytest.raises(GeneralProtection, match="another platform"):
        einit(other, sig, enc.fork())
