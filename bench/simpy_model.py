"""The peer to beat: a straightforward SimPy model of the simulator contract.

This is how one would usually write the model of ``docs/simulator.md``: a
SimPy ``Environment``, a source process that walks the trace in order and
applies each event's functional effect with plain Python state (per-CPU
hardware hash words ``H``, per-CPU cache ``C``, per-vCPU virtual words, the
vCPU running on each CPU, scheduled in again after an S3 resume; each
launch a loop of EINIT attempts, as many as the trace's ``unmasked`` column
says an interrupt aborts, plus one), and one SimPy process per launch that queues on a ``simpy.Resource`` (the global
mutex, or one resource per physical CPU), holds it for the launch's service
time and records its latency. It shares no code with either engine, so equal
counts are a third independent check. The host launch policy is the KVM
layer's :class:`~sgxlab.kvm.policy.HostPolicy` object (the trace's, or one
given), asked directly at each VM creation and launch: a refused VM's rows
are skipped, a refused host launch costs nothing and joins no queue, a
refused trapped guest launch is an ENCLS exit (after the lewr guest's
writes) and joins no queue.

Used by ``bench/run.py`` (timings and count equality) and
``tests/test_simpy_peer.py``.
"""

from __future__ import annotations

from typing import Any

import simpy

from sgxlab.host.designs import AlwaysWrite, Design, EagerLoad, PerCpuCache, PerCpuCacheRetry, ReadCompare, design_class
from sgxlab.hw.arch import INTEL_LEPUBKEYHASH, LeHash
from sgxlab.hw.crypto import load_test_key
from sgxlab.kvm.config import SgxGuestConfig
from sgxlab.kvm.policy import HostPolicy, policy_by_name
from sgxlab.sim.costs import CostModel
from sgxlab.sim.trace import EXIT, LAUNCH, S3, SCHED, Trace

__all__ = ["simulate"]

MAX_ATTEMPTS = 1000  # Linux's sgx_encl_init: SGX_EINIT_SPIN_COUNT (20) x SGX_EINIT_SLEEP_COUNT (50)

_BEHAVIOUR = {
    PerCpuCacheRetry: "retry",
    PerCpuCache: "cache",
    ReadCompare: "readcmp",
    AlwaysWrite: "always",
    EagerLoad: "eager",
}


def _behaviour(cls: type[Design]) -> str:
    for c in cls.__mro__:
        if c in _BEHAVIOUR:
            return _BEHAVIOUR[c]
    raise ValueError(f"the SimPy model knows only the built-in designs, not {cls.__qualname__}")


class _HostFacts:
    """The simulated host as a policy sees it: launch control writable."""

    def __init__(self, traps: bool) -> None:
        self.traps_einit = traps

    def why_untrapped(self) -> str:
        return "EINIT is trapped" if self.traps_einit else "the design does not trap EINIT"

    def initial_lehash(self, config: SgxGuestConfig) -> LeHash:
        return config.lehash if config.lehash is not None else INTEL_LEPUBKEYHASH


class _GuestRef:
    def __init__(self, name: str, config: SgxGuestConfig) -> None:
        self.name = name
        self.config = config


def simulate(
    trace: Trace, design: str | type[Design], costs: CostModel | None = None, *, policy: HostPolicy | None = None
) -> dict[str, Any]:
    """Run the SimPy model; return the summary dict of docs/simulator.md."""
    cls = design_class(design)
    how = _behaviour(cls)
    costs = costs or CostModel()
    lock = cls.lock
    traps = cls.traps_einit
    intel = list(INTEL_LEPUBKEYHASH.words)
    keys = [load_test_key(s).mrsigner for s in range(trace.nsigners)]
    words = [list(k.words) for k in keys]
    if policy is None:
        approved = trace.allowlist if trace.allowlist is not None else ()
        policy = policy_by_name(trace.policy or "allow-all", [keys[s] for s in approved])
    facts = _HostFacts(bool(traps))
    refs = []
    vm_ok = []
    for v, spec in enumerate(trace.vms):
        cfg = SgxGuestConfig(epc=64 << 20, lehash=keys[spec.lehash] if spec.lehash >= 0 else None, lewr=spec.lewr)
        vm_ok.append(policy.check_vm(cfg, facts) is None)
        refs.append(_GuestRef(f"vm{v}", cfg))
    host_w = None if policy.host_lehash is None else list(policy.host_lehash.words)  # single-le: the LE's hash
    ncpus = trace.ncpus
    H = [list(intel) for _ in range(ncpus)]
    boot = [0, 0, 0, 0] if getattr(cls, "initial", "intel") == "zero" else intel  # the cache before any EINIT
    C = [list(boot) for _ in range(ncpus)]
    V = [[(words[vm.lehash] if vm.lehash >= 0 else intel) for _ in range(vm.nvcpus)] for vm in trace.vms]
    lewr = [vm.lewr for vm in trace.vms]
    running: dict[int, tuple[int, int]] = {}  # CPU -> (vm, vcpu) of the vCPU loaded there
    cpu_of: dict[tuple[int, int], int] = {}  # vCPU -> the CPU it was last loaded on

    env = simpy.Environment()
    if lock == "global":
        mutex = simpy.Resource(env, capacity=1)
        queue_of = [mutex] * ncpus
    else:
        queue_of = [simpy.Resource(env, capacity=1) for _ in range(ncpus)]
    glob = lock == "global"
    n: dict[str, int] = dict.fromkeys(
        ("launches", "einit", "retries", "wrmsr", "rdmsr", "schedule_ins", "encls_exits", "msr_exits",
         "exits", "s3_events", "overhead", "bypasses", "failed", "unmasked", "refusals"), 0)  # fmt: skip
    latencies: list[int] = []
    gate = {"eacces": 0, "ecreate-gp": 0}  # mainline's PROVISIONKEY gate
    gates = bool(policy.gates_provisionkey)
    pk = set(trace.provisionkey)

    def launch(res: simpy.Resource, arrival: int, service: int):  # type: ignore[no-untyped-def]
        with res.request() as req:
            yield req
            wait = env.now - arrival
            yield env.timeout(service)
        latencies.append(env.now - arrival)
        if glob:
            n["overhead"] += wait

    def vcpu_load(cpu: int, vm: int, vc: int) -> None:
        n["schedule_ins"] += 1
        if how == "eager":  # vcpu_load writes the vCPU's four values
            H[cpu][:] = V[vm][vc]
            n["wrmsr"] += 4
            n["overhead"] += 4 * costs.wrmsr_lehash

    def source():  # type: ignore[no-untyped-def]
        T, K, CP, VM, VC, SG = (
            col.tolist() for col in (trace.t, trace.kind, trace.cpu, trace.vm, trace.vcpu, trace.signer)
        )
        UM = trace.unmasked.tolist() if trace.unmasked is not None else [0] * len(T)
        for t, k, cpu, vm, vc, s, um in zip(T, K, CP, VM, VC, SG, UM):
            if vm >= 0 and not vm_ok[vm]:
                continue  # a VM the policy never created
            if t > env.now:
                yield env.timeout(t - env.now)
            if k == SCHED:
                prev = cpu_of.get((vm, vc))
                if prev is not None and running.get(prev) == (vm, vc):
                    del running[prev]  # vcpu_put on the CPU it leaves
                cpu_of[(vm, vc)] = cpu
                running[cpu] = (vm, vc)
                vcpu_load(cpu, vm, vc)
            elif k == EXIT:
                n["exits"] += 1
            elif k == S3:
                n["s3_events"] += 1
                for h in H:
                    h[:] = intel
                for c2 in sorted(running):  # resumed vCPU threads: kvm_sched_in
                    vcpu_load(c2, *running[c2])
            elif k == LAUNCH:
                n["launches"] += 1
                w = words[s]
                if vm < 0:
                    no = policy.check_host_einit(keys[s]) is not None
                    if host_w is not None:
                        no = no or not policy.permits(keys[s])  # no token from the host's LE
                        w = host_w
                    if no:  # refused before the lock: no time, no queue
                        n["refusals"] += 1
                        latencies.append(0)
                        continue
                    if gates and s in pk and not trace.host_provision:  # sgx_encl_init(): -EACCES
                        n["refusals"] += 1
                        gate["eacces"] += 1
                        latencies.append(0)
                        continue
                elif gates and s in pk and not trace.vms[vm].provision:  # #GP at the trapped ECREATE
                    n["refusals"] += 1
                    gate["ecreate-gp"] += 1
                    n["overhead"] += costs.encls_trap
                    latencies.append(costs.encls_trap)
                    continue
                elif traps and policy.check_guest_einit(refs[vm], keys[s]) is not None:
                    n["refusals"] += 1  # KVM's handle_encls_einit refuses after an ENCLS exit
                    service = costs.encls_trap
                    n["encls_exits"] += 1
                    if lewr[vm]:
                        V[vm][vc] = w
                        n["msr_exits"] += 4
                        service += 4 * costs.vm_exit
                    n["overhead"] += service
                    latencies.append(service)
                    continue
                h = H[cpu]
                rd = wr = 0
                einits = 0
                service = 0
                code = 0
                want = w
                for attempt in range(MAX_ATTEMPTS):  # sgx_encl_init's loop (host, or the guest kernel's)
                    if vm >= 0 and lewr[vm]:  # the guest writes its virtual MSRs (intercepted) before each try
                        V[vm][vc] = w
                        n["msr_exits"] += 4
                        service += 4 * costs.vm_exit
                        if how == "eager":  # passed through to hardware
                            h[:] = w
                            wr += 4
                    want = V[vm][vc] if vm >= 0 else w
                    service += costs.lock if lock is not None else 0
                    if vm < 0 or traps:
                        if vm >= 0:
                            n["encls_exits"] += 1
                            service += costs.encls_trap
                        if how in ("always", "eager"):
                            h[:] = want
                            wr += 4
                        elif how == "readcmp":
                            rd += 4
                            for j in range(4):
                                if h[j] != want[j]:
                                    h[j] = want[j]
                                    wr += 1
                        else:
                            c = C[cpu]
                            for j in range(4):
                                if c[j] != want[j]:
                                    c[j] = h[j] = want[j]
                                    wr += 1
                    einits += 1
                    if attempt < um:
                        code = 128  # SGX_UNMASKED_EVENT: an interrupt during EINIT
                        continue
                    if h != w and how == "retry" and (vm < 0 or traps):  # SGX_INVALID_EINITTOKEN: force, retry
                        C[cpu][:] = want
                        h[:] = want
                        wr += 4
                        einits += 1
                    code = 0 if h == w else 16  # EINIT compares MRSIGNER with this CPU's MSRs
                    break
                n["retries"] += einits - 1  # every EINIT after the first: interrupted tries and the forced retry
                if code == 16:
                    n["failed"] += 1
                elif code == 128:
                    n["unmasked"] += 1
                elif vm >= 0 and not policy.permits(keys[s]):
                    n["bypasses"] += 1
                n["einit"] += einits
                n["wrmsr"] += wr
                n["rdmsr"] += rd
                service += rd * costs.rdmsr_lehash + wr * costs.wrmsr_lehash
                n["overhead"] += service
                service += einits * costs.einit
                env.process(launch(queue_of[cpu], t, service))

    env.process(source())
    env.run()

    latencies.sort()
    m = len(latencies)

    def rank(percent: int) -> int:  # nearest rank: sorted[ceil(percent/100 * m) - 1]
        if not m:
            return 0
        k = -(-percent * m // 100)
        return latencies[max(k, 1) - 1]

    n["exits"] += sum(x for vm, x in enumerate(trace.vm_exits) if vm_ok[vm])  # counted, not listed
    return {
        "launches": n["launches"],
        "einit": n["einit"],
        "failures": {
            name: n[key]
            for name, key in (("SGX_INVALID_EINITTOKEN", "failed"), ("SGX_UNMASKED_EVENT", "unmasked"))
            if n[key]
        },
        "retries": n["retries"],
        "wrmsr": n["wrmsr"],
        "rdmsr": n["rdmsr"],
        "schedule_ins": n["schedule_ins"],
        "encls_exits": n["encls_exits"],
        "msr_exits": n["msr_exits"],
        "exits": n["exits"],
        "s3_events": n["s3_events"],
        "latency_cycles": {
            "mean": sum(latencies) / m if m else 0.0,
            "p50": rank(50),
            "p99": rank(99),
            "max": latencies[-1] if m else 0,
        },
        "overhead_cycles": n["overhead"],
        "sched_cycles": n["schedule_ins"] * (costs.vcpu_load + costs.context_switch),
        "exit_cycles": n["exits"] * costs.vm_exit,
        "bypasses": n["bypasses"],
        "refusals": n["refusals"],
        "gate_refusals": {k: v for k, v in gate.items() if v},
        "vms_refused": vm_ok.count(False),
    }
