"""Test helpers for the simulator: an independent reference and random traces.

``reference()`` is the contract of ``docs/simulator.md`` written as the most
literal per-event Python loop: real 64-bit hash words per CPU (H), a per-CPU
cache (C), per-vCPU virtual hashes, the vCPU current on each CPU (reloaded
after S3), and a plain FIFO queue per lock. It shares no code with
``sgxlab.sim.fast`` (not even the percentile helper), so agreement between
the two is evidence, not tautology. The host policy is the KVM layer's
object, asked directly at each event (VM creation, host EINIT, trapped
guest EINIT, ``permits``), not through ``sgxlab.sim.hostpolicy``'s tables;
so is ``mainline``'s PROVISIONKEY gate (``gates_provisionkey``, with the
trace's ``provisionkey``, ``host_provision`` and each VM's ``provision``):
``-EACCES`` for a host launch after the policy's check, #GP at a guest's
ECREATE before anything else, neither reaching EINIT.

``random_trace()`` makes small valid traces with a seeded numpy Generator:
host CPUs and VM CPUs, VMs with and without lewr, migrations (leaving a CPU
with no current vCPU), vCPUs displaced by another and scheduled in again,
repeated schedule-ins on the same CPU, exits, S3 events and time ties (and,
with ``gate=True``, random PROVISIONKEY signers and permissions).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from sgxlab.host.designs import AlwaysWrite, EagerLoad, PerCpuCache, PerCpuCacheRetry, ReadCompare
from sgxlab.hw import crypto
from sgxlab.hw.arch import INTEL_LEPUBKEYHASH, LeHash
from sgxlab.hw.crypto import load_test_key
from sgxlab.kvm.config import SgxGuestConfig
from sgxlab.kvm.policy import HOST_POLICY_NAMES, HostPolicy, policy_by_name
from sgxlab.sim.costs import CostModel
from sgxlab.sim.trace import EXIT, LAUNCH, S3, SCHED, Trace, VmSpec

# (label, design class) for every built-in behaviour, both locks and both initial
# values of the cache designs (percpu-cache-retry's default lock is percpu).
BUILTIN_DESIGNS = [
    ("always-write", AlwaysWrite),
    ("read-compare", ReadCompare),
    ("percpu-cache:global", PerCpuCache),
    ("percpu-cache:percpu", PerCpuCache.with_lock("percpu")),
    ("percpu-cache:percpu,initial=intel", PerCpuCache.variant(lock="percpu", initial="intel")),
    ("percpu-cache-retry", PerCpuCacheRetry),
    ("percpu-cache-retry:global,initial=intel", PerCpuCacheRetry.variant(lock="global", initial="intel")),
    ("eager-load", EagerLoad),
]

MAX_ATTEMPTS = 1000  # Linux's sgx_encl_init: 20 tries x 50 passes

_BEHAVIOUR = {
    AlwaysWrite: "always",
    ReadCompare: "readcmp",
    PerCpuCache: "cache",
    PerCpuCacheRetry: "retry",
    EagerLoad: "eager",
}


def behaviour(cls: type) -> str:
    for c in cls.__mro__:
        if c in _BEHAVIOUR:
            return _BEHAVIOUR[c]
    raise KeyError(cls)


def _hash(s: int) -> LeHash:
    """Signer ``s``'s real MRSIGNER, for the policy (``crypto.load_test_key``: a test may
    fake this module's ``load_test_key`` words without faking the policy's hashes)."""
    return crypto.load_test_key(s).mrsigner


class _Host:
    """What a policy may ask the simulated host (writable launch control)."""

    def __init__(self, design: type) -> None:
        self.traps_einit = bool(design.traps_einit)

    def why_untrapped(self) -> str:
        return "EINIT is trapped" if self.traps_einit else "the design does not trap EINIT"

    def initial_lehash(self, config: SgxGuestConfig) -> LeHash:
        return config.lehash if config.lehash is not None else INTEL_LEPUBKEYHASH


class _Guest:
    def __init__(self, name: str, config: SgxGuestConfig) -> None:
        self.name = name
        self.config = config


def trace_policy(trace: Trace) -> HostPolicy:
    """The trace's policy, built from its name and approved indices with the real hashes."""
    return policy_by_name(trace.policy_name, [_hash(s) for s in trace.approved])


def reference(trace: Trace, design: type, costs: CostModel, policy: HostPolicy | None = None) -> dict[str, Any]:
    """The contract, event by event (slow, obvious)."""
    how = behaviour(design)
    lock = design.lock
    traps = design.traps_einit
    intel = INTEL_LEPUBKEYHASH.words
    words = {s: load_test_key(s).mrsigner.words for s in range(trace.nsigners)}
    pol = policy if policy is not None else trace_policy(trace)
    host = _Host(design)
    alive = []  # VM creation: check_vm with the VM's configuration
    guests = []
    for v, spec in enumerate(trace.vms):
        cfg = SgxGuestConfig(epc=64 << 20, lehash=_hash(spec.lehash) if spec.lehash >= 0 else None, lewr=spec.lewr)
        alive.append(pol.check_vm(cfg, host) is None)
        guests.append(_Guest(f"vm{v}", cfg))
    le_words = None  # a host with one launch enclave loads its hash for every host launch
    if pol.host_lehash is not None:
        le_words = pol.host_lehash.words
    H = [list(intel) for _ in range(trace.ncpus)]
    boot = (0, 0, 0, 0) if getattr(design, "initial", "intel") == "zero" else intel  # the cache before any EINIT
    C = [list(boot) for _ in range(trace.ncpus)]
    V: dict[tuple[int, int], tuple[int, ...]] = {}
    current: dict[int, tuple[int, int]] = {}  # CPU -> the vCPU running there
    on: dict[tuple[int, int], int] = {}  # vCPU -> the CPU it runs on
    for v, spec in enumerate(trace.vms):
        for vc in range(spec.nvcpus):
            V[(v, vc)] = words[spec.lehash] if spec.lehash >= 0 else intel
    c = dict(
        launches=0,
        einit=0,
        retries=0,
        wrmsr=0,
        rdmsr=0,
        schedule_ins=0,
        encls_exits=0,
        msr_exits=0,
        exits=0,
        s3_events=0,
        overhead_cycles=0,
    )
    failures: dict[str, int] = {}
    bypasses = refusals = 0
    gate = {"eacces": 0, "ecreate-gp": 0}
    pk = set(trace.provisionkey)
    gates = bool(pol.gates_provisionkey)
    done_prev: dict[Any, int] = {}
    lat: list[int] = []

    def schedule_in(cpu: int, who: tuple[int, int]) -> None:
        c["schedule_ins"] += 1
        if how == "eager":
            H[cpu] = list(V[who])
            c["wrmsr"] += 4
            c["overhead_cycles"] += 4 * costs.wrmsr_lehash

    for i in range(len(trace)):
        k = int(trace.kind[i])
        t = int(trace.t[i])
        cpu = int(trace.cpu[i])
        vm = int(trace.vm[i])
        vcpu = int(trace.vcpu[i])
        if vm >= 0 and not alive[vm]:
            continue  # the policy refused to create this VM: none of its rows happen
        if k == SCHED:
            old = on.get((vm, vcpu))
            if old is not None and current.get(old) == (vm, vcpu):
                del current[old]  # a migration: the old CPU has no vCPU now
            on[(vm, vcpu)] = cpu
            current[cpu] = (vm, vcpu)  # displaces whoever ran there
            schedule_in(cpu, (vm, vcpu))
            continue
        if k == EXIT:
            assert current.get(cpu) == (vm, vcpu)
            c["exits"] += 1
            continue
        if k == S3:
            c["s3_events"] += 1
            for h in H:
                h[:] = intel
            for where in sorted(current):  # thawed vCPU threads: kvm_sched_in on their CPU
                schedule_in(where, current[where])
            continue
        assert k == LAUNCH
        c["launches"] += 1
        s = int(trace.signer[i])
        w = words[s]
        u = int(trace.unmasked[i]) if trace.unmasked is not None else 0
        rd = wr = 0
        einits = 0
        service = 0
        guest = vm >= 0
        if guest:
            assert current.get(cpu) == (vm, vcpu), f"row {i}: the vCPU is not current"
        else:
            refused = pol.check_host_einit(_hash(s)) is not None
            if le_words is not None:
                refused = refused or not pol.permits(_hash(s))  # the LE gives it no token
                w = le_words  # the MSRs must hold the LE's hash; its token does the rest
            if refused:  # the ioctl fails: no lock, no MSR access, no EINIT, no time
                refusals += 1
                lat.append(0)
                continue
            if gates and s in pk and not trace.host_provision:  # sgx_encl_init(): -EACCES, nothing else
                refusals += 1
                gate["eacces"] += 1
                lat.append(0)
                continue
        if guest and gates and s in pk and not trace.vms[vm].provision:
            # KVM traps ECREATE and injects #GP: one exit, no WRMSR, no EINIT exit, no EINIT
            refusals += 1
            gate["ecreate-gp"] += 1
            c["overhead_cycles"] += costs.encls_trap
            lat.append(costs.encls_trap)
            continue
        if guest and traps and pol.check_guest_einit(guests[vm], _hash(s)) is not None:
            # handle_encls_einit refuses: an ENCLS exit after the guest's own writes, nothing more
            refusals += 1
            if trace.vms[vm].lewr:
                V[(vm, vcpu)] = w
                c["msr_exits"] += 4
                service += 4 * costs.vm_exit
            c["encls_exits"] += 1
            service += costs.encls_trap
            c["overhead_cycles"] += service
            lat.append(service)
            continue
        h = H[cpu]
        code = 0
        for attempt in range(MAX_ATTEMPTS):  # Linux's loop (the host's, or the guest kernel's)
            if guest and trace.vms[vm].lewr:  # the guest rewrites its virtual MSRs before every try
                V[(vm, vcpu)] = w
                c["msr_exits"] += 4
                service += 4 * costs.vm_exit
                if how == "eager":
                    H[cpu] = h = list(w)
                    wr += 4
            want = V[(vm, vcpu)] if guest else w
            service += costs.lock if lock is not None else 0
            retried = False
            if not guest or traps:
                if guest:
                    c["encls_exits"] += 1
                    service += costs.encls_trap
                if how in ("always", "eager"):
                    for j in range(4):
                        h[j] = want[j]
                        wr += 1
                elif how == "readcmp":
                    for j in range(4):
                        rd += 1
                        if h[j] != want[j]:
                            h[j] = want[j]
                            wr += 1
                else:
                    cache = C[cpu]
                    for j in range(4):
                        if cache[j] != want[j]:
                            h[j] = want[j]
                            cache[j] = want[j]
                            wr += 1
                retried = how == "retry"
            einits += 1
            if attempt < u:
                code = 128  # an interrupt in EINIT's event window
            elif tuple(h) == tuple(w):
                code = 0
            else:
                code = 16
                if retried:  # force-write all four and EINIT once more
                    for j in range(4):
                        h[j] = want[j]
                        C[cpu][j] = want[j]
                        wr += 1
                    einits += 1
                    code = 0 if tuple(h) == tuple(w) else 16
            if code != 128:
                break
        if code:
            name = "SGX_INVALID_EINITTOKEN" if code == 16 else "SGX_UNMASKED_EVENT"
            failures[name] = failures.get(name, 0) + 1
        elif guest and not pol.permits(_hash(s)):
            bypasses += 1  # a guest launched what the host policy would refuse the host
        c["retries"] += einits - 1
        c["einit"] += einits
        c["wrmsr"] += wr
        c["rdmsr"] += rd
        service += rd * costs.rdmsr_lehash + wr * costs.wrmsr_lehash
        service += einits * costs.einit
        q = "global" if lock == "global" else cpu
        start = max(t, done_prev.get(q, t))
        done_prev[q] = start + service
        wait = start - t
        lat.append(start + service - t)
        c["overhead_cycles"] += service - einits * costs.einit + (wait if lock == "global" else 0)
    lat.sort()
    n = len(lat)

    def nearest(q: float) -> int:
        return lat[max(1, math.ceil(q * n)) - 1] if n else 0

    out: dict[str, Any] = dict(c)
    out["failures"] = failures
    out["latency_cycles"] = {
        "mean": sum(lat) / n if n else 0.0,
        "p50": nearest(0.5),
        "p99": nearest(0.99),
        "max": lat[-1] if n else 0,
    }
    c["exits"] += sum(x for v, x in enumerate(trace.vm_exits) if alive[v])  # counted, not listed
    out["exits"] = c["exits"]
    out["sched_cycles"] = c["schedule_ins"] * (costs.vcpu_load + costs.context_switch)
    out["exit_cycles"] = c["exits"] * costs.vm_exit
    out["bypasses"] = bypasses
    out["refusals"] = refusals
    out["gate_refusals"] = {k: n for k, n in gate.items() if n}
    out["vms_refused"] = alive.count(False)
    return out


def random_trace(
    rng: np.random.Generator,
    *,
    nevents: int | None = None,
    ncpus: int | None = None,
    nvms: int | None = None,
    nsigners: int | None = None,
    p_s3: float | None = None,
    host: bool | None = None,
    allowlist: bool | None = None,
    policy: str | None = None,
    gate: bool = False,
) -> Trace:
    """A small valid trace exercising every rule of the contract.

    Host policies: with ``allowlist`` (or now and then) an ``allowlist`` with
    no policy name (a legacy trace: host-only); with ``policy`` (or now and
    then) a named policy with random approved signers, which often include a
    VM's ``lehash`` (so single-le and approved-set admit some VMs); else
    allow-all. Host launches use approved signers most of the time, and any
    signer otherwise (the policy may refuse them). ``gate``: after everything
    else (so the events are those of the same seed without it), draw the
    PROVISIONKEY facts: a random set of ``provisionkey`` signers, the host's
    ``host_provision`` and each VM's ``provision``."""
    nevents = int(rng.integers(0, 120)) if nevents is None else nevents
    ncpus = int(rng.integers(1, 6)) if ncpus is None else ncpus
    nvms = int(rng.integers(0, 4)) if nvms is None else nvms
    nsigners = int(rng.integers(1, 6)) if nsigners is None else nsigners
    p_s3 = float(rng.choice([0.0, 0.02, 0.08])) if p_s3 is None else p_s3
    if host is None:
        host = bool(rng.integers(0, 2)) or nvms == 0
    if nvms and ncpus == 1:
        host = False
    nhost = 0
    if host:
        nhost = ncpus if nvms == 0 else int(rng.integers(1, ncpus))
    vm_cpus = list(range(nhost, ncpus))
    vms = []
    for _ in range(nvms):
        lewr = bool(rng.integers(0, 2))
        lehash = (
            int(rng.integers(-1, nsigners)) if lewr else int(rng.integers(-1 if rng.random() < 0.1 else 0, nsigners))
        )
        vms.append(VmSpec(int(rng.integers(1, 4)), lewr, lehash))
    allow: tuple[int, ...] | None = None
    pol_name: str | None = policy
    draw = rng.random()
    if pol_name is None and allowlist is None and draw >= 0.3 and rng.random() < 0.7:
        pol_name = str(rng.choice([n for n in HOST_POLICY_NAMES if n != "mainline"]))  # the 2017 five
    if allowlist or pol_name is not None or (allowlist is None and draw < 0.3):
        allow = tuple(
            sorted(int(x) for x in rng.choice(nsigners, size=int(rng.integers(1, nsigners + 1)), replace=False))
        )
        fixed = [spec.lehash for spec in vms if not spec.lewr and spec.lehash >= 0]
        if pol_name in ("single-le", "approved-set") and fixed and rng.random() < 0.6:
            le = int(rng.choice(fixed))  # a VM's own LE is approved (single-le: it is the host's LE)
            allow = (le, *(s for s in allow if s != le))
    where: dict[tuple[int, int], int] = {}  # vCPU -> the CPU of its latest SCHED
    current: dict[int, tuple[int, int]] = {}  # CPU -> the vCPU current there
    # a few "popular" signers so that caches hit as well as miss
    popular = rng.choice(nsigners, size=min(2, nsigners), replace=False)
    rows = []
    t = 0
    kinds = ["launch_host", "sched", "launch_guest", "exit", "s3"]
    weights = np.array([3.0 if nhost else 0.0, 2.0 if vms else 0.0, 4.0 if vms else 0.0, 1.0 if vms else 0.0, 0.0])
    if weights.sum() == 0:
        weights[-1] = 1.0
    weights = weights / weights.sum() * (1 - p_s3)
    weights[-1] += p_s3
    gap_scale = float(rng.choice([0, 5_000, 30_000, 200_000]))
    for _ in range(nevents):
        r = rng.random()
        if r < 0.3:
            dt = 0
        else:
            dt = int(rng.exponential(gap_scale)) if gap_scale else int(rng.integers(0, 3))
        t += dt
        what = kinds[int(rng.choice(5, p=weights))]

        def signer() -> int:
            return int(rng.choice(popular)) if rng.random() < 0.6 else int(rng.integers(0, nsigners))

        if what == "launch_host":
            s = int(rng.choice(allow)) if allow is not None and rng.random() < 0.7 else signer()
            rows.append((t, LAUNCH, int(rng.integers(0, nhost)), -1, -1, s))
        elif what == "sched":
            v = int(rng.integers(0, nvms))
            vc = int(rng.integers(0, vms[v].nvcpus))
            if (v, vc) in where and rng.random() < 0.3:
                cpu = where[(v, vc)]  # scheduled in again where it ran (maybe displaced meanwhile)
            else:
                cpu = int(rng.choice(vm_cpus))
            old = where.get((v, vc))
            if old is not None and current.get(old) == (v, vc):
                del current[old]  # migrated away: the old CPU has no current vCPU
            where[(v, vc)] = cpu
            current[cpu] = (v, vc)  # displaces the vCPU that was current there
            rows.append((t, SCHED, cpu, v, vc, -1))
        elif what in ("launch_guest", "exit"):
            if not current:
                continue
            cpus = sorted(current)  # only a current vCPU acts
            cpu = cpus[int(rng.integers(0, len(cpus)))]
            v, vc = current[cpu]
            if what == "exit":
                rows.append((t, EXIT, cpu, v, vc, -1))
            else:
                spec = vms[v]
                if spec.lewr:
                    s = signer()
                elif spec.lehash >= 0:
                    s = spec.lehash
                else:
                    continue
                rows.append((t, LAUNCH, cpu, v, vc, s))
        else:
            rows.append((t, S3, -1, -1, -1, -1))
    pk: tuple[int, ...] = ()
    host_provision = False
    if gate:
        pk = tuple(int(x) for x in np.flatnonzero(rng.random(nsigners) < 0.5))
        host_provision = bool(rng.random() < 0.3)
        vms = [VmSpec(v.nvcpus, v.lewr, v.lehash, bool(rng.random() < 0.4)) for v in vms]
    tr = Trace.from_rows(
        rows,
        ncpus=ncpus,
        nsigners=nsigners,
        vms=tuple(vms),
        name="random",
        allowlist=allow,
        policy=pol_name,
        provisionkey=pk,
        host_provision=host_provision,
        # some traces also count exits per VM instead of listing them, as the generators do
        vm_exits=tuple(int(x) for x in rng.integers(0, 50, nvms)) if nvms and rng.random() < 0.5 else (),
    )
    tr.validate()
    return tr


def random_costs(rng: np.random.Generator) -> CostModel:
    """Default costs, or random ones (zeros included) to catch mis-weighted terms."""
    if rng.random() < 0.4:
        return CostModel()
    pick = lambda hi: int(rng.choice([0, int(rng.integers(1, hi))]))
    return CostModel(
        wrmsr_lehash=pick(2000),
        rdmsr_lehash=pick(500),
        einit=pick(100_000),
        encls_trap=pick(5000),
        vm_exit=pick(3000),
        vcpu_load=pick(5000),
        lock=pick(300),
        context_switch=pick(5000),
    )


def with_interrupts(trace: Trace, rng: np.random.Generator, rate: float | None = None) -> Trace:
    """``trace`` with an ``unmasked`` column: per launch, a few interrupted EINIT
    attempts (geometric with ``rate``), and now and then all 1,000 (the launch fails)."""
    rate = float(rng.choice([0.1, 0.3, 0.6])) if rate is None else rate
    n = len(trace)
    u = np.zeros(n, np.int16)
    launch = np.flatnonzero(trace.kind == LAUNCH)
    k = np.minimum(rng.geometric(1.0 - rate, len(launch)) - 1, MAX_ATTEMPTS)
    k[rng.random(len(launch)) < 0.04] = MAX_ATTEMPTS  # every attempt interrupted
    u[launch] = k
    out = Trace(
        trace.ncpus,
        trace.nsigners,
        trace.vms,
        trace.t,
        trace.kind,
        trace.cpu,
        trace.vm,
        trace.vcpu,
        trace.signer,
        name=trace.name,
        params=dict(trace.params),
        allowlist=trace.allowlist,
        unmasked=u,
        policy=trace.policy,
        provisionkey=trace.provisionkey,
        host_provision=trace.host_provision,
    )
    out.validate()
    return out


def fifo_waits(A: np.ndarray, S: np.ndarray, starts: list[int]) -> list[int]:
    """Lindley's recursion job by job: the waits of FIFO queues (arrivals ``A``, service
    ``S``) of which a new one starts at each index in ``starts``."""
    out, done = [], 0
    bounds = set(starts)
    for i, (a, s) in enumerate(zip(A.tolist(), S.tolist(), strict=True)):
        if i in bounds:
            done = a
        start = max(a, done)
        done = start + s
        out.append(start - a)
    return out
