"""ENCLS[EINIT] as the SDM defines it, the launch key, and EGETKEY(EINITTOKEN_KEY).

:func:`einit` runs EINIT's checks on one logical CPU and returns the SGX code
with the reason; :func:`launch_key` and :func:`egetkey` derive the EINITTOKEN
key a launch enclave MACs its tokens with.

The checks
----------
EINIT is the instruction the whole 2017 debate is about. It runs on one
logical CPU and checks the enclave's SIGSTRUCT against *that CPU's current*
IA32_SGXLEPUBKEYHASH0..3. Every design the debate weighs (write on
schedule-in, a per-CPU cache, read-and-compare, always write) exists to get
those four MSRs right before this instruction runs; when a design gets them
wrong, the failure comes from here, for the right reason.

The checks run in the SDM's order (Vol. 3D, ENCLS[EINIT] pseudocode,
https://www.felixcloutier.com/x86/einit; summarised step by step in
``../shared/reference/hardware-and-einit.md`` §4). The first failing check
decides the result:

==  ===============================  ==========================================
#   check                            failure
==  ===============================  ==========================================
1   SIGSTRUCT format                 SGX_INVALID_SIG_STRUCT (1)
2   pending interrupt (event window) SGX_UNMASKED_EVENT (128)
3   RSA signature, Q1 and Q2         SGX_INVALID_SIGNATURE (8)
4   KSS: ISVFAMILYID needs KSS       SGX_INVALID_SIG_STRUCT (1)
5   MRENCLAVE = ENCLAVEHASH          SGX_INVALID_MEASUREMENT (4)
6   controlled attributes vs LE hash SGX_INVALID_ATTRIBUTE (2)
7   ATTRIBUTES/XFRM under the mask   SGX_INVALID_ATTRIBUTE (2)
8   MISCSELECT under the mask        SGX_INVALID_ATTRIBUTE (2)
9   VALID=0: MRSIGNER = LE hash      SGX_INVALID_EINITTOKEN (16)
10  debug LE, production enclave     SGX_INVALID_EINITTOKEN (16)
11  token reserved bytes/VALID bits  SGX_INVALID_EINITTOKEN (16)
12  token CPUSVNLE <= CPUSVN         SGX_INVALID_CPUSVN (32)
13  token MAC under the launch key   SGX_INVALID_EINITTOKEN (16)
14  token MRENCLAVE/MRSIGNER         SGX_INVALID_MEASUREMENT (4)
15  token ATTRIBUTES = SECS          SGX_INVALID_ATTRIBUTE (2)
==  ===============================  ==========================================

Decisions
---------
Where the SDM contradicts itself, sgxlab chooses as follows (each is tested):

* **Controlled attributes** (step 6): the prose says SIGSTRUCT.ATTRIBUTES, the
  pseudocode tests SECS.ATTRIBUTES. sgxlab follows the pseudocode: the
  attributes the enclave will *have* are what must be authorised.
* **Launch-key ISVSVN**: the pseudocode writes ``TMP_TOKEN.ISVSVN``, a field
  that does not exist; sgxlab uses ISVSVNLE, the LE's SVN, which is what the
  LE put into its own EGETKEY request.
* **Token attributes** (step 15): the pseudocode returns
  ``SGX_INVALID_EINIT_ATTRIBUTE``, a name with no code in the error table;
  sgxlab returns SGX_INVALID_ATTRIBUTE (2), as OpenSGX does.

Also chosen, because the SDM leaves it open or says it twice:

* CPUSVN is compared component by component (a token is refused if any of
  the 16 CPUSVNLE bytes exceeds the CPU's); EGETKEY uses the same rule.
* ``derivekey`` is AES-128-CMAC under the platform's emulated fuse key over a
  fixed serialization of every SDM key dependency (the model the Intel SDK
  simulator and the reference notes recommend).
* A second EINIT on an initialized SECS raises #GP(0)
  (:class:`~sgxlab.errors.GeneralProtection`) before any check, as the
  exception list says ("If the enclave is already initialized"); the #PF
  line "not a valid, uninitialized SECS" is read as covering a page that is
  not a SECS at all, which callers here cannot pass.
* A token whose VALID bit 0 is clear takes the token-less path even if
  VALID bits 31:1 are set: the pseudocode tests ``VALID[0]`` before it looks
  at reserved bits.
* The prose differs from the pseudocode twice more, and sgxlab follows the
  pseudocode both times: the attribute rule masks *both* sides
  (``SECS & MASK == SIGSTRUCT & MASK``; the prose compares an unmasked
  SIGSTRUCT.ATTRIBUTES), and the debug-LE rule reads the token's
  MASKEDATTRIBUTESLE.DEBUG (the prose says EINITTOKEN.ATTRIBUTES.DEBUG,
  which step 15 already forces to equal the SECS).
* EGETKEY(EINITTOKEN_KEY) follows its pseudocode, which checks only the
  EINITTOKEN_KEY attribute; the prose adds "SECS.MRSIGNER equal
  IA32_SGXLEPUBKEYHASH", but a launch enclave whose signer has left the
  MSRs gets a key anyway and its tokens fail at EINIT's MAC check, which is
  where the debate's failures must surface.

Not modelled
------------
Alignment and EPC-residency faults (#GP/#PF on the linear addresses) are not
modelled: callers pass objects, not addresses. KVM's ``handle_encls_einit``
checks alignment before it gets here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from sgxlab.errors import ConfigError, GeneralProtection, SgxlabError
from sgxlab.hw.arch import CONTROLLED_ATTRIBUTES, Attr, KeyName, LeHash, SgxError, Words
from sgxlab.hw.crypto import HARDCODED_PKCS1_5_PADDING, aes_cmac
from sgxlab.hw.siginfo import SigInfo
from sgxlab.hw.structs import Attributes, Einittoken, Keyrequest, Secs, Sigstruct

if TYPE_CHECKING:
    from sgxlab.hw.measure import Enclave
    from sgxlab.hw.platform import Cpu, Platform

__all__ = [
    "EinitResult",
    "KeyDependencies",
    "derivekey",
    "launch_key",
    "egetkey",
    "EgetkeyResult",
    "einit",
    "SigInfo",
    "CHECKS",
]

# Plain ints: ``int & IntFlag`` dispatches to IntFlag.__rand__, which is slow.
_INIT = int(Attr.INIT)
_DEBUG = int(Attr.DEBUG)
_KSS = int(Attr.KSS)
_ZERO16 = bytes(16)
_SUCCESS = SgxError.SUCCESS
_TOKENLESS = " (token-less launch)"
_WITH_TOKEN = " (launched with an EINITTOKEN)"

CHECKS = (
    "sigstruct-format",
    "unmasked-event",
    "signature",
    "kss-familyid",
    "measurement",
    "controlled-attributes",
    "attributes-mask",
    "miscselect-mask",
    "tokenless-mrsigner",
    "token-debug-le",
    "token-reserved",
    "token-cpusvn",
    "token-mac",
    "token-measurement",
    "token-attributes",
)
"""Short names of EINIT's checks, in SDM order; ``EinitResult.check`` is one of
these (or ``"commit"`` on success)."""


class EinitResult(NamedTuple):
    """What EINIT returned: the code in RAX, its SDM name, and why.

    ``reason`` is a sentence naming the failed check and the values compared,
    e.g. ``MRSIGNER fb4bab3d… ≠ CPU 2's IA32_SGXLEPUBKEYHASH acb77012…
    (token-less launch)``. ``check`` is the deciding step (see :data:`CHECKS`).
    (A named tuple: immutable, and cheap enough to make millions of.)
    """

    code: SgxError
    reason: str
    check: str
    cpu: int

    @property
    def name(self) -> str:
        return self.code.name

    @property
    def ok(self) -> bool:
        return self.code == SgxError.SUCCESS

    @property
    def rax(self) -> int:
        return int(self.code)

    @property
    def zf(self) -> bool:
        """ZF is set on failure, cleared on success."""
        return self.code != SgxError.SUCCESS

    def as_json(self) -> dict[str, object]:
        return {"code": int(self.code), "name": self.name, "reason": self.reason}

    def __str__(self) -> str:
        return f"{self.name} ({int(self.code)}): {self.reason}"


def _short(b: bytes) -> str:
    return b[:4].hex() + "…"


def _words_short(words: tuple[int, ...]) -> str:
    return _short(LeHash.from_words(words).digest)


# ----------------------------------------------------------------------------
# The launch key


@dataclass(frozen=True, slots=True)
class KeyDependencies:
    """The SDM's TMP_KEYDEPENDENCIES: every input of derivekey().

    SEAL_KEY_FUSES is not a field: it is the CMAC key itself (the
    platform's emulated fuses).
    """

    keyname: int
    isvfamilyid: bytes
    isvextprodid: bytes
    isvprodid: int
    isvsvn: int
    ownerepoch: bytes
    attributes: Attributes
    attributesmask: Attributes
    mrenclave: bytes
    mrsigner: bytes
    keyid: bytes
    cpusvn: bytes
    padding: bytes
    miscselect: int
    miscmask: int
    keypolicy: int = 0
    configid: bytes = bytes(64)
    configsvn: int = 0

    def serialize(self) -> bytes:
        """A canonical, fixed-width serialization (little-endian integers)."""
        return b"".join(
            (
                self.keyname.to_bytes(2, "little"),
                self.keypolicy.to_bytes(2, "little"),
                self.isvfamilyid,
                self.isvextprodid,
                self.isvprodid.to_bytes(2, "little"),
                self.isvsvn.to_bytes(2, "little"),
                self.ownerepoch,
                self.attributes.to_bytes(),
                self.attributesmask.to_bytes(),
                self.mrenclave,
                self.mrsigner,
                self.keyid,
                self.cpusvn,
                self.padding,
                self.miscselect.to_bytes(4, "little"),
                self.miscmask.to_bytes(4, "little"),
                self.configid,
                self.configsvn.to_bytes(2, "little"),
            )
        )


def derivekey(platform: Platform, deps: KeyDependencies) -> bytes:
    """derivekey(): AES-128-CMAC under the platform's fuse key over ``deps``.

    The SDM leaves derivekey opaque ("derived using a processor unique value");
    this keeps what matters: keys differ between platforms, and a key is bound
    to every dependency field, IA32_SGXLEPUBKEYHASH included for the launch key.
    """
    return aes_cmac(platform.fuses, deps.serialize())


def launch_key(cpu: Cpu, token: Einittoken) -> bytes:
    """The EINITTOKEN key as EINIT derives it on ``cpu`` for ``token``.

    MRSIGNER is the CPU's **IA32_SGXLEPUBKEYHASH**, not the token's MRSIGNER
    (SDM EINIT, "Derive Launch key"): a token is only good while the MSRs hold
    the signer of the LE that made it.
    """
    p = _platform_of(cpu, "the launch key")
    deps = KeyDependencies(
        keyname=int(KeyName.EINITTOKEN_KEY),
        isvfamilyid=bytes(16),
        isvextprodid=bytes(16),
        isvprodid=token.isvprodidle,
        isvsvn=token.isvsvnle,
        ownerepoch=p.owner_epoch,
        attributes=token.maskedattributesle,
        attributesmask=Attributes(),
        mrenclave=bytes(32),
        mrsigner=cpu.lehash.digest,
        keyid=bytes(token.keyid),
        cpusvn=bytes(token.cpusvnle),
        padding=HARDCODED_PKCS1_5_PADDING,
        miscselect=token.maskedmiscselectle,
        miscmask=0,
    )
    return derivekey(p, deps)


@dataclass(frozen=True, slots=True)
class EgetkeyResult:
    """EGETKEY's outcome: ``key`` on success, else an SGX code and a reason."""

    code: SgxError
    key: bytes | None
    reason: str

    @property
    def ok(self) -> bool:
        return self.code == SgxError.SUCCESS


def _cpusvn_exceeds(a: bytes, b: bytes) -> bool:
    """True if any CPUSVN component of ``a`` is greater than in ``b``."""
    return any(x > y for x, y in zip(a, b))


def egetkey(cpu: Cpu, enclave: Enclave, request: Keyrequest) -> EgetkeyResult:
    """ENCLU[EGETKEY] from inside ``enclave`` (SDM Vol. 3D, EGETKEY).

    Only KEYNAME=EINITTOKEN_KEY, the launch enclave's key, is modelled; the
    other key names are not part of the launch-control story and raise
    :class:`SgxlabError`. Faults first: #GP(0) outside an initialized
    enclave, for non-zero KEYREQUEST reserved bytes or KEYPOLICY bits 15:6,
    and for KSS-only KEYPOLICY bits (5:2) or CONFIGSVN without
    ATTRIBUTES.KSS. Then an undefined KEYNAME gives SGX_INVALID_KEYNAME, and
    for this key, in the SDM's order: EINITTOKEN_KEY attribute (else
    SGX_INVALID_ATTRIBUTE), CPUSVN not beyond the CPU's
    (SGX_INVALID_CPUSVN), ISVSVN not beyond the enclave's
    (SGX_INVALID_ISVSVN).
    """
    if not enclave.initialized:
        raise GeneralProtection("EGETKEY runs inside an initialized enclave", instruction="EGETKEY", cpu=cpu.index)
    if enclave.epc is not None and enclave.epc[1] != enclave.epc[0].epc_generation:
        # S3 or another loss of EPC wiped the enclave's pages: entering it faults.
        raise GeneralProtection(
            f"the enclave was lost with the EPC (generation {enclave.epc[1]}, now "
            f"{enclave.epc[0].epc_generation}): rebuild and relaunch it",
            instruction="EGETKEY",
            cpu=cpu.index,
        )
    if any(request.reserved1) or any(request.reserved2) or request.keypolicy & ~0x3F:
        raise GeneralProtection(
            "KEYREQUEST reserved bytes or KEYPOLICY reserved bits (15:6) are not zero",
            instruction="EGETKEY",
            cpu=cpu.index,
        )
    if not enclave.secs.attributes.flags & Attr.KSS and (request.keypolicy & 0x3C or request.configsvn):
        raise GeneralProtection(
            "KEYPOLICY bits 5:2 or CONFIGSVN are used but SECS.ATTRIBUTES.KSS is clear",
            instruction="EGETKEY",
            cpu=cpu.index,
        )
    if request.keyname > int(KeyName.SEAL_KEY):
        return EgetkeyResult(SgxError.SGX_INVALID_KEYNAME, None, f"KEYNAME {request.keyname} is not defined")
    if request.keyname != KeyName.EINITTOKEN_KEY:
        raise SgxlabError(f"EGETKEY {KeyName(request.keyname).name} is not modelled by sgxlab")
    secs = enclave.secs
    if not secs.attributes.flags & Attr.EINITTOKEN_KEY:
        return EgetkeyResult(
            SgxError.SGX_INVALID_ATTRIBUTE,
            None,
            f"the enclave's ATTRIBUTES {secs.attributes} lack EINITTOKEN_KEY: only a launch enclave may ask for this key",
        )
    p = _platform_of(cpu, "EGETKEY")
    if _cpusvn_exceeds(request.cpusvn, p.cpusvn):
        return EgetkeyResult(
            SgxError.SGX_INVALID_CPUSVN, None, f"KEYREQUEST.CPUSVN {request.cpusvn.hex()} > CPUSVN {p.cpusvn.hex()}"
        )
    if request.isvsvn > secs.isvsvn:
        return EgetkeyResult(
            SgxError.SGX_INVALID_ISVSVN,
            None,
            f"KEYREQUEST.ISVSVN {request.isvsvn} > the enclave's ISVSVN {secs.isvsvn}",
        )
    required = Attributes(int(Attr.INIT | Attr.DEBUG), 0)  # REQUIRED_SEALING_MASK
    deps = KeyDependencies(
        keyname=int(KeyName.EINITTOKEN_KEY),
        isvfamilyid=bytes(16),
        isvextprodid=bytes(16),
        isvprodid=secs.isvprodid,
        isvsvn=request.isvsvn,
        ownerepoch=p.owner_epoch,
        attributes=(request.attributemask | required) & secs.attributes,
        attributesmask=Attributes(),
        mrenclave=bytes(32),
        mrsigner=secs.mrsigner,
        keyid=bytes(request.keyid),
        cpusvn=bytes(request.cpusvn),
        padding=enclave.padding or bytes(352),
        miscselect=request.miscmask & secs.miscselect,
        miscmask=0,
    )
    return EgetkeyResult(SgxError.SUCCESS, derivekey(p, deps), "EINITTOKEN key derived")


# ----------------------------------------------------------------------------
# EINIT


def _platform_of(cpu: Cpu, what: str) -> Platform:
    """The CPU's platform (its fuses, OWNEREPOCH and CPUSVN), or ConfigError for a bare Cpu."""
    p = cpu.platform
    if p is None:
        raise ConfigError("cpu", repr(cpu), f"{what} needs a CPU that belongs to a Platform (fuses, CPUSVN)")
    return p


def _fail(code: SgxError, check: str, reason: str, cpu: Cpu) -> EinitResult:
    return EinitResult(code, reason, check, cpu.index)


def _einit_fault(cpu: Cpu, enclave: Enclave) -> GeneralProtection:
    """The #GP(0) (or #PF, reported as #GP) EINIT raises before any check, in the SDM's order."""
    epc = enclave.epc
    if not cpu.sgx_on:
        reason = "SGX is not enabled: ENCLS faults unless IA32_FEATURE_CONTROL is locked with bit 18 (SGX_ENABLE) set"
    elif epc is not None and (epc[0] is not cpu.platform or epc[1] != epc[0].epc_generation):
        where = "another platform's EPC" if epc[0] is not cpu.platform else "an EPC lost since (S3)"
        reason = f"the SECS is not in this EPC: the enclave was created in {where}; #PF on hardware"
    else:
        reason = "the SECS is already initialized: EINIT on an initialized enclave faults"
    return GeneralProtection(reason, instruction="EINIT", cpu=cpu.index)


def _token_checks(
    cpu: Cpu, token: Einittoken, secs: Secs, info: SigInfo, mrenclave: bytes, cpu_words: Words
) -> EinitResult | None:
    """EINIT's checks 10-15 of a token with VALID bit 0 set: the failure, or None if the token is good."""
    # 10. A debug LE cannot launch a production enclave.
    if token.maskedattributesle.flags & _DEBUG and not secs.attributes.flags & _DEBUG:
        return _fail(
            SgxError.SGX_INVALID_EINITTOKEN,
            CHECKS[9],
            f"EINITTOKEN.MASKEDATTRIBUTESLE {token.maskedattributesle} has DEBUG (a debug launch enclave "
            f"made it) but SECS.ATTRIBUTES {secs.attributes} lacks DEBUG: a debug LE cannot launch a "
            "production enclave",
            cpu,
        )
    # 11. Reserved space and VALID bits 31:1.
    bad = token.reserved_problems()
    if bad:
        return _fail(SgxError.SGX_INVALID_EINITTOKEN, CHECKS[10], f"EINITTOKEN reserved space: {bad[0]}", cpu)
    # 12. CPUSVN.
    plat = _platform_of(cpu, "EINIT with an EINITTOKEN")
    if _cpusvn_exceeds(token.cpusvnle, plat.cpusvn):
        return _fail(
            SgxError.SGX_INVALID_CPUSVN,
            CHECKS[11],
            f"EINITTOKEN.CPUSVNLE {token.cpusvnle.hex()} exceeds CPUSVN {plat.cpusvn.hex()}",
            cpu,
        )
    # 13. MAC under the launch key derived from this CPU's MSRs.
    expected_mac = aes_cmac(launch_key(cpu, token), token.mac_data())
    if expected_mac != token.mac:
        return _fail(
            SgxError.SGX_INVALID_EINITTOKEN,
            CHECKS[12],
            f"EINITTOKEN.MAC {_short(token.mac)} ≠ CMAC {_short(expected_mac)} under the launch key derived "
            f"with CPU {cpu.index}'s IA32_SGXLEPUBKEYHASH {_words_short(cpu_words)} (token made by another LE, "
            "on another platform, or for other MSR values)",
            cpu,
        )
    # 14. The token names this enclave.
    if token.mrenclave != mrenclave or token.mrsigner != info.mrsigner.digest:
        which = "MRENCLAVE" if token.mrenclave != mrenclave else "MRSIGNER"
        got = token.mrenclave if which == "MRENCLAVE" else token.mrsigner
        want = mrenclave if which == "MRENCLAVE" else info.mrsigner.digest
        return _fail(
            SgxError.SGX_INVALID_MEASUREMENT,
            CHECKS[13],
            f"EINITTOKEN.{which} {_short(got)} ≠ the enclave's {which} {_short(want)}",
            cpu,
        )
    # 15. The token grants exactly the SECS attributes.
    if token.attributes != secs.attributes:
        return _fail(
            SgxError.SGX_INVALID_ATTRIBUTE,
            CHECKS[14],
            f"EINITTOKEN.ATTRIBUTES {token.attributes} ≠ SECS.ATTRIBUTES {secs.attributes}",
            cpu,
        )
    return None


def einit(
    cpu: Cpu,
    sigstruct: Sigstruct | bytes | SigInfo,
    enclave: Enclave,
    token: Einittoken | None = None,
) -> EinitResult:
    """Execute ENCLS[EINIT] on logical CPU ``cpu``.

    ``sigstruct`` may be a :class:`Sigstruct`, its 1808 bytes (then the
    platform memoizes what depends on the bytes alone: format, signature,
    MRSIGNER), or a prepared :class:`SigInfo`. ``token`` defaults to the
    all-zero token (VALID=0), the token-less launch Linux uses.

    Returns an :class:`EinitResult`; SGX failures are results, not
    exceptions. Raises :class:`GeneralProtection` if the enclave is already
    initialized, as the instruction faults.
    """
    if not cpu.sgx_on or enclave.initialized:
        raise _einit_fault(cpu, enclave)
    epc = enclave.epc
    if epc is not None and (epc[0] is not cpu.platform or epc[1] != epc[0].epc_generation):
        raise _einit_fault(cpu, enclave)
    if isinstance(sigstruct, SigInfo):
        info = sigstruct
    elif isinstance(sigstruct, (bytes, bytearray)):
        info = cpu.platform.siginfo(bytes(sigstruct)) if cpu.platform is not None else SigInfo.of(bytes(sigstruct))
    else:
        info = SigInfo.of(sigstruct)
    sig = info.sig
    secs = enclave.secs

    # 1. SIGSTRUCT format.
    if info.problems:
        p = info.problems[0]
        return _fail(SgxError.SGX_INVALID_SIG_STRUCT, CHECKS[0], f"malformed SIGSTRUCT: {p}", cpu)
    # 2. Event window: a pending interrupt aborts the long verification.
    if cpu.pending_event and cpu.take_event():
        return _fail(
            SgxError.SGX_UNMASKED_EVENT,
            CHECKS[1],
            f"an interrupt was pending on CPU {cpu.index} during signature verification; retry",
            cpu,
        )
    # 3. Signature with the embedded modulus, Q1 and Q2.
    if not info.sig_ok:
        chk = info.check
        assert chk is not None
        return _fail(
            SgxError.SGX_INVALID_SIGNATURE,
            CHECKS[2],
            f"SIGSTRUCT signature check failed under the embedded modulus (MRSIGNER {info.mrsigner.short()}): "
            f"{chk.reason}",
            cpu,
        )
    # 4. KSS family ID.
    if sig.isvfamilyid != _ZERO16 and not secs.attributes.flags & _KSS:
        return _fail(
            SgxError.SGX_INVALID_SIG_STRUCT,
            CHECKS[3],
            f"SIGSTRUCT.ISVFAMILYID {sig.isvfamilyid.hex()} is non-zero but SECS.ATTRIBUTES.KSS is clear",
            cpu,
        )
    # 5. Finalized measurement.
    mrenclave = enclave.mrenclave()
    if mrenclave != sig.enclavehash:
        return _fail(
            SgxError.SGX_INVALID_MEASUREMENT,
            CHECKS[4],
            f"MRENCLAVE {_short(mrenclave)} ≠ SIGSTRUCT.ENCLAVEHASH {_short(sig.enclavehash)}",
            cpu,
        )
    # 6. Controlled attributes (EINITTOKEN_KEY) need the LE signer in the MSRs.
    signer_is_le = cpu.lepubkeyhash == info.mrsigner_list
    cpu_words = cpu.lehash_words if not signer_is_le else info.mrsigner_words
    if secs.attributes.flags & CONTROLLED_ATTRIBUTES and not signer_is_le:
        return _fail(
            SgxError.SGX_INVALID_ATTRIBUTE,
            CHECKS[5],
            f"SECS.ATTRIBUTES {secs.attributes} has EINITTOKEN_KEY but MRSIGNER {info.mrsigner.short()} ≠ "
            f"CPU {cpu.index}'s IA32_SGXLEPUBKEYHASH {_words_short(cpu_words)}: only the launch enclave's signer "
            "may set it",
            cpu,
        )
    # 7. ATTRIBUTES and XFRM under the SIGSTRUCT's mask.
    mask = sig.attributemask
    sa, ga = secs.attributes, sig.attributes
    if (sa.flags & mask.flags) != (ga.flags & mask.flags) or (sa.xfrm & mask.xfrm) != (ga.xfrm & mask.xfrm):
        return _fail(
            SgxError.SGX_INVALID_ATTRIBUTE,
            CHECKS[6],
            f"SECS.ATTRIBUTES {secs.attributes} & ATTRIBUTEMASK {mask} = {secs.attributes & mask} ≠ "
            f"SIGSTRUCT.ATTRIBUTES {sig.attributes} & mask = {sig.attributes & mask}",
            cpu,
        )
    # 8. MISCSELECT under the SIGSTRUCT's mask.
    if secs.miscselect & sig.miscmask != sig.miscselect & sig.miscmask:
        return _fail(
            SgxError.SGX_INVALID_ATTRIBUTE,
            CHECKS[7],
            f"SECS.MISCSELECT {secs.miscselect:#x} & MISCMASK {sig.miscmask:#x} = "
            f"{secs.miscselect & sig.miscmask:#x} ≠ SIGSTRUCT.MISCSELECT {sig.miscselect:#x} & mask = "
            f"{sig.miscselect & sig.miscmask:#x}",
            cpu,
        )
    if token is None or not token.valid & 1:
        # 9. Token-less launch: the enclave's own signer must be in the MSRs.
        if not signer_is_le:
            return _fail(
                SgxError.SGX_INVALID_EINITTOKEN,
                CHECKS[8],
                f"MRSIGNER {info.mrsigner.short()} ≠ CPU {cpu.index}'s IA32_SGXLEPUBKEYHASH "
                f"{_words_short(cpu_words)} (token-less launch)",
                cpu,
            )
        how = _TOKENLESS
    else:
        # 10.-15. The token's checks.
        refused = _token_checks(cpu, token, secs, info, mrenclave, cpu_words)
        if refused is not None:
            return refused
        how = _WITH_TOKEN

    # Commit: the SECS takes the enclave's identity; INIT is set.
    secs.mrenclave = mrenclave
    secs.mrsigner = info.mrsigner.digest
    secs.isvprodid = sig.isvprodid
    secs.isvsvn = sig.isvsvn
    secs.attributes = Attributes._trusted(secs.attributes.flags | _INIT, secs.attributes.xfrm)
    enclave.mrsigner = info.mrsigner.digest
    enclave.isvprodid = sig.isvprodid
    enclave.isvsvn = sig.isvsvn
    enclave.isvfamilyid = sig.isvfamilyid
    enclave.isvextprodid = sig.isvextprodid
    enclave.padding = HARDCODED_PKCS1_5_PADDING
    enclave.initialized = True
    home = cpu.platform
    if home is not None:
        enclave.epc = (home, home.epc_generation)
    return EinitResult(_SUCCESS, info.ok_text + str(cpu.index) + how, "commit", cpu.index)
