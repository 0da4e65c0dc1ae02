"""KVM and QEMU for SGX guests: virtual launch-control MSRs, trapped EINIT, host policies.

This is the hypervisor layer the 2017 thread argued about. Kai Huang's KVM
RFC (May 2017) let QEMU create a guest with ``-sgx epc=<size>,lehash='<SHA-256>',lewr``:
``lehash`` is the initial value of the guest's IA32_SGXLEPUBKEYHASH0..3 and
``lewr`` lets the guest rewrite it at run time (its firmware then locks
IA32_FEATURE_CONTROL with bit 17 set). Andy Lutomirski wanted KVM to keep the
guest's values in memory only and to trap EINIT, so that a host launch policy
also covers guests. KVM as merged in Linux 5.13 does the keeping and the
trapping, and QEMU 6.2 replaced Kai's options by an ``sgxlc`` CPU flag.

What is modelled, with its source (``../shared/reference/linux-kvm-qemu.md``
§2 and §5, ``hardware-and-einit.md`` "Linux/KVM behaviour"; all paraphrased):

* **Guest configuration** (:class:`SgxGuestConfig`). Kai's option string,
  parsed exactly (``epc`` with a K/M/G suffix and a multiple of 4 KiB,
  ``lehash`` as 64 hex digits, quotes allowed as in his mail, the ``lewr``
  flag), and as a second mode the interface QEMU 6.2 merged
  (``docs/system/i386/sgx.rst``): ``-cpu ...,+sgxlc`` plus a
  ``memory-backend-epc`` object, no lehash and no lewr, guest firmware sets
  FEATURE_CONTROL bit 17 iff ``sgxlc``.
* **The initial virtual hash**, KVM's ``setup_default_sgx_lepubkeyhash()``
  (called from ``hardware_setup()``) and ``vcpu_setup_sgx_lepubkeyhash()``:
  Intel's hash when the host has a writable LC or no LC at all (its RDMSR
  faults), otherwise the value the host firmware locked in. Kai's ``lehash``,
  when given, replaces it (QEMU writes it host-initiated).
* **Guest RDMSR/WRMSR** of 0x8C-0x8F and 0x3A (``vmx_get_msr``/``vmx_set_msr``,
  commit 8f102445d404): a read needs guest CPUID SGX_LC; a write needs SGX_LC
  and a FEATURE_CONTROL that is unlocked or locked with
  FEAT_CTL_SGX_LC_ENABLED. An accepted write changes
  ``msr_ia32_sgxlepubkeyhash`` in memory only; no hardware WRMSR happens.
  Host-initiated accesses (QEMU's KVM_GET/SET_MSRS) skip the checks. Every
  guest access is an MSR exit and is counted.
* **CPUID**: KVM offers SGX_LC to guests only if the host's MSRs are
  writable (``kvm_cpu_cap_mask``; the QEMU commit says so, and a guest asking
  for ``+sgxlc`` on a locked host fails to start, intel/qemu-sgx#14).
  :meth:`Kvm.create_vm` refuses lewr/sgxlc there.
* **EINIT exiting** (``vmx_write_encls_bitmap``, commit b6f084ca5538): EINIT
  is intercepted iff the host has SGX_LC, i.e. its LC is writable. A trapped
  EINIT goes through ``handle_encls_einit`` and ``sgx_virt_einit``: here the
  host policy looks at it (:meth:`sgxlab.policy.HostPolicy.check_guest_einit`),
  then the MSR-update :class:`~sgxlab.designs.Design` loads the guest's
  virtual values on the physical CPU the vCPU runs on and the real emulated
  EINIT runs; RAX and ZF are reflected to the guest unchanged (KVM does not
  retry). The eager-load design of Kai's RFC does not trap (its
  ``traps_einit`` is false): it writes the guest's values at each schedule-in
  (:meth:`Vcpu.load`), and, as his RFC passed guest writes through, a guest
  WRMSR while the vCPU is loaded also goes to hardware. An untrapped EINIT
  runs natively against whatever the physical CPU holds.
* **Host EINIT** (:meth:`Kvm.host_einit`): the policy, then Linux's
  token-less flow (the design writes the enclave's own MRSIGNER).

Decisions where the sources leave a choice
------------------------------------------

* *What a guest sees when the host policy refuses a trapped EINIT.* KVM has no
  such path (mainline has no policy). sgxlab reflects, with ZF set, the code
  hardware's own launch control gives when the hash MSRs do not hold the
  enclave's signer: SGX_INVALID_EINITTOKEN (16) for an ordinary enclave, and
  SGX_INVALID_ATTRIBUTE (2) for one with the controlled EINITTOKEN_KEY
  attribute (a launch enclave), where the controlled-attribute check comes
  first (SDM EINIT order). A guest driver already handles both; faulting with
  #GP instead would be a fault EINIT never raises for a well-formed request.
  ``Kvm(refusal_code=...)`` fixes one code instead. The :class:`GuestEinit`
  records ``step="policy"`` and ``policy_refused=True``.
* *Hardware consistency* (:func:`hardware_consistent`). A guest observation
  is inconsistent when no real machine with the guest's CPUID and
  FEATURE_CONTROL could produce it. sgxlab runs the same EINIT on a reference
  CPU: SGX_LC as in the guest's CPUID, hash MSRs holding the guest's virtual
  values (Intel's hard-wired hash if the guest CPUID has no SGX_LC), then
  compares that "raw hardware" code with the code the guest saw. They must be
  equal, except that SGX_UNMASKED_EVENT may appear anywhere (an interrupt can
  abort any EINIT). A guest WRMSR that was accepted although FEATURE_CONTROL
  was locked without bit 17 would be inconsistent too (KVM never does that).
  Kai's objection is the standard example: bit 17 set, the WRMSR accepted,
  the MSRs holding the enclave's signer, and EINIT still failing because of a
  host allowlist. A less obvious one: on a host whose firmware locked in a
  third-party hash, KVM hides SGX_LC from the guest yet the guest's EINIT is
  checked against that third-party hash, which no CPU without SGX_LC has.

Counters: ``Vcpu.msr_exits`` (guest RDMSR/WRMSR), ``Vcpu.encls_exits``
(trapped EINITs, each one VM exit and entry), ``Vcpu.schedule_ins``
(:meth:`Vcpu.load`). Guest firmware's boot-time setup is not counted, as
:class:`~sgxlab.platform.Platform` does not count host firmware.

There is no module-level mutable state: a :class:`Kvm` owns its VMs.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Iterable, Union

from .arch import (
    CONTROLLED_ATTRIBUTES,
    FEAT_CTL_LOCKED,
    FEAT_CTL_SGX_ENABLED,
    FEAT_CTL_SGX_LC_ENABLED,
    INTEL_LEPUBKEYHASH,
    MSR_IA32_FEATURE_CONTROL,
    MSR_IA32_SGXLEPUBKEYHASH,
    LeHash,
    SgxError,
)
from .designs import AlwaysWrite, Design, LaunchOutcome, design_class
from .einit import EinitResult, SigInfo, einit
from .errors import ConfigError, GeneralProtection, PolicyRefusal, SgxlabError
from .platform import FEAT_CTL_VMX_INSIDE_SMX, FEAT_CTL_VMX_OUTSIDE_SMX, Cpu, Platform
from .policy import AllowAll, HostPolicy, policy_by_name
from .structs import PT_TCS, SECINFO_R, SECINFO_X, Einittoken, Secinfo, Sigstruct

if TYPE_CHECKING:
    import pandas

    from .le import LaunchEnclave
    from .measure import Enclave

__all__ = [
    "GuestOptionError",
    "SgxGuestConfig",
    "parse_size",
    "format_size",
    "MAX_EPC",
    "GuestView",
    "GuestEinit",
    "hardware_consistent",
    "reference_einit",
    "Kvm",
    "Vm",
    "Vcpu",
    "launch_le_in_guest",
    "POLICY_REFUSAL_CODE",
    "POLICY_REFUSAL_CODE_LE",
    "MATRIX_COLUMNS",
    "policy_matrix",
    "policy_matrix_records",
    "default_approved",
]

Words = tuple[int, int, int, int]
SigArg = Union[Sigstruct, bytes, SigInfo]

_HASH = MSR_IA32_SGXLEPUBKEYHASH
_HASH_SLOT = {msr: i for i, msr in enumerate(_HASH)}
_U64_MAX = (1 << 64) - 1
PAGE = 4096

POLICY_REFUSAL_CODE = SgxError.SGX_INVALID_EINITTOKEN
"""What a guest sees in RAX when the host policy refuses its trapped EINIT of an
ordinary enclave (see the module text)."""

POLICY_REFUSAL_CODE_LE = SgxError.SGX_INVALID_ATTRIBUTE
"""The same for an enclave with controlled attributes (a launch enclave)."""

_GUEST_FC_BASE = FEAT_CTL_LOCKED | FEAT_CTL_SGX_ENABLED
_HOST_INITIATED_FC_VALID = (
    FEAT_CTL_LOCKED
    | FEAT_CTL_VMX_INSIDE_SMX
    | FEAT_CTL_VMX_OUTSIDE_SMX
    | FEAT_CTL_SGX_ENABLED
    | FEAT_CTL_SGX_LC_ENABLED
)

# #GP reasons for guest MSR accesses (KVM vmx_get_msr / vmx_set_msr).
_R_GUEST_NO_LC = (
    "guest CPUID.(EAX=07H,ECX=0):ECX[30] (SGX_LC) is clear: KVM refuses guest access to "
    "IA32_SGXLEPUBKEYHASHn (vmx_get_msr/vmx_set_msr)"
)
_R_GUEST_LOCKED = (
    "the guest's IA32_FEATURE_CONTROL is locked without bit 17 (FEAT_CTL_SGX_LC_ENABLED): "
    "KVM refuses the write (vmx_set_msr)"
)
_R_GUEST_FC_LOCKED = "the guest's IA32_FEATURE_CONTROL is locked: KVM refuses guest writes (vmx_set_msr)"
_R_GUEST_UNKNOWN = "MSR not emulated for SGX guests here (sgxlab models 0x3a and 0x8c-0x8f)"


# --------------------------------------------------------------------------- option strings


class GuestOptionError(ConfigError):
    """A bad guest option string. ``kind`` says which rule was broken:

    ``empty-item``, ``unknown-key``, ``duplicate-key``, ``flag-value``
    (``lewr=...``), ``missing-value``, ``missing-epc``, ``bad-size``,
    ``bad-quote``, ``bad-hex``, ``wrong-length``, ``not-a-string``, or
    ``qemu-syntax`` for the merged QEMU form.
    """

    def __init__(self, kind: str, option: str, value: Any, reason: str) -> None:
        self.kind = kind
        super().__init__(option, value, reason)


_SIZE_RE = re.compile(r"([0-9]+)([KMGkmg]?)")
_SUFFIX = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}

MAX_EPC = 1 << 40
"""Largest EPC a guest may be given: 1 TiB (``1024G``). The largest real EPC is
512 GB per socket (3rd-generation Xeon Scalable, Ice Lake-SP), 1 TB on a
two-socket host, so nothing real exceeds it; larger sizes are typos."""

_HEXDIGITS = frozenset("0123456789abcdefABCDEF")
_KAI_KEYS = ("epc", "lehash", "lewr")


def parse_size(text: Any, option: str = "epc") -> int:
    """Parse an EPC size: digits with an optional K, M or G suffix (powers of 1024).

    The result must be positive, a multiple of 4 KiB (QEMU's rule for EPC
    sections) and at most :data:`MAX_EPC` (1 TiB). Raises
    :class:`GuestOptionError` of kind ``bad-size``.
    """
    if isinstance(text, int) and not isinstance(text, bool):
        n = text
    elif isinstance(text, str):
        m = _SIZE_RE.fullmatch(text)
        if m is None:
            raise GuestOptionError(
                "bad-size", option, text, "expected a size: digits with an optional K, M or G suffix (e.g. 64M)"
            )
        digits = m.group(1).lstrip("0") or "0"
        if len(digits) > 16:  # > 10**16 bytes whatever the suffix; int() of 5,000 digits would raise
            raise GuestOptionError("bad-size", option, text, _EPC_TOO_BIG)
        n = int(digits) * _SUFFIX[m.group(2).upper()]
    else:
        raise GuestOptionError("bad-size", option, text, "expected a size such as 64M or a number of bytes")
    if n <= 0:
        raise GuestOptionError("bad-size", option, text, "the EPC size must be positive")
    if n > MAX_EPC:
        raise GuestOptionError("bad-size", option, text, _EPC_TOO_BIG)
    if n % PAGE:
        raise GuestOptionError("bad-size", option, text, f"the EPC size must be a multiple of 4 KiB ({PAGE} bytes)")
    return n


_EPC_TOO_BIG = (
    f"the EPC size must be at most 1024G (1 TiB, {MAX_EPC:,} bytes): no SGX host has more EPC "
    "(512 GB per socket at most)"
)


def format_size(n: int) -> str:
    """The shortest exact form of a size: ``64M``, ``1G``, ``12K`` or plain bytes."""
    for suffix, unit in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if n % unit == 0:
            return f"{n // unit}{suffix}"
    return str(n)


def _parse_lehash(value: str, option: str = "lehash") -> LeHash:
    text = value
    if text[:1] in ("'", '"'):
        q = text[0]
        if len(text) < 2 or text[-1] != q:
            raise GuestOptionError("bad-quote", option, value, f"unbalanced quote {q}: write lehash={q}<64 hex digits>{q}")
        text = text[1:-1]
    elif text[-1:] in ("'", '"'):
        raise GuestOptionError("bad-quote", option, value, f"unbalanced quote {text[-1]}")
    for pos, ch in enumerate(text):
        if ch not in _HEXDIGITS:
            raise GuestOptionError(
                "bad-hex", option, value, f"not a hexadecimal digit: {ch!r} at position {pos}"
            )
    if len(text) != 64:
        raise GuestOptionError(
            "wrong-length", option, value, f"expected 64 hex digits (a SHA-256, 32 bytes), got {len(text)}"
        )
    return LeHash(bytes.fromhex(text))


def _flag_value(flag: str, value: str) -> bool:
    v = value.lower()
    if v in ("on", "true", "yes"):
        return True
    if v in ("off", "false", "no"):
        return False
    raise GuestOptionError("qemu-syntax", f"-cpu {flag}", value, "expected on or off")


@dataclass(frozen=True, slots=True)
class SgxGuestConfig:
    """An SGX guest as QEMU is asked to create it.

    ``epc`` is the EPC size in bytes. In ``mode="rfc2017"`` (Kai Huang's RFC,
    the default) ``lehash`` is the initial IA32_SGXLEPUBKEYHASH (``None``:
    KVM's default) and ``lewr`` lets the guest rewrite it; the guest gets
    CPUID SGX_LC whenever the host's KVM offers it. In ``mode="merged"``
    (QEMU 6.2) there is no lehash and no lewr: ``sgxlc`` is the CPU flag, and
    guest firmware sets FEATURE_CONTROL bit 17 iff it is on.

    Build from text with :meth:`parse` (either form), or with :meth:`merged`.
    :meth:`to_option` gives text that :meth:`parse` turns back into an equal
    object.
    """

    epc: int
    lehash: LeHash | None = None
    lewr: bool = False
    mode: str = "rfc2017"
    sgxlc: bool = False

    MODES: ClassVar[tuple[str, ...]] = ("rfc2017", "merged")

    def __post_init__(self) -> None:
        object.__setattr__(self, "epc", parse_size(self.epc))
        if self.mode not in self.MODES:
            raise ConfigError("mode", self.mode, "expected 'rfc2017' (Kai's -sgx option) or 'merged' (QEMU 6.2)")
        if isinstance(self.lehash, str):
            object.__setattr__(self, "lehash", _parse_lehash(self.lehash))
        if self.lehash is not None and not isinstance(self.lehash, LeHash):
            raise ConfigError("lehash", self.lehash, "expected a LeHash, 64 hex digits or None")
        for name in ("lewr", "sgxlc"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(name, getattr(self, name), "expected a bool")
        if self.mode == "merged" and (self.lehash is not None or self.lewr):
            raise ConfigError(
                "lehash" if self.lehash is not None else "lewr",
                self.lehash.hex() if self.lehash is not None else True,
                "QEMU 6.2 has no lehash/lewr (Kai's 2017 options never landed); use sgxlc",
            )
        if self.mode == "rfc2017" and self.sgxlc:
            raise ConfigError(
                "sgxlc",
                True,
                "sgxlc belongs to mode 'merged'; with Kai's options the guest gets SGX_LC whenever KVM offers it",
            )

    # -- constructors -----------------------------------------------------------

    @classmethod
    def parse(cls, text: str) -> SgxGuestConfig:
        """Parse Kai's option string, e.g. ``epc=64M,lehash='<64 hex>',lewr``.

        A leading ``-sgx`` is allowed. A string that starts with another
        ``-`` option is the merged QEMU command line (:meth:`parse_qemu`).
        Errors are :class:`GuestOptionError` with a precise ``kind``.
        """
        if not isinstance(text, str):
            raise GuestOptionError("not-a-string", "-sgx", text, "expected an option string such as epc=64M,lewr")
        t = text.strip()
        if t.startswith("-sgx ") or t == "-sgx":
            t = t[4:].strip()
        elif t.startswith("-"):
            return cls.parse_qemu(t)
        if not t:
            raise GuestOptionError("missing-epc", "-sgx", text, "empty option string: epc=<size> is required")
        seen: dict[str, str] = {}
        lehash: LeHash | None = None
        lewr = False
        epc = 0
        for pos, item in enumerate(t.split(",")):
            if not item:
                raise GuestOptionError("empty-item", "-sgx", text, f"empty item at position {pos} (stray comma)")
            key, sep, value = item.partition("=")
            if key not in _KAI_KEYS:
                raise GuestOptionError(
                    "unknown-key", "-sgx", text, f"unknown key {key!r}; valid keys: {', '.join(_KAI_KEYS)}"
                )
            if key in seen:
                raise GuestOptionError("duplicate-key", f"-sgx {key}", text, f"key {key!r} given twice")
            seen[key] = value
            if key == "lewr":
                if sep:
                    raise GuestOptionError(
                        "flag-value", "-sgx lewr", item, "lewr is a flag and takes no value (write just lewr)"
                    )
                lewr = True
                continue
            if not sep or value == "":
                raise GuestOptionError("missing-value", f"-sgx {key}", item, f"{key} needs a value ({key}=...)")
            if key == "epc":
                epc = parse_size(value, "-sgx epc")
            else:
                lehash = _parse_lehash(value, "-sgx lehash")
        if "epc" not in seen:
            raise GuestOptionError("missing-epc", "-sgx", text, "epc=<size> is required")
        return cls(epc=epc, lehash=lehash, lewr=lewr)

    @classmethod
    def merged(cls, epc: int | str = "64M", sgxlc: bool = True) -> SgxGuestConfig:
        """The interface QEMU 6.2 merged: an EPC size and the ``sgxlc`` CPU flag."""
        return cls(epc=parse_size(epc), mode="merged", sgxlc=sgxlc)

    @classmethod
    def parse_qemu(cls, text: str) -> SgxGuestConfig:
        """Parse the SGX part of a QEMU 6.2 command line.

        Understood: ``-cpu MODEL,+sgxlc`` (also ``-sgxlc``, ``sgxlc=on|off``),
        ``-object memory-backend-epc,id=ID,size=SIZE[,...]`` and
        ``-M|-machine [...,]sgx-epc.N.memdev=ID``. The EPC size is the sum of
        the referenced backends. Other options are ignored; ``lehash`` or
        ``lewr`` anywhere is an error, as QEMU has neither. As in QEMU, two
        ``-object`` options may not share an ``id=``, each section index ``N``
        appears once and the indices run 0, 1, ... without gaps, and a backend
        backs at most one section. The total must be at most :data:`MAX_EPC`.
        """
        if not isinstance(text, str):
            raise GuestOptionError("not-a-string", "qemu", text, "expected a QEMU command line")
        try:
            argv = shlex.split(text)
        except ValueError as e:
            raise GuestOptionError("qemu-syntax", "qemu", text, f"cannot split the command line: {e}") from None
        sgxlc = False
        backends: dict[str, int] = {}
        memdevs: list[tuple[str, str]] = []
        object_ids: set[str] = set()
        i = 0
        while i < len(argv):
            opt = argv[i]
            if opt in ("-cpu", "-object", "-M", "-machine"):
                if i + 1 >= len(argv):
                    raise GuestOptionError("qemu-syntax", opt, text, f"{opt} needs an argument")
                arg = argv[i + 1]
                i += 2
            else:
                if opt == "-sgx":
                    raise GuestOptionError(
                        "qemu-syntax", "-sgx", text, "QEMU 6.2 has no -sgx option; that is Kai's 2017 RFC form"
                    )
                i += 1
                continue
            if opt == "-cpu":
                items = arg.split(",")
                for flag in items[1:]:
                    name, val = flag, None
                    if "=" in flag:
                        name, val = flag.split("=", 1)
                    sign = name[:1]
                    bare = name[1:] if sign in "+-" and sign else name
                    if bare in ("lehash", "lewr"):
                        raise GuestOptionError(
                            "qemu-syntax", f"-cpu {bare}", arg,
                            "QEMU 6.2 has no lehash/lewr: Kai's 2017 options never landed",
                        )
                    on = sign != "-" if val is None else _flag_value(bare, val)
                    if bare == "sgxlc":
                        sgxlc = on
                    elif bare == "sgx" and not on:
                        raise GuestOptionError("qemu-syntax", "-cpu sgx", arg, "SGX is switched off: not an SGX guest")
            elif opt == "-object":
                kind, _, rest = arg.partition(",")
                props = dict(p.partition("=")[::2] for p in rest.split(",") if p)
                if "id" in props:  # QEMU: object ids are unique across every -object
                    if props["id"] in object_ids:
                        raise GuestOptionError(
                            "qemu-syntax", "-object id", props["id"], "duplicate ID: another -object already has it"
                        )
                    object_ids.add(props["id"])
                if kind != "memory-backend-epc":
                    continue
                if "id" not in props or "size" not in props:
                    raise GuestOptionError(
                        "qemu-syntax", "-object memory-backend-epc", arg, "needs id=... and size=..."
                    )
                backends[props["id"]] = parse_size(props["size"], "memory-backend-epc size")
            else:
                for prop in arg.split(","):
                    m = re.fullmatch(r"sgx-epc\.([0-9]+)\.memdev=(.+)", prop)
                    if m:
                        memdevs.append((m.group(1), m.group(2)))
        if not memdevs:
            raise GuestOptionError("qemu-syntax", "-M sgx-epc", text, "no EPC section: add -M sgx-epc.0.memdev=<id>")
        total = 0
        seen_idx: set[int] = set()
        seen_mem: dict[str, str] = {}
        for idx, mem in memdevs:
            if int(idx) in seen_idx:
                raise GuestOptionError(
                    "qemu-syntax", f"sgx-epc.{idx}.memdev", mem, f"EPC section {int(idx)} is given twice"
                )
            seen_idx.add(int(idx))
            if mem in seen_mem:
                raise GuestOptionError(
                    "qemu-syntax",
                    f"sgx-epc.{idx}.memdev",
                    mem,
                    f"backend {mem!r} is already sgx-epc.{seen_mem[mem]}'s memdev: each EPC section needs its own",
                )
            seen_mem[mem] = idx
            if mem not in backends:
                raise GuestOptionError(
                    "qemu-syntax", f"sgx-epc.{idx}.memdev", mem, "no -object memory-backend-epc with that id"
                )
            total += backends[mem]
        if seen_idx != set(range(len(seen_idx))):  # QEMU turns sgx-epc.N into a list: 0, 1, ... without gaps
            missing = min(set(range(len(seen_idx))) - seen_idx)
            raise GuestOptionError(
                "qemu-syntax",
                "-M sgx-epc",
                ",".join(f"sgx-epc.{i}" for i in sorted(seen_idx))[:60],
                f"EPC sections are numbered 0, 1, ... without gaps: sgx-epc.{missing}.memdev is missing",
            )
        if total > MAX_EPC:
            raise GuestOptionError(
                "bad-size",
                "-M sgx-epc",
                format_size(total),
                "the EPC sections add up to more than 1024G (1 TiB): no SGX host has more EPC",
            )
        return cls(epc=total, mode="merged", sgxlc=sgxlc)

    # -- views ------------------------------------------------------------------

    @property
    def lc_enabled(self) -> bool:
        """Guest firmware locks FEATURE_CONTROL with bit 17 set (lewr, or sgxlc when merged)."""
        return self.lewr or self.sgxlc

    @property
    def lc_option(self) -> str:
        """The option that asks for bit 17, as the user spelt it."""
        return "sgxlc" if self.mode == "merged" else "lewr"

    def to_option(self) -> str:
        """Text that :meth:`parse` turns back into this configuration."""
        size = format_size(self.epc)
        if self.mode == "merged":
            flag = "+sgxlc" if self.sgxlc else "-sgxlc"
            return (
                f"-cpu host,{flag} -object memory-backend-epc,id=epc0,size={size},prealloc=on "
                "-M sgx-epc.0.memdev=epc0"
            )
        parts = [f"epc={size}"]
        if self.lehash is not None:
            parts.append(f"lehash={self.lehash.hex()}")
        if self.lewr:
            parts.append("lewr")
        return ",".join(parts)

    def as_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "epc": self.epc,
            "epc_size": format_size(self.epc),
            "lehash": None if self.lehash is None else self.lehash.hex(),
            "lewr": self.lewr,
            "sgxlc": self.sgxlc,
            "option": self.to_option(),
        }

    def __str__(self) -> str:
        return self.to_option()


# --------------------------------------------------------------------------- consistency


@dataclass(frozen=True, slots=True)
class GuestView:
    """What a guest can know about its launch control when it runs EINIT.

    ``cpuid_sgx_lc`` and ``feature_control`` are what it was given, ``words``
    its (virtual) IA32_SGXLEPUBKEYHASH0..3 and ``wrote`` whether one of its
    own WRMSRs to them was accepted.
    """

    config: SgxGuestConfig
    cpuid_sgx_lc: bool
    feature_control: int
    words: Words
    wrote: bool = False

    @property
    def lc_enabled(self) -> bool:
        return bool(self.feature_control & FEAT_CTL_SGX_LC_ENABLED)

    @property
    def locked(self) -> bool:
        return bool(self.feature_control & FEAT_CTL_LOCKED)

    @property
    def reference_words(self) -> Words:
        """The hash a real CPU with this CPUID would check: the MSRs, or Intel's hard-wired one."""
        return self.words if self.cpuid_sgx_lc else INTEL_LEPUBKEYHASH.words

    def describe(self) -> str:
        cpuid = "SGX_LC" if self.cpuid_sgx_lc else "no SGX_LC"
        bit17 = "bit 17 set" if self.lc_enabled else "bit 17 clear"
        lock = "locked" if self.locked else "unlocked"
        h = LeHash.from_words(self.reference_words).short()
        src = "written by the guest" if self.wrote else ("as configured" if self.cpuid_sgx_lc else "hard-wired")
        return f"CPUID {cpuid}, FEATURE_CONTROL {self.feature_control:#x} ({lock}, {bit17}), hash {h} ({src})"


def reference_einit(
    platform: Platform,
    view: GuestView,
    sigstruct: SigArg,
    enclave: Enclave,
    token: Einittoken | None = None,
    *,
    cpu_index: int = 0,
) -> EinitResult:
    """EINIT as raw hardware with the guest's CPUID and hash would run it.

    A scratch :class:`~sgxlab.platform.Cpu` shares ``platform``'s secrets (so
    tokens made there verify), enumerates SGX_LC as the guest's CPUID does and
    holds :attr:`GuestView.reference_words`; EINIT runs on a fork of
    ``enclave``, which is left untouched. The platform's CPUs and counters are
    not used.
    """
    cpu = Cpu(cpu_index, sgx1=True, sgx_lc=view.cpuid_sgx_lc, platform=platform)
    if view.cpuid_sgx_lc:
        for msr, w in zip(_HASH, view.words):
            cpu.wrmsr(msr, w)  # firmware's pre-lock write of the guest's values
    # Then firmware locks FEATURE_CONTROL with SGX enabled, as the guest's did.
    cpu.wrmsr(MSR_IA32_FEATURE_CONTROL, FEAT_CTL_LOCKED | FEAT_CTL_SGX_ENABLED)
    return einit(cpu, sigstruct, enclave.fork(), token)


def hardware_consistent(view: GuestView, raw: int, seen: int) -> tuple[bool, str]:
    """Could real hardware set up as ``view`` have shown the guest ``seen``?

    ``raw`` is the code raw hardware would return (:func:`reference_einit`),
    ``seen`` the code the guest got. Returns ``(consistent, explanation)``.
    """
    if view.wrote and not view.cpuid_sgx_lc:
        return False, "a guest WRMSR of IA32_SGXLEPUBKEYHASH was accepted although CPUID has no SGX_LC"
    if view.wrote and view.locked and not view.lc_enabled:
        return False, (
            "a guest WRMSR of IA32_SGXLEPUBKEYHASH was accepted although FEATURE_CONTROL is locked without bit 17"
        )
    raw_e, seen_e = SgxError(raw), SgxError(seen)
    if raw_e == seen_e:
        return True, f"hardware with {view.describe()} returns {raw_e.name} ({int(raw_e)}) too"
    if seen_e == SgxError.SGX_UNMASKED_EVENT:
        return True, "an interrupt can abort any EINIT with SGX_UNMASKED_EVENT"
    return False, (
        f"hardware with {view.describe()} would return {raw_e.name} ({int(raw_e)}), "
        f"but the guest saw {seen_e.name} ({int(seen_e)})"
    )


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class GuestEinit:
    """One guest EINIT as the guest experienced it.

    ``trapped``: KVM intercepted it (``handle_encls_einit``). ``code``/``zf``:
    the guest-visible RAX and ZF. ``step``: the EINIT check that decided
    (:data:`sgxlab.einit.CHECKS` or ``"commit"``), or ``"policy"`` when the
    host policy refused. ``bypass``: it launched an enclave the host policy
    forbids host root to run. ``hw_consistent``/``consistency``: see
    :func:`hardware_consistent`; ``raw_code`` is what raw hardware would have
    returned. ``cpu``: the physical CPU it ran on.
    """

    vcpu: str
    trapped: bool
    code: int
    zf: bool
    reason: str
    step: str
    policy_refused: bool
    bypass: bool
    hw_consistent: bool
    consistency: str
    raw_code: int
    signer: LeHash
    cpu: int
    outcome: LaunchOutcome | None = None

    @property
    def launched(self) -> bool:
        return self.code == 0

    ok = launched

    @property
    def name(self) -> str:
        return SgxError(self.code).name

    @property
    def rax(self) -> int:
        return self.code

    def as_json(self) -> dict[str, Any]:
        return {
            "vcpu": self.vcpu,
            "trapped": self.trapped,
            "code": self.code,
            "name": self.name,
            "zf": self.zf,
            "step": self.step,
            "policy_refused": self.policy_refused,
            "bypass": self.bypass,
            "hw_consistent": self.hw_consistent,
            "raw_code": self.raw_code,
            "signer": self.signer.hex(),
            "cpu": self.cpu,
            "reason": self.reason,
            "consistency": self.consistency,
        }

    def __str__(self) -> str:
        how = "trapped" if self.trapped else "native"
        return f"{self.vcpu} EINIT ({how}, CPU {self.cpu}): {self.name} ({self.code}) at {self.step}: {self.reason}"


def _siginfo(platform: Platform, sigstruct: SigArg) -> SigInfo:
    if isinstance(sigstruct, SigInfo):
        return sigstruct
    if isinstance(sigstruct, (bytes, bytearray)):
        return platform.siginfo(bytes(sigstruct))
    if isinstance(sigstruct, Sigstruct):
        return SigInfo.of(sigstruct)
    raise ConfigError("sigstruct", sigstruct, "expected a Sigstruct, its 1808 bytes or a SigInfo")


def _check_u64(option: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= _U64_MAX:
        raise ConfigError(option, value, "an MSR value is an integer that fits in 64 bits (EDX:EAX)")
    return value


# --------------------------------------------------------------------------- KVM


class Kvm:
    """The host hypervisor on ``platform``: its launch policy, MSR-update design and VMs.

    ``policy`` is a :class:`~sgxlab.policy.HostPolicy` or a policy name
    (default :class:`~sgxlab.policy.AllowAll`, mainline). ``design`` is a
    :class:`~sgxlab.designs.Design` name, subclass or instance (default
    ``"always-write"``, mainline). ``refusal_code`` fixes the code a guest
    sees when the policy refuses a trapped EINIT (default ``None``: the code
    launch control itself would give, see :meth:`policy_refusal_code`).

    Construction runs KVM's ``hardware_setup()`` part that matters here,
    :meth:`setup_default_sgx_lepubkeyhash`; on a host whose LC is not writable
    that reads CPU 0's hash MSRs once (counted) or faults (no LC).
    """

    def __init__(
        self,
        platform: Platform,
        policy: HostPolicy | str | None = None,
        design: str | type[Design] | Design = "always-write",
        *,
        refusal_code: SgxError | int | None = None,
    ) -> None:
        if not isinstance(platform, Platform):
            raise ConfigError("platform", platform, "expected a sgxlab.platform.Platform")
        self.platform = platform
        if policy is None:
            policy = AllowAll()
        elif isinstance(policy, str):
            policy = policy_by_name(policy)
        if not isinstance(policy, HostPolicy):
            raise ConfigError("policy", policy, "expected a HostPolicy or a policy name")
        self.policy: HostPolicy = policy
        if isinstance(design, Design):
            if design.platform is not platform:
                raise ConfigError("design", design, "the design instance belongs to another platform")
            self.design: Design = design
        else:
            self.design = design_class(design)(platform)
        code: SgxError | None = None
        if refusal_code is not None:
            try:
                code = SgxError(refusal_code)
            except ValueError:
                raise ConfigError("refusal_code", refusal_code, "not an ENCLS status code") from None
            if code == SgxError.SUCCESS:
                raise ConfigError("refusal_code", refusal_code, "a refusal cannot report success")
        self.refusal_code: SgxError | None = code
        self.vms: list[Vm] = []
        self._next_vm = 1
        self._loaded: dict[int, Vcpu] = {}
        self.host_einits = 0
        self.sgx_pubkey_hash: LeHash = self.setup_default_sgx_lepubkeyhash()

    # -- host facts ----------------------------------------------------------------

    def setup_default_sgx_lepubkeyhash(self) -> LeHash:
        """KVM's ``setup_default_sgx_lepubkeyhash()``: the hash new vCPUs start with.

        Intel's when the host has SGX_LC (writable: guests may write at will),
        or when RDMSR of IA32_SGXLEPUBKEYHASH0 faults (no LC: Intel's hash is
        fused in); otherwise the value the host firmware locked in.
        """
        if self.lc_writable:
            return INTEL_LEPUBKEYHASH
        cpu = self.platform.cpus[0]
        try:
            words = tuple(cpu.rdmsr(msr) for msr in _HASH)
        except GeneralProtection:
            return INTEL_LEPUBKEYHASH
        return LeHash.from_words(words)

    @property
    def lc_writable(self) -> bool:
        """The host's LE hash MSRs are writable (Linux keeps X86_FEATURE_SGX_LC)."""
        return self.platform.lc_writable

    @property
    def traps_einit(self) -> bool:
        """Guest EINIT is intercepted: the host LC is writable and the design traps."""
        return self.platform.lc_writable and self.design.traps_einit

    def policy_refusal_code(self, enclave: Enclave) -> SgxError:
        """The code a guest sees when the policy refuses its EINIT of ``enclave``.

        ``refusal_code`` if one was fixed; otherwise what hardware launch
        control answers when the MSRs do not hold the signer: 2 if the SECS
        has a controlled attribute (EINITTOKEN_KEY), else 16.
        """
        if self.refusal_code is not None:
            return self.refusal_code
        if enclave.secs.attributes.flags & CONTROLLED_ATTRIBUTES:
            return POLICY_REFUSAL_CODE_LE
        return POLICY_REFUSAL_CODE

    def why_untrapped(self) -> str:
        if not self.lc_writable:
            return f"the host's launch control is not writable (firmware {self.platform.firmware.name})"
        if not self.design.traps_einit:
            return f"design {self.design.name} does not trap EINIT"
        return "EINIT is trapped"

    def initial_lehash(self, config: SgxGuestConfig) -> LeHash:
        """The value a new vCPU's virtual IA32_SGXLEPUBKEYHASH starts with."""
        return config.lehash if config.lehash is not None else self.sgx_pubkey_hash

    def guest_cpuid_sgx_lc(self, config: SgxGuestConfig) -> bool:
        """Guest CPUID.(7,0):ECX[30]: what KVM offers (rfc2017) or the sgxlc flag (merged)."""
        return config.sgxlc if config.mode == "merged" else self.lc_writable

    def guest_feature_control(self, config: SgxGuestConfig) -> int:
        """IA32_FEATURE_CONTROL as guest firmware locks it: bit 17 iff lewr/sgxlc."""
        return _GUEST_FC_BASE | (FEAT_CTL_SGX_LC_ENABLED if config.lc_enabled else 0)

    def hardware_refusal(self, config: SgxGuestConfig) -> str | None:
        """Why this host cannot give the guest ``config`` at all, or ``None``."""
        if config.lc_enabled and not self.lc_writable:
            return (
                f"{config.lc_option} needs SGX_LC in the guest, but KVM offers SGX_LC only when the host's "
                f"LE hash MSRs are writable, and this host's are not (firmware {self.platform.firmware.name}); "
                "QEMU fails to start such a VM (intel/qemu-sgx#14)"
            )
        if config.lehash is not None and not self.lc_writable and config.lehash != self.sgx_pubkey_hash:
            return (
                f"lehash {config.lehash.short()} cannot be honoured: guest EINIT runs untrapped here "
                f"({self.why_untrapped()}), against the host's hash {self.sgx_pubkey_hash.short()}"
            )
        return None

    def would_create(self, config: SgxGuestConfig | str) -> tuple[bool, str | None, str | None]:
        """``(created, refusing_party, reason)`` for ``config``, with no side effects.

        The refusing party is ``"kvm"`` (hardware) or the policy's name.
        """
        if isinstance(config, str):
            config = SgxGuestConfig.parse(config)
        why = self.hardware_refusal(config)
        if why is not None:
            return False, "kvm", why
        why = self.policy.check_vm(config, self)
        if why is not None:
            return False, self.policy.name, why
        return True, None, None

    # -- VMs -----------------------------------------------------------------------

    def create_vm(
        self,
        config: SgxGuestConfig | str,
        nvcpus: int = 1,
        name: str | None = None,
        *,
        guest_firmware: bool = True,
    ) -> Vm:
        """Create a VM, or raise :class:`~sgxlab.errors.PolicyRefusal`.

        The refusal's ``policy`` is ``"kvm"`` when the host hardware cannot
        give the configuration, else the host policy's name. With
        ``guest_firmware=False`` the vCPUs start with FEATURE_CONTROL 0
        (unlocked), as before guest firmware ran; the caller plays firmware.
        """
        if isinstance(config, str):
            config = SgxGuestConfig.parse(config)
        if not isinstance(config, SgxGuestConfig):
            raise ConfigError("config", config, "expected a SgxGuestConfig or an option string")
        if not isinstance(nvcpus, int) or isinstance(nvcpus, bool) or not 1 <= nvcpus <= 1024:
            raise ConfigError("nvcpus", nvcpus, "expected an integer in 1..1024")
        if name is None:
            name = f"vm{self._next_vm}"
        if not isinstance(name, str) or not name:
            raise ConfigError("name", name, "a VM name is a non-empty string")
        if any(vm.name == name for vm in self.vms):
            raise ConfigError("name", name, "a VM with that name exists on this host")
        ok, party, why = self.would_create(config)
        if not ok:
            assert party is not None and why is not None
            raise PolicyRefusal(party, why)
        self._next_vm += 1
        vm = Vm(self, name, config, nvcpus, guest_firmware=guest_firmware)
        self.vms.append(vm)
        return vm

    def destroy_vm(self, vm: Vm) -> None:
        """Tear a VM down: its vCPUs are put and it leaves :attr:`vms`."""
        for v in vm.vcpus:
            v.put()
        if vm in self.vms:
            self.vms.remove(vm)
        vm.destroyed = True

    # -- host EINIT ----------------------------------------------------------------

    def host_einit(
        self,
        cpu_index: int,
        sigstruct: SigArg,
        enclave: Enclave,
        token: Einittoken | None = None,
    ) -> LaunchOutcome:
        """The host kernel's own EINIT on CPU ``cpu_index``.

        The policy first (:class:`~sgxlab.errors.PolicyRefusal` if it says no;
        the ioctl fails before any EINIT). Then, on a host with writable LC,
        the design loads the enclave's own MRSIGNER (Linux's token-less
        ``sgx_encl_init``) or the policy's ``host_lehash`` (a host with one
        LE) and runs EINIT. On a host without writable LC, EINIT runs against
        the fixed hash and needs a token (mainline Linux would not even load
        its driver there; this is the out-of-tree flow). A vCPU loaded on that
        CPU is put first: the host task preempted it.
        """
        info = _siginfo(self.platform, sigstruct)
        why = self.policy.check_host_einit(info.mrsigner)
        if why is not None:
            raise PolicyRefusal(self.policy.name, why)
        cpu = self.platform.cpu(cpu_index)
        other = self._loaded.get(cpu.index)
        if other is not None:
            other.put()
        self.host_einits += 1
        if not self.lc_writable:
            return LaunchOutcome(einit(cpu, info, enclave, token), 1, 0, 0, 0)
        target = self.policy.host_lehash if self.policy.host_lehash is not None else info.mrsigner
        return self.design.einit(cpu, target.words, info, enclave, token)

    # -- trapped guest EINIT ---------------------------------------------------------

    def handle_encls_einit(
        self, vcpu: Vcpu, sigstruct: SigInfo, enclave: Enclave, token: Einittoken | None
    ) -> tuple[LaunchOutcome | None, str | None]:
        """KVM's ``handle_encls_einit`` for a trapped guest EINIT on ``vcpu``.

        Counts the ENCLS exit, asks the host policy (the hook mainline KVM
        does not have), then calls :meth:`sgx_virt_einit` with the vCPU's
        virtual hash. Returns ``(outcome, None)`` or ``(None, refusal)``.
        """
        vcpu.encls_exits += 1
        refusal = self.policy.check_guest_einit(vcpu.vm, sigstruct.mrsigner)
        if refusal is not None:
            return None, refusal
        assert vcpu.pcpu is not None
        return self.sgx_virt_einit(vcpu.pcpu, vcpu.lehash_words, sigstruct, enclave, token), None

    def sgx_virt_einit(
        self, cpu: Cpu, words: Words, sigstruct: SigArg, enclave: Enclave, token: Einittoken | None = None
    ) -> LaunchOutcome:
        """``sgx_virt_einit()`` (arch/x86/kernel/cpu/sgx/virt.c): on a host with
        writable LC, load ``words`` on ``cpu`` the design's way and EINIT
        (mainline: preemption off, ``sgx_update_lepubkeyhash``, ``__einit``; no
        cache, no retry); otherwise a plain EINIT."""
        if not self.lc_writable:
            return LaunchOutcome(einit(cpu, sigstruct, enclave, token), 1, 0, 0, 0)
        return self.design.einit(cpu, words, sigstruct, enclave, token)

    # -- counters ------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """Totals over live VMs: MSR exits, ENCLS exits, schedule-ins; host EINITs."""
        return {
            "msr_exits": sum(vm.msr_exits for vm in self.vms),
            "encls_exits": sum(vm.encls_exits for vm in self.vms),
            "schedule_ins": sum(v.schedule_ins for vm in self.vms for v in vm.vcpus),
            "host_einits": self.host_einits,
        }

    def __repr__(self) -> str:
        return (
            f"<Kvm on {self.platform.firmware.name} host, policy {self.policy.describe()}, "
            f"design {self.design.name}, EINIT {'trapped' if self.traps_einit else 'native'}, "
            f"{len(self.vms)} VM{'s' if len(self.vms) != 1 else ''}>"
        )


class Vm:
    """A guest: its configuration and vCPUs. Made by :meth:`Kvm.create_vm`."""

    def __init__(
        self, kvm: Kvm, name: str, config: SgxGuestConfig, nvcpus: int, *, guest_firmware: bool = True
    ) -> None:
        self.kvm = kvm
        self.name = name
        self.config = config
        self.destroyed = False
        self.cpuid_sgx_lc = kvm.guest_cpuid_sgx_lc(config)
        self.initial_lehash = kvm.initial_lehash(config)
        fc = kvm.guest_feature_control(config) if guest_firmware else 0
        self.vcpus: list[Vcpu] = [Vcpu(self, i, fc) for i in range(nvcpus)]

    def vcpu(self, i: int) -> Vcpu:
        if isinstance(i, int) and not isinstance(i, bool) and 0 <= i < len(self.vcpus):
            return self.vcpus[i]
        raise ConfigError("vcpu", i, f"{self.name} has vCPUs 0..{len(self.vcpus) - 1}")

    @property
    def msr_exits(self) -> int:
        return sum(v.msr_exits for v in self.vcpus)

    @property
    def encls_exits(self) -> int:
        return sum(v.encls_exits for v in self.vcpus)

    def __repr__(self) -> str:
        return f"<Vm {self.name} {self.config.to_option()!r}, {len(self.vcpus)} vCPUs>"


class Vcpu:
    """One virtual CPU: guest CPUID SGX_LC, guest FEATURE_CONTROL, virtual hash words.

    ``msr_ia32_sgxlepubkeyhash`` is KVM's ``vcpu_vmx`` field of the same name:
    the guest's four hash words, in memory only. ``pcpu`` is the physical
    :class:`~sgxlab.platform.Cpu` the vCPU is loaded on (``None`` when put).
    """

    def __init__(self, vm: Vm, index: int, feature_control: int) -> None:
        self.vm = vm
        self.index = index
        self.label = f"vcpu {index} of {vm.name}"
        self.cpuid_sgx_lc: bool = vm.cpuid_sgx_lc
        self.msr_ia32_feature_control: int = feature_control
        self.msr_ia32_sgxlepubkeyhash: list[int] = [0, 0, 0, 0]
        self.wrote_lehash = False
        self.msr_exits = 0
        self.encls_exits = 0
        self.schedule_ins = 0
        self.gp_count = 0
        self.pcpu: Cpu | None = None
        self.last_pcpu = index % vm.kvm.platform.ncpus
        self.vcpu_setup_sgx_lepubkeyhash()

    def vcpu_setup_sgx_lepubkeyhash(self) -> None:
        """KVM's ``vcpu_setup_sgx_lepubkeyhash()`` plus QEMU's host-initiated lehash write."""
        self.msr_ia32_sgxlepubkeyhash[:] = self.vm.initial_lehash.words

    # -- state ---------------------------------------------------------------------

    @property
    def lehash_words(self) -> Words:
        h = self.msr_ia32_sgxlepubkeyhash
        return (h[0], h[1], h[2], h[3])

    @property
    def lehash(self) -> LeHash:
        return LeHash.from_words(self.lehash_words)

    @property
    def feature_control(self) -> int:
        return self.msr_ia32_feature_control

    def view(self) -> GuestView:
        return GuestView(
            self.vm.config, self.cpuid_sgx_lc, self.msr_ia32_feature_control, self.lehash_words, self.wrote_lehash
        )

    def _gp(self, reason: str, msr: int, value: int | None) -> GeneralProtection:
        self.gp_count += 1
        return GeneralProtection(reason, msr=msr, value=value, cpu=self.label)

    def _alive(self) -> Kvm:
        if self.vm.destroyed:
            raise SgxlabError(f"{self.label}: the VM was destroyed")
        return self.vm.kvm

    # -- MSRs ------------------------------------------------------------------------

    def rdmsr(self, msr: int, *, host_initiated: bool = False) -> int:
        """Guest (or, with ``host_initiated``, QEMU's) RDMSR, by KVM's ``vmx_get_msr`` rules."""
        self._alive()
        if not host_initiated:
            self.msr_exits += 1
        i = _HASH_SLOT.get(msr)
        if i is not None:
            if host_initiated or self.cpuid_sgx_lc:
                return self.msr_ia32_sgxlepubkeyhash[i]
            raise self._gp(_R_GUEST_NO_LC, msr, None)
        if msr == MSR_IA32_FEATURE_CONTROL:
            return self.msr_ia32_feature_control
        raise self._gp(_R_GUEST_UNKNOWN, msr, None)

    def wrmsr(self, msr: int, value: int, *, host_initiated: bool = False) -> None:
        """Guest (or QEMU's) WRMSR, by KVM's ``vmx_set_msr`` rules.

        An accepted hash write changes memory only, except under a design
        that loads on schedule (eager-load) while this vCPU is loaded on a
        host with writable LC: Kai's RFC passed the guest's value through, so
        the physical CPU is written as well.
        """
        kvm = self._alive()
        if isinstance(msr, bool) or not isinstance(msr, int):
            raise ConfigError("msr", msr, "an MSR number is an integer")
        value = _check_u64(f"{self.label} MSR {msr:#x}", value)
        if not host_initiated:
            self.msr_exits += 1
        i = _HASH_SLOT.get(msr)
        if i is not None:
            if not host_initiated:
                if not self.cpuid_sgx_lc:
                    raise self._gp(_R_GUEST_NO_LC, msr, value)
                fc = self.msr_ia32_feature_control
                if fc & FEAT_CTL_LOCKED and not fc & FEAT_CTL_SGX_LC_ENABLED:
                    raise self._gp(_R_GUEST_LOCKED, msr, value)
                self.wrote_lehash = True
            self.msr_ia32_sgxlepubkeyhash[i] = value
            if kvm.design.loads_on_schedule and self.pcpu is not None and kvm.lc_writable:
                self.pcpu.wrmsr(msr, value)
            return
        if msr == MSR_IA32_FEATURE_CONTROL:
            if host_initiated:
                valid = _HOST_INITIATED_FC_VALID
            else:
                if self.msr_ia32_feature_control & FEAT_CTL_LOCKED:
                    raise self._gp(_R_GUEST_FC_LOCKED, msr, value)
                valid = _GUEST_FC_BASE | (FEAT_CTL_SGX_LC_ENABLED if self.cpuid_sgx_lc else 0)
            bad = value & ~valid
            if bad:
                if bad & FEAT_CTL_SGX_LC_ENABLED:
                    why = "bit 17 (SGX_LC_ENABLED) is reserved: the guest CPUID has no SGX_LC"
                else:
                    why = f"reserved bits {bad:#x} of the guest's IA32_FEATURE_CONTROL"
                raise self._gp(why, msr, value)
            self.msr_ia32_feature_control = value
            return
        raise self._gp(_R_GUEST_UNKNOWN, msr, value)

    # -- scheduling ------------------------------------------------------------------

    def load(self, cpu_index: int) -> None:
        """Schedule this vCPU in on physical CPU ``cpu_index`` (KVM's vcpu_load).

        A vCPU already there is put first. The design's ``vcpu_load`` hook
        runs (eager-load writes the four words to hardware); on a host whose
        LC is not writable there is nothing it could write, so it is skipped.

        Loading a vCPU again on the CPU it is already loaded on is a
        schedule-in as well (counted, and the hook runs): that is what
        happens when its thread runs again there, e.g. after an S3 resume
        thaws it, and ``kvm_arch_vcpu_load`` runs once more (from the preempt
        notifier ``kvm_sched_in`` in ``virt/kvm/kvm_main.c``, or from the
        ``vcpu_load`` of the next KVM_RUN).
        """
        kvm = self._alive()
        cpu = kvm.platform.cpu(cpu_index)
        other = kvm._loaded.get(cpu.index)
        if other is not None and other is not self:
            other.put()
        if self.pcpu is not None and self.pcpu is not cpu:
            self.put()
        self.pcpu = cpu
        self.last_pcpu = cpu.index
        kvm._loaded[cpu.index] = self
        self.schedule_ins += 1
        if kvm.lc_writable:
            kvm.design.vcpu_load(cpu, self.lehash_words)

    def put(self) -> None:
        """Schedule this vCPU out (KVM's vcpu_put)."""
        if self.pcpu is None:
            return
        loaded = self.vm.kvm._loaded
        if loaded.get(self.pcpu.index) is self:
            del loaded[self.pcpu.index]
        self.pcpu = None

    # -- EINIT -----------------------------------------------------------------------

    def einit(self, sigstruct: SigArg, enclave: Enclave, token: Einittoken | None = None) -> GuestEinit:
        """The guest executes ENCLS[EINIT].

        If the vCPU is not loaded it is loaded on its last physical CPU first
        (KVM_RUN does vcpu_load). Trapped (host LC writable and the design
        traps): ``handle_encls_einit`` asks the host policy, then the design
        runs EINIT with the guest's virtual words on the vCPU's physical CPU.
        Not trapped: EINIT runs natively there. An already initialized SECS
        faults (#GP), as on hardware.
        """
        kvm = self._alive()
        need = FEAT_CTL_LOCKED | FEAT_CTL_SGX_ENABLED
        if self.feature_control & need != need:
            # handle_encls(): #GP unless the guest's BIOS enabled SGX
            # (sgx_enabled_in_guest_bios: FEATURE_CONTROL locked with SGX_ENABLE).
            self.gp_count += 1
            raise GeneralProtection(
                "SGX is not enabled in the guest: its IA32_FEATURE_CONTROL is not locked with bit 18 (SGX_ENABLE)",
                instruction="EINIT",
                cpu=self.label,
            )
        if enclave.initialized:
            self.gp_count += 1
            raise GeneralProtection(
                "the SECS is already initialized: EINIT on an initialized enclave faults",
                instruction="EINIT",
                cpu=self.label,
            )
        if self.pcpu is None:
            self.load(self.last_pcpu)
        cpu = self.pcpu
        assert cpu is not None
        info = _siginfo(kvm.platform, sigstruct)
        signer = info.mrsigner
        view = self.view()
        raw = reference_einit(kvm.platform, view, info, enclave, token, cpu_index=cpu.index)
        trapped = kvm.traps_einit
        outcome: LaunchOutcome | None = None
        refusal: str | None = None
        if trapped:
            outcome, refusal = kvm.handle_encls_einit(self, info, enclave, token)
        if refusal is not None:
            shown = kvm.policy_refusal_code(enclave)
            code = int(shown)
            step = "policy"
            reason = (
                f"host policy {kvm.policy.name} refused the trapped EINIT: {refusal}; "
                f"KVM reflected {shown.name} ({code}) with ZF set"
            )
        else:
            result = outcome.result if outcome is not None else einit(cpu, info, enclave, token)
            code, step, reason = int(result.code), result.check, result.reason
        launched = code == 0
        bypass = launched and not kvm.policy.permits(signer)
        if bypass:
            reason += f"; POLICY BYPASS: the host's {kvm.policy.name} policy forbids signer {signer.short()}"
        consistent, why = hardware_consistent(view, int(raw.code), code)
        return GuestEinit(
            vcpu=self.label,
            trapped=trapped,
            code=code,
            zf=code != 0,
            reason=reason,
            step=step,
            policy_refused=refusal is not None,
            bypass=bypass,
            hw_consistent=consistent,
            consistency=why,
            raw_code=int(raw.code),
            signer=signer,
            cpu=cpu.index,
            outcome=outcome,
        )

    def __repr__(self) -> str:
        where = f"on CPU {self.pcpu.index}" if self.pcpu is not None else "not loaded"
        lc = "SGX_LC" if self.cpuid_sgx_lc else "no SGX_LC"
        return (
            f"<Vcpu {self.label}, {lc}, FEATURE_CONTROL={self.msr_ia32_feature_control:#x}, "
            f"lehash={self.lehash.short()}, {where}>"
        )


def launch_le_in_guest(vcpu: Vcpu, le: LaunchEnclave, *, sigstruct: SigArg | None = None) -> GuestEinit:
    """Run a launch enclave inside a guest: EINIT its image on ``vcpu``.

    On success the LE is bound to the physical CPU it ran on, so
    ``le.get_token`` works; its tokens verify wherever the guest's hash (real
    or virtual) is the LE's signer. ``sigstruct`` may pass the LE's SIGSTRUCT
    bytes to reuse the platform's signature cache.
    """
    enclave = le.fresh()
    r = vcpu.einit(le.sigstruct if sigstruct is None else sigstruct, enclave)
    if r.launched:
        le.enclave = enclave
        le.cpu = vcpu.vm.kvm.platform.cpu(r.cpu)
    return r


# --------------------------------------------------------------------------- the policy explorer

MATRIX_COLUMNS: tuple[str, ...] = (
    "policy",
    "lewr",
    "lehash",
    "signer",
    "vm_created",
    "launched",
    "code",
    "bypass",
    "hw_consistent",
    "reason",
)
"""The columns of :func:`policy_matrix`, in order."""

MATRIX_LEHASH: tuple[str, ...] = ("intel", "approved", "other")
MATRIX_SIGNER: tuple[str, ...] = ("approved", "forbidden")

# Test keys (data/keys) and their roles in the matrix.
_KEY_APPROVED_LE = 0
_KEY_APPROVED_SIGNER = 1
_KEY_FORBIDDEN_SIGNER = 2
_KEY_OTHER_LE = 3


def default_approved() -> tuple[LeHash, LeHash]:
    """The host-approved hashes of :func:`policy_matrix` (and of ``sgxlab guest``):
    test key 00 (the approved LE) and test key 01 (the approved enclave signer)."""
    from .crypto import load_test_key

    return (load_test_key(_KEY_APPROVED_LE).mrsigner, load_test_key(_KEY_APPROVED_SIGNER).mrsigner)


@dataclass
class _MatrixSetup:
    """Everything the matrix signs or builds, made once per call."""

    approved: tuple[LeHash, ...]
    lehash: dict[str, LeHash]
    signer: dict[str, LeHash]
    sig: dict[str, bytes]
    image: Enclave
    les: dict[str, LaunchEnclave]
    le_sig: dict[str, bytes] = field(default_factory=dict)

    @classmethod
    def build(cls) -> _MatrixSetup:
        from .crypto import load_test_key, sign_sigstruct
        from .le import LaunchEnclave
        from .measure import Page, build_enclave

        k_le, k_ok, k_bad, k_other = (
            load_test_key(i)
            for i in (_KEY_APPROVED_LE, _KEY_APPROVED_SIGNER, _KEY_FORBIDDEN_SIGNER, _KEY_OTHER_LE)
        )
        approved = (k_le.mrsigner, k_ok.mrsigner)
        image = build_enclave(
            [
                Page(0x0, Secinfo.of(SECINFO_R | SECINFO_X), b"sgxlab policy-matrix enclave"),
                Page(0x1000, Secinfo.of(0, PT_TCS)),
            ]
        )
        unsigned = Sigstruct.new(enclavehash=image.mrenclave(), attributes=image.secs.attributes)
        sig = {
            "approved": sign_sigstruct(k_ok, unsigned).to_bytes(),
            "forbidden": sign_sigstruct(k_bad, unsigned).to_bytes(),
        }
        les = {
            # The host-approved LE: its token policy is the host's approved set.
            "approved": LaunchEnclave.create(k_le, allowlist=approved),
            # The guest owner's own LE: it grants whatever the guest wants.
            "other": LaunchEnclave.create(k_other, allowlist=(k_ok.mrsigner, k_bad.mrsigner)),
        }
        return cls(
            approved=approved,
            lehash={"intel": INTEL_LEPUBKEYHASH, "approved": k_le.mrsigner, "other": k_other.mrsigner},
            signer={"approved": k_ok.mrsigner, "forbidden": k_bad.mrsigner},
            sig=sig,
            image=image,
            les=les,
            le_sig={k: le.sigstruct.to_bytes() for k, le in les.items()},
        )


def _matrix_row(kvm: Kvm, setup: _MatrixSetup, lewr: bool, lehash: str, signer: str) -> dict[str, Any]:
    row: dict[str, Any] = {
        "policy": kvm.policy.name,
        "lewr": lewr,
        "lehash": lehash,
        "signer": signer,
    }
    config = SgxGuestConfig(epc=64 << 20, lehash=setup.lehash[lehash], lewr=lewr)
    try:
        vm = kvm.create_vm(config, name=f"{kvm.policy.name}/{'lewr' if lewr else 'nolewr'}/{lehash}/{signer}")
    except PolicyRefusal as e:
        row.update(
            vm_created=False, launched=False, code=None, bypass=False, hw_consistent=True,
            reason=f"VM refused by {e.policy}: {e.reason}",
        )
        return row
    try:
        vcpu = vm.vcpus[0]
        vcpu.load(0)
        steps: list[GuestEinit] = []
        notes: list[str] = []
        token: Einittoken | None = None
        if lewr:
            for msr, w in zip(_HASH, setup.signer[signer].words):
                vcpu.wrmsr(msr, w)
            notes.append(f"guest wrote its IA32_SGXLEPUBKEYHASH = the enclave's signer {setup.signer[signer].short()}")
        elif lehash not in setup.les:
            notes.append(
                "no launch enclave for Intel's hash (sgxlab has no Intel-signed LE), so the guest tries a "
                "token-less EINIT"
            )
        else:
            le = setup.les[lehash].clone()  # its own KEYID stream: rows do not depend on each other
            r = launch_le_in_guest(vcpu, le, sigstruct=setup.le_sig[lehash])
            steps.append(r)
            if not r.launched:
                notes.append(f"the guest's LE {le.mrsigner.short()} did not launch ({r.name}: {r.reason})")
            else:
                sig = Sigstruct.from_bytes(setup.sig[signer])
                t = le.get_token(sig, setup.image.secs.attributes)
                token = t.token
                if t.granted:
                    notes.append(f"the guest's LE {le.mrsigner.short()} issued a token")
                else:
                    notes.append(f"the guest's LE {le.mrsigner.short()} refused a token ({t.reason})")
        final = vcpu.einit(setup.sig[signer], setup.image.fork(), token)
        steps.append(final)
        inconsistent = [s for s in steps if not s.hw_consistent]
        reason = "; ".join(notes + [f"EINIT: {final.name} ({final.code}) at {final.step}: {final.reason}"])
        if steps[0] is not final and steps[0].bypass:
            reason += f"; POLICY BYPASS: the guest ran its LE signed by {steps[0].signer.short()}"
        if inconsistent:
            reason += "; NOT HARDWARE-CONSISTENT: " + inconsistent[0].consistency
        row.update(
            vm_created=True,
            launched=final.launched,
            code=final.code,
            bypass=any(s.bypass for s in steps),
            hw_consistent=not inconsistent,
            reason=reason,
        )
        return row
    finally:
        kvm.destroy_vm(vm)


def policy_matrix_records(design: str | type[Design] = "always-write") -> list[dict[str, Any]]:
    """The rows of :func:`policy_matrix` as plain dicts (``code`` is ``None`` for a refused VM)."""
    from .policy import POLICY_NAMES

    setup = _MatrixSetup.build()
    rows: list[dict[str, Any]] = []
    for pname in POLICY_NAMES:
        # A fresh host per policy: no MSR, cache or design state leaks from one policy's rows to the next.
        platform = Platform(2, "flexible")
        kvm = Kvm(platform, policy_by_name(pname, approved=setup.approved), design)
        for lewr in (False, True):
            for lehash in MATRIX_LEHASH:
                for signer in MATRIX_SIGNER:
                    rows.append(_matrix_row(kvm, setup, lewr, lehash, signer))
    return rows


def policy_matrix(design: str | type[Design] = "always-write") -> pandas.DataFrame:
    """Every host policy against every guest configuration, run on the emulator.

    One row per combination of policy (``allow-all``, ``allowlist``,
    ``single-le``, ``approved-set``, ``host-only``), ``lewr`` (False/True),
    ``lehash`` (``"intel"``, ``"approved"``, ``"other"``) and enclave
    ``signer`` (``"approved"``, ``"forbidden"``): 60 rows, columns
    :data:`MATRIX_COLUMNS`. ``code`` is a nullable integer (``<NA>`` when the
    VM was refused).

    Each row really runs: a flexible 2-CPU host with the policy and
    ``design`` (a fresh host for each policy's 12 rows, so no MSR or design
    state carries over from another policy); KVM creates the VM (or refuses
    it); the guest then launches a real enclave signed with a test key from
    ``data/keys`` (a guest's LE is a fresh :meth:`~sgxlab.le.LaunchEnclave.clone`
    with its own KEYID stream, so no row depends on the rows before it):

    * test key 00 signs the **host-approved LE** (``lehash="approved"``); its
      token policy is the host's approved set {key 00, key 01};
    * test key 01 is the **approved** enclave signer, key 02 the
      **forbidden** one;
    * test key 03 signs the guest owner's **other** LE, which grants a token
      to any enclave the guest wants.

    A guest with ``lewr`` does what a Linux guest does: it writes the
    enclave's signer into its IA32_SGXLEPUBKEYHASH and runs a token-less
    EINIT. A guest without it launches the LE its ``lehash`` names inside the
    VM, asks it for a token and runs EINIT with it (without a token when the
    LE refused one or did not launch). For ``lehash="intel"`` there is no LE
    to run, since Intel's LE needs Intel's private key, so the guest tries a
    token-less EINIT (Intel's production LE would not issue a token for a
    non-debug enclave of an unlisted signer anyway).

    ``bypass`` is true when any enclave the guest launched (its LE included)
    has a signer the host policy forbids host root to run. ``hw_consistent``
    is false when any guest EINIT in the row gave a result no real machine
    with the guest's CPUID and FEATURE_CONTROL could give. A refused VM has
    ``launched``/``bypass`` false and ``hw_consistent`` true (the guest never
    ran, so it observed nothing).
    """
    import pandas as pd

    df = pd.DataFrame.from_records(policy_matrix_records(design), columns=list(MATRIX_COLUMNS))
    df["code"] = df["code"].astype("Int64")
    for col in ("lewr", "vm_created", "launched", "bypass", "hw_consistent"):
        df[col] = df[col].astype(bool)
    return df
