"""The MSR playground's model: one emulated platform whose launch-control MSRs you poke by hand.

Pick a firmware configuration, put a CPU back in its power-on state and set
and lock IA32_FEATURE_CONTROL bits as firmware would, RDMSR and WRMSR the
IA32_SGXLEPUBKEYHASH0..3 MSRs (a refused access records the #GP reason),
trigger S3, and read a per-CPU table. No widgets here: the view is
:mod:`sgxlab.present.apps.msr_playground`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sgxlab.errors import ConfigError, GeneralProtection
from sgxlab.hw.arch import (
    FEAT_CTL_LOCKED,
    FEAT_CTL_SGX_ENABLED,
    FEAT_CTL_SGX_LC_ENABLED,
    MSR_IA32_FEATURE_CONTROL,
    MSR_IA32_SGXLEPUBKEYHASH,
    LeHash,
    msr_name,
)
from sgxlab.hw.platform import FIRMWARE_NAMES, Platform

__all__ = ["MsrOutcome", "MsrPlaygroundModel", "parse_u64", "FC_BITS", "MSR_CHOICES"]

FC_BITS: dict[str, int] = {
    "LOCK (bit 0)": FEAT_CTL_LOCKED,
    "SGX_LC_ENABLED (bit 17)": FEAT_CTL_SGX_LC_ENABLED,
    "SGX_ENABLE (bit 18)": FEAT_CTL_SGX_ENABLED,
}
"""The IA32_FEATURE_CONTROL bits the playground offers, by label."""

MSR_CHOICES: dict[str, int] = {msr_name(m): m for m in (*MSR_IA32_SGXLEPUBKEYHASH, MSR_IA32_FEATURE_CONTROL)}
"""The MSRs the playground reads and writes, by SDM name."""

HISTORY = 20
"""How many accesses the model remembers."""


def parse_u64(text: object, field: str) -> int:
    """A 64-bit value typed as decimal or ``0x`` hex (``_`` allowed), else a :class:`ConfigError`."""
    if isinstance(text, int) and not isinstance(text, bool):
        v = text
    elif isinstance(text, str):
        t = text.strip().replace("_", "")
        try:
            v = int(t, 0)
        except ValueError:
            raise ConfigError(field, text, "expected a 64-bit value, e.g. 0x1234abcd or 42") from None
    else:
        raise ConfigError(field, text, "expected a 64-bit value")
    if not 0 <= v <= (1 << 64) - 1:
        raise ConfigError(field, text, "must be between 0 and 0xffffffffffffffff (EDX:EAX)")
    return v


@dataclass(frozen=True, slots=True)
class MsrOutcome:
    """One access: ``op`` (RDMSR, WRMSR, S3, reset), where, what, and the #GP reason if it faulted."""

    op: str
    cpu: int | None
    msr: int | None
    value: int | None
    fault: str | None = None

    @property
    def ok(self) -> bool:
        return self.fault is None

    def text(self) -> str:
        where = "" if self.cpu is None else f" on CPU {self.cpu}"
        what = "" if self.msr is None else f" {msr_name(self.msr)}"
        if self.fault is not None:
            return f"{self.op}{what}{where}: #GP(0): {self.fault}"
        if self.op == "RDMSR" and self.value is not None:
            return f"{self.op}{what}{where} = {self.value:#018x}"
        if self.op == "WRMSR" and self.value is not None:
            return f"{self.op}{what}{where} <- {self.value:#018x}: accepted"
        return f"{self.op}{where}: done"


class MsrPlaygroundModel:
    """A platform of ``ncpus`` CPUs under one firmware configuration, with a log of accesses."""

    def __init__(self, ncpus: int = 4, firmware: str = "flexible", lehash: str | None = None) -> None:
        self.ncpus = ncpus
        self.firmware = ""
        self.firmware_lehash: LeHash | None = None
        self.platform = Platform(ncpus, "flexible")
        self.history: list[MsrOutcome] = []
        self.set_firmware(firmware, lehash)

    # -- configuration --------------------------------------------------------------

    @staticmethod
    def firmware_names() -> tuple[str, ...]:
        return FIRMWARE_NAMES

    def set_firmware(self, name: str, lehash: str | None = None) -> None:
        """Power the machine on under firmware ``name`` (``lehash``: the hash a
        ``locked-third-party`` firmware locks in, or that ``flexible`` pre-writes)."""
        h = LeHash.parse(lehash, option="firmware lehash") if lehash not in (None, "") else None
        platform = Platform(self.ncpus, name, lehash=h)  # raises ConfigError before anything changes
        self.platform = platform
        self.firmware = platform.firmware.name
        self.firmware_lehash = h
        self.history = []

    def _cpu(self, cpu: int) -> int:
        self.platform.cpu(cpu)  # ConfigError naming the CPU
        return cpu

    def _log(self, out: MsrOutcome) -> MsrOutcome:
        self.history.append(out)
        del self.history[:-HISTORY]
        return out

    @property
    def last(self) -> MsrOutcome | None:
        return self.history[-1] if self.history else None

    # -- accesses ----------------------------------------------------------------------

    def rdmsr(self, cpu: int, msr: int) -> MsrOutcome:
        c = self.platform.cpu(self._cpu(cpu))
        try:
            v = c.rdmsr(msr)
        except GeneralProtection as gp:
            return self._log(MsrOutcome("RDMSR", cpu, msr, None, gp.reason))
        return self._log(MsrOutcome("RDMSR", cpu, msr, v))

    def wrmsr(self, cpu: int, msr: int, value: int | str) -> MsrOutcome:
        """WRMSR ``value`` (an int or text; bad text is a ConfigError and nothing happens)."""
        v = parse_u64(value, "value")
        c = self.platform.cpu(self._cpu(cpu))
        try:
            c.wrmsr(msr, v)
        except GeneralProtection as gp:
            return self._log(MsrOutcome("WRMSR", cpu, msr, v, gp.reason))
        return self._log(MsrOutcome("WRMSR", cpu, msr, v))

    def write_hash(self, cpu: int, lehash: str) -> MsrOutcome:
        """WRMSR all four hash MSRs with ``lehash``'s words (a signer hash in any
        spelling); stops at the first #GP, which is returned."""
        words = LeHash.parse(lehash, option="lehash").words
        out = MsrOutcome("WRMSR", cpu, None, None)
        for msr, w in zip(MSR_IA32_SGXLEPUBKEYHASH, words):
            out = self.wrmsr(cpu, msr, w)
            if not out.ok:
                break
        return out

    def set_feature_control(self, cpu: int, bits: int, *, lock: bool) -> MsrOutcome:
        """WRMSR IA32_FEATURE_CONTROL with ``bits`` (plus LOCK if ``lock``), as firmware does."""
        return self.wrmsr(cpu, MSR_IA32_FEATURE_CONTROL, bits | (FEAT_CTL_LOCKED if lock else 0))

    def reset_cpu(self, cpu: int) -> MsrOutcome:
        """Put one CPU in its power-on state (FEATURE_CONTROL 0, unlocked; Intel's hash), as
        before firmware ran: then set and lock FEATURE_CONTROL yourself."""
        self.platform.cpu(self._cpu(cpu)).reset()
        return self._log(MsrOutcome("power-on reset", cpu, None, None))

    def s3(self) -> MsrOutcome:
        """Suspend to RAM and resume: every CPU back to Intel's hash, firmware runs again."""
        self.platform.s3_resume()
        return self._log(MsrOutcome("S3 suspend/resume", None, None, None))

    # -- views ---------------------------------------------------------------------------

    def table(self) -> list[dict[str, object]]:
        """One row per CPU: FEATURE_CONTROL and its bits, whether the hash is writable,
        the four hash words EINIT would compare (uncounted), access counts and #GPs."""
        rows: list[dict[str, object]] = []
        for c in self.platform.cpus:
            fc = c.feature_control
            words = c.lehash_words
            rows.append(
                {
                    "cpu": c.index,
                    "feature_control": f"{fc:#x}",
                    "locked": bool(fc & FEAT_CTL_LOCKED),
                    "bit17": bool(fc & FEAT_CTL_SGX_LC_ENABLED),
                    "bit18": bool(fc & FEAT_CTL_SGX_ENABLED),
                    "sgx_lc": c.sgx_lc,
                    "lc_writable": c.lc_writable,
                    "hash": " ".join(f"{w:016x}" for w in words) + ("" if c.sgx_lc else " (hard-wired)"),
                    "lehash": c.lehash.short(),
                    "rdmsr": c.hash_rd,
                    "wrmsr": c.hash_wr,
                    "gp": c.gp_count,
                }
            )
        return rows
