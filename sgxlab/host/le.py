"""A launch enclave: the "legacy" launch flow the 2017 debate weighed.

:class:`LaunchEnclave` is a real enclave on the emulator that launches itself
with EINIT and then issues EINITTOKENs, by policy, for the enclaves it allows.

The token flow
--------------
Before Flexible Launch Control could be assumed, an enclave was launched with
an EINITTOKEN made by a *launch enclave* (LE). The LE is an ordinary enclave
with one privilege: ATTRIBUTES.EINITTOKEN_KEY, which EINIT grants only when the
LE's signer is the hash in IA32_SGXLEPUBKEYHASH (the controlled-attribute
check). Inside, the LE asks EGETKEY for the launch key and MACs tokens for the
enclaves its policy allows. EINIT re-derives that key from the CPU's *current*
MSRs, so a token is good only on the platform that made it and only while the
MSRs still hold the LE's signer.

The other flow is token-less launch (VALID=0), where the kernel writes each
enclave's own signer into the MSRs; both work on this emulator.

Sources and decisions
---------------------
The policy follows Intel's LE (intel/linux-sgx ``psw/ae/le/launch_enclave.cpp``)
and the reference LE (``psw/ae/ref_le/ref_le.cpp``), paraphrased:

* PROVISIONKEY only for signers on a provisioning list (Intel's LE: the PvE
  and PCE signers); like Intel's LE, this is checked first, so a debug
  enclave does not get PROVISIONKEY from an unlisted signer either;
* debug enclaves always get a token (otherwise);
* other enclaves only if their signer is on the allowlist.

The token carries MASKEDATTRIBUTESLE = the LE's attributes with MODE64BIT
masked out and XFRM masked to 0, exactly the KEYREQUEST mask Intel's LE uses
(the real token in ``../shared/vectors/real-hw-token`` shows 0x21/0 for LE
attributes 0x25), CPUSVNLE/ISVPRODIDLE/ISVSVNLE from the LE itself, and a
random KEYID.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sgxlab.errors import GeneralProtection
from sgxlab.host.samples import signed_enclave
from sgxlab.hw.arch import Attr, LeHash
from sgxlab.hw.crypto import SigningKey, aes_cmac
from sgxlab.hw.einit import EinitResult, egetkey, einit
from sgxlab.hw.structs import Attributes, Einittoken, Keyrequest, Sigstruct

if TYPE_CHECKING:
    from sgxlab.hw.measure import Enclave
    from sgxlab.hw.platform import Cpu

__all__ = ["LaunchEnclave", "TokenResult", "INTEL_LE_ISVPRODID"]

INTEL_LE_ISVPRODID = 0x20
"""Intel's LE product ID (``le_prod_css.bin`` ISVPRODID; ISVPRODIDLE of real tokens)."""

_LE_KEYREQUEST_MASK = Attributes(~int(Attr.MODE64BIT) & ((1 << 64) - 1), 0)


def _hashes(items: Iterable[LeHash | str | bytes] | None, option: str) -> frozenset[bytes]:
    out: set[bytes] = set()
    for it in items or ():
        out.add(LeHash.coerce(it, option=option).digest)
    return frozenset(out)


@dataclass(frozen=True, slots=True)
class TokenResult:
    """The LE's answer: a token, or ``None`` and the policy's reason."""

    token: Einittoken | None
    reason: str

    @property
    def granted(self) -> bool:
        return self.token is not None


@dataclass
class LaunchEnclave:
    """A launch enclave signed by ``key`` that issues EINITTOKENs by policy.

    Build it, :meth:`launch` it on a CPU (its own EINIT, which succeeds only
    where that CPU's MSRs hold ``key``'s hash), then ask :meth:`get_token`.
    """

    key: SigningKey
    allowlist: frozenset[bytes] = frozenset()
    provision_allowlist: frozenset[bytes] = frozenset()
    isvprodid: int = INTEL_LE_ISVPRODID
    isvsvn: int = 1
    debug: bool = False
    seed: int = 0
    sigstruct: Sigstruct = field(init=False)
    enclave: Enclave | None = field(init=False, default=None)
    cpu: Cpu | None = field(init=False, default=None)
    _rng: random.Random = field(init=False, repr=False)
    _image: Enclave = field(init=False, repr=False)

    @classmethod
    def create(
        cls,
        key: SigningKey,
        *,
        allowlist: Iterable[LeHash | str | bytes] = (),
        provision_allowlist: Iterable[LeHash | str | bytes] = (),
        isvprodid: int = INTEL_LE_ISVPRODID,
        isvsvn: int = 1,
        debug: bool = False,
        seed: int = 0,
    ) -> LaunchEnclave:
        return cls(
            key,
            _hashes(allowlist, "allowlist"),
            _hashes(provision_allowlist, "provision_allowlist"),
            isvprodid,
            isvsvn,
            debug,
            seed,
        )

    def __post_init__(self) -> None:
        # Accept the same signer spellings as create() when built directly.
        self.allowlist = _hashes(self.allowlist, "allowlist")
        self.provision_allowlist = _hashes(self.provision_allowlist, "provision_allowlist")
        self._rng = random.Random(self.seed)
        flags = int(Attr.MODE64BIT | Attr.EINITTOKEN_KEY) | (int(Attr.DEBUG) if self.debug else 0)
        # A code page and a TCS, signed the way Intel signs its LE: vendor
        # 0x8086, SWDEFINED 0x10, bits 48-55 and DEBUG out of the mask.
        built = signed_enclave(
            self.key,
            label=b"sgxlab launch enclave ",
            attributes=Attributes(flags, 0x3),
            attributemask=Attributes(0xFF00FFFFFFFFFFFF & ~int(Attr.DEBUG), 0xFFFFFFFFFFFFFF1B),
            vendor=0x8086,
            date=0x20170512,
            isvprodid=self.isvprodid,
            isvsvn=self.isvsvn,
            swdefined=0x10,
        )
        self._image = built.image
        self.sigstruct = built.sigstruct

    def fresh(self) -> Enclave:
        """A new, uninitialized copy of the LE's enclave (to launch it elsewhere,
        e.g. inside a guest)."""
        return self._image.fork()

    @property
    def mrsigner(self) -> LeHash:
        return self.key.mrsigner

    def clone(self) -> LaunchEnclave:
        """A copy that is not running, with its own KEYID generator seeded from ``seed``.

        It shares the signed SIGSTRUCT and the image (neither changes once
        built), so it is cheap; unlike :func:`copy.copy` it shares no random
        state, so the tokens it issues do not depend on what other copies
        issued before.
        """
        clone = copy.copy(self)
        clone.enclave = None
        clone.cpu = None
        clone._rng = random.Random(self.seed)
        return clone

    def launch(self, cpu: Cpu) -> EinitResult:
        """EINIT the LE itself on ``cpu`` (token-less: the MSRs must hold its signer)."""
        enclave = self.fresh()
        result = einit(cpu, self.sigstruct, enclave)
        if result.ok:
            self.enclave = enclave
            self.cpu = cpu
        return result

    def policy(self, sig: Sigstruct, attributes: Attributes) -> str | None:
        """``None`` if policy allows a token, else the refusal reason."""
        signer = sig.mrsigner.digest
        if attributes.flags & Attr.PROVISIONKEY and signer not in self.provision_allowlist:
            return f"signer {sig.mrsigner.short()} may not have PROVISIONKEY (not on the provisioning list)"
        if attributes.flags & Attr.DEBUG:
            return None
        if signer not in self.allowlist:
            return f"signer {sig.mrsigner.short()} is not on the launch enclave's allowlist"
        return None

    def get_token(self, sig: Sigstruct, attributes: Attributes | None = None, *, miscselect: int = 0) -> TokenResult:
        """Issue an EINITTOKEN for ``sig`` with the SECS ``attributes`` it will be created with."""
        if self.enclave is None or self.cpu is None:
            return TokenResult(None, "the launch enclave is not running: launch() it on a CPU first")
        attrs = attributes if attributes is not None else sig.attributes
        refusal = self.policy(sig, attrs)
        if refusal:
            return TokenResult(None, refusal)
        le_secs = self.enclave.secs
        keyid = self._rng.randbytes(32)
        if self.cpu.platform is None:
            return TokenResult(None, "the launch enclave runs on a CPU without a platform (no fuses, no CPUSVN)")
        cpusvn = self.cpu.platform.cpusvn
        req = Keyrequest(
            keyname=0,
            isvsvn=le_secs.isvsvn,
            cpusvn=cpusvn,
            attributemask=_LE_KEYREQUEST_MASK,
            keyid=keyid,
            miscmask=0xFFFFFFFF,
        )
        try:
            key = egetkey(self.cpu, self.enclave, req)
        except GeneralProtection as gp:
            return TokenResult(None, f"EGETKEY faulted: {gp.reason}")
        if not key.ok or key.key is None:
            return TokenResult(None, f"EGETKEY failed: {key.reason}")
        token = Einittoken(
            valid=1,
            attributes=attrs,
            mrenclave=sig.enclavehash,
            mrsigner=sig.mrsigner.digest,
            cpusvnle=cpusvn,
            isvprodidle=le_secs.isvprodid,
            isvsvnle=le_secs.isvsvn,
            maskedmiscselectle=le_secs.miscselect & 0xFFFFFFFF,
            maskedattributesle=le_secs.attributes & _LE_KEYREQUEST_MASK,
            keyid=keyid,
        )
        token.mac = aes_cmac(key.key, token.mac_data())
        return TokenResult(token, f"token issued by LE {self.mrsigner.short()}")
