"""What EINIT learns from a SIGSTRUCT's bytes alone, computed once per SIGSTRUCT.

EINIT's first checks (the SIGSTRUCT's format, its RSA-3072 signature and Q1/Q2,
MRSIGNER) depend only on the SIGSTRUCT's bytes, so a platform may remember
them (:meth:`sgxlab.hw.platform.Platform.siginfo`); the comparisons against
the CPU's hash MSRs and the SECS run on every EINIT.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sgxlab.errors import StructError
from sgxlab.hw.arch import LeHash, Words
from sgxlab.hw.crypto import SignatureCheck, verify_sigstruct
from sgxlab.hw.structs import Sigstruct

__all__ = ["SigInfo"]


@dataclass(frozen=True, slots=True)
class SigInfo:
    """What EINIT learns from a SIGSTRUCT's bytes alone: format problems, the
    signature verdict and MRSIGNER. It depends only on the bytes, so a caller
    may memoize it per SIGSTRUCT (:meth:`sgxlab.hw.platform.Platform.siginfo`);
    the MSR comparisons never are."""

    sig: Sigstruct
    problems: tuple[StructError, ...]
    check: SignatureCheck | None
    mrsigner: LeHash
    mrsigner_words: Words
    ok_text: str = ""
    sig_ok: bool = False
    mrsigner_list: list[int] = field(default_factory=list)

    @classmethod
    def of(cls, data: bytes | Sigstruct) -> SigInfo:
        sig = data if isinstance(data, Sigstruct) else Sigstruct.from_bytes(data, validate=False)
        problems = tuple(sig.problems())
        check = None if problems else verify_sigstruct(sig)
        mr = sig.mrsigner
        ok_text = f"enclave {_short(sig.enclavehash)} signed by {mr.short()} initialized on CPU "
        sig_ok = check is not None and check.signature_valid and check.q1q2_valid
        return cls(sig, problems, check, mr, mr.words, ok_text, sig_ok, list(mr.words))


def _short(b: bytes) -> str:
    return b[:4].hex() + "…"
