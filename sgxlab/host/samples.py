"""Ready-made signed enclaves for examples, notebooks, tests and the simulator.

:func:`signed_enclave` builds a small but real enclave (a code page and a TCS),
measures it, and signs its SIGSTRUCT with a key: one of the public test keys
in ``data/keys`` (by index) or any :class:`~sgxlab.hw.crypto.SigningKey`. The
result keeps the measured image; :meth:`SignedEnclave.fresh` forks it into a
new, uninitialized enclave, ready for EINIT, without measuring again.
"""

from __future__ import annotations

from dataclasses import dataclass

from sgxlab.hw.arch import Attr, LeHash
from sgxlab.hw.crypto import SigningKey, load_test_key, sign_sigstruct
from sgxlab.hw.measure import Enclave
from sgxlab.hw.structs import PT_REG, PT_TCS, SECINFO_R, SECINFO_X, Attributes, Secinfo, Secs, Sigstruct

__all__ = ["SignedEnclave", "signed_enclave"]


@dataclass(frozen=True)
class SignedEnclave:
    """A measured enclave image and its signed SIGSTRUCT."""

    sigstruct: Sigstruct
    sigstruct_bytes: bytes
    image: Enclave
    key: SigningKey

    @property
    def mrsigner(self) -> LeHash:
        return self.key.mrsigner

    @property
    def mrenclave(self) -> bytes:
        return self.image.mrenclave()

    def fresh(self) -> Enclave:
        """A new, uninitialized copy of the enclave (same measurement)."""
        return self.image.fork()


def signed_enclave(
    key: SigningKey | int,
    *,
    tag: bytes = b"",
    attributes: Attributes | None = None,
    attributemask: Attributes | None = None,
    isvprodid: int = 1,
    isvsvn: int = 1,
    vendor: int = 0,
    date: int = 0,
    swdefined: int = 0,
    label: bytes = b"sgxlab sample enclave ",
) -> SignedEnclave:
    """Build, measure and sign a two-page enclave.

    ``key`` is a :class:`SigningKey` or the index of a test key in
    ``data/keys``. The code page holds ``label``, the signer's hash and
    ``tag``, so different tags give different MRENCLAVEs. SECS and SIGSTRUCT
    attributes default to MODE64BIT with XFRM 0x3; ``attributemask``,
    ``vendor``, ``date``, ``swdefined``, ``isvprodid`` and ``isvsvn`` go into
    the SIGSTRUCT as given.
    """
    k = load_test_key(key) if isinstance(key, int) else key
    attrs = attributes if attributes is not None else Attributes(int(Attr.MODE64BIT), 0x3)
    image = Enclave(Secs.new(size=0x2000, attributes=attrs))
    code = (bytes(label) + k.mrsigner.digest + bytes(tag))[:4096].ljust(4096, b"\0")
    image.add_page(0x0, Secinfo.of(SECINFO_R | SECINFO_X, PT_REG), code)
    image.add_page(0x1000, Secinfo.of(0, PT_TCS), bytes(4096))
    sig = sign_sigstruct(
        k,
        Sigstruct.new(
            enclavehash=image.mrenclave(),
            attributes=attrs,
            attributemask=attributemask,
            isvprodid=isvprodid,
            isvsvn=isvsvn,
            vendor=vendor,
            date=date,
            swdefined=swdefined,
        ),
    )
    return SignedEnclave(sig, sig.to_bytes(), image, k)
