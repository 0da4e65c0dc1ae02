"""Typed errors: the exceptions sgxlab raises on purpose, each naming the field, value or option at fault.

Decisions
---------
* sgxlab never lets a ``struct.error``, ``IndexError``, ``KeyError`` or a bare
  ``ValueError`` from ``int()`` reach a user: parsers and option handlers
  catch those and raise one of the classes below instead. The command line
  turns any :class:`SgxlabError` into exit status 2 and one line on stderr.
* Architectural faults are errors too: :class:`GeneralProtection` is the #GP
  an instruction (RDMSR, WRMSR, EINIT on an initialized SECS) raises on
  hardware. SGX status codes such as SGX_INVALID_EINITTOKEN are *not*
  exceptions: EINIT returns them, as the instruction does in RAX.
"""

from __future__ import annotations

__all__ = [
    "SgxlabError",
    "StructError",
    "ConfigError",
    "HashSyntaxError",
    "GeneralProtection",
    "PolicyRefusal",
    "EngineUnsupported",
    "Cancelled",
]


class SgxlabError(Exception):
    """Base class of every error sgxlab raises on purpose."""


def _show(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        if abs(value) < 1 << 32:
            return str(value)
        if value.bit_length() > 300:  # a huge number: its size, not a screenful of digits
            return f"{'-' if value < 0 else ''}0x{abs(value) >> (value.bit_length() - 32):x}... ({value.bit_length()} bits)"
        return hex(value)
    if isinstance(value, (bytes, bytearray)):
        b = bytes(value)
        return b[:16].hex() + ("…" if len(b) > 16 else "") + f" ({len(b)} bytes)"
    r = repr(value)
    return r if len(r) <= 80 else r[:77] + "..."


class StructError(SgxlabError, ValueError):
    """A byte structure (SIGSTRUCT, EINITTOKEN, SECS, an SGXS record) is malformed.

    ``structure`` is the SDM name (``"SIGSTRUCT"``), ``field`` the field name,
    ``offset`` its byte offset (or ``None`` for a whole-buffer problem such as
    the length), ``expected`` what the SDM requires and ``got`` what was found.
    """

    def __init__(
        self,
        structure: str,
        field: str,
        offset: int | None,
        expected: str,
        got: object = None,
    ) -> None:
        self.structure = structure
        self.field = field
        self.offset = offset
        self.expected = expected
        self.got = got
        where = f"{structure}.{field}"
        if offset is not None:
            where += f" at offset {offset}"
        msg = f"{where}: expected {expected}"
        if got is not None:
            msg += f", got {_show(got)}"
        super().__init__(msg)


class ConfigError(SgxlabError, ValueError):
    """A parameter, option string or file argument is not acceptable.

    ``option`` names the parameter (``"epc"``, ``"--cost wrmsr_lehash"``),
    ``value`` is what was given and ``reason`` says what is wrong.
    """

    def __init__(self, option: str, value: object, reason: str) -> None:
        self.option = option
        self.value = value
        self.reason = reason
        super().__init__(f"{option}={_show(value)}: {reason}")


class HashSyntaxError(ConfigError):
    """A hash typed in a form :meth:`sgxlab.hw.arch.LeHash.parse` does not accept.

    ``kind`` says which rule was broken: ``not-a-string``, ``bad-quote``,
    ``bad-hex``, ``wrong-length`` or ``bad-word``.
    """

    def __init__(self, kind: str, option: str, value: object, reason: str) -> None:
        self.kind = kind
        super().__init__(option, value, reason)


class GeneralProtection(SgxlabError):
    """#GP(0): the processor refused an instruction.

    For MSR accesses ``msr`` and ``value`` say which access (``value`` is
    ``None`` for a read) and ``reason`` cites the architectural rule that
    refused it; ``cpu`` is the logical CPU (or ``"vcpu 0 of vm1"``) and
    ``msr_name`` the MSR's SDM name (:func:`sgxlab.hw.arch.msr_name`).
    """

    def __init__(
        self,
        reason: str,
        *,
        msr: int | None = None,
        value: int | None = None,
        cpu: int | str | None = None,
        instruction: str | None = None,
        msr_name: str | None = None,
    ) -> None:
        self.reason = reason
        self.msr = msr
        self.value = value
        self.cpu = cpu
        if instruction is None:
            instruction = "RDMSR" if value is None and msr is not None else "WRMSR"
            if msr is None:
                instruction = "instruction"
        self.instruction = instruction
        parts = [f"#GP(0) on {instruction}"]
        if msr is not None:
            parts.append(f"of {msr_name or 'MSR'} ({msr:#x})")
        if value is not None:
            parts.append(f"value {value:#x}")
        if cpu is not None:
            parts.append(f"on CPU {cpu}" if isinstance(cpu, int) else f"on {cpu}")
        super().__init__(" ".join(parts) + f": {reason}")


class PolicyRefusal(SgxlabError):
    """A host launch policy refused to create a VM or to launch an enclave."""

    def __init__(self, policy: str, reason: str) -> None:
        self.policy = policy
        self.reason = reason
        super().__init__(f"{policy}: {reason}")


class EngineUnsupported(SgxlabError):
    """The fast engine cannot model this workload/design exactly and refuses."""


class Cancelled(SgxlabError):
    """A run was stopped on request: a progress callback raised it, or a widget's Cancel
    button was pressed. Nothing half-done is kept or exported."""

    def __init__(self, message: str = "cancelled") -> None:
        super().__init__(message)
