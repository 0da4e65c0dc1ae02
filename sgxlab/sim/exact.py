"""The exact engine: a trace replayed event by event through the emulator.

This is the reference implementation of ``docs/simulator.md``. It builds a
real :class:`~sgxlab.hw.platform.Platform` (firmware ``flexible``) with one
logical CPU per trace CPU, instantiates the design on it, and replays the
trace in row order:

* every LAUNCH forks a pre-built enclave image of its signer
  (:meth:`sgxlab.hw.measure.Enclave.fork`, so MRENCLAVE is measured, not
  assumed) and runs the real ENCLS[EINIT] (:func:`sgxlab.hw.einit.einit`),
  through :meth:`Design.einit` for host and trapped guest launches, natively
  for an untrapped guest. Only what depends on the SIGSTRUCT bytes alone
  (format, RSA signature, MRSIGNER) is memoized, by
  :meth:`Platform.siginfo`; EINIT compares the CPU's *current* hash MSRs on
  every launch, so a design that leaves them wrong fails there, with the
  SDM's code and a reason;
* the MSRs are touched only through :meth:`Cpu.rdmsr`/:meth:`Cpu.wrmsr`, so
  the ``wrmsr``/``rdmsr`` totals are the platform's own counters;
* each vCPU is the KVM layer's own guest model, a
  :class:`~sgxlab.kvm.guest.GuestLc` (what KVM keeps in ``vcpu_vmx``: the
  virtual IA32_SGXLEPUBKEYHASH0..3 in memory, CPUID SGX_LC,
  IA32_FEATURE_CONTROL), made and driven with the helpers of
  :mod:`sgxlab.kvm.guest` exactly as :class:`sgxlab.kvm.vcpu.Vcpu` does: a
  lewr guest writes its four hash MSRs before each EINIT attempt
  (:meth:`GuestLc.lewr`, four intercepted WRMSRs, passed through to hardware
  only under a design that loads on schedule-in, eager-load, Kai's RFC); a
  schedule-in runs :func:`~sgxlab.kvm.guest.schedule_in_hook`; an S3 row is
  :func:`~sgxlab.kvm.guest.s3_resume`. The guest's FEATURE_CONTROL rules
  come with the model: a refused guest WRMSR, or an ENCLS while SGX is not
  enabled in the guest, is a #GP that the contract has no answer for, so the
  engine raises :class:`~sgxlab.errors.GeneralProtection` naming the vCPU.
  A trace's VMs cannot get there (a lewr VM's firmware sets bit 17, every
  VM's locks SGX_ENABLE); only a hand-changed guest state can;
* the host launch policy is a :class:`~sgxlab.kvm.policy.HostPolicy`, the
  object :class:`sgxlab.kvm.vcpu.Kvm` takes, asked once per run through
  :func:`sgxlab.sim.hostpolicy.run_tables`: a VM it refuses never exists (its
  rows are not replayed, :meth:`Trace.without_vms`); a host launch it refuses
  fails before EINIT and costs nothing; a trapped guest EINIT it refuses is
  an ENCLS exit that KVM answers with the code launch control would give
  (:data:`~sgxlab.kvm.vcpu.POLICY_REFUSAL_CODE`), with no MSR access and no
  EINIT. A host with one launch enclave (``single-le``) is set up for real:
  a :class:`~sgxlab.host.le.LaunchEnclave` signed by that test key is
  launched on CPU 0 before the run and issues one EINITTOKEN per host
  signer; host launches then load the LE's hash and present its token.
  Tokens survive the run's S3 events (the launch key derives from the
  platform's fuses, OWNEREPOCH and CPUSVN and from the MSRs at EINIT, not
  from the EPC), but a token checks the MSRs too: its MAC only verifies when
  they hold the LE's hash. ``mainline``'s PROVISIONKEY gate refuses a host
  launch with ``-EACCES`` (after the policy, no MSR access, no EINIT) and a
  guest launch with #GP at its trapped ECREATE (first, before the lewr
  WRMSRs: one exit, ``encls_trap``); both are counted in ``refusals`` and
  ``gate_refusals``;
* a launch whose trace row has ``unmasked`` = k > 0 (interrupts during
  EINIT) replays them: the host path is :meth:`Design.einit` with
  ``interrupts=k``, whose ``sgx_encl_init`` loop re-runs update and EINIT
  after each SGX_UNMASKED_EVENT; a guest's own driver loop retries, so each
  attempt is a new one: the lewr guest's 4 intercepted WRMSRs, then a trapped
  EINIT (ENCLS exit, ``design.einit(..., retry_unmasked=False)``, as KVM's
  ``sgx_virt_einit`` does not retry) or, under eager-load, a native one. A
  chunk of rows with no interrupt and no refused launch runs the plain loop
  (:meth:`_replay`); one with some (or any chunk of a single-LE host) runs
  :meth:`_replay_general`, so a run without interrupts or refusals pays
  nothing for them;
* S3 is :meth:`Platform.s3_resume`: every CPU's hash MSRs go back to Intel's
  value; the design's ``on_epc_loss`` hook runs. Then, as the frozen vCPU
  threads run again, every vCPU current on a CPU (the one its latest SCHED
  put there, unless it was scheduled elsewhere since) is scheduled in again
  there, in CPU order: KVM runs ``kvm_arch_vcpu_load`` (from the preempt
  notifier ``kvm_sched_in``, or the next KVM_RUN's ``vcpu_load``), so it
  counts as a schedule-in and the design's ``vcpu_load`` runs. Which vCPU is
  current is worked out from the SCHED rows only when an S3 row comes
  (:meth:`ExactSimulation._current_at`), so the per-row loop does no extra
  work;
* an EXIT row changes nothing: the loops count a chunk's EXIT rows with numpy
  and never visit them (:meth:`ExactSimulation._columns`); the exits a trace
  counts instead of listing (``Trace.vm_exits``, those of VMs the policy
  refused taken out) join the summary once the whole trace has replayed.

Timing follows the contract: integer cycles, FIFO queues (one for a global
lock, else one per CPU), latencies kept in a compact ``array('q')``, and
summaries streamed; per-launch records are kept only when asked (by default
for runs of at most :data:`RECORDS_DEFAULT_MAX` launches). The hot loop
appends one plain tuple per launch (columns :data:`RAW_COLUMNS`, checked
against the schema :data:`~sgxlab.sim.schema.LAUNCH_RECORDS` at import);
:meth:`ExactSimulation.records_frame` and
:meth:`ExactSimulation.launch_records` read them back by column name.

Signer *s* is ``data/keys/key{s:02d}.pem``; its enclave is a two-page image (code and TCS)
whose content names *s*, built, signed and checked once per process
(:func:`_built_signer`, a bounded cache of immutable results); each simulation
forks its own copy. :meth:`ExactSimulation.observe` replays a run while noting
each CPU's hash MSRs and the design's cache (the timeline figure), and
:meth:`ExactSimulation.run` reports progress per chunk of rows
(:mod:`sgxlab.sim.progress`).
"""

from __future__ import annotations

import dataclasses
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from sgxlab.errors import ConfigError, GeneralProtection, SgxlabError
from sgxlab.files import data_path
from sgxlab.host.designs import Design, design_class, design_label
from sgxlab.host.le import LaunchEnclave
from sgxlab.host.samples import signed_enclave
from sgxlab.hw.arch import CONTROLLED_ATTRIBUTES, INTEL_LEPUBKEYHASH, MSR_IA32_SGXLEPUBKEYHASH, SgxError, Words
from sgxlab.hw.crypto import NUM_TEST_KEYS, load_test_key
from sgxlab.hw.einit import SigInfo, einit
from sgxlab.hw.measure import Enclave
from sgxlab.hw.platform import Platform
from sgxlab.hw.structs import Einittoken
from sgxlab.kvm.guest import (
    GuestLc,
    firmware_feature_control,
    passes_through,
    s3_resume,
    schedule_in_hook,
    traps_einit,
    vcpu_initial_words,
)
from sgxlab.kvm.policy import HostPolicy
from sgxlab.kvm.vcpu import POLICY_REFUSAL_CODE, POLICY_REFUSAL_CODE_LE
from sgxlab.sim.budget import Budget, check_trace
from sgxlab.sim.costs import CostModel
from sgxlab.sim.hostpolicy import GATE_EACCES, GATE_ECREATE_GP, PolicyTables, gate_rows, run_tables, signer_hashes
from sgxlab.sim.progress import EXACT_STEP_ROWS, Progress
from sgxlab.sim.schema import GATE_NAMES, LAUNCH_RECORDS
from sgxlab.sim.stats import latency_summary
from sgxlab.sim.trace import EXIT, LAUNCH, MAX_EINIT_ATTEMPTS, S3, SCHED, Trace

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "ExactSimulation",
    "LaunchRecord",
    "RECORD_COLUMNS",
    "RAW_COLUMNS",
    "RECORDS_DEFAULT_MAX",
    "NO_EINIT_CODE",
    "SignerImage",
    "signer_image",
    "simulate",
    "MsrHistory",
    "HIST_INTEL",
    "HIST_ZERO",
    "HIST_OTHER",
    "HIST_NONE",
    "HIST_LE",
]

RECORDS_DEFAULT_MAX = 200_000
"""Runs with at most this many launches keep per-launch records unless told otherwise."""

CHUNK = 1 << 16
"""Rows converted from numpy to Python per step (bounds memory on huge traces)."""

RECORD_COLUMNS: tuple[str, ...] = LAUNCH_RECORDS.names
"""Columns of :meth:`Result.records` (:data:`sgxlab.sim.schema.LAUNCH_RECORDS`).

``einits`` counts every EINIT of the launch, ``retries`` those after the first
(``einits - 1``, and 0 for a launch the policy refused, which ran none),
``unmasked`` those an interrupt aborted (SGX_UNMASKED_EVENT):
percpu-cache-retry's re-run after SGX_INVALID_EINITTOKEN is ``retries -
unmasked`` unless the launch failed with SGX_UNMASKED_EVENT. ``outcome`` is
``launched``, ``failed`` (EINIT's final code was not 0) or ``refused`` (the
host policy said no, ``step`` ``policy``; or the PROVISIONKEY gate did, ``step``
``eacces`` or ``ecreate-gp``, ``name`` ``EACCES`` or ``GP``)."""

_DERIVED = ("design", "outcome", "name")
"""Record columns the hot loop does not store: the design (one per run), and
the outcome and the code's name (both follow from ``code`` and ``step``)."""

RAW_COLUMNS: tuple[str, ...] = (
    "time",
    "cpu",
    "vm",
    "vcpu",
    "signer",
    "rdmsr",
    "wrmsr",
    "einits",
    "retries",
    "unmasked",
    "trap_cycles",
    "msr_exit_cycles",
    "lock_cycles",
    "msr_cycles",
    "einit_cycles",
    "lock_wait",
    "queue_wait",
    "latency",
    "code",
    "step",
    "reason",
)
"""The order of the tuple the hot loops append per launch: the schema's columns
without :data:`_DERIVED` (checked at import)."""

if tuple(n for n in RECORD_COLUMNS if n not in _DERIVED) != RAW_COLUMNS:  # pragma: no cover - a drift guard
    raise ImportError(f"exact.RAW_COLUMNS {RAW_COLUMNS} do not follow the schema {RECORD_COLUMNS}")

NO_EINIT_CODE = -1
"""``code`` of a host launch the policy refused: the ioctl failed before any EINIT
(its ``name`` is ``NONE``)."""

POLICY_STEP = "policy"
"""``step`` of a launch the host policy refused (as :class:`sgxlab.kvm.vcpu.GuestEinit` says)."""


@dataclass(frozen=True, slots=True)
class LaunchRecord:
    """One launch as the exact engine served it (cycles are integers).

    The fields are :data:`sgxlab.sim.schema.LAUNCH_RECORDS`, in order (checked
    at import)."""

    time: int
    cpu: int
    vm: int
    vcpu: int
    signer: int
    design: str
    rdmsr: int
    wrmsr: int
    einits: int
    retries: int
    unmasked: int
    trap_cycles: int
    msr_exit_cycles: int
    lock_cycles: int
    msr_cycles: int
    einit_cycles: int
    lock_wait: int
    queue_wait: int
    latency: int
    outcome: str
    code: int
    name: str
    step: str
    reason: str


_PY_TYPE = {"int64": "int", "string": "str"}


def _check_record_class() -> None:
    fields = [(f.name, str(f.type)) for f in dataclasses.fields(LaunchRecord)]
    want = [(c.name, _PY_TYPE.get(c.dtype, c.dtype)) for c in LAUNCH_RECORDS.columns]
    if fields != want:  # pragma: no cover - a drift guard
        raise ImportError(f"LaunchRecord {fields} does not follow the schema {want}")


_check_record_class()

HIST_INTEL = -1
""":class:`MsrHistory` code: Intel's reset value (what S3 and boot leave in the MSRs)."""
HIST_ZERO = -2
""":class:`MsrHistory` code: all four words zero (the 2019 per-CPU cache at boot)."""
HIST_OTHER = -3
""":class:`MsrHistory` code: a value that is no signer's hash (a mix of words)."""
HIST_NONE = -4
""":class:`MsrHistory` code of ``cached`` for a design without a per-CPU cache."""
HIST_LE = -5
""":class:`MsrHistory` code: the host's launch enclave's hash (``single-le``) when it is no run signer's."""
_ZERO: Words = (0, 0, 0, 0)


@dataclass(frozen=True)
class MsrHistory:
    """What the hash MSRs (``hw``) and the design's per-CPU cache (``cached``) held on
    each CPU, from :meth:`ExactSimulation.observe`: one entry per CPU at the window's
    start (time ``t0``), then one per CPU a row touched (the row's CPU; every CPU for
    an S3), each the state *after* the row at time ``t``. Values are signer indices,
    or :data:`HIST_INTEL`, :data:`HIST_ZERO`, :data:`HIST_OTHER`, :data:`HIST_LE`,
    :data:`HIST_NONE` (no cache). ``t1`` is the last row's time in the window."""

    t: np.ndarray
    cpu: np.ndarray
    hw: np.ndarray
    cached: np.ndarray
    t0: int
    t1: int
    has_cache: bool


_CODE_NAMES: dict[int, str] = {int(c): c.name for c in SgxError}
_CODE_NAMES[NO_EINIT_CODE] = "NONE"


_REFUSED_STEPS = frozenset((POLICY_STEP, *GATE_NAMES))
"""The ``step`` of a launch that never reached EINIT's decision: the policy's, or the gate's."""


def _outcome(code: int, step: str) -> str:
    if step in _REFUSED_STEPS:
        return "refused"
    return "launched" if code == 0 else "failed"


def _code_name(code: int, step: str) -> str:
    """A record's ``name``: the gate's (:data:`~sgxlab.sim.schema.GATE_NAMES`) or the code's SDM name."""
    return GATE_NAMES.get(step) or _CODE_NAMES[code]


@dataclass(frozen=True)
class SignerImage:
    """Signer *s*'s enclave: the built image (fork it per launch), its SIGSTRUCT bytes and words."""

    index: int
    enclave: Enclave
    sigstruct: bytes
    mrsigner_words: tuple[int, int, int, int]


def signer_image(s: int) -> SignerImage:
    """Signer ``s``'s enclave, signed with ``data/keys/key{s:02d}.pem``: a fresh fork of
    the image built once per process (see :func:`_built_signer`)."""
    sigstruct, words, template, _ = _signer(s)
    return SignerImage(s, template.fork(), sigstruct, words)


def _signer(s: int) -> tuple[bytes, Words, Enclave, SigInfo]:
    """:func:`_built_signer` for signer ``s``, keyed on its key file's stamp."""
    if not isinstance(s, int) or isinstance(s, bool) or not 0 <= s < NUM_TEST_KEYS:
        raise ConfigError("signer", s, f"expected a test-key index in 0..{NUM_TEST_KEYS - 1}")
    try:
        st = data_path("keys", f"key{s:02d}.pem").stat()
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
    except OSError:
        stamp = (0, 0, 0)  # load_test_key names the missing file
    return _built_signer(s, stamp)


@lru_cache(maxsize=2 * NUM_TEST_KEYS)
def _built_signer(s: int, stamp: tuple[int, int, int]) -> tuple[bytes, Words, Enclave, SigInfo]:
    """Build, measure and sign signer ``s``'s two-page enclave (4 ms of RSA signing),
    and check its SIGSTRUCT once (format, RSA signature, Q1/Q2, MRSIGNER: :class:`SigInfo`).

    A bounded per-process cache of pure results: the SIGSTRUCT bytes, the
    MRSIGNER words and the :class:`SigInfo` (which depends on the bytes alone,
    so "a caller may memoize it per SIGSTRUCT", as each platform already did;
    EINIT only reads it) are immutable, and the enclave image is a template
    that never leaves this cache (:func:`signer_image` hands out forks, which
    are copy-on-write, so no caller can change it). The key is the key file's
    ``stamp`` (mtime, size, inode): a regenerated ``data/keys`` file is read
    and signed again. Only the shipped public test keys are ever signed with
    here, which is why :func:`~sgxlab.hw.crypto.load_test_key` may skip
    OpenSSL's RSA key validation for them. Every EINIT of every run still runs
    on the emulator: a fresh fork, MRENCLAVE, the MSR comparisons and the
    launch's own checks.
    """
    e = signed_enclave(s, tag=f"simulated enclave of signer {s:02d}".encode(), isvprodid=s)
    return e.sigstruct_bytes, e.mrsigner.words, e.image, SigInfo.of(e.sigstruct_bytes)


def _guest_fault(reason: str, v: int, vc: int, t: int, *, value: Words | None = None) -> GeneralProtection:
    """The #GP a guest-model check gave (``value``: the words of a refused hash
    WRMSR, else ENCLS faulted): the contract has no faulting guest, so the run stops."""
    who = f"vcpu {vc} of vm{v}"
    why = f"{reason} (at t={t}; the simulator's contract has no faulting guest, so the run stops)"
    if value is not None:
        return GeneralProtection(
            why, msr=MSR_IA32_SGXLEPUBKEYHASH[0], value=value[0], cpu=who, msr_name="IA32_SGXLEPUBKEYHASH0"
        )
    return GeneralProtection(why, instruction="EINIT", cpu=who)


class ExactSimulation:
    """One replay of ``trace`` under ``design`` with ``costs`` and a host policy.

    Construction builds the platform, the design instance, the guests, the
    signers' enclave images and (``single-le``) the host's launch enclave;
    :meth:`step` replays up to N rows (so two simulations can be
    interleaved), :meth:`run` replays the rest, :meth:`summary` gives the
    contract's counts (without ``design``/``workload``/``seed``/``engine``,
    which :func:`sgxlab.run` adds). Every piece of state lives on this object.

    ``records``: keep one record per launch (``None``: only if the trace has
    at most :data:`RECORDS_DEFAULT_MAX` launches). ``policy``: a
    :class:`~sgxlab.kvm.policy.HostPolicy` (or a built-in's name, built with
    the trace's approved signers), else the trace's own policy.

    ``rows`` is the trace that runs: ``trace`` without the rows of VMs the
    policy refused to create; :meth:`step` counts its rows.
    """

    def __init__(
        self,
        trace: Trace,
        design: str | type[Design] = "always-write",
        costs: CostModel | None = None,
        *,
        records: bool | None = None,
        policy: HostPolicy | str | None = None,
        budget: Budget | None = None,
    ) -> None:
        if not isinstance(trace, Trace):
            raise ConfigError("trace", trace, "expected a sgxlab.sim.trace.Trace")
        check_trace(trace, budget)  # refuse work over the budget before building anything
        trace.validate()
        self.trace = trace
        self.design_cls = design_class(design)
        self.design_name = design_label(self.design_cls)
        self.costs = costs if costs is not None else CostModel()
        if not isinstance(self.costs, CostModel):
            raise ConfigError("costs", costs, "expected a sgxlab.sim.costs.CostModel")
        self.tables: PolicyTables = run_tables(trace, self.design_cls, policy, gate=True)
        self.policy: HostPolicy = self.tables.policy
        self.vms_refused = sum(self.tables.vm_refused)
        self.rows = trace.without_vms([v for v, r in enumerate(self.tables.vm_refused) if r])
        rows = self.rows
        self.platform = Platform(trace.ncpus, "flexible")
        self.design: Design = self.design_cls(self.platform)
        self.nlaunches = rows.launches
        self.keep_records = self.nlaunches <= RECORDS_DEFAULT_MAX if records is None else bool(records)

        host_signers = self._setup_signers(trace, rows)
        self._setup_guests(trace)
        self._setup_host_path(host_signers)
        self._setup_s3(trace, rows)
        self._setup_counters(trace, rows)

    # ------------------------------------------------------------------ setup steps

    def _setup_signers(self, trace: Trace, rows: Trace) -> list[int]:
        """Build and sign each signer's enclave image once; remember what EINIT needs of
        it (the memoized signature check, a fork, the MRSIGNER words, the code a policy
        refusal shows). Returns the host's signers."""
        launch = rows.kind == LAUNCH
        host_signers = set(np.unique(rows.signer[launch & (rows.vm < 0)]).tolist())
        used = set(np.unique(rows.signer[launch]).tolist())
        used |= {spec.lehash for spec in trace.vms if spec.lehash >= 0}
        built = {s: _signer(s) for s in sorted(used)}
        self.images: dict[int, SignerImage] = {s: SignerImage(s, b[2].fork(), b[0], b[1]) for s, b in built.items()}
        n = max(used, default=-1) + 1
        self._info: list[SigInfo | None] = [None] * n
        self._fork: list[Any] = [None] * n
        self._words: list[Words | None] = [None] * n
        self._refusal_code = [int(POLICY_REFUSAL_CODE)] * n
        for s, img in self.images.items():
            info = built[s][3]  # the signature check, once per process
            self._info[s] = info
            self._fork[s] = img.enclave.fork
            self._words[s] = info.mrsigner_words
            if img.enclave.secs.attributes.flags & CONTROLLED_ATTRIBUTES:  # what Kvm.policy_refusal_code gives
                self._refusal_code[s] = int(POLICY_REFUSAL_CODE_LE)
        return sorted(host_signers)

    def _setup_guests(self, trace: Trace) -> None:
        """The guests: KVM's own per-vCPU model (:class:`~sgxlab.kvm.guest.GuestLc`).

        The simulator's host has writable launch control, so every guest has
        CPUID SGX_LC (rfc2017) and its firmware locks FEATURE_CONTROL with
        SGX_ENABLE, plus bit 17 iff lewr.
        """
        lc = self.platform.lc_writable
        intel = INTEL_LEPUBKEYHASH.words
        self.guests: list[list[GuestLc]] = [
            [
                GuestLc(
                    vcpu_initial_words(intel, self._words[spec.lehash] if spec.lehash >= 0 else None),
                    True,
                    firmware_feature_control(spec.lewr),
                )
                for _ in range(spec.nvcpus)
            ]
            for spec in trace.vms
        ]
        self._traps = traps_einit(lc, self.design_cls)
        self._through = passes_through(lc, self.design_cls)
        self._vload: Callable[..., None] | None = schedule_in_hook(lc, self.design)

    def _setup_host_path(self, host_signers: Sequence[int]) -> None:
        """What host launches load and present: their own words and no token, or
        (single-le) the LE's words and the LE's token."""
        tables = self.tables
        n = len(self._words)
        self._hwords: list[Words | None] = list(self._words)
        self._htoken: list[Einittoken | None] = [None] * n
        self._hreason: list[str | None] = list(tables.host_reasons[:n])
        self.host_le: LaunchEnclave | None = None
        if tables.host_le is not None:
            self._setup_host_le(tables.host_le, host_signers)
        self._forbidden = tables.forbidden

    def _setup_s3(self, trace: Trace, rows: Trace) -> None:
        """For S3 resumes: the S3 rows, the SCHED rows (only if some S3 can find a
        vCPU), and the vCPU current on each CPU as of SCHED row ``_sched_pos``."""
        self._s3_rows: list[int] = np.flatnonzero(rows.kind == S3).tolist()
        self._sched_rows = np.flatnonzero(rows.kind == SCHED) if self._s3_rows and trace.vms else np.zeros(0, np.int64)
        self._sched_pos = 0
        self._current: dict[int, tuple[int, int]] = {}
        self._on: dict[tuple[int, int], int] = {}

    def _setup_counters(self, trace: Trace, rows: Trace) -> None:
        """Zero the platform's counters and the run's, and pick the loop's inputs."""
        self.platform.reset_counters()
        self.pos = 0
        self.launches = 0
        self.einits = 0
        self.retries = 0
        self.refusals = 0
        self.gate_refusals: dict[str, int] = {GATE_EACCES: 0, GATE_ECREATE_GP: 0}
        self.failures: dict[int, int] = {}
        self.failure_reasons: dict[int, str] = {}
        self.schedule_ins = 0
        self.encls_exits = 0
        self.msr_exits = 0
        self.exits = 0
        self.s3_events = 0
        self.bypasses = 0
        self.overhead = 0
        self.global_lock = self.design_cls.lock == "global"
        # The interrupt draws, only if some launch has one, and the launches the policy
        # refuses, only if there are any (else the plain loop serves every chunk).
        self._unmasked = rows.unmasked if rows.interrupted else None
        self._refused = self._refused_rows()
        self._qdone = [0] * (1 if self.global_lock else trace.ncpus)
        self.latencies = array("q")
        self._records: list[tuple[Any, ...]] | None = [] if self.keep_records else None

    def _setup_host_le(self, le_index: int, host_signers: Sequence[int]) -> None:
        """A host with one launch enclave (``single-le``): build the LE, launch it
        on CPU 0, take one EINITTOKEN per host signer, then power-cycle the
        platform so the run starts from the contract's boot state.

        The LE is signed by test key ``le_index``; its token policy is the
        policy's intent (the run's signers it :meth:`~HostPolicy.permits`).
        The tokens stay valid after the reset: the launch key depends on the
        platform's fuses, OWNEREPOCH and CPUSVN and on the MSRs at EINIT,
        not on the EPC (``tests/test_sim_policy.py`` checks it). Every answer
        of the real LE must agree with the policy tables, which the fast
        engine reads; a disagreement is an :class:`SgxlabError`.
        """
        pol = self.policy
        hashes = signer_hashes(self.trace.nsigners)
        key = load_test_key(le_index)
        le = LaunchEnclave.create(key, allowlist=[h for h in hashes if pol.permits(h)])
        cpu = self.platform.cpus[0]
        for msr, word in zip(MSR_IA32_SGXLEPUBKEYHASH, key.mrsigner.words):
            cpu.wrmsr(msr, word)
        result = le.launch(cpu)
        if not result.ok:  # pragma: no cover - the LE is signed right
            raise SgxlabError(f"the host's launch enclave did not launch: {result}")
        le_words = key.mrsigner.words
        for s in range(len(self._hwords)):
            self._hwords[s] = le_words
        tables = self.tables
        for s in host_signers:
            info = self._info[s]
            assert info is not None
            answer = le.get_token(info.sig)
            refused = tables.host_refused[s]
            if answer.granted and not refused:
                self._htoken[s] = answer.token
            elif not answer.granted and refused:
                if pol.check_host_einit(hashes[s]) is None:  # the LE's refusal, in its own words
                    self._hreason[s] = (
                        f"the host's launch enclave {key.mrsigner.short()} gave no EINITTOKEN: {answer.reason}"
                    )
            elif not refused:
                raise SgxlabError(
                    f"the host's launch enclave refused signer {s} a token the policy permits: {answer.reason}"
                )
            elif pol.check_host_einit(hashes[s]) is None:
                raise SgxlabError(f"the host's launch enclave gave signer {s} a token the policy does not permit")
        self.host_le = le
        self.platform.power_on_reset()

    def _guests_ok(self) -> bool:
        """Whether no guest-model check can fire: every vCPU has SGX enabled (ENCLS
        does not #GP) and every lewr vCPU may write its hash. Only a vCPU's own
        FEATURE_CONTROL or CPUID decides that, and no row changes them, so the plain
        loop asks once per chunk; a chunk where a check could fire runs
        :meth:`_replay_general`, which checks at every launch and stops with the #GP."""
        for spec, vm in zip(self.trace.vms, self.guests):
            for g in vm:
                if not g.sgx_enabled or (spec.lewr and not g.hash_writable):
                    return False
        return True

    def _refused_rows(self) -> np.ndarray | None:
        """A row mask of the launches the policy refuses (``None``: there are none)."""
        rows, tables = self.rows, self.tables
        launch = rows.kind == LAUNCH
        if not launch.any():
            return None
        sig = np.maximum(rows.signer, 0)
        ref = launch & (rows.vm < 0) & np.array(tables.host_refused, dtype=bool)[sig]
        if self._traps and rows.vms and any(map(any, tables.guest_refused)):
            gtab = np.array(tables.guest_refused, dtype=bool)
            ref |= launch & (rows.vm >= 0) & gtab[np.maximum(rows.vm, 0), sig]
        gated = gate_rows(tables, launch, rows.vm, rows.signer)  # the PROVISIONKEY gate
        if gated is not None:
            ref |= gated[0] | gated[1]
        return ref if ref.any() else None

    # ------------------------------------------------------------------ driving

    @property
    def done(self) -> bool:
        return self.pos >= len(self.rows)

    @property
    def vwords(self) -> list[list[Words]]:
        """Each vCPU's virtual IA32_SGXLEPUBKEYHASH0..3 now (``self.guests[v][vc].words``)."""
        return [[g.words for g in vm] for vm in self.guests]

    def run(self, progress: Progress | None = None) -> ExactSimulation:
        """Replay every remaining row. ``progress``: told one step per
        :data:`~sgxlab.sim.progress.EXACT_STEP_ROWS` rows (:meth:`progress_steps` of them);
        it may raise to cancel between two steps."""
        if progress is None or not progress.active:
            while not self.done:
                self.step(CHUNK)
            return self
        while not self.done:
            self.step(EXACT_STEP_ROWS)
            progress.step()
        return self

    def progress_steps(self) -> int:
        """The steps :meth:`run` reports to an active progress (rows left / EXACT_STEP_ROWS)."""
        return -(-(len(self.rows) - self.pos) // EXACT_STEP_ROWS)

    def observe(self, t0: int | None = None, t1: int | None = None) -> MsrHistory:
        """Replay every remaining row, noting what each CPU's hash MSRs and the
        design's per-CPU cache hold after every row between times ``t0`` and
        ``t1`` (inclusive; default: the whole run). For the timeline figure.

        The rows before the window replay at full speed; the window's rows
        one at a time, so keep it to a few thousand rows. Reading the state
        is uncounted (:attr:`Cpu.lehash_words`), so the summary is the same
        as :meth:`run`'s.
        """
        tr = self.rows
        lo = max(int(np.searchsorted(tr.t, t0, side="left")) if t0 is not None else 0, self.pos)
        hi = int(np.searchsorted(tr.t, t1, side="right")) if t1 is not None else len(tr)
        hi = max(hi, lo)
        while self.pos < lo:
            self.step(min(CHUNK, lo - self.pos))
        codes: dict[Words, int] = {INTEL_LEPUBKEYHASH.words: HIST_INTEL, _ZERO: HIST_ZERO}
        for sidx, w in enumerate(self._words):
            if w is not None:
                codes.setdefault(w, sidx)
        for w in self._hwords:  # single-le: the LE's words
            if w is not None and w not in codes:
                codes[w] = HIST_LE
        found = getattr(self.design, "cache", None)
        cache: list[list[int]] | None = found if isinstance(found, list) else None
        cpus = self.platform.cpus

        def hw(c: int) -> int:
            return codes.get(cpus[c].lehash_words, HIST_OTHER)

        def cached(c: int) -> int:
            if cache is None:
                return HIST_NONE
            w = cache[c]
            return codes.get((w[0], w[1], w[2], w[3]), HIST_OTHER)

        ncpu = len(cpus)
        start_t = int(tr.t[lo]) if lo < len(tr) else (int(tr.t[-1]) if len(tr) else 0)
        T: list[int] = [start_t] * ncpu
        C: list[int] = list(range(ncpu))
        H: list[int] = [hw(c) for c in range(ncpu)]
        K: list[int] = [cached(c) for c in range(ncpu)]
        kinds = tr.kind[lo:hi].tolist()
        cpu_col = tr.cpu[lo:hi].tolist()
        times = tr.t[lo:hi].tolist()
        for i in range(hi - lo):
            self.step(1)
            k = kinds[i]
            if k == EXIT:
                continue
            touched = range(ncpu) if k == S3 else (cpu_col[i],)
            for c in touched:
                T.append(times[i])
                C.append(c)
                H.append(hw(c))
                K.append(cached(c))
        while not self.done:
            self.step(CHUNK)
        end_t = int(tr.t[hi - 1]) if hi > lo else start_t
        return MsrHistory(
            np.asarray(T, dtype=np.int64),
            np.asarray(C, dtype=np.int64),
            np.asarray(H, dtype=np.int64),
            np.asarray(K, dtype=np.int64),
            start_t,
            end_t,
            cache is not None,
        )

    def step(self, rows: int = CHUNK) -> bool:
        """Replay up to ``rows`` more rows of :attr:`rows`; return whether the trace is finished."""
        lo = self.pos
        hi = min(len(self.rows), lo + max(int(rows), 0))
        if hi > lo:
            self._replay(lo, hi)
            self.pos = hi
        return self.done

    # ------------------------------------------------------------------ the hot loop

    def _replay(self, lo: int, hi: int) -> None:
        """Replay rows ``lo:hi`` of :attr:`rows`: the plain loop, or :meth:`_replay_general`
        for a chunk with interrupts or policy refusals, or a single-LE host."""
        u, r = self._unmasked, self._refused
        if (
            self.host_le is not None
            or (u is not None and u[lo:hi].any())
            or (r is not None and r[lo:hi].any())
            or not self._guests_ok()
        ):
            self._replay_general(lo, hi)
            return
        tr = self.rows
        T, K, C, V, VC, SG, U, exits = self._columns(lo, hi, unmasked=False)

        design = self.design
        cls = self.design_cls
        deinit = design.einit
        vload = self._vload
        through = self._through
        traps = self._traps
        platform = self.platform
        cpus = platform.cpus
        infos, forks, swords = self._info, self._fork, self._words
        guests = self.guests
        guest_lewr = GuestLc.lewr
        lewr = [spec.lewr for spec in tr.vms]
        forbidden = self._forbidden
        costs = self.costs
        c_rd, c_wr, c_ei = costs.rdmsr_lehash, costs.wrmsr_lehash, costs.einit
        c_trap, c_exit = costs.encls_trap, costs.vm_exit
        c_lock = costs.lock if cls.lock is not None else 0
        glob = self.global_lock
        qmul = 0 if glob else 1
        qdone = self._qdone
        lat_append = self.latencies.append
        recs = self._records
        rec_append = recs.append if recs is not None else None
        failures = self.failures
        reasons = self.failure_reasons
        einit_fn = einit
        host_base = c_lock
        lewr_cost = 4 * c_exit
        trap_c = mx_c = 0

        check_bypass = any(forbidden)
        s3_base = self.s3_events
        resume = self._resume
        retries = msr_cycles = wait_sum = sched_over = 0
        sched_ins = encls = msr_exits = s3 = bypasses = 0

        for t, k, c, v, vc, s in zip(T, K, C, V, VC, SG):
            if k == LAUNCH:
                cpu = cpus[c]
                if v < 0:
                    res, ne, nr, rd, wr, _ = deinit(cpu, swords[s], infos[s], forks[s]())
                    m = rd * c_rd + wr * c_wr
                    S = host_base + m + ne * c_ei
                else:
                    # GuestLc.lewr accepts (the chunk passed _guests_ok: every lewr vCPU
                    # may write its hash, every vCPU has SGX enabled, and nothing here
                    # changes that), so its answer needs no look here.
                    if lewr[v]:  # the guest kernel writes its 4 virtual hash MSRs (intercepted)
                        w = swords[s]
                        msr_exits += 4
                        mx_c = lewr_cost
                        if through:  # Kai's RFC: the vCPU is loaded, KVM writes through
                            guest_lewr(guests[v][vc], w, cpu)
                            pw = 4
                        else:
                            guest_lewr(guests[v][vc], w)
                            pw = 0
                    else:
                        w = guests[v][vc].words
                        mx_c = pw = 0
                    if traps:
                        encls += 1
                        # No interrupt is ever pending here, so the host loop's
                        # retry (KVM's path has none) cannot trigger.
                        res, ne, nr, rd, wr, _ = deinit(cpu, w, infos[s], forks[s]())
                        trap_c = c_trap
                    else:
                        res = einit_fn(cpu, infos[s], forks[s]())
                        ne, nr, rd, wr = 1, 0, 0, 0
                        trap_c = 0
                    wr += pw
                    m = rd * c_rd + wr * c_wr
                    S = trap_c + mx_c + c_lock + m + ne * c_ei
                msr_cycles += m
                # FIFO queue: the global lock, or this CPU.
                q = c * qmul
                d = qdone[q]
                start = t if t > d else d
                d = start + S
                qdone[q] = d
                lat_append(d - t)
                if glob:
                    wait_sum += start - t
                if nr:
                    retries += nr
                code = res[0]
                if code:
                    failures[code] = failures.get(code, 0) + 1
                    if code not in reasons:
                        reasons[code] = res[1]
                elif check_bypass and v >= 0 and forbidden[s]:
                    bypasses += 1
                if rec_append is not None:
                    wait = start - t
                    guest = v >= 0
                    rec_append(
                        (
                            t, c, v, vc, s, rd, wr, ne, nr, 0,
                            trap_c if guest else 0, mx_c if guest else 0, c_lock,
                            m, ne * c_ei,
                            wait if glob else 0, 0 if glob else wait,
                            d - t, int(code), res[2], res[1],
                        )
                    )  # fmt: skip
            elif k == SCHED:
                sched_ins += 1
                if vload is not None:
                    cpu = cpus[c]
                    r0, w0 = cpu.hash_rd, cpu.hash_wr
                    vload(cpu, guests[v][vc].words)
                    sched_over += (cpu.hash_rd - r0) * c_rd + (cpu.hash_wr - w0) * c_wr
            elif k == S3:
                n3, o3 = resume(s3_base + s3, c_rd, c_wr)
                sched_ins += n3
                sched_over += o3
                s3 += 1

        launches = K.count(LAUNCH)
        self._account(launches, 0, launches, retries, msr_cycles, wait_sum, sched_over, sched_ins, encls, msr_exits)
        self.exits += exits
        self.s3_events += s3
        self.bypasses += bypasses

    def _columns(
        self, lo: int, hi: int, *, unmasked: bool
    ) -> tuple[list[int], list[int], list[int], list[int], list[int], list[int], list[int], int]:
        """Rows ``lo:hi`` as Python lists (t, kind, cpu, vm, vcpu, signer, and the
        interrupt draws if asked, else ``[]``), without the EXIT rows, which
        change nothing and are only counted; and their count."""
        tr = self.rows
        sl = slice(lo, hi)
        ex = tr.kind[sl] == EXIT
        nex = int(np.count_nonzero(ex))
        cols = [tr.t[sl], tr.kind[sl], tr.cpu[sl], tr.vm[sl], tr.vcpu[sl], tr.signer[sl]]
        if unmasked:
            cols.append(self._unmasked[sl] if self._unmasked is not None else np.zeros(hi - lo, np.int16))
        if nex:
            keep = ~ex
            cols = [c[keep] for c in cols]
        T, K, C, V, VC, SG, *rest = (c.tolist() for c in cols)
        return T, K, C, V, VC, SG, (rest[0] if rest else []), nex

    def _refusal_record(
        self,
        t: int,
        c: int,
        v: int,
        vc: int,
        s: int,
        wr: int,
        trap_c: int,
        mx_c: int,
        latency: int,
    ) -> tuple[Any, ...]:
        """The record of a launch the policy refused: a host one (``v`` < 0; code
        :data:`NO_EINIT_CODE`) or a trapped guest one (the code KVM reflects)."""
        pol = self.policy.name
        if v < 0:
            code = NO_EINIT_CODE
            reason = f"host policy {pol} refused the host's EINIT before ENCLS: {self._hreason[s]}"
        else:
            code = self._refusal_code[s]
            reason = (
                f"host policy {pol} refused the trapped EINIT: {self.tables.guest_reasons[v][s]}; "
                f"KVM reflected {SgxError(code).name} ({code}) with ZF set"
            )
        m = wr * self.costs.wrmsr_lehash
        return (t, c, v, vc, s, 0, wr, 0, 0, 0, trap_c, mx_c, 0, m, 0, 0, 0, latency, code, POLICY_STEP, reason)

    def _gate_record(self, t: int, c: int, v: int, vc: int, s: int, step: str, latency: int) -> tuple[Any, ...]:
        """The record of a launch the PROVISIONKEY gate refused: ``-EACCES`` from
        ``sgx_encl_init()`` on the host, or #GP at a guest's trapped ECREATE (whose
        exit is ``latency``); code :data:`NO_EINIT_CODE`, no MSR access, no EINIT."""
        tables = self.tables
        why = tables.host_gate_reasons[s] if v < 0 else tables.guest_gate_reasons[v][s]
        reason = f"the PROVISIONKEY gate ({self.policy.name}): {why}"
        trap_c = latency if v >= 0 else 0
        return (t, c, v, vc, s, 0, 0, 0, 0, 0, trap_c, 0, 0, 0, 0, 0, 0, latency, NO_EINIT_CODE, step, reason)

    def _replay_general(self, lo: int, hi: int) -> None:
        """:meth:`_replay` for a chunk with interrupted EINIT attempts, launches the
        host policy refuses, or a host with one launch enclave.

        The same contract, with every launch made of attempts (docs/simulator.md,
        "Interrupts during EINIT"): the host path's loop is inside
        :meth:`Design.einit` (``interrupts=k``); a guest's loop is here, one
        trapped (or, under eager-load, native) EINIT per attempt, the lewr
        guest rewriting its virtual MSRs before each (:meth:`GuestLc.lewr`).
        A launch the policy refuses makes no attempt (host) or one (a trapped
        guest's: the guest sees the refusal code, not SGX_UNMASKED_EVENT, so
        its driver does not retry), takes no lock and joins no queue. So does
        one the PROVISIONKEY gate refuses: ``-EACCES`` on the host (latency 0),
        #GP at a guest's trapped ECREATE (latency ``encls_trap``), before the
        lewr WRMSRs and any EINIT exit. A single-LE host loads the LE's words
        and presents its token.
        """
        tr = self.rows
        T, K, C, V, VC, SG, U, exits = self._columns(lo, hi, unmasked=True)

        design = self.design
        cls = self.design_cls
        deinit = design.einit
        vload = self._vload
        through = self._through
        traps = self._traps
        platform = self.platform
        cpus = platform.cpus
        infos, forks, swords = self._info, self._fork, self._words
        hwords, htok, href = self._hwords, self._htoken, self.tables.host_refused
        grefused = self.tables.guest_refused
        gcheck = traps and any(map(any, grefused))
        hgated = self.tables.host_gated
        ggated = self.tables.guest_gated if any(map(any, self.tables.guest_gated)) else None
        gate_n = self.gate_refusals
        gate_record = self._gate_record
        guests = self.guests
        lewr = [spec.lewr for spec in tr.vms]
        forbidden = self._forbidden
        costs = self.costs
        c_rd, c_wr, c_ei = costs.rdmsr_lehash, costs.wrmsr_lehash, costs.einit
        c_trap, c_exit = costs.encls_trap, costs.vm_exit
        c_lock = costs.lock if cls.lock is not None else 0
        glob = self.global_lock
        qmul = 0 if glob else 1
        qdone = self._qdone
        lat_append = self.latencies.append
        recs = self._records
        rec_append = recs.append if recs is not None else None
        failures = self.failures
        reasons = self.failure_reasons
        lewr_cost = 4 * c_exit
        unmasked_code = SgxError.SGX_UNMASKED_EVENT

        check_bypass = any(forbidden)
        s3_base = self.s3_events
        resume = self._resume
        retries = msr_cycles = wait_sum = sched_over = attempts_n = refused = gate_over = 0
        sched_ins = encls = msr_exits = s3 = bypasses = 0

        for t, k, c, v, vc, s, u in zip(T, K, C, V, VC, SG, U):
            if k == LAUNCH:
                cpu = cpus[c]
                if v < 0:
                    if href[s]:  # the policy refuses the ioctl: no lock, no MSR, no EINIT, no attempt
                        refused += 1
                        lat_append(0)
                        if rec_append is not None:
                            rec_append(self._refusal_record(t, c, v, vc, s, 0, 0, 0, 0))
                        continue
                    if hgated and hgated[s]:  # sgx_encl_init() says -EACCES: no lock, no MSR, no EINIT
                        refused += 1
                        gate_n[GATE_EACCES] += 1
                        lat_append(0)
                        if rec_append is not None:
                            rec_append(gate_record(t, c, v, vc, s, GATE_EACCES, 0))
                        continue
                    res, ne, _, rd, wr, nu = deinit(cpu, hwords[s], infos[s], forks[s](), htok[s], interrupts=u)
                    att = 1 + nu
                    trap_c = mx_c = 0
                else:
                    g = guests[v][vc]
                    if ggated is not None and ggated[v][s]:
                        # KVM traps the guest's ECREATE and injects #GP: the launch ends there,
                        # before the lewr WRMSRs and any EINIT exit; one ECREATE exit, no queue.
                        if not g.sgx_enabled:
                            raise _guest_fault(g.encls_refusal() or "", v, vc, t)
                        refused += 1
                        gate_n[GATE_ECREATE_GP] += 1
                        gate_over += c_trap
                        lat_append(c_trap)
                        if rec_append is not None:
                            rec_append(gate_record(t, c, v, vc, s, GATE_ECREATE_GP, c_trap))
                        continue
                    enclave = forks[s]()
                    info = infos[s]
                    guest_lewr = lewr[v]
                    ws = swords[s]
                    ne = rd = wr = att = 0
                    refused_here = False
                    while True:  # the guest kernel's sgx_encl_init loop: one attempt per pass
                        if guest_lewr:
                            if (why := g.lewr(ws, cpu if through else None)) is not None:
                                raise _guest_fault(why, v, vc, t, value=ws)
                            msr_exits += 4
                            if through:  # Kai's RFC: the vCPU is loaded, KVM writes through
                                wr += 4
                        if not g.sgx_enabled:
                            raise _guest_fault(g.encls_refusal() or "", v, vc, t)
                        if traps:
                            encls += 1
                            if gcheck and grefused[v][s]:  # handle_encls_einit refuses: code 16, no retry
                                att += 1
                                refused_here = True
                                break
                            res, n1, _, r1, w1, _ = deinit(
                                cpu, g.words, info, enclave, retry_unmasked=False, interrupts=1 if att < u else 0
                            )
                            ne += n1
                            rd += r1
                            wr += w1
                        else:
                            if att < u:
                                cpu.inject_event()
                            res = einit(cpu, info, enclave)
                            ne += 1
                        att += 1
                        if res[0] != unmasked_code or att >= MAX_EINIT_ATTEMPTS:
                            break
                    trap_c = att * c_trap if traps else 0
                    mx_c = att * lewr_cost if guest_lewr else 0
                    if refused_here:  # an ENCLS exit (and the guest's writes), no lock, no queue
                        refused += 1
                        m = wr * c_wr
                        msr_cycles += m
                        S = trap_c + mx_c + m
                        lat_append(S)
                        if rec_append is not None:
                            rec_append(self._refusal_record(t, c, v, vc, s, wr, trap_c, mx_c, S))
                        continue
                m = rd * c_rd + wr * c_wr
                lk = att * c_lock
                S = trap_c + mx_c + lk + m + ne * c_ei
                msr_cycles += m
                attempts_n += att
                q = c * qmul
                d = qdone[q]
                start = t if t > d else d
                d = start + S
                qdone[q] = d
                lat_append(d - t)
                if glob:
                    wait_sum += start - t
                retries += ne - 1
                code = res[0]
                if code:
                    failures[code] = failures.get(code, 0) + 1
                    if code not in reasons:
                        reasons[code] = res[1]
                elif check_bypass and v >= 0 and forbidden[s]:
                    bypasses += 1
                if rec_append is not None:
                    wait = start - t
                    rec_append(
                        (
                            t, c, v, vc, s, rd, wr, ne, ne - 1, min(u, att),
                            trap_c, mx_c, lk, m, ne * c_ei,
                            wait if glob else 0, 0 if glob else wait,
                            d - t, int(code), res[2], res[1],
                        )
                    )  # fmt: skip
            elif k == SCHED:
                sched_ins += 1
                if vload is not None:
                    cpu = cpus[c]
                    r0, w0 = cpu.hash_rd, cpu.hash_wr
                    vload(cpu, guests[v][vc].words)
                    sched_over += (cpu.hash_rd - r0) * c_rd + (cpu.hash_wr - w0) * c_wr
            elif k == S3:
                n3, o3 = resume(s3_base + s3, c_rd, c_wr)
                sched_ins += n3
                sched_over += o3
                s3 += 1

        launches = K.count(LAUNCH)
        self._account(
            launches, refused, attempts_n, retries, msr_cycles, wait_sum, sched_over, sched_ins, encls, msr_exits
        )
        self.overhead += gate_over  # the gate's ECREATE exits (their latency is their overhead)
        self.exits += exits
        self.s3_events += s3
        self.bypasses += bypasses

    def _account(
        self,
        launches: int,
        refused: int,
        attempts: int,
        retries: int,
        msr_cycles: int,
        wait_sum: int,
        sched_over: int,
        sched_ins: int,
        encls: int,
        msr_exits: int,
    ) -> None:
        """Add one chunk's totals. ``attempts`` (lock acquisitions) counts the
        attempts of the launches the policy let through (one each without
        interrupts); a refused launch takes no lock and runs no EINIT."""
        costs = self.costs
        c_lock = costs.lock if self.design_cls.lock is not None else 0
        self.launches += launches
        self.refusals += refused
        self.einits += launches - refused + retries
        self.retries += retries
        # overhead = sum(S - einits*einit + lock_wait) + schedule-in MSR work
        self.overhead += (
            msr_cycles
            + attempts * c_lock
            + encls * costs.encls_trap
            + msr_exits * costs.vm_exit
            + wait_sum
            + sched_over
        )
        self.schedule_ins += sched_ins
        self.encls_exits += encls
        self.msr_exits += msr_exits

    def _resume(self, n: int, c_rd: int, c_wr: int) -> tuple[int, int]:
        """The ``n``-th S3 row: the platform resumes (the MSRs go back to Intel's value)
        and the frozen vCPU threads run again, each current vCPU scheduled in again in
        CPU order. Returns the schedule-ins and the cycles of their MSR writes."""
        current = [(c, self.guests[v][vc].words) for c, (v, vc) in self._current_at(n)]
        n3, rd3, wr3 = s3_resume(self.platform, self.design, current)
        return n3, rd3 * c_rd + wr3 * c_wr

    def _current_at(self, n: int) -> list[tuple[int, tuple[int, int]]]:
        """``(cpu, (vm, vcpu))`` of every vCPU current at the ``n``-th S3 row, by CPU.

        Replays the SCHED rows before that row (each SCHED row once over the
        whole run): a SCHED makes its vCPU current on its CPU, displacing the
        one there, and leaves the CPU it came from with none.
        """
        row = self._s3_rows[n]
        rows = self._sched_rows
        i = self._sched_pos
        if i < len(rows) and rows[i] < row:
            j = int(np.searchsorted(rows, row))
            tr = self.rows
            cur, on = self._current, self._on
            sel = rows[i:j]
            for c, v, vc in zip(tr.cpu[sel].tolist(), tr.vm[sel].tolist(), tr.vcpu[sel].tolist()):
                key = (v, vc)
                old = on.get(key)
                if old is not None and cur.get(old) == key:
                    del cur[old]
                on[key] = c
                cur[c] = key
            self._sched_pos = j
        return sorted(self._current.items())

    # ------------------------------------------------------------------ results

    def latency_array(self) -> np.ndarray:
        """Latencies (cycles) of the launches replayed so far, in trace order."""
        return np.frombuffer(self.latencies, dtype=np.int64) if len(self.latencies) else np.zeros(0, np.int64)

    def summary(self) -> dict[str, Any]:
        """The contract's summary (without design/workload/seed/engine)."""
        cpus = self.platform.cpus
        costs = self.costs
        # The exits the trace counts instead of listing (Trace.vm_exits) belong to the whole run.
        exits = self.exits + (sum(self.rows.vm_exits) if self.done else 0)
        return {
            "launches": self.launches,
            "einit": self.einits,
            "failures": {SgxError(c).name: n for c, n in sorted(self.failures.items())},
            "retries": self.retries,
            "wrmsr": sum(c.hash_wr for c in cpus),
            "rdmsr": sum(c.hash_rd for c in cpus),
            "schedule_ins": self.schedule_ins,
            "encls_exits": self.encls_exits,
            "msr_exits": self.msr_exits,
            "exits": exits,
            "s3_events": self.s3_events,
            "latency_cycles": latency_summary(self.latency_array()),
            "overhead_cycles": self.overhead,
            "sched_cycles": self.schedule_ins * (costs.vcpu_load + costs.context_switch),
            "exit_cycles": exits * costs.vm_exit,
            "bypasses": self.bypasses,
            "refusals": self.refusals,
            "gate_refusals": {code: n for code, n in self.gate_refusals.items() if n},
            "vms_refused": self.vms_refused,
        }

    def failure_examples(self) -> dict[str, str]:
        """The first EINIT reason seen for each failure name."""
        return {SgxError(c).name: r for c, r in sorted(self.failure_reasons.items())}

    def record_tuples(self) -> list[tuple[Any, ...]]:
        """Raw per-launch rows, columns :data:`RAW_COLUMNS`."""
        if self._records is None:
            raise ConfigError(
                "records",
                False,
                f"this run kept no per-launch records ({self.nlaunches} launches); run again with records=True",
            )
        return self._records

    def launch_records(self) -> list[LaunchRecord]:
        """Per-launch records as :class:`LaunchRecord` objects."""
        d = self.design_name
        out = []
        for r in self.record_tuples():
            f = dict(zip(RAW_COLUMNS, r))
            f["design"] = d
            f["name"] = _code_name(f["code"], f["step"])
            f["outcome"] = _outcome(f["code"], f["step"])
            out.append(LaunchRecord(**f))
        return out

    def records_frame(self) -> pd.DataFrame:
        """Per-launch records as a pandas DataFrame, built through
        :data:`~sgxlab.sim.schema.LAUNCH_RECORDS` (columns :data:`RECORD_COLUMNS`)."""
        rows = self.record_tuples()
        cols = list(zip(*rows)) if rows else [()] * len(RAW_COLUMNS)
        data: dict[str, Any] = {name: list(col) for name, col in zip(RAW_COLUMNS, cols)}
        data["design"] = [self.design_name] * len(rows)
        data["name"] = [_code_name(c, st) for c, st in zip(data["code"], data["step"])]
        data["outcome"] = [_outcome(c, st) for c, st in zip(data["code"], data["step"])]
        return LAUNCH_RECORDS.frame(data)


def simulate(
    trace: Trace,
    design: str | type[Design] = "always-write",
    costs: CostModel | None = None,
    *,
    policy: HostPolicy | str | None = None,
) -> dict[str, Any]:
    """Replay ``trace`` and return the summary dict (the fast engine's signature).

    Only the summary is returned, so no per-launch records are kept.
    """
    return ExactSimulation(trace, design, costs, records=False, policy=policy).run().summary()
