"""The EINIT lab's model: one EINIT on the emulator, with every input a choice.

Choose the enclave's signer (a public test key), the enclave (as signed, a
modified copy, or a launch enclave), the token (none, issued by a launch
enclave, or tampered) and CPU 0's IA32_SGXLEPUBKEYHASH; :meth:`EinitLabModel.evaluate`
runs EINIT and names the SDM check that decided. No widgets here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from sgxlab.errors import ConfigError, GeneralProtection
from sgxlab.host.le import LaunchEnclave
from sgxlab.host.samples import SignedEnclave, signed_enclave
from sgxlab.hw.arch import INTEL_LEPUBKEYHASH, MSR_IA32_SGXLEPUBKEYHASH, LeHash
from sgxlab.hw.crypto import SigningKey, load_test_key
from sgxlab.hw.einit import CHECKS, einit
from sgxlab.hw.measure import Enclave
from sgxlab.hw.platform import Platform
from sgxlab.hw.structs import Einittoken, Sigstruct

__all__ = ["EinitLabModel", "EinitOutcome", "CHECK_TEXT", "ENCLAVES", "TOKENS", "MSR_PRESETS", "KEYS"]

KEYS = tuple(range(8))
"""The test keys offered as signers (``data/keys/key00.pem`` ..)."""

ENCLAVES = ("as signed", "modified copy", "launch enclave")
TOKENS = ("none", "LE-issued", "tampered")
MSR_PRESETS = ("intel", "signer", "launch enclave", "custom")

CHECK_TEXT: dict[str, str] = {
    "sigstruct-format": "1. SIGSTRUCT format",
    "unmasked-event": "2. pending interrupt in the event window",
    "signature": "3. RSA signature, Q1 and Q2",
    "kss-familyid": "4. KSS: ISVFAMILYID needs KSS",
    "measurement": "5. MRENCLAVE = SIGSTRUCT.ENCLAVEHASH",
    "controlled-attributes": "6. controlled attributes (EINITTOKEN_KEY) need MRSIGNER = LE hash MSRs",
    "attributes-mask": "7. ATTRIBUTES/XFRM under the SIGSTRUCT mask",
    "miscselect-mask": "8. MISCSELECT under the mask",
    "tokenless-mrsigner": "9. token-less (VALID=0): MRSIGNER = IA32_SGXLEPUBKEYHASH",
    "token-debug-le": "10. a debug LE cannot launch a production enclave",
    "token-reserved": "11. token reserved bytes and VALID bits",
    "token-cpusvn": "12. token CPUSVNLE <= CPUSVN",
    "token-mac": "13. token MAC under the launch key derived from the MSRs",
    "token-measurement": "14. token MRENCLAVE/MRSIGNER",
    "token-attributes": "15. token ATTRIBUTES = SECS",
    "commit": "all checks passed: the SECS is committed",
}
"""The SDM's EINIT checks (Vol. 3D, ENCLS[EINIT]; :data:`sgxlab.hw.einit.CHECKS`) in words."""

assert set(CHECKS) | {"commit"} == set(CHECK_TEXT)


@dataclass(frozen=True, slots=True)
class EinitOutcome:
    """EINIT's answer: ``code`` and ``name`` (RAX), ``reason``, the deciding ``check``, and a note
    on how the token was made (or why there is none)."""

    code: int
    name: str
    reason: str
    check: str
    msr_hash: str
    token_note: str

    @property
    def check_text(self) -> str:
        return CHECK_TEXT.get(self.check, self.check)

    @property
    def ok(self) -> bool:
        return self.code == 0


def _choice(value: object, options: tuple[object, ...], field: str) -> None:
    if value not in options:
        raise ConfigError(field, value, f"expected one of {', '.join(map(str, options))}")


class EinitLabModel:
    """EINIT on CPU 0 of a 2-CPU flexible platform; CPU 1 runs the launch enclave that issues tokens."""

    def __init__(self) -> None:
        self.signer = 1
        self.le_key = 0
        self.enclave = ENCLAVES[0]
        self.token = TOKENS[0]
        self.msr_preset = "signer"
        self.custom_hash: LeHash = INTEL_LEPUBKEYHASH
        self._keys: dict[int, SigningKey] = {}
        self._signed: dict[tuple[int, str], SignedEnclave] = {}
        self._les: dict[int, LaunchEnclave] = {}
        self.outcome = self.evaluate()

    # -- choices -------------------------------------------------------------------

    def _key(self, i: int) -> SigningKey:
        k = self._keys.get(i)
        if k is None:
            k = self._keys[i] = load_test_key(i)
        return k

    def set(
        self,
        *,
        signer: int | None = None,
        le_key: int | None = None,
        enclave: str | None = None,
        token: str | None = None,
        msr_preset: str | None = None,
        custom_hash: str | None = None,
    ) -> EinitOutcome:
        """Change some choices (all are checked before any changes) and run EINIT again."""
        if signer is not None:
            _choice(signer, KEYS, "signer")
        if le_key is not None:
            _choice(le_key, KEYS, "launch enclave key")
        if enclave is not None:
            _choice(enclave, ENCLAVES, "enclave")
        if token is not None:
            _choice(token, TOKENS, "token")
        if msr_preset is not None:
            _choice(msr_preset, MSR_PRESETS, "MSR values")
        h = LeHash.parse(custom_hash, option="MSR hash") if custom_hash is not None else None
        if signer is not None:
            self.signer = signer
        if le_key is not None:
            self.le_key = le_key
        if enclave is not None:
            self.enclave = enclave
        if token is not None:
            self.token = token
        if msr_preset is not None:
            self.msr_preset = msr_preset
        if h is not None:
            self.custom_hash = h
            if msr_preset is None:
                self.msr_preset = "custom"
        self.outcome = self.evaluate()
        return self.outcome

    # -- the experiment ----------------------------------------------------------------

    def msr_hash(self) -> LeHash:
        """The hash CPU 0's MSRs will hold for the EINIT."""
        if self.msr_preset == "intel":
            return INTEL_LEPUBKEYHASH
        if self.msr_preset == "signer":
            return self._key(self.signer).mrsigner
        if self.msr_preset == "launch enclave":
            return self._key(self.le_key).mrsigner
        return self.custom_hash

    def _launch_enclave(self) -> LaunchEnclave:
        le = self._les.get(self.le_key)
        if le is None:
            # The LE allows every offered signer: the lab is about EINIT's checks, not LE policy.
            le = LaunchEnclave.create(self._key(self.le_key), allowlist=[self._key(i).mrsigner for i in KEYS])
            self._les[self.le_key] = le
        return le.clone()

    def _subject(self) -> tuple[Sigstruct, Enclave]:
        """The SIGSTRUCT and a fresh, uninitialized enclave to EINIT."""
        if self.enclave == "launch enclave":
            le = LaunchEnclave.create(self._key(self.signer))
            return le.sigstruct, le.fresh()
        key = (self.signer, "sample")
        se = self._signed.get(key)
        if se is None:
            se = self._signed[key] = signed_enclave(self.signer)
        if self.enclave == "modified copy":
            other = self._signed.get((self.signer, "modified"))
            if other is None:
                other = self._signed[(self.signer, "modified")] = signed_enclave(self.signer, tag=b"modified")
            return se.sigstruct, other.fresh()
        return se.sigstruct, se.fresh()

    def _token(self, platform: Platform, sig: Sigstruct, enclave: Enclave) -> tuple[Einittoken | None, str]:
        if self.token == "none":
            return None, "no token: VALID=0, Linux's token-less launch"
        le = self._launch_enclave()
        helper = platform.cpu(1)
        for msr, w in zip(MSR_IA32_SGXLEPUBKEYHASH, le.mrsigner.words):
            helper.wrmsr(msr, w)
        r = le.launch(helper)
        if not r.ok:
            return None, f"the launch enclave did not launch on CPU 1 ({r.name}): no token, VALID=0"
        t = le.get_token(sig, enclave.secs.attributes)
        if t.token is None:
            return None, f"the launch enclave refused a token ({t.reason}): VALID=0"
        if self.token == "tampered":
            mac = bytes([t.token.mac[0] ^ 0x01]) + t.token.mac[1:]
            return dataclasses.replace(t.token, mac=mac), (
                f"token issued by LE {le.mrsigner.short()} on CPU 1, then one bit of its MAC flipped"
            )
        return t.token, f"token issued by LE {le.mrsigner.short()} on CPU 1"

    def evaluate(self) -> EinitOutcome:
        """Run EINIT with the current choices on a fresh platform."""
        platform = Platform(2, "flexible")
        sig, enclave = self._subject()
        token, note = self._token(platform, sig, enclave)
        cpu = platform.cpu(0)
        h = self.msr_hash()
        for msr, w in zip(MSR_IA32_SGXLEPUBKEYHASH, h.words):
            cpu.wrmsr(msr, w)
        try:
            r = einit(cpu, sig, enclave, token)
        except GeneralProtection as gp:  # not reachable with these choices; shown, not raised
            return EinitOutcome(-1, "#GP", gp.reason, "fault", h.hex(), note)
        return EinitOutcome(int(r.code), r.name, r.reason, r.check, h.hex(), note)
