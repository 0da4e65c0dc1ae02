"""Cross-check: the exact engine's guest model against the KVM layer.

The exact engine (``sgxlab/sim/exact.py``) models guests itself, for speed:
per-vCPU virtual hash words in a list, lewr writes as a counter bump plus a
passthrough under eager-load, trapped EINIT as a direct ``Design.einit`` call.
``sgxlab/kvm/`` models the same guests faithfully (``Kvm``/``Vm``/``Vcpu``
with KVM's MSR rules, ``handle_encls_einit``, ``vcpu_load``). Here every trace
is replayed through sgxlab.kvm objects by hand, and the counts must equal the
engine's summary:

* ``SCHED``  -> ``vcpu.load(cpu)``;
* guest ``LAUNCH`` -> for a lewr VM, four guest WRMSRs of the signer's words
  (``vcpu.wrmsr``), then ``vcpu.einit(sigstruct, fresh enclave)``;
* host ``LAUNCH`` -> ``kvm.host_einit(cpu, ...)``;
* ``S3`` -> ``platform.s3_resume()``, then ``vcpu.load(cpu)`` again for
  every vCPU loaded on a CPU, in CPU order: resume thaws the vCPU threads and
  KVM's preempt notifier runs ``kvm_sched_in`` -> ``kvm_arch_vcpu_load`` on
  their CPU (``Vcpu.load`` on the CPU a vCPU is already loaded on counts a
  schedule-in and runs the design's ``vcpu_load``, as that does);
* ``EXIT`` -> counted only, as are the trace's ``vm_exits`` of the VMs created.

Both sides use the engine's own signer images (``exact.signer_image``) and
the same :class:`~sgxlab.kvm.policy.HostPolicy` object: the trace's (its
``policy`` name built with its approved signers), or one given to both
(:data:`POLICY_CASES`: allowlist, host-only, approved-set and single-le with
approved sets that admit some VMs and refuse others). On the KVM side a VM
whose ``Kvm.create_vm`` raises :class:`~sgxlab.errors.PolicyRefusal` never
exists (its rows are skipped), a host launch whose ``Kvm.host_einit``
raises it is a refusal, and so is a guest EINIT that comes back
``policy_refused``; ``bypasses`` is counted from ``GuestEinit.bypass``. A
``single-le`` host runs a real :class:`~sgxlab.host.le.LaunchEnclave`
(signed by the policy's LE key, allowlist = the signers the policy
permits), launched on CPU 0 before the run, and presents its tokens to
``Kvm.host_einit`` (a signer it gives no token to is a refusal).

Compared: launches, the sequence of EINIT codes (hence the failure multiset;
-1 for a refused host launch, the reflected code for a refused guest one),
EINITs and retries, hash-MSR RDMSR/WRMSR totals on the physical CPUs
(``Platform.counts()``), schedule-ins, ENCLS exits, MSR exits, plain exits,
S3 events, bypasses, refusals and refused VMs; and, because counts cannot see everything, the final
state: every vCPU's virtual hash, every CPU's hardware hash and the design's
per-CPU cache.

A vCPU acts only while it is current on its CPU (a trace rule), so every
guest launch finds its vCPU loaded on the trace's CPU and ``Vcpu.einit``
never has to load it itself (the replay asserts it). A trace in which a
displaced vCPU acts is refused by ``Trace.validate``
(:func:`test_displaced_vcpu_is_refused`).

Not compared, on purpose: ``Design.on_epc_loss`` (the engine calls it at S3,
the KVM layer leaves S3 to its caller; every built-in design ignores it), and timing (the KVM layer
has no notion of time).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from sgxlab.errors import ConfigError, PolicyRefusal
from sgxlab.host.designs import DESIGNS
from sgxlab.host.le import LaunchEnclave
from sgxlab.hw.arch import INTEL_LEPUBKEYHASH, MSR_IA32_SGXLEPUBKEYHASH, LeHash, SgxError
from sgxlab.hw.crypto import load_test_key
from sgxlab.hw.platform import Platform
from sgxlab.kvm import Kvm, SgxGuestConfig
from sgxlab.kvm.policy import Allowlist, ApprovedSet, HostAllowlist, HostPolicy, SingleLE, policy_by_name
from sgxlab.sim import exact
from sgxlab.sim.trace import EXIT, LAUNCH, S3, SCHED, Trace, VmSpec
from sgxlab.sim.workloads import make_trace

ROOT = Path(__file__).resolve().parent.parent

# Small traces: every one has guests or S3 (or both); together they exercise
# lewr and non-lewr VMs, migrations, host launches beside guests, a host-only
# allowlist (bypasses) and stale caches after S3 (see test_cases_are_not_vacuous).
CASES: list[tuple[str, dict[str, Any]]] = [
    ("multi-tenant", {"launches": 250, "cpus": 2, "vms": 3, "vcpus": 2, "nolewr": 1, "s3": 2, "slice": 150_000}),
    ("mixed", {"launches": 250, "host_cpus": 2, "vm_cpus": 3, "vms": 3, "nolewr": 0, "s3": 2}),
    ("mixed", {"launches": 250, "vms": 3, "nolewr": 1, "s3": 1, "policy": "host-only"}),
    ("workshop", {"launches": 300}),
    ("suspend-resume", {"launches": 250, "cpus": 3, "signers": 3, "s3": 4, "reuse": 0.6}),
]
SEEDS = (0, 1, 2)
DESIGN_NAMES = list(DESIGNS)

# The summary keys the KVM replay reproduces (everything but timing and labels).
COMPARED = (
    "launches",
    "einit",
    "failures",
    "retries",
    "wrmsr",
    "rdmsr",
    "schedule_ins",
    "encls_exits",
    "msr_exits",
    "exits",
    "s3_events",
    "bypasses",
    "refusals",
    "vms_refused",
)

_HASH_NAMES = tuple(f"IA32_SGXLEPUBKEYHASH{i}" for i in range(4))


class _Images(dict):
    """Signer index -> :class:`exact.SignerImage`, built on first use."""

    def __missing__(self, s: int) -> exact.SignerImage:
        img = self[s] = exact.signer_image(s)
        return img


@pytest.fixture(scope="module")
def images() -> _Images:
    return _Images()


def _lehash(images: _Images, s: int) -> LeHash:
    return INTEL_LEPUBKEYHASH if s < 0 else LeHash.from_words(images[s].mrsigner_words)


def trace_policy(trace: Trace, images: _Images) -> HostPolicy:
    """The trace's own policy, built with the signers' hashes."""
    return policy_by_name(trace.policy_name, [_lehash(images, s) for s in trace.approved])


def host_le_tokens(platform: Platform, policy: HostPolicy, trace: Trace, images: _Images) -> dict[int, Any]:
    """A single-LE host: its LE (the policy's LE key; token policy = what the policy
    permits) launched on CPU 0, one token per host signer it accepts; then a
    power-on reset, so the run starts from the boot state (tokens survive it)."""
    assert policy.host_lehash is not None
    le_index = next(s for s in range(trace.nsigners) if _lehash(images, s) == policy.host_lehash)
    allowed = [_lehash(images, s) for s in range(trace.nsigners) if policy.permits(_lehash(images, s))]
    le = LaunchEnclave.create(load_test_key(le_index), allowlist=allowed)
    cpu = platform.cpus[0]
    for msr, w in zip(MSR_IA32_SGXLEPUBKEYHASH, policy.host_lehash.words):
        cpu.wrmsr(msr, w)
    assert le.launch(cpu).ok
    tokens = {}
    for s in set(trace.signer[(trace.kind == LAUNCH) & (trace.vm < 0)].tolist()):
        answer = le.get_token(platform.siginfo(images[s].sigstruct).sig)
        if answer.granted:
            tokens[s] = answer.token
    platform.power_on_reset()
    return tokens


def kvm_replay(trace: Trace, design: str, images: _Images, policy: HostPolicy | None = None) -> dict[str, Any]:
    """Replay ``trace`` through sgxlab.kvm objects; the engine's summary keys plus ``codes``.

    Asserts that every guest launch finds its vCPU loaded on the trace's CPU
    (so ``Vcpu.einit`` never loads it itself): the trace rules guarantee it.
    """
    trace.validate()
    platform = Platform(trace.ncpus, "flexible")
    if policy is None:
        policy = trace_policy(trace, images)
    tokens = host_le_tokens(platform, policy, trace, images) if policy.host_lehash is not None else None
    kvm = Kvm(platform, policy, design)
    platform.reset_counters()  # count the run only (firmware is not counted anyway)
    vms = []
    for spec in trace.vms:
        try:
            cfg = SgxGuestConfig(epc=64 << 20, lehash=_lehash(images, spec.lehash), lewr=spec.lewr)
            vms.append(kvm.create_vm(cfg, spec.nvcpus))
        except PolicyRefusal:
            vms.append(None)  # never created: its rows do not happen
    codes: list[int] = []
    failed: Counter[int] = Counter()  # EINIT's non-zero final codes (refusals are not failures)
    einits = retries = exits = s3 = bypasses = refusals = 0
    rows = zip(trace.kind.tolist(), trace.cpu.tolist(), trace.vm.tolist(), trace.vcpu.tolist(), trace.signer.tolist())
    for i, (k, c, v, vc, s) in enumerate(rows):
        if v >= 0 and vms[v] is None:
            continue
        if k == SCHED:
            vms[v].vcpus[vc].load(c)
        elif k == EXIT:
            exits += 1
        elif k == S3:
            platform.s3_resume()
            s3 += 1
            # The frozen vCPU threads run again: kvm_sched_in on the CPU each is loaded on.
            live = (x for vm in vms if vm is not None for x in vm.vcpus if x.pcpu is not None)
            for vcpu in sorted(live, key=lambda x: x.pcpu.index):
                vcpu.load(vcpu.pcpu.index)
        elif v < 0:
            img = images[s]
            token = None
            try:
                if tokens is not None:
                    token = tokens.get(s)
                    if token is None:  # the host's LE gives no token: the ioctl fails
                        raise PolicyRefusal(policy.name, "no EINITTOKEN")
                out = kvm.host_einit(c, img.sigstruct, img.enclave.fork(), token)
            except PolicyRefusal:
                refusals += 1
                codes.append(exact.NO_EINIT_CODE)
                continue
            codes.append(int(out.result.code))
            failed[codes[-1]] += codes[-1] != 0
            einits += out.einits
            retries += out.retries
        else:
            assert k == LAUNCH
            img = images[s]
            vcpu = vms[v].vcpus[vc]
            assert vcpu.pcpu is platform.cpus[c], (
                f"row {i}: vCPU {vc} of VM {v} acts on CPU {c} but is not loaded there"
            )
            if trace.vms[v].lewr:  # a Linux guest: always write, then token-less EINIT
                for msr, w in zip(MSR_IA32_SGXLEPUBKEYHASH, img.mrsigner_words):
                    vcpu.wrmsr(msr, w)
            g = vcpu.einit(img.sigstruct, img.enclave.fork())
            codes.append(g.code)
            refusals += g.policy_refused
            failed[g.code] += g.code != 0 and not g.policy_refused
            einits += g.outcome.einits if g.outcome is not None else (0 if g.policy_refused else 1)
            retries += g.outcome.retries if g.outcome is not None else 0
            bypasses += g.bypass
    exits += sum(x for v, x in enumerate(trace.vm_exits) if vms[v] is not None)  # counted, not listed
    counts = platform.counts()
    # No MSR but the four hash MSRs is touched at run time (FEATURE_CONTROL is firmware's).
    assert counts["wrmsr_total"] == sum(counts["wrmsr"][n] for n in _HASH_NAMES)
    assert counts["rdmsr_total"] == sum(counts["rdmsr"][n] for n in _HASH_NAMES)
    assert counts["gp"] == 0
    kc = kvm.counts()
    failures = +failed
    cache = getattr(kvm.design, "cache", None)
    return {
        "launches": len(codes),
        "einit": einits,
        "failures": {SgxError(c).name: n for c, n in sorted(failures.items())},
        "retries": retries,
        "wrmsr": counts["wrmsr_total"],
        "rdmsr": counts["rdmsr_total"],
        "schedule_ins": kc["schedule_ins"],
        "encls_exits": kc["encls_exits"],
        "msr_exits": kc["msr_exits"],
        "exits": exits,
        "s3_events": s3,
        "bypasses": bypasses,
        "refusals": refusals,
        "vms_refused": vms.count(None),
        "codes": codes,
        "state": {
            "virtual": [
                [v.lehash_words for v in vm.vcpus]
                if vm is not None
                else [_lehash(images, spec.lehash).words] * spec.nvcpus
                for vm, spec in zip(vms, trace.vms)
            ],
            "hardware": [cpu.lehash_words for cpu in platform.cpus],
            "cache": None if cache is None else [tuple(c) for c in cache],
        },
    }


def engine_run(trace: Trace, design: str, policy: HostPolicy | None = None) -> tuple[list[int], dict[str, Any]]:
    """The exact engine's per-launch EINIT codes (trace order) and its final state:
    per-vCPU virtual hashes, per-CPU hardware hashes, the design's per-CPU cache."""
    sim = exact.ExactSimulation(trace, design, records=True, policy=policy).run()
    cache = getattr(sim.design, "cache", None)
    state = {
        "virtual": [list(ws) for ws in sim.vwords],
        "hardware": [cpu.lehash_words for cpu in sim.platform.cpus],
        "cache": None if cache is None else [tuple(c) for c in cache],
    }
    return [r.code for r in sim.launch_records()], state


def engine_codes(trace: Trace, design: str) -> list[int]:
    return engine_run(trace, design)[0]


def assert_agree(
    trace: Trace, design: str, images: _Images, label: str, policy: HostPolicy | None = None
) -> dict[str, Any]:
    got = kvm_replay(trace, design, images, policy)
    want = exact.simulate(trace, design, policy=policy)
    if not got["vms_refused"]:
        assert got["launches"] == trace.launches
    mine = {k: got[k] for k in COMPARED}
    theirs = {k: want[k] for k in COMPARED}
    assert mine == theirs, (label, {k: (mine[k], theirs[k]) for k in COMPARED if mine[k] != theirs[k]})
    codes, state = engine_run(trace, design, policy)
    if got["codes"] != codes:
        first = next(i for i, (a, b) in enumerate(zip(got["codes"], codes)) if a != b)
        pytest.fail(f"{label}: launch {first} got {got['codes'][first]} from KVM, {codes[first]} from the engine")
    # Counts cannot see everything (a lewr guest rewrites its hash before each
    # launch), so the final emulator state must agree as well.
    for part in ("virtual", "hardware", "cache"):
        assert got["state"][part] == state[part], (label, part)
    return got


# --------------------------------------------------------------------------- generated workloads


@pytest.mark.parametrize("design", DESIGN_NAMES)
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("case", range(len(CASES)), ids=[f"{n}{i}" for i, (n, _) in enumerate(CASES)])
def test_engine_agrees_with_kvm(case: int, seed: int, design: str, images: _Images) -> None:
    name, params = CASES[case]
    trace = make_trace(name, params, seed)
    assert_agree(trace, design, images, f"{name} {params} seed={seed} {design}")


def test_cases_are_not_vacuous() -> None:
    """The traces above reach every path the comparison is about (engine only, cheap)."""
    seen: Counter[str] = Counter()
    for name, params in CASES:
        for seed in SEEDS:
            tr = make_trace(name, params, seed)
            per = {d: exact.simulate(tr, d) for d in DESIGN_NAMES}
            seen["msr_exits"] += per["always-write"]["msr_exits"]
            seen["encls_exits"] += per["always-write"]["encls_exits"]
            seen["bypasses"] += per["always-write"]["bypasses"]
            seen["stale cache"] += sum(per["percpu-cache"]["failures"].values())
            seen["retries"] += per["percpu-cache-retry"]["retries"]
            seen["S3 reloads"] += per["always-write"]["schedule_ins"] - int((tr.kind == SCHED).sum())
            seen["eager-load schedule writes"] += per["eager-load"]["wrmsr"] > 4 * per["eager-load"]["launches"]
            # A vCPU acts only while current, and S3 reloads it: eager-load never fails.
            assert per["eager-load"]["failures"] == {}, (name, params, seed)
            seen["read-compare skips"] += per["read-compare"]["wrmsr"] < 4 * per["read-compare"]["launches"]
    assert all(seen[k] > 0 for k in (
        "msr_exits", "encls_exits", "bypasses", "stale cache", "retries",
        "S3 reloads", "eager-load schedule writes", "read-compare skips",
    )), seen  # fmt: skip


# --------------------------------------------------------------------------- host policies

# Host signers 0-2; VM 0 (lewr) launches 3 and 4, VM 1 (lewr) 5 and 6, VM 2 (no lewr) only 7.
POLICY_TRACE = ("mixed", {"launches": 220, "vms": 3, "nolewr": 1, "s3": 2, "slice": 400_000})
POLICY_CASES: dict[str, Any] = {
    # host and trapped guest EINIT checked: host 1, 2 and guest 4, 6 refused (eager-load: lewr VMs refused)
    "allowlist": lambda h: Allowlist([h(0), h(3), h(5), h(7)]),
    # host EINIT only: host 2 refused, every guest launch a bypass
    "host-only": lambda h: HostAllowlist([h(0), h(1)]),
    # lewr VMs refused, VM 2's lehash approved; host 2 refused
    "approved-set": lambda h: ApprovedSet([h(0), h(1), h(7)]),
    # the host's LE is 7 (VM 2's), tokens for 0 and 1 only: host 2 refused, lewr VMs refused
    "single-le": lambda h: SingleLE(h(7), [h(7), h(0), h(1)]),
}


@pytest.mark.parametrize("design", DESIGN_NAMES)
@pytest.mark.parametrize("seed", (0, 1))
@pytest.mark.parametrize("case", list(POLICY_CASES))
def test_engine_agrees_with_kvm_under_policy_objects(case: str, seed: int, design: str, images: _Images) -> None:
    """The same HostPolicy object in Kvm(platform, policy, design) and in the engine."""
    name, params = POLICY_TRACE
    trace = make_trace(name, params, seed)
    policy = POLICY_CASES[case](lambda s: _lehash(images, s))
    got = assert_agree(trace, design, images, f"{case} seed={seed} {design}", policy)
    assert got["refusals"] > 0
    if case in ("approved-set", "single-le") or (case == "allowlist" and design == "eager-load"):
        assert got["vms_refused"] == 2
    if case == "host-only":
        assert got["bypasses"] > 0 and got["vms_refused"] == 0


@pytest.mark.parametrize("policy", ["allowlist", "single-le", "approved-set", "host-only"])
def test_engine_agrees_with_kvm_under_the_traces_policy(policy: str, images: _Images) -> None:
    """A workload's ``policy`` parameter (the host's own signers approved)."""
    trace = make_trace("workshop", {"launches": 200, "policy": policy}, seed=4)
    for design in DESIGN_NAMES:
        assert_agree(trace, design, images, f"workshop policy={policy} {design}")


# --------------------------------------------------------------------------- hand-made traces

# A lewr VM with Intel's initial hash (lehash=-1; no workload makes one), two
# vCPUs swapping CPUs, host launches on their own CPU, exits and two S3 events.
_HAND_ROWS = [
    (0, SCHED, 1, 0, 0, -1),
    (0, SCHED, 2, 0, 1, -1),
    (1, LAUNCH, 0, -1, -1, 2),
    (2, LAUNCH, 1, 0, 0, 1),
    (3, S3, -1, -1, -1, -1),
    (4, LAUNCH, 2, 0, 1, 0),
    (5, SCHED, 1, 0, 1, -1),
    (6, SCHED, 2, 0, 0, -1),
    (7, LAUNCH, 2, 0, 0, 1),
    (8, LAUNCH, 1, 0, 1, 1),
    (9, EXIT, 1, 0, 1, -1),
    (10, S3, -1, -1, -1, -1),
    (11, LAUNCH, 0, -1, -1, 2),
    (12, LAUNCH, 1, 0, 1, 1),
    (13, LAUNCH, 0, -1, -1, 2),
]


@pytest.mark.parametrize("design", DESIGN_NAMES)
def test_hand_made_trace_agrees(design: str, images: _Images) -> None:
    tr = Trace.from_rows(_HAND_ROWS, ncpus=3, nsigners=3, vms=(VmSpec(2, True, -1),))
    assert_agree(tr, design, images, f"hand-made {design}")


@pytest.mark.parametrize("design", DESIGN_NAMES)
def test_example_csv_agrees(design: str, images: _Images) -> None:
    path = ROOT / "data" / "traces" / "example.csv"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    assert_agree(make_trace(f"trace:{path}"), design, images, f"example.csv {design}")


# --------------------------------------------------------------------------- a displaced vCPU cannot act

# vCPU 0 of VM 0 is scheduled in on CPU 0, then VM 1's vCPU takes CPU 0, then
# VM 0's vCPU launches "on CPU 0" without a SCHED of its own. Real KVM cannot
# do that (the vCPU would be loaded again first), so the trace is invalid.
_DISPLACED_ROWS = [
    (0, SCHED, 0, 0, 0, -1),
    (1, SCHED, 0, 1, 0, -1),
    (2, LAUNCH, 0, 0, 0, 0),
    (3, LAUNCH, 0, 1, 0, 1),
]


@pytest.mark.parametrize("kind", [LAUNCH, EXIT])
def test_displaced_vcpu_is_refused(kind: int) -> None:
    rows = list(_DISPLACED_ROWS)
    rows[2] = (2, kind, 0, 0, 0, 0 if kind == LAUNCH else -1)
    tr = Trace.from_rows(rows, ncpus=1, nsigners=2, vms=(VmSpec(1, False, 0), VmSpec(1, False, 1)))
    assert not tr._rows_ok()
    with pytest.raises(ConfigError, match=r"trace row 2=\(0, 0, 0\): a vCPU acts only while it is current") as e:
        tr.validate()
    assert e.value.row == 2
    assert "vCPU 0 of VM 1 was scheduled in on CPU 0 since" in str(e.value)
    for design in DESIGN_NAMES:
        with pytest.raises(ConfigError, match="row 2"):
            exact.simulate(tr, design)
    # Scheduled in again, it may act: what KVM_RUN would have done.
    ok = Trace.from_rows(
        [*_DISPLACED_ROWS[:2], (2, SCHED, 0, 0, 0, -1), (2, LAUNCH, 0, 0, 0, 0)],
        ncpus=1,
        nsigners=2,
        vms=(VmSpec(1, False, 0), VmSpec(1, False, 1)),
    )
    ok.validate()


@pytest.mark.parametrize("design", DESIGN_NAMES)
def test_s3_reloads_the_running_vcpus_like_kvm(design: str, images: _Images) -> None:
    """After S3 each running vCPU is scheduled in again (kvm_sched_in): under
    eager-load its words are back in hardware and its native EINIT succeeds."""
    rows = [
        (0, SCHED, 0, 0, 0, -1),
        (0, SCHED, 1, 1, 0, -1),
        (1, LAUNCH, 0, 0, 0, 0),
        (2, SCHED, 1, 0, 0, -1),  # VM 0 migrates to CPU 1 (VM 1 displaced), CPU 0 is left empty
        (3, S3, -1, -1, -1, -1),  # one reload: VM 0's vCPU on CPU 1
        (4, LAUNCH, 1, 0, 0, 0),
    ]
    tr = Trace.from_rows(rows, ncpus=2, nsigners=2, vms=(VmSpec(1, False, 0), VmSpec(1, False, 1)))
    got = assert_agree(tr, design, images, f"s3 reload {design}")
    assert got["schedule_ins"] == 4 and got["codes"] == [0, 0]
    if DESIGNS[design].loads_on_schedule:
        assert got["wrmsr"] == 16
        assert got["state"]["hardware"][0] == INTEL_LEPUBKEYHASH.words  # nobody reloaded CPU 0
        assert got["state"]["hardware"][1] == images[0].mrsigner_words
