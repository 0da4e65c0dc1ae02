"""Predict, then run: the notebook series' exercises, checked by running the experiment.

Each exercise has an id (``"06.2"``: notebook 06, question 2), a question
and a solver that computes the answer on the emulator or the simulator.
``check(id, answer)`` returns a :class:`Verdict` whose explanation comes from
that run; the placeholder ``answer=...`` (or ``None``) means "not answered
yet" and runs nothing.

Decisions
---------
* **Nothing hard-coded that can be computed.** A solver builds its own
  platform, VM or trace, so an answer changes if the model does; only the
  debate's history (who said what, in :mod:`sgxlab.experiments.claims`) is
  a lookup.
* **Answers a workshop can type.** ``int`` (an exact count or an SGX code;
  an SGX error name such as ``"SGX_INVALID_EINITTOKEN"`` is accepted too),
  ``number`` (within a relative tolerance), ``bool`` (``True``/``False`` or
  yes/no) and ``choice`` (one of a listed set, case and ``_``/``-``
  insensitive). An answer of the wrong kind raises :class:`ConfigError`
  naming ``answer``; an unknown id names ``exercise``.
* **The real Intel launch enclave when it is there.**
  :func:`launch_enclave_sample` reads Intel's production LE SIGSTRUCT from
  the third-party vectors (``$SGXLAB_VECTORS`` or ``../shared/vectors``
  beside the checkout) and otherwise signs a stand-in with the same
  attributes; the exercises give the same answers with either.
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal

from sgxlab.errors import ConfigError, GeneralProtection

if TYPE_CHECKING:
    import pandas as pd

    from sgxlab.hw.einit import EinitResult
    from sgxlab.hw.measure import Enclave
    from sgxlab.hw.platform import Cpu
    from sgxlab.hw.structs import Sigstruct
    from sgxlab.kvm.vcpu import Kvm

__all__ = [
    "Exercise",
    "Solution",
    "Verdict",
    "EXERCISES",
    "LaunchEnclaveSample",
    "check",
    "exercise",
    "exercises_for",
    "launch_enclave_sample",
    "solution",
    "vectors_dir",
]

Answer = int | float | bool | str
Kind = Literal["int", "number", "bool", "choice"]
Status = Literal["correct", "incorrect", "unanswered"]

_DESIGNS: Final[tuple[str, ...]] = ("eager-load", "percpu-cache", "percpu-cache-retry", "read-compare", "always-write")


@dataclass(frozen=True)
class Solution:
    """What the experiment gave: the answer and why."""

    answer: Answer
    explanation: str


@dataclass(frozen=True)
class Exercise:
    """One "predict, then run" question.

    ``kind`` says what an answer looks like (see the module docstring);
    ``choices`` lists the accepted answers of a ``choice``; ``tolerance`` is
    the relative error a ``number`` may have.
    """

    id: str
    question: str
    kind: Kind
    solve: Callable[[], Solution]
    choices: tuple[str, ...] = ()
    tolerance: float = 0.0

    @property
    def notebook(self) -> str:
        """The notebook (``"06-what-each-design-costs"``) this exercise belongs to."""
        from sgxlab.experiments.claims import NOTEBOOKS

        return NOTEBOOKS[int(self.id.split(".")[0])]

    def hint(self) -> str:
        """What kind of answer to type."""
        if self.kind == "choice":
            return "one of " + ", ".join(repr(c) for c in self.choices)
        if self.kind == "bool":
            return "True or False"
        if self.kind == "int":
            return "a whole number"
        return f"a number (within {self.tolerance:.0%})"


@dataclass(frozen=True, repr=False)
class Verdict:
    """The result of :func:`check`: ``status``, what was given and, once answered, what the run gave.

    It prints (and shows in a notebook) as one sentence with the explanation.
    """

    id: str
    status: Status
    given: object
    expected: Answer | None
    explanation: str

    @property
    def correct(self) -> bool:
        return self.status == "correct"

    def __str__(self) -> str:
        if self.status == "unanswered":
            return f"{self.id}: not answered yet. {self.explanation}"
        mark = "right" if self.correct else "not quite"
        return f"{self.id}: {mark} (you said {self.given!r}; the run gives {self.expected!r}). {self.explanation}"

    __repr__ = __str__

    def _repr_html_(self) -> str:
        colour = {"correct": "#009E73", "incorrect": "#D55E00", "unanswered": "#0072B2"}[self.status]
        return f'<div style="border-left:4px solid {colour};padding-left:8px">{html.escape(str(self))}</div>'


# --------------------------------------------------------------------------- the real Intel LE, or a stand-in


def vectors_dir() -> Path | None:
    """The third-party vectors folder: ``$SGXLAB_VECTORS``, else ``../shared/vectors`` beside the checkout."""
    env = os.environ.get("SGXLAB_VECTORS")
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parents[3] / "shared" / "vectors")
    for d in candidates:
        if d.is_dir():
            return d
    return None


@dataclass(frozen=True)
class LaunchEnclaveSample:
    """A launch enclave's SIGSTRUCT and an enclave EINIT will measure to its ENCLAVEHASH.

    ``real`` is true for Intel's production SIGSTRUCT (``le_prod_css.bin``),
    whose image is not public: its enclave stands for the given MRENCLAVE.
    """

    sigstruct: Sigstruct
    mrenclave: bytes
    real: bool
    origin: str

    def enclave(self) -> Enclave:
        """A fresh, uninitialized enclave whose MRENCLAVE is the SIGSTRUCT's ENCLAVEHASH."""
        from sgxlab.hw.measure import Enclave
        from sgxlab.hw.structs import Secs

        secs = Secs.new(size=0x2000, attributes=self.sigstruct.attributes, miscselect=self.sigstruct.miscselect)
        return Enclave.with_measurement(secs, self.mrenclave)


def launch_enclave_sample(vectors: str | os.PathLike[str] | None = None) -> LaunchEnclaveSample:
    """Intel's launch-enclave SIGSTRUCT from the vectors when present, else a stand-in.

    ``vectors`` is the vectors folder (default :func:`vectors_dir`). The stand-in is a two-page enclave signed with sgxlab's public test key
    0 with the same ATTRIBUTES as Intel's LE (MODE64BIT and EINITTOKEN_KEY).
    """
    from sgxlab.files import read_user_bytes
    from sgxlab.hw.structs import Sigstruct

    d = vectors_dir() if vectors is None else Path(vectors)
    path = d / "intel-linux-sgx" / "le_prod_css.bin" if d is not None else None
    if path is not None and path.is_file():
        sig = Sigstruct.from_bytes(read_user_bytes(path, "le_prod_css.bin"), validate=False)
        return LaunchEnclaveSample(
            sig, sig.enclavehash, True, f"Intel's production launch enclave SIGSTRUCT ({path.name}, third-party vector)"
        )
    from sgxlab.host.samples import signed_enclave
    from sgxlab.hw.arch import Attr
    from sgxlab.hw.structs import Attributes

    se = signed_enclave(0, tag=b"stand-in LE", attributes=Attributes(int(Attr.MODE64BIT | Attr.EINITTOKEN_KEY), 0x3))
    return LaunchEnclaveSample(
        se.sigstruct, se.mrenclave, False, "a stand-in LE signed with sgxlab test key 0 (vectors not found)"
    )


# --------------------------------------------------------------------------- solvers


def _lehash_words(words: tuple[int, ...]) -> str:
    return " ".join(f"{w:#018x}" for w in words)


def _write_hash(cpu: Cpu, words: tuple[int, ...]) -> None:
    from sgxlab.hw.arch import MSR_IA32_SGXLEPUBKEYHASH

    for msr, word in zip(MSR_IA32_SGXLEPUBKEYHASH, words, strict=True):
        cpu.wrmsr(msr, word)


def _s00_1() -> Solution:
    from sgxlab.hw.arch import MSR_IA32_SGXLEPUBKEYHASH

    n = len(MSR_IA32_SGXLEPUBKEYHASH)
    addrs = ", ".join(f"{m:#x}" for m in MSR_IA32_SGXLEPUBKEYHASH)
    return Solution(n, f"A SHA-256 hash is 256 bits; 64-bit MSRs hold it in {n} words, MSRs {addrs}.")


def _s01_1() -> Solution:
    from sgxlab.experiments.claims import claim

    c = claim("C03")
    return Solution(c.author, f"Claim {c.id} ({c.date}): {c.paraphrase}")


def _s01_2() -> Solution:
    from sgxlab.experiments.claims import claim

    c = claim("C08")
    return Solution(c.notebook, f"Claim {c.id} ({c.author}, {c.date}) is tested in {c.notebook} by {c.test}.")


def _s02_1() -> Solution:
    from sgxlab.hw.arch import MSR_IA32_SGXLEPUBKEYHASH
    from sgxlab.hw.platform import Platform

    cpu = Platform(1, "locked-intel").cpu(0)
    try:
        cpu.wrmsr(MSR_IA32_SGXLEPUBKEYHASH[0], 1)
    except GeneralProtection as gp:
        return Solution(False, f"FEATURE_CONTROL={cpu.feature_control:#x}; the WRMSR raised #GP: {gp.reason}")
    return Solution(True, f"FEATURE_CONTROL={cpu.feature_control:#x}; the WRMSR was accepted.")


def _s02_2() -> Solution:
    from sgxlab.host.samples import signed_enclave
    from sgxlab.hw.arch import INTEL_LEPUBKEYHASH
    from sgxlab.hw.platform import Platform

    platform = Platform(2, "flexible")
    cpu = platform.cpu(0)
    words = signed_enclave(1).mrsigner.words
    _write_hash(cpu, words)
    before = cpu.lehash_words
    platform.s3_resume()
    after = cpu.lehash_words
    answer = "intel" if after == INTEL_LEPUBKEYHASH.words else ("zero" if not any(after) else "the-written-value")
    return Solution(
        answer,
        f"Before S3 CPU 0 read {_lehash_words(before)}; after S3 it reads {_lehash_words(after)}: "
        "the reset value, the digest of Intel's signing key.",
    )


def _s02_3() -> Solution:
    from sgxlab.hw.arch import MSR_IA32_SGXLEPUBKEYHASH
    from sgxlab.hw.platform import Platform

    cpu = Platform(1, "no-lc").cpu(0)
    readable, why = 0, ""
    for msr in MSR_IA32_SGXLEPUBKEYHASH:
        try:
            cpu.rdmsr(msr)
            readable += 1
        except GeneralProtection as gp:
            why = gp.reason
    return Solution(readable, f"{readable} of 4 reads succeeded on 'no-lc' firmware. {why}".strip())


def _einit_code(result: EinitResult) -> Solution:
    code = int(result.code)
    return Solution(code, f"EINIT returned {result}")


def _s03_1() -> Solution:
    from sgxlab.host.samples import signed_enclave
    from sgxlab.hw.einit import einit
    from sgxlab.hw.platform import Platform

    se = signed_enclave(1)
    return _einit_code(einit(Platform(1, "flexible").cpu(0), se.sigstruct, se.fresh()))


def _s03_2() -> Solution:
    from sgxlab.host.samples import signed_enclave
    from sgxlab.hw.einit import einit
    from sgxlab.hw.platform import Platform

    signed, other = signed_enclave(1), signed_enclave(1, tag=b"one page changed")
    cpu = Platform(1, "flexible").cpu(0)
    _write_hash(cpu, signed.mrsigner.words)
    return _einit_code(einit(cpu, signed.sigstruct, other.fresh()))


def _s03_3() -> Solution:
    from sgxlab.hw.crypto import load_test_key
    from sgxlab.hw.einit import einit
    from sgxlab.hw.platform import Platform

    le = launch_enclave_sample()
    cpu = Platform(1, "flexible").cpu(0)
    _write_hash(cpu, load_test_key(5).mrsigner.words)
    sol = _einit_code(einit(cpu, le.sigstruct, le.enclave()))
    return Solution(sol.answer, f"With {le.origin}: {sol.explanation}")


def _kvm(design: str = "always-write") -> Kvm:
    from sgxlab.hw.platform import Platform
    from sgxlab.kvm.vcpu import Kvm

    return Kvm(Platform(2, "flexible"), "allow-all", design)


def _s04_1() -> Solution:
    from sgxlab.host.samples import signed_enclave
    from sgxlab.hw.arch import MSR_IA32_SGXLEPUBKEYHASH

    key1 = signed_enclave(1).mrsigner
    kvm = _kvm()
    vm = kvm.create_vm(f"epc=64M,lehash={key1.hex()}")
    vcpu = vm.vcpu(0)
    try:
        vcpu.wrmsr(MSR_IA32_SGXLEPUBKEYHASH[0], 1)
    except GeneralProtection as gp:
        return Solution(
            False, f"Guest FEATURE_CONTROL={vcpu.msr_ia32_feature_control:#x} (no bit 17): #GP, {gp.reason}"
        )
    return Solution(True, f"Guest FEATURE_CONTROL={vcpu.msr_ia32_feature_control:#x}: KVM stored the value.")


def _s04_2() -> Solution:
    from sgxlab.host.samples import signed_enclave
    from sgxlab.hw.arch import MSR_IA32_SGXLEPUBKEYHASH

    kvm = _kvm("always-write")
    vcpu = kvm.create_vm("epc=64M,lewr").vcpu(0)
    vcpu.load(0)
    platform = kvm.platform
    before = platform.counts()["wrmsr_total"]
    for msr, word in zip(MSR_IA32_SGXLEPUBKEYHASH, signed_enclave(1).mrsigner.words, strict=True):
        vcpu.wrmsr(msr, word)
    n = platform.counts()["wrmsr_total"] - before
    return Solution(
        n,
        f"The guest's 4 WRMSRs were 4 MSR exits; KVM kept the words in memory "
        f"({_lehash_words(vcpu.msr_ia32_sgxlepubkeyhash)}) and wrote {n} hardware MSRs.",
    )


def _s04_3() -> Solution:
    kvm = _kvm("eager-load")
    vcpu = kvm.create_vm("epc=64M,lewr").vcpu(0)
    platform = kvm.platform
    before = platform.counts()["wrmsr_total"]
    for i in range(10):
        vcpu.load(i % 2)
    n = platform.counts()["wrmsr_total"] - before
    return Solution(n, f"10 schedule-ins under eager-load wrote {n} hardware hash MSRs, with no launch at all.")


def _s04_4() -> Solution:
    from sgxlab.kvm.config import SgxGuestConfig

    kvm = _kvm()
    bit17 = 1 << 17
    rows = []
    for flag in (True, False):
        fc = kvm.guest_feature_control(SgxGuestConfig.merged("64M", sgxlc=flag))
        rows.append(
            f"sgxlc={'on' if flag else 'off'}: FEATURE_CONTROL={fc:#x}, bit 17 {'set' if fc & bit17 else 'clear'}"
        )
    return Solution("sgxlc", "QEMU 6.2 has no lehash or lewr; " + "; ".join(rows) + ".")


def _matrix() -> pd.DataFrame:
    from sgxlab.experiments.matrix import policy_matrix

    return policy_matrix()


def _s05_1() -> Solution:
    m = _matrix()
    rows = m[(m.policy == "host-only") & m.lewr & (m.signer == "forbidden")]
    launched = bool(rows.launched.any())
    return Solution(
        launched,
        f"host-only, lewr guests, forbidden signer: {int(rows.launched.sum())} of {len(rows)} rows launched "
        f"({int(rows.bypass.sum())} marked bypass).",
    )


def _s05_2() -> Solution:
    m = _matrix()
    by = m.groupby("policy", sort=False).bypass.any()
    safe = [str(p) for p, b in by.items() if not b]
    unsafe = [str(p) for p, b in by.items() if b]
    return Solution(len(safe), f"No bypass under: {', '.join(safe)}; bypassed: {', '.join(unsafe) or 'none'}.")


def _s05_3() -> Solution:
    m = _matrix()
    g = m.groupby("policy", sort=False)
    ok = [str(p) for p, t in g if not t.bypass.any() and t.hw_consistent.all()]
    return Solution(len(ok), f"Both enforcing and hardware-consistent for every guest: {', '.join(ok) or 'none'}.")


def _s05_4() -> Solution:
    m = _matrix()
    rows = m[(m.policy == "single-le") & m.lewr]
    created = bool(rows.vm_created.any())
    return Solution(created, f"single-le created {int(rows.vm_created.sum())} of {len(rows)} lewr VMs.")


def _s05_5() -> Solution:
    from sgxlab.host.samples import signed_enclave
    from sgxlab.hw.arch import Attr
    from sgxlab.hw.einit import einit
    from sgxlab.hw.platform import Platform
    from sgxlab.hw.structs import Attributes

    se = signed_enclave(4, attributes=Attributes(int(Attr.MODE64BIT | Attr.PROVISIONKEY), 0x3))
    cpu = Platform(1, "flexible").cpu(0)
    _write_hash(cpu, se.mrsigner.words)
    sol = _einit_code(einit(cpu, se.sigstruct, se.fresh()))
    return Solution(sol.answer, sol.explanation + ": only EINITTOKEN_KEY is a controlled attribute.")


def _s05_6() -> Solution:
    m = _matrix()
    rows = m[(m.policy == "mainline") & m.provisionkey & ~m.provision & m.lewr]
    if not len(rows):
        raise ConfigError("exercise", "05.6", "the policy matrix has no mainline PROVISIONKEY row to run")
    row = rows.iloc[0]
    step = str(row.step)
    answer = "nothing" if bool(row.launched) else ("ecreate" if step.startswith("ecreate") else "einit")
    return Solution(
        answer, f"mainline, lewr guest without KVM_CAP_SGX_ATTRIBUTE: stopped at step {step!r}; {row.reason}"
    )


def _workshop() -> pd.DataFrame:
    from sgxlab.sim.run import compare

    df: pd.DataFrame = compare(None, "workshop", engine="fast")
    return df


def _row(df: pd.DataFrame, design: str) -> pd.Series:
    return df[df.design == design].iloc[0]


def _s06_1() -> Solution:
    df = _workshop()
    top = df.sort_values("wrmsr", ascending=False)
    text = ", ".join(f"{d} {w}" for d, w in zip(top.design, top.wrmsr, strict=True))
    return Solution(str(top.design.iloc[0]), f"Hardware WRMSRs on workshop: {text}.")


def _s06_2() -> Solution:
    r = _row(_workshop(), "percpu-cache")
    n = int(r.failures_total)
    return Solution(n, f"percpu-cache: {n} of {int(r.launches)} launches failed after the S3 event.")


def _s06_3() -> Solution:
    r = _row(_workshop(), "read-compare")
    per = int(r.rdmsr) / int(r.launches)
    return Solution(
        round(per),
        f"read-compare: {int(r.rdmsr)} RDMSRs over {int(r.launches)} launches, {per:g} per launch.",
    )


def _s06_4() -> Solution:
    df = _workshop()
    top = df.sort_values("latency_p99", ascending=False)
    text = ", ".join(f"{d} {int(v):,}" for d, v in zip(top.design, top.latency_p99, strict=True))
    return Solution(str(top.design.iloc[0]), f"p99 launch latency (cycles): {text}.")


def _s07_1() -> Solution:
    from sgxlab.sim.sweep import sweep

    df = sweep(
        ["read-compare", "always-write"], "workshop", {"wrmsr_lehash": [400, 4000]},
        params={"launches": 500}, progress=False,
    )  # fmt: skip
    piv = df.pivot_table(index="wrmsr_lehash", columns="design", values="overhead_cycles")
    gap = (piv["always-write"] - piv["read-compare"]).astype(int)
    lo, hi = int(gap.iloc[0]), int(gap.iloc[-1])
    trend = "grows" if hi > lo else ("shrinks" if hi < lo else "stays")
    return Solution(trend, f"always-write minus read-compare overhead: {lo:,} cycles at 400, {hi:,} at 4000.")


def _s07_2() -> Solution:
    from sgxlab.sim.sweep import sweep

    df = sweep(["percpu-cache"], "workshop", {"launches": [500]}, seeds=3, progress=False)
    failing = int((df.failures_total > 0).sum())
    per = ", ".join(f"seed {s}: {int(f)}" for s, f in zip(df.seed, df.failures_total, strict=True))
    return Solution(failing, f"percpu-cache failures per seed ({per}).")


def _s07_3() -> Solution:
    from sgxlab.sim.sweep import sweep

    grid = [100, 400, 1200, 4000]
    df = sweep(list(_DESIGNS[:1] + _DESIGNS[2:]), "workshop", {"wrmsr_lehash": grid}, params={"launches": 500},
               progress=False)  # fmt: skip
    piv = df.pivot_table(index="wrmsr_lehash", columns="design", values="overhead_cycles")
    winners = {int(c): str(piv.loc[c].idxmin()) for c in piv.index}
    lost = [c for c in grid if winners[c] != "eager-load"]
    answer = lost[0] if lost else 0
    text = ", ".join(f"{c}: {w}" for c, w in winners.items())
    return Solution(answer, f"Cheapest design (overhead cycles) at each wrmsr_lehash: {text}.")


def _s08_1() -> Solution:
    from sgxlab.sim.costs import CostModel

    df, c = _workshop(), CostModel()
    saved = int(_row(df, "always-write").wrmsr) - int(_row(df, "percpu-cache-retry").wrmsr)
    einits = saved * c.wrmsr_lehash / c.einit
    return Solution(
        round(einits, 1),
        f"{saved:,} WRMSRs saved × {c.wrmsr_lehash} cycles = {saved * c.wrmsr_lehash:,} cycles, "
        f"{einits:.1f} EINITs of {c.einit:,} cycles, over {int(_row(df, 'always-write').launches):,} launches.",
    )


def _s08_2() -> Solution:
    r = _row(_workshop(), "percpu-cache-retry")
    return Solution(
        int(r.retries),
        f"percpu-cache-retry: {int(r.retries)} retried EINIT, {int(r.failures_total)} failures.",
    )


def _s08_3() -> Solution:
    from sgxlab.sim.costs import CostModel

    r, c = _row(_workshop(), "always-write"), CostModel()
    share = 100 * 4 * c.wrmsr_lehash / float(r.latency_mean)
    return Solution(
        round(share, 1),
        f"4 × {c.wrmsr_lehash} cycles of WRMSR per launch against a mean launch latency of "
        f"{float(r.latency_mean):,.0f} cycles: {share:.1f}%.",
    )


EXERCISES: Final[tuple[Exercise, ...]] = (
    Exercise("00.1", "How many MSRs hold the hash of the launch-enclave signer?", "int", _s00_1),
    Exercise("01.1", "Who proposed the per-CPU cache of the hash in 2017?", "choice", _s01_1,
             ("Andy Lutomirski", "Kai Huang", "Sean Christopherson")),
    Exercise("01.2", "Which notebook tests the 'little VM' argument?", "choice", _s01_2,
             ("02-launch-control-hardware", "04-kvm-lewr-and-lehash", "05-host-policies-and-the-little-vm",
              "06-what-each-design-costs")),
    Exercise("02.1", "Firmware 'locked-intel' locked FEATURE_CONTROL without bit 17. "
             "Does a run-time WRMSR to IA32_SGXLEPUBKEYHASH0 succeed?", "bool", _s02_1),
    Exercise("02.2", "Write test key 1's hash into CPU 0's MSRs, then suspend to RAM and resume (S3). "
             "What does CPU 0 read back?", "choice", _s02_2, ("intel", "the-written-value", "zero")),
    Exercise("02.3", "On 'no-lc' firmware (no launch control), how many of the four hash MSRs can be read?",
             "int", _s02_3),
    Exercise("03.1", "Token-less EINIT of an enclave signed by test key 1 while the MSRs hold Intel's hash: "
             "which SGX code?", "int", _s03_1),
    Exercise("03.2", "The MSRs now hold test key 1's hash, but the enclave launched differs from the signed "
             "one in a page: which SGX code?", "int", _s03_2),
    Exercise("03.3", "A launch enclave (EINITTOKEN_KEY set) while the MSRs hold test key 5's hash: "
             "which SGX code?", "int", _s03_3),
    Exercise("04.1", "A guest made with Kai's '-sgx epc=64M,lehash=<key 1>' (no lewr) writes its "
             "IA32_SGXLEPUBKEYHASH0. Does KVM accept it?", "bool", _s04_1),
    Exercise("04.2", "A lewr guest under always-write writes its four hash MSRs. How many hardware "
             "WRMSRs does that cause?", "int", _s04_2),
    Exercise("04.3", "Under eager-load, a lewr vCPU is scheduled in 10 times and launches nothing. "
             "How many hardware hash-MSR writes?", "int", _s04_3),
    Exercise("04.4", "Which QEMU 6.2 option decides whether a guest may write its hash MSRs?", "choice",
             _s04_4, ("sgxlc", "lewr", "lehash", "epc")),
    Exercise("05.1", "Under the host-only policy, can a lewr guest launch an enclave of the signer "
             "the host forbids?", "bool", _s05_1),
    Exercise("05.2", "How many of the policies in the matrix let no guest bypass them?", "int", _s05_2),
    Exercise("05.3", "How many policies both stop every bypass and keep every guest hardware-consistent?",
             "int", _s05_3),
    Exercise("05.4", "Will a single-le host create a VM with lewr?", "bool", _s05_4),
    Exercise("05.5", "An enclave asks for PROVISIONKEY; the MSRs hold its own signer. Token-less "
             "EINIT: which SGX code?", "int", _s05_5),
    Exercise("05.6", "Under mainline, a guest whose VM lacks KVM_CAP_SGX_ATTRIBUTE creates an enclave "
             "with PROVISIONKEY. What stops it?", "choice", _s05_6, ("ecreate", "einit", "nothing")),
    Exercise("06.1", "On 'workshop', which design writes the hash MSRs most often?", "choice", _s06_1,
             _DESIGNS),
    Exercise("06.2", "On 'workshop' (seed 0), how many launches fail under percpu-cache?", "int", _s06_2),
    Exercise("06.3", "How many RDMSRs per launch does read-compare do?", "int", _s06_3),
    Exercise("06.4", "On 'workshop', which design has the worst p99 launch latency?", "choice", _s06_4,
             _DESIGNS),
    Exercise("07.1", "As wrmsr_lehash goes from 400 to 4000 cycles, how does always-write's overhead "
             "minus read-compare's change?", "choice", _s07_1, ("grows", "shrinks", "stays")),
    Exercise("07.2", "Over seeds 0, 1 and 2 of a 500-launch 'workshop', on how many seeds does "
             "percpu-cache fail a launch?", "int", _s07_2),
    Exercise("07.3", "Sweep wrmsr_lehash over 100, 400, 1200 and 4000 cycles: at which value does "
             "eager-load stop having the least overhead? (0 if it never does)", "int", _s07_3),
    Exercise("08.1", "On 'workshop', the WRMSRs percpu-cache-retry saves against always-write add up "
             "to how many EINITs' worth of cycles?", "number", _s08_1, tolerance=0.25),
    Exercise("08.2", "On 'workshop', how many extra EINITs does percpu-cache-retry need to hide the "
             "stale cache?", "int", _s08_2),
    Exercise("08.3", "What percentage of always-write's mean launch latency is its four WRMSRs?",
             "number", _s08_3, tolerance=0.3),
)  # fmt: skip
"""Every exercise, in notebook order."""


def exercise(exercise_id: str) -> Exercise:
    """The exercise ``exercise_id`` (``"06.2"``); :class:`ConfigError` naming ``exercise`` if none."""
    for e in EXERCISES:
        if e.id == exercise_id:
            return e
    raise ConfigError("exercise", exercise_id, f"unknown exercise; ids: {', '.join(e.id for e in EXERCISES)}")


def exercises_for(notebook: str) -> tuple[Exercise, ...]:
    """The exercises of one notebook (``"06-what-each-design-costs"`` or just ``"06"``)."""
    prefix = notebook[:2]
    found = tuple(e for e in EXERCISES if e.id.startswith(prefix + "."))
    if not found:
        raise ConfigError("notebook", notebook, "no exercises for this notebook")
    return found


def solution(exercise_id: str) -> Solution:
    """Run the experiment behind ``exercise_id`` and return its answer (for the workshop leader)."""
    return exercise(exercise_id).solve()


def _norm(text: str) -> str:
    return " ".join(text.strip().lower().replace("_", "-").split())


def _given(ex: Exercise, answer: object) -> Answer:
    """``answer`` in the exercise's kind, or a ConfigError naming ``answer``."""
    if ex.kind == "bool":
        if isinstance(answer, bool):
            return answer
        if isinstance(answer, str) and _norm(answer) in ("yes", "true", "no", "false"):
            return _norm(answer) in ("yes", "true")
    elif ex.kind in ("int", "number"):
        if isinstance(answer, str) and ex.kind == "int":
            from sgxlab.hw.arch import SgxError

            key = answer.strip().upper().replace("-", "_")
            if key in SgxError.__members__:
                return int(SgxError[key])
        if isinstance(answer, (int, float)) and not isinstance(answer, bool):
            if ex.kind == "number":
                return float(answer)
            if float(answer).is_integer():
                return int(answer)
    elif isinstance(answer, str):
        for c in ex.choices:
            if _norm(c) == _norm(answer):
                return c
        raise ConfigError("answer", answer, f"exercise {ex.id} expects {ex.hint()}")
    raise ConfigError("answer", answer, f"exercise {ex.id} expects {ex.hint()}")


def _matches(ex: Exercise, given: Answer, expected: Answer) -> bool:
    if ex.kind == "number":
        assert isinstance(given, float) and isinstance(expected, (int, float))
        return abs(given - expected) <= ex.tolerance * abs(expected)
    if ex.kind == "choice":
        return _norm(str(given)) == _norm(str(expected))
    return given == expected


def check(exercise_id: str, answer: object = ...) -> Verdict:
    """Check a prediction by running the experiment behind ``exercise_id``.

    ``answer=...`` (the notebooks' placeholder) or ``None``: nothing runs,
    the verdict says "not answered yet" and what kind of answer to type.
    """
    ex = exercise(exercise_id)
    if answer is ... or answer is None:
        return Verdict(ex.id, "unanswered", None, None, f"{ex.question} Answer with {ex.hint()}.")
    given = _given(ex, answer)
    sol = ex.solve()
    status: Status = "correct" if _matches(ex, given, sol.answer) else "incorrect"
    return Verdict(ex.id, status, given, sol.answer, sol.explanation)
