"""Mainline's PROVISIONKEY gate on the host: ``attributes_mask``, ``/dev/sgx_provision`` and ``-EACCES``.

A process may initialize an enclave whose SECS.ATTRIBUTES asks for
PROVISIONKEY only after showing it may: ``SGX_IOC_ENCLAVE_PROVISION`` with an
open fd of ``/dev/sgx_provision`` adds the bit to the enclave's
``attributes_mask``; otherwise ``sgx_encl_init()`` returns ``-EACCES``.

Sources (``../shared/reference/linux-kvm-qemu.md`` §7 and §5;
``hardware-and-einit.md`` §3 for the ATTRIBUTES bit, 0x10):

* commit c82c61865024 "x86/sgx: Add SGX_IOC_ENCLAVE_PROVISION" (Suggested-by
  Andy Lutomirski), ``arch/x86/kernel/cpu/sgx/ioctl.c``: ECREATE
  (``sgx_encl_create``) succeeds whatever the attributes and sets
  ``encl->attributes_mask`` to the unprivileged bits;
  ``sgx_ioc_enclave_provision`` calls ``sgx_set_attribute(&encl->attributes_mask, fd)``
  (``arch/x86/kernel/cpu/sgx/main.c``), which accepts only an fd of
  ``/dev/sgx_provision`` (else ``-EINVAL``) and ORs in
  ``SGX_ATTR_PROVISIONKEY``;
* ``sgx_encl_init()`` (commit 9d0c151b41fe) begins with ``if
  (encl->attributes & ~encl->attributes_mask) return -EACCES;``: before the
  reserved-bit checks, before ``sgx_update_lepubkeyhash`` and before
  ENCLS[EINIT]. So a refused enclave costs no hash-MSR access and no EINIT.

What is modelled: the permission as a property of the launching process or
workload tenant (:class:`Tenant`: may it open ``/dev/sgx_provision``?), the
enclave's two attribute words (:class:`SgxEncl`), and the kernel's answer
(:data:`EACCES`). The same fd is what QEMU hands to KVM with
KVM_CAP_SGX_ATTRIBUTE for a guest (:mod:`sgxlab.kvm.guest`), so a VM gets the
capability only from a process that holds the permission.

Not this mechanism: Intel's launch enclave refusing an EINITTOKEN for a
PROVISIONKEY enclave whose signer it does not whitelist (the older token
flow, :mod:`sgxlab.host.le`, ``hardware-and-einit.md`` §6). That is a policy
about signers inside the LE; this gate is about processes inside the kernel,
and neither consults the other.
"""

from __future__ import annotations

from dataclasses import dataclass

from sgxlab.errors import ConfigError, PolicyRefusal
from sgxlab.hw.arch import Attr

__all__ = [
    "SGX_ATTR_PROVISIONKEY",
    "SGX_ATTR_UNPRIV_MASK",
    "EACCES",
    "EINVAL",
    "GATE_EACCES",
    "GATE_ECREATE_GP",
    "SgxProvisionFd",
    "Tenant",
    "SgxEncl",
    "ProvisionRefusal",
    "sgx_set_attribute",
    "eacces_reason",
]

SGX_ATTR_PROVISIONKEY = int(Attr.PROVISIONKEY)
"""SECS.ATTRIBUTES bit 4 (0x10), Linux's ``SGX_ATTR_PROVISIONKEY``: the enclave may
derive the provisioning keys with EGETKEY."""

SGX_ATTR_UNPRIV_MASK = int(Attr.DEBUG | Attr.MODE64BIT | Attr.KSS | Attr.AEXNOTIFY)
"""The attributes any process may ask for: ``encl->attributes_mask`` after ECREATE
(``SGX_ATTR_UNPRIV_MASK`` in ``arch/x86/include/asm/sgx.h``; 5.11 had DEBUG,
MODE64BIT and KSS, AEXNOTIFY joined later). PROVISIONKEY is not in it."""

EACCES = 13
"""``EACCES``: ``sgx_encl_init()`` returns ``-EACCES`` for a gated attribute."""

EINVAL = 22
"""``EINVAL``: ``sgx_set_attribute`` returns ``-EINVAL`` for an fd that is not
``/dev/sgx_provision``."""

GATE_EACCES = "eacces"
"""The reason code of a host launch the gate refused (``sgx_encl_init`` returned -EACCES)."""

GATE_ECREATE_GP = "ecreate-gp"
"""The reason code of a guest launch the gate refused (#GP at the trapped ECREATE)."""


@dataclass(frozen=True, slots=True)
class SgxProvisionFd:
    """An open file descriptor of ``/dev/sgx_provision``, held by ``owner``.

    The device is an empty stub: holding an fd of it *is* the permission
    (commit c82c61865024). Only :meth:`Tenant.open_sgx_provision` makes one.
    """

    owner: str
    path: str = "/dev/sgx_provision"


@dataclass(frozen=True, slots=True)
class Tenant:
    """A launching process or workload tenant, and whether it may open ``/dev/sgx_provision``.

    ``sgx_provision`` stands for the file permission the host administrator
    gave (the device's mode and group). A host process uses the fd with
    ``SGX_IOC_ENCLAVE_PROVISION``; a QEMU process uses it with
    KVM_CAP_SGX_ATTRIBUTE for its VM.
    """

    name: str = "host"
    sgx_provision: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError("tenant.name", self.name, "a tenant needs a non-empty name")
        if not isinstance(self.sgx_provision, bool):
            raise ConfigError("tenant.sgx_provision", self.sgx_provision, "expected a bool")

    def open_sgx_provision(self) -> SgxProvisionFd | None:
        """``open("/dev/sgx_provision", O_RDONLY)``: an fd, or ``None`` (the open failed with EACCES)."""
        return SgxProvisionFd(self.name) if self.sgx_provision else None


def sgx_set_attribute(allowed_attributes: int, fd: object) -> tuple[int, int]:
    """``sgx_set_attribute(&allowed_attributes, fd)``: ``(new mask, 0)``, or
    ``(mask unchanged, -EINVAL)`` when ``fd`` is not an fd of ``/dev/sgx_provision``."""
    if not isinstance(fd, SgxProvisionFd):
        return allowed_attributes, -EINVAL
    return allowed_attributes | SGX_ATTR_PROVISIONKEY, 0


def eacces_reason(attributes: int, owner: str) -> str:
    """The sentence for a host launch the gate refused."""
    return (
        f"sgx_encl_init() returned -EACCES: SECS.ATTRIBUTES {attributes:#x} asks for PROVISIONKEY, "
        f"which is not in encl->attributes_mask ({owner} did no SGX_IOC_ENCLAVE_PROVISION with "
        "an fd of /dev/sgx_provision); no hash-MSR write, no ENCLS[EINIT]"
    )


@dataclass(slots=True)
class SgxEncl:
    """The two attribute words of an enclave in the host kernel (``struct sgx_encl``).

    Made by :meth:`sgx_encl_create` (ECREATE succeeds; the mask is
    :data:`SGX_ATTR_UNPRIV_MASK`). :meth:`sgx_ioc_enclave_provision` widens the
    mask; :meth:`sgx_encl_init_check` is ``sgx_encl_init()``'s first test.
    """

    attributes: int
    attributes_mask: int = SGX_ATTR_UNPRIV_MASK

    @classmethod
    def sgx_encl_create(cls, attributes: int) -> SgxEncl:
        """``sgx_encl_create``: ``encl->attributes = secs->attributes`` and the unprivileged mask."""
        if isinstance(attributes, bool) or not isinstance(attributes, int) or not 0 <= attributes < 1 << 64:
            raise ConfigError("attributes", attributes, "SECS.ATTRIBUTES.flags is a 64-bit integer")
        return cls(attributes)

    def sgx_ioc_enclave_provision(self, fd: object) -> int:
        """``SGX_IOC_ENCLAVE_PROVISION``: 0, or ``-EINVAL`` for a wrong fd."""
        self.attributes_mask, ret = sgx_set_attribute(self.attributes_mask, fd)
        return ret

    def sgx_encl_init_check(self) -> int:
        """``sgx_encl_init()``'s first test: ``-EACCES`` if ``attributes & ~attributes_mask``, else 0."""
        return -EACCES if self.attributes & ~self.attributes_mask & SGX_ATTR_PROVISIONKEY else 0

    @classmethod
    def for_tenant(cls, attributes: int, tenant: Tenant) -> SgxEncl:
        """The enclave as ``tenant`` prepares it: ECREATE, then, if it may open
        ``/dev/sgx_provision``, SGX_IOC_ENCLAVE_PROVISION with that fd."""
        encl = cls.sgx_encl_create(attributes)
        fd = tenant.open_sgx_provision()
        if fd is not None:
            encl.sgx_ioc_enclave_provision(fd)
        return encl


class ProvisionRefusal(PolicyRefusal):
    """The gate refused a launch: ``-EACCES`` on the host (``gate`` =
    :data:`GATE_EACCES`, ``errno`` = -13). Raised by
    :meth:`sgxlab.kvm.Kvm.host_einit`; never an EINIT failure (no EINIT ran)."""

    def __init__(self, reason: str, *, gate: str = GATE_EACCES, errno: int = -EACCES) -> None:
        self.gate = gate
        self.errno = errno
        super().__init__("mainline", reason)
