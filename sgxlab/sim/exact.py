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
* each vCPU's virtual IA32_SGXLEPUBKEYHASH0..3 lives in this engine's state
  (KVM keeps them in memory: ``vcpu_vmx.msr_ia32_sgxlepubkeyhash``); a guest
  with lewr writes them before each launch (4 intercepted WRMSRs), passed
  through to hardware only under a design that loads on schedule-in
  (eager-load, Kai's RFC);
* a launch whose trace row has ``unmasked`` = k > 0 (interrupts during
  EINIT) replays them: the host path is :meth:`Design.einit` with
  ``interrupts=k``, whose ``sgx_encl_init`` loop re-runs update and EINIT
  after each SGX_UNMASKED_EVENT; a guest's own driver loop retries, so each
  attempt is a new one: the lewr guest's 4 intercepted WRMSRs, then a trapped
  EINIT (ENCLS exit, ``design.einit(..., retry_unmasked=False)``, as KVM's
  ``sgx_virt_einit`` does not retry) or, under eager-load, a native one. A
  chunk of rows with no interrupt runs the plain loop (:meth:`_replay`); one
  with some runs :meth:`_replay_interrupted`, so a run without interrupts
  pays nothing for them;
* S3 is :meth:`Platform.s3_resume`: every CPU's hash MSRs go back to Intel's
  value; the design's ``on_epc_loss`` hook runs. Then, as the frozen vCPU
  threads run again, every vCPU current on a CPU (the one its latest SCHED
  put there, unless it was scheduled elsewhere since) is scheduled in again
  there, in CPU order: KVM runs ``kvm_arch_vcpu_load`` (from the preempt
  notifier ``kvm_sched_in``, or the next KVM_RUN's ``vcpu_load``), so it
  counts as a schedule-in and the design's ``vcpu_load`` runs. Which vCPU is
  current is worked out from the SCHED rows only when an S3 row comes
  (:meth:`ExactSimulation._current_at`), so the per-row loop does no extra
  work.

Timing follows the contract: integer cycles, FIFO queues (one for a global
lock, else one per CPU), latencies kept in a compact ``array('q')``, and
summaries streamed; per-launch records are kept only when asked (by default
for runs of at most :data:`RECORDS_DEFAULT_MAX` launches).

Signer *s* is ``data/keys/key{s:02d}.pem``; its enclave is a two-page image (code and TCS)
whose content names *s*, signed once per simulation.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from typing import Any

import numpy as np

from sgxlab.errors import ConfigError
from sgxlab.host.designs import Design, design_class, design_label
from sgxlab.host.samples import signed_enclave
from sgxlab.hw.arch import INTEL_LEPUBKEYHASH, MSR_IA32_SGXLEPUBKEYHASH, SgxError
from sgxlab.hw.einit import SigInfo, einit
from sgxlab.hw.measure import Enclave
from sgxlab.hw.platform import Platform
from sgxlab.sim.costs import CostModel
from sgxlab.sim.stats import latency_summary
from sgxlab.sim.trace import LAUNCH, MAX_EINIT_ATTEMPTS, S3, SCHED, Trace

__all__ = [
    "ExactSimulation",
    "LaunchRecord",
    "RECORD_COLUMNS",
    "RECORDS_DEFAULT_MAX",
    "SignerImage",
    "signer_image",
    "simulate",
]

RECORDS_DEFAULT_MAX = 200_000
"""Runs with at most this many launches keep per-launch records unless told otherwise."""

CHUNK = 1 << 16
"""Rows converted from numpy to Python per step (bounds memory on huge traces)."""

RECORD_COLUMNS = (
    "time",
    "cpu",
    "vm",
    "vcpu",
    "signer",
    "design",
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
    "name",
    "reason",
)
"""Columns of :meth:`Result.records` (``docs/simulator.md``, plus EINIT's ``reason``).

``einits`` counts every EINIT of the launch, ``retries`` those after the first
(``einits - 1``), ``unmasked`` those an interrupt aborted (SGX_UNMASKED_EVENT):
percpu-cache-retry's re-run after SGX_INVALID_EINITTOKEN is ``retries -
unmasked`` unless the launch failed with SGX_UNMASKED_EVENT."""


@dataclass(frozen=True, slots=True)
class LaunchRecord:
    """One launch as the exact engine served it (cycles are integers)."""

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
    code: int
    name: str
    reason: str


@dataclass(frozen=True)
class SignerImage:
    """Signer *s*'s enclave: the built image (fork it per launch), its SIGSTRUCT bytes and words."""

    index: int
    enclave: Enclave
    sigstruct: bytes
    mrsigner_words: tuple[int, int, int, int]


def signer_image(s: int) -> SignerImage:
    """Build and sign signer ``s``'s enclave with ``data/keys/key{s:02d}.pem``."""
    e = signed_enclave(s, tag=f"simulated enclave of signer {s:02d}".encode(), isvprodid=s)
    return SignerImage(s, e.image, e.sigstruct_bytes, e.mrsigner.words)


class ExactSimulation:
    """One replay of ``trace`` under ``design`` with ``costs``.

    Construction builds the platform, the design instance and the signers'
    enclave images; :meth:`step` replays up to N rows (so two simulations can
    be interleaved), :meth:`run` replays the rest, :meth:`summary` gives the
    contract's counts (without ``design``/``workload``/``seed``/``engine``,
    which :func:`sgxlab.run` adds). Every piece of state lives on this object.

    ``records``: keep one record per launch (``None``: only if the trace has
    at most :data:`RECORDS_DEFAULT_MAX` launches).
    """

    def __init__(
        self,
        trace: Trace,
        design: str | type[Design] = "always-write",
        costs: CostModel | None = None,
        *,
        records: bool | None = None,
    ) -> None:
        if not isinstance(trace, Trace):
            raise ConfigError("trace", trace, "expected a sgxlab.sim.trace.Trace")
        trace.validate()
        self.trace = trace
        self.design_cls = design_class(design)
        self.design_name = design_label(self.design_cls)
        self.costs = costs if costs is not None else CostModel()
        if not isinstance(self.costs, CostModel):
            raise ConfigError("costs", costs, "expected a sgxlab.sim.costs.CostModel")
        self.platform = Platform(trace.ncpus, "flexible")
        self.design: Design = self.design_cls(self.platform)
        self.nlaunches = trace.launches
        self.keep_records = self.nlaunches <= RECORDS_DEFAULT_MAX if records is None else bool(records)

        used = set(np.unique(trace.signer[trace.kind == LAUNCH]).tolist())
        used |= {spec.lehash for spec in trace.vms if spec.lehash >= 0}
        self.images: dict[int, SignerImage] = {s: signer_image(s) for s in sorted(used)}
        n = max(used, default=-1) + 1
        self._info: list[SigInfo | None] = [None] * n
        self._fork: list[Any] = [None] * n
        self._words: list[tuple[int, int, int, int] | None] = [None] * n
        for s, img in self.images.items():
            info = self.platform.siginfo(img.sigstruct)  # memoized signature check
            self._info[s] = info
            self._fork[s] = img.enclave.fork
            self._words[s] = info.mrsigner_words
        intel = INTEL_LEPUBKEYHASH.words
        # Per-vCPU virtual hash words (KVM: in memory), initially the VM's lehash.
        self.vwords: list[list[tuple[int, int, int, int]]] = [
            [self._words[spec.lehash] if spec.lehash >= 0 else intel] * spec.nvcpus  # type: ignore[list-item]
            for spec in trace.vms
        ]
        allow = trace.allowlist
        self._forbidden = [allow is not None and s not in allow for s in range(n)]
        # For S3 resumes: the S3 rows, the SCHED rows (only if some S3 can find a
        # vCPU), and the vCPU current on each CPU as of SCHED row _sched_pos.
        self._s3_rows: list[int] = np.flatnonzero(trace.kind == S3).tolist()
        self._sched_rows = np.flatnonzero(trace.kind == SCHED) if self._s3_rows and trace.vms else np.zeros(0, np.int64)
        self._sched_pos = 0
        self._current: dict[int, tuple[int, int]] = {}
        self._on: dict[tuple[int, int], int] = {}

        self.platform.reset_counters()
        self.pos = 0
        self.launches = 0
        self.einits = 0
        self.retries = 0
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
        # The interrupt draws, only if some launch has one (else the plain loop serves every chunk).
        self._unmasked = trace.unmasked if trace.interrupted else None
        self._qdone = [0] * (1 if self.global_lock else trace.ncpus)
        self.latencies = array("q")
        self._records: list[tuple[Any, ...]] | None = [] if self.keep_records else None

    # ------------------------------------------------------------------ driving

    @property
    def done(self) -> bool:
        return self.pos >= len(self.trace)

    def run(self) -> ExactSimulation:
        """Replay every remaining row."""
        while not self.done:
            self.step(CHUNK)
        return self

    def step(self, rows: int = CHUNK) -> bool:
        """Replay up to ``rows`` more rows; return whether the trace is finished."""
        tr = self.trace
        lo = self.pos
        hi = min(len(tr), lo + max(int(rows), 0))
        if hi > lo:
            self._replay(lo, hi)
            self.pos = hi
        return self.done

    # ------------------------------------------------------------------ the hot loop

    def _replay(self, lo: int, hi: int) -> None:
        u = self._unmasked
        if u is not None and u[lo:hi].any():
            self._replay_interrupted(lo, hi)
            return
        tr = self.trace
        T = tr.t[lo:hi].tolist()
        K = tr.kind[lo:hi].tolist()
        C = tr.cpu[lo:hi].tolist()
        V = tr.vm[lo:hi].tolist()
        VC = tr.vcpu[lo:hi].tolist()
        SG = tr.signer[lo:hi].tolist()

        design = self.design
        cls = self.design_cls
        deinit = design.einit
        vload = design.vcpu_load
        loads = cls.loads_on_schedule or type(design).vcpu_load is not Design.vcpu_load
        passthrough = cls.loads_on_schedule
        traps = cls.traps_einit
        platform = self.platform
        cpus = platform.cpus
        infos, forks, swords = self._info, self._fork, self._words
        vwords = self.vwords
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
        keep = recs is not None
        rec_append = recs.append if recs is not None else None
        failures = self.failures
        reasons = self.failure_reasons
        H0, H1, H2, H3 = MSR_IA32_SGXLEPUBKEYHASH
        einit_fn = einit
        host_base = c_lock
        lewr_cost = 4 * c_exit
        trap_c = mx_c = 0

        check_bypass = any(forbidden)
        s3_base = self.s3_events
        current_at = self._current_at
        retries = msr_cycles = wait_sum = sched_over = 0
        sched_ins = encls = msr_exits = exits = s3 = bypasses = 0

        for t, k, c, v, vc, s in zip(T, K, C, V, VC, SG):
            if k == LAUNCH:
                cpu = cpus[c]
                if v < 0:
                    res, ne, nr, rd, wr, _ = deinit(cpu, swords[s], infos[s], forks[s]())
                    m = rd * c_rd + wr * c_wr
                    S = host_base + m + ne * c_ei
                else:
                    if lewr[v]:
                        w = swords[s]
                        vwords[v][vc] = w
                        msr_exits += 4
                        mx_c = lewr_cost
                        if passthrough:  # Kai's RFC: the vCPU is loaded, KVM writes through
                            wrmsr = cpu.wrmsr
                            wrmsr(H0, w[0])
                            wrmsr(H1, w[1])
                            wrmsr(H2, w[2])
                            wrmsr(H3, w[3])
                            pw = 4
                        else:
                            pw = 0
                    else:
                        w = vwords[v][vc]
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
                if keep:
                    wait = start - t
                    guest = v >= 0
                    rec_append(
                        (
                            t, c, v, vc, s, rd, wr, ne, nr, 0,
                            trap_c if guest else 0, mx_c if guest else 0, c_lock,
                            m, ne * c_ei,
                            wait if glob else 0, 0 if glob else wait,
                            d - t, int(code), res[1],
                        )
                    )  # fmt: skip
            elif k == SCHED:
                sched_ins += 1
                if loads:
                    cpu = cpus[c]
                    r0, w0 = cpu.hash_rd, cpu.hash_wr
                    vload(cpu, vwords[v][vc])
                    sched_over += (cpu.hash_rd - r0) * c_rd + (cpu.hash_wr - w0) * c_wr
            elif k == S3:
                platform.s3_resume()
                design.on_epc_loss()
                # Resume thaws the vCPU threads: each current vCPU is scheduled in again.
                for c, (v, vc) in current_at(s3_base + s3):
                    sched_ins += 1
                    if loads:
                        cpu = cpus[c]
                        r0, w0 = cpu.hash_rd, cpu.hash_wr
                        vload(cpu, vwords[v][vc])
                        sched_over += (cpu.hash_rd - r0) * c_rd + (cpu.hash_wr - w0) * c_wr
                s3 += 1
            else:
                exits += 1

        launches = K.count(LAUNCH)
        self._account(launches, launches, retries, msr_cycles, wait_sum, sched_over, sched_ins, encls, msr_exits)
        self.exits += exits
        self.s3_events += s3
        self.bypasses += bypasses

    def _replay_interrupted(self, lo: int, hi: int) -> None:
        """:meth:`_replay` for a chunk where some launch has interrupted EINIT attempts.

        The same contract, with every launch made of attempts (docs/simulator.md,
        "Interrupts during EINIT"): the host path's loop is inside
        :meth:`Design.einit` (``interrupts=k``); a guest's loop is here, one
        trapped (or, under eager-load, native) EINIT per attempt, the lewr
        guest rewriting its virtual MSRs before each.
        """
        tr = self.trace
        T = tr.t[lo:hi].tolist()
        K = tr.kind[lo:hi].tolist()
        C = tr.cpu[lo:hi].tolist()
        V = tr.vm[lo:hi].tolist()
        VC = tr.vcpu[lo:hi].tolist()
        SG = tr.signer[lo:hi].tolist()
        assert self._unmasked is not None
        U = self._unmasked[lo:hi].tolist()

        design = self.design
        cls = self.design_cls
        deinit = design.einit
        vload = design.vcpu_load
        loads = cls.loads_on_schedule or type(design).vcpu_load is not Design.vcpu_load
        passthrough = cls.loads_on_schedule
        traps = cls.traps_einit
        platform = self.platform
        cpus = platform.cpus
        infos, forks, swords = self._info, self._fork, self._words
        vwords = self.vwords
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
        H0, H1, H2, H3 = MSR_IA32_SGXLEPUBKEYHASH
        lewr_cost = 4 * c_exit
        unmasked_code = SgxError.SGX_UNMASKED_EVENT

        check_bypass = any(forbidden)
        s3_base = self.s3_events
        current_at = self._current_at
        retries = msr_cycles = wait_sum = sched_over = attempts_n = 0
        sched_ins = encls = msr_exits = exits = s3 = bypasses = 0

        for t, k, c, v, vc, s, u in zip(T, K, C, V, VC, SG, U):
            if k == LAUNCH:
                cpu = cpus[c]
                if v < 0:
                    res, ne, _, rd, wr, nu = deinit(cpu, swords[s], infos[s], forks[s](), interrupts=u)
                    att = 1 + nu
                    trap_c = mx_c = 0
                else:
                    enclave = forks[s]()
                    info = infos[s]
                    guest_lewr = lewr[v]
                    w = swords[s] if guest_lewr else vwords[v][vc]
                    ne = rd = wr = att = 0
                    while True:  # the guest kernel's sgx_encl_init loop: one attempt per pass
                        if guest_lewr:
                            vwords[v][vc] = w
                            msr_exits += 4
                            if passthrough:  # Kai's RFC: the vCPU is loaded, KVM writes through
                                wrmsr = cpu.wrmsr
                                wrmsr(H0, w[0])
                                wrmsr(H1, w[1])
                                wrmsr(H2, w[2])
                                wrmsr(H3, w[3])
                                wr += 4
                        if traps:
                            encls += 1
                            res, n1, _, r1, w1, _ = deinit(
                                cpu, w, info, enclave, retry_unmasked=False, interrupts=1 if att < u else 0
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
                            d - t, int(code), res[1],
                        )
                    )  # fmt: skip
            elif k == SCHED:
                sched_ins += 1
                if loads:
                    cpu = cpus[c]
                    r0, w0 = cpu.hash_rd, cpu.hash_wr
                    vload(cpu, vwords[v][vc])
                    sched_over += (cpu.hash_rd - r0) * c_rd + (cpu.hash_wr - w0) * c_wr
            elif k == S3:
                platform.s3_resume()
                design.on_epc_loss()
                for c, (v, vc) in current_at(s3_base + s3):
                    sched_ins += 1
                    if loads:
                        cpu = cpus[c]
                        r0, w0 = cpu.hash_rd, cpu.hash_wr
                        vload(cpu, vwords[v][vc])
                        sched_over += (cpu.hash_rd - r0) * c_rd + (cpu.hash_wr - w0) * c_wr
                s3 += 1
            else:
                exits += 1

        launches = K.count(LAUNCH)
        self._account(launches, attempts_n, retries, msr_cycles, wait_sum, sched_over, sched_ins, encls, msr_exits)
        self.exits += exits
        self.s3_events += s3
        self.bypasses += bypasses

    def _account(
        self,
        launches: int,
        attempts: int,
        retries: int,
        msr_cycles: int,
        wait_sum: int,
        sched_over: int,
        sched_ins: int,
        encls: int,
        msr_exits: int,
    ) -> None:
        """Add one chunk's totals; ``attempts`` (lock acquisitions) is ``launches`` without interrupts."""
        costs = self.costs
        c_lock = costs.lock if self.design_cls.lock is not None else 0
        self.launches += launches
        self.einits += launches + retries
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
            tr = self.trace
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
            "exits": self.exits,
            "s3_events": self.s3_events,
            "latency_cycles": latency_summary(self.latency_array()),
            "overhead_cycles": self.overhead,
            "sched_cycles": self.schedule_ins * (costs.vcpu_load + costs.context_switch),
            "exit_cycles": self.exits * costs.vm_exit,
            "bypasses": self.bypasses,
        }

    def failure_examples(self) -> dict[str, str]:
        """The first EINIT reason seen for each failure name."""
        return {SgxError(c).name: r for c, r in sorted(self.failure_reasons.items())}

    def record_tuples(self) -> list[tuple[Any, ...]]:
        """Raw per-launch rows (``RECORD_COLUMNS`` without ``design``)."""
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
        return [LaunchRecord(*r[:5], d, *r[5:18], r[18], SgxError(r[18]).name, r[19]) for r in self.record_tuples()]

    def records_frame(self) -> Any:
        """Per-launch records as a pandas DataFrame (columns :data:`RECORD_COLUMNS`)."""
        import pandas as pd

        rows = self.record_tuples()
        names = {int(c): c.name for c in SgxError}
        cols = list(zip(*rows)) if rows else [()] * 20
        data: dict[str, Any] = {}
        raw = [c for c in RECORD_COLUMNS if c not in ("design", "name")]
        for name, col in zip(raw, cols):
            data[name] = np.array(col, dtype=object if name == "reason" else np.int64)
        data["design"] = self.design_name
        data["name"] = [names[c] for c in data["code"].tolist()]
        return pd.DataFrame(data, columns=list(RECORD_COLUMNS))


def simulate(
    trace: Trace, design: str | type[Design] = "always-write", costs: CostModel | None = None
) -> dict[str, Any]:
    """Replay ``trace`` and return the summary dict (the fast engine's signature).

    Only the summary is returned, so no per-launch records are kept.
    """
    return ExactSimulation(trace, design, costs, records=False).run().summary()
