"""Guest configuration: Kai Huang's ``-sgx`` option string and QEMU 6.2's ``sgxlc``.

An :class:`SgxGuestConfig` is an SGX guest as QEMU is asked to create it: its
EPC size, the initial virtual IA32_SGXLEPUBKEYHASH (``lehash``) and whether
the guest may rewrite it (``lewr``), or, in QEMU 6.2's merged form, the
``sgxlc`` CPU flag and QEMU's ``enforce`` CPU property.

Sources
-------
Kai Huang's RFC (LKML, May 2017) proposed ``-sgx epc=<size>,lehash='<SHA-256>',lewr``;
it was never merged. QEMU 6.2 merged ``-cpu ...,+sgxlc`` with
``memory-backend-epc`` objects instead (``docs/system/i386/sgx.rst``); a CPU
flag the host cannot give is dropped with a warning unless ``enforce=on``
(``x86_cpu_filter_features`` / ``x86_cpu_realizefn`` in
``target/i386/cpu.c``). See ``../shared/reference/linux-kvm-qemu.md`` §2 and §5.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Any, ClassVar

from sgxlab.errors import ConfigError, HashSyntaxError
from sgxlab.hw.arch import LeHash

PAGE = 4096


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
_KAI_KEYS = ("epc", "lehash", "lewr", "provisionkey")


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
    """:meth:`LeHash.parse` (every spelling of :data:`~sgxlab.hw.arch.LEHASH_SPELLINGS`),
    its errors as :class:`GuestOptionError` of the same kind."""
    try:
        return LeHash.parse(value, option=option)
    except HashSyntaxError as e:
        raise GuestOptionError(e.kind, e.option, e.value, e.reason) from None


def _flag_value(flag: str, value: str) -> bool:
    v = value.lower()
    if v in ("on", "true", "yes"):
        return True
    if v in ("off", "false", "no"):
        return False
    raise GuestOptionError("qemu-syntax", f"-cpu {flag}", value, "expected on or off")


# --------------------------------------------------------------------------- QEMU 6.2 command line, step by step

_QEMU_ARG_OPTIONS = ("-cpu", "-object", "-M", "-machine")
_SGX_EPC_PROP = re.compile(r"sgx-epc\.([0-9]+)\.memdev=(.+)")


def _qemu_argv(text: str) -> list[str]:
    """Step 1: split the command line as a shell would."""
    try:
        return shlex.split(text)
    except ValueError as e:
        raise GuestOptionError("qemu-syntax", "qemu", text, f"cannot split the command line: {e}") from None


def _qemu_options(argv: list[str], text: str) -> list[tuple[str, str]]:
    """Step 2: the ``(option, argument)`` pairs of ``-cpu``, ``-object`` and
    ``-M``/``-machine``, in order; every other option is skipped, except
    Kai's ``-sgx``, which QEMU 6.2 does not have."""
    pairs: list[tuple[str, str]] = []
    i = 0
    while i < len(argv):
        opt = argv[i]
        if opt in _QEMU_ARG_OPTIONS:
            if i + 1 >= len(argv):
                raise GuestOptionError("qemu-syntax", opt, text, f"{opt} needs an argument")
            pairs.append((opt, argv[i + 1]))
            i += 2
            continue
        if opt == "-sgx":
            raise GuestOptionError(
                "qemu-syntax", "-sgx", text, "QEMU 6.2 has no -sgx option; that is Kai's 2017 RFC form"
            )
        i += 1
    return pairs


@dataclass(slots=True)
class _CpuFlags:
    """What ``-cpu`` said about launch control: the ``sgxlc`` and
    ``sgx-provisionkey`` flags and the ``enforce`` property (a later ``-cpu``
    overrides an earlier one, flag by flag)."""

    sgxlc: bool = False
    enforce: bool = False
    provisionkey: bool = False


def _cpu_flags(arg: str, flags: _CpuFlags) -> None:
    """Step 3: the flags after ``-cpu MODEL``: ``+name``, ``-name``, ``name``
    or ``name=on|off``. ``sgxlc`` and ``enforce`` are kept, ``-sgx`` is an
    error (not an SGX guest), ``lehash``/``lewr`` are errors (never merged);
    other flags and properties are ignored, whatever their values."""
    for flag in arg.split(",")[1:]:
        name, eq, val = flag.partition("=")
        sign = name[:1]
        bare = name[1:] if sign and sign in "+-" else name
        if bare in ("lehash", "lewr"):
            raise GuestOptionError(
                "qemu-syntax", f"-cpu {bare}", arg, "QEMU 6.2 has no lehash/lewr: Kai's 2017 options never landed"
            )
        if bare not in ("sgxlc", "enforce", "sgx", "sgx-provisionkey"):
            continue  # other properties may take non-boolean values (phys-bits=39, model-id=...)
        on = _flag_value(bare, val) if eq else sign != "-"
        if bare == "sgxlc":
            flags.sgxlc = on
        elif bare == "sgx-provisionkey":
            flags.provisionkey = on
        elif bare == "enforce":
            flags.enforce = on
        elif not on:
            raise GuestOptionError("qemu-syntax", "-cpu sgx", arg, "SGX is switched off: not an SGX guest")


def _epc_backend(arg: str, backends: dict[str, int], object_ids: set[str]) -> None:
    """Step 4: one ``-object``. Every object's ``id=`` must be new (QEMU's
    rule across all objects); a ``memory-backend-epc`` needs ``id=`` and
    ``size=`` and adds its size to ``backends``."""
    kind, _, rest = arg.partition(",")
    props = dict(p.partition("=")[::2] for p in rest.split(",") if p)
    if "id" in props:
        if props["id"] in object_ids:
            raise GuestOptionError(
                "qemu-syntax", "-object id", props["id"], "duplicate ID: another -object already has it"
            )
        object_ids.add(props["id"])
    if kind != "memory-backend-epc":
        return
    if "id" not in props or "size" not in props:
        raise GuestOptionError("qemu-syntax", "-object memory-backend-epc", arg, "needs id=... and size=...")
    backends[props["id"]] = parse_size(props["size"], "memory-backend-epc size")


def _epc_sections(arg: str) -> list[tuple[str, str]]:
    """Step 5: the ``(N, memdev)`` of each ``sgx-epc.N.memdev=ID`` in a ``-M`` argument."""
    found: list[tuple[str, str]] = []
    for prop in arg.split(","):
        m = _SGX_EPC_PROP.fullmatch(prop)
        if m:
            found.append((m.group(1), m.group(2)))
    return found


def _epc_total(memdevs: list[tuple[str, str]], backends: dict[str, int], text: str) -> int:
    """Step 6: the guest's EPC size, the sum of its sections' backends, by QEMU's
    rules (at least one section; indices 0, 1, ... once each and without
    gaps; one backend per section; every backend defined; at most
    :data:`MAX_EPC`)."""
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
    return total


# --------------------------------------------------------------------------- the configuration


@dataclass(frozen=True, slots=True)
class SgxGuestConfig:
    """An SGX guest as QEMU is asked to create it.

    ``epc`` is the EPC size in bytes. In ``mode="rfc2017"`` (Kai Huang's RFC,
    the default) ``lehash`` is the initial IA32_SGXLEPUBKEYHASH (``None``:
    KVM's default) and ``lewr`` lets the guest rewrite it; the guest gets
    CPUID SGX_LC whenever the host's KVM offers it. In ``mode="merged"``
    (QEMU 6.2) there is no lehash and no lewr: ``sgxlc`` is the CPU flag, and
    guest firmware sets FEATURE_CONTROL bit 17 iff the guest's CPUID has it.
    ``enforce`` is QEMU's ``-cpu ...,enforce=on`` (off by default): QEMU
    then refuses to start a VM whose CPU flags the host's KVM cannot give,
    instead of dropping them with a warning (``x86_cpu_filter_features``;
    what a host does with ``sgxlc`` is :mod:`sgxlab.kvm.guest`'s
    :func:`~sgxlab.kvm.guest.qemu_filtered_features`).

    ``provisionkey`` is QEMU 6.2's ``+sgx-provisionkey`` CPU flag (merged
    form) or, in Kai's form, sgxlab's ``provisionkey`` flag (an extension:
    his RFC had none): QEMU opens ``/dev/sgx_provision`` and passes the fd to
    KVM with KVM_CAP_SGX_ATTRIBUTE (``target/i386/kvm/kvm.c``,
    ``__kvm_enable_sgx_provisioning``; QEMU patch "i386: kvm: Add support
    for exposing PROVISIONKEY to guest", Yang Zhong, 19 Jul 2021). Whether
    the open succeeds is the host's decision about the QEMU process
    (:class:`sgxlab.host.provision.Tenant`), not part of the configuration.

    Build from text with :meth:`parse` (either form), or with :meth:`merged`.
    :meth:`to_option` gives text that :meth:`parse` turns back into an equal
    object.
    """

    epc: int
    lehash: LeHash | None = None
    lewr: bool = False
    mode: str = "rfc2017"
    sgxlc: bool = False
    enforce: bool = False
    provisionkey: bool = False

    MODES: ClassVar[tuple[str, ...]] = ("rfc2017", "merged")

    def __post_init__(self) -> None:
        object.__setattr__(self, "epc", parse_size(self.epc))
        if self.mode not in self.MODES:
            raise ConfigError("mode", self.mode, "expected 'rfc2017' (Kai's -sgx option) or 'merged' (QEMU 6.2)")
        if isinstance(self.lehash, str):
            object.__setattr__(self, "lehash", _parse_lehash(self.lehash))
        if self.lehash is not None and not isinstance(self.lehash, LeHash):
            raise ConfigError("lehash", self.lehash, "expected a LeHash, 64 hex digits or None")
        for name in ("lewr", "sgxlc", "enforce", "provisionkey"):
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
        if self.mode == "rfc2017" and self.enforce:
            raise ConfigError("enforce", True, "enforce is a -cpu property of QEMU 6.2's command line (mode 'merged')")

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
        provisionkey = False
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
            if key in ("lewr", "provisionkey"):
                if sep:
                    raise GuestOptionError(
                        "flag-value", f"-sgx {key}", item, f"{key} is a flag and takes no value (write just {key})"
                    )
                if key == "lewr":
                    lewr = True
                else:
                    provisionkey = True
                continue
            if not sep or value == "":
                raise GuestOptionError("missing-value", f"-sgx {key}", item, f"{key} needs a value ({key}=...)")
            if key == "epc":
                epc = parse_size(value, "-sgx epc")
            else:
                lehash = _parse_lehash(value, "-sgx lehash")
        if "epc" not in seen:
            raise GuestOptionError("missing-epc", "-sgx", text, "epc=<size> is required")
        return cls(epc=epc, lehash=lehash, lewr=lewr, provisionkey=provisionkey)

    @classmethod
    def merged(
        cls, epc: int | str = "64M", sgxlc: bool = True, *, enforce: bool = False, provisionkey: bool = False
    ) -> SgxGuestConfig:
        """The interface QEMU 6.2 merged: an EPC size, the ``sgxlc`` and
        ``sgx-provisionkey`` CPU flags and QEMU's ``enforce`` CPU property."""
        return cls(epc=parse_size(epc), mode="merged", sgxlc=sgxlc, enforce=enforce, provisionkey=provisionkey)

    @classmethod
    def parse_qemu(cls, text: str) -> SgxGuestConfig:
        """Parse the SGX part of a QEMU 6.2 command line.

        Understood: ``-cpu MODEL,+sgxlc`` (also ``-sgxlc``, ``sgxlc=on|off``;
        ``sgx-provisionkey`` likewise)
        with QEMU's ``enforce`` CPU property (``enforce``, ``+enforce``,
        ``enforce=on|off``; off by default), ``-object
        memory-backend-epc,id=ID,size=SIZE[,...]`` and ``-M|-machine
        [...,]sgx-epc.N.memdev=ID``. The EPC size is the sum of the referenced
        backends. Other options are ignored; ``lehash`` or ``lewr`` anywhere
        is an error, as QEMU has neither. As in QEMU, two ``-object`` options
        may not share an ``id=``, each section index ``N`` appears once and
        the indices run 0, 1, ... without gaps, and a backend backs at most
        one section. The total must be at most :data:`MAX_EPC`.

        The steps: split the command line (:func:`_qemu_argv`), pair each
        option with its argument (:func:`_qemu_options`), read the CPU flags
        (:func:`_cpu_flags`), the EPC backends (:func:`_epc_backend`) and the
        machine's EPC sections (:func:`_epc_sections`), then add up the
        sections (:func:`_epc_total`).
        """
        if not isinstance(text, str):
            raise GuestOptionError("not-a-string", "qemu", text, "expected a QEMU command line")
        flags = _CpuFlags()
        backends: dict[str, int] = {}
        object_ids: set[str] = set()
        memdevs: list[tuple[str, str]] = []
        for opt, arg in _qemu_options(_qemu_argv(text), text):
            if opt == "-cpu":
                _cpu_flags(arg, flags)
            elif opt == "-object":
                _epc_backend(arg, backends, object_ids)
            else:
                memdevs += _epc_sections(arg)
        total = _epc_total(memdevs, backends, text)
        return cls(epc=total, mode="merged", sgxlc=flags.sgxlc, enforce=flags.enforce, provisionkey=flags.provisionkey)

    # -- views ------------------------------------------------------------------

    @property
    def lc_enabled(self) -> bool:
        """Launch control is asked for: lewr, or sgxlc when merged (guest
        firmware then locks FEATURE_CONTROL with bit 17 set, unless QEMU
        filtered sgxlc out on a host that cannot give it)."""
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
            if self.provisionkey:
                flag += ",+sgx-provisionkey"
            if self.enforce:
                flag += ",enforce=on"
            return (
                f"-cpu host,{flag} -object memory-backend-epc,id=epc0,size={size},prealloc=on -M sgx-epc.0.memdev=epc0"
            )
        parts = [f"epc={size}"]
        if self.lehash is not None:
            parts.append(f"lehash={self.lehash.hex()}")
        if self.lewr:
            parts.append("lewr")
        if self.provisionkey:
            parts.append("provisionkey")
        return ",".join(parts)

    def as_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "epc": self.epc,
            "epc_size": format_size(self.epc),
            "lehash": None if self.lehash is None else self.lehash.hex(),
            "lewr": self.lewr,
            "sgxlc": self.sgxlc,
            "enforce": self.enforce,
            "provisionkey": self.provisionkey,
            "option": self.to_option(),
        }

    def __str__(self) -> str:
        return self.to_option()
