"""The debate's properties over random sequences of operations (hypothesis state machine).

One machine drives a real :class:`~sgxlab.kvm.Kvm` on an emulated platform:
host launches, guest RDMSR/WRMSR and launches, vCPU migrations, puts and
resets, S3, host policy changes, VM creation and destruction, and design
switches. After every step it checks what the 2017 thread argued about:

* **coherence**: read-compare, always-write and percpu-cache-retry always
  run EINIT with the intended hash in the hardware MSRs; percpu-cache fails
  exactly when its cache was stale, and otherwise leaves the hardware equal
  to its cache;
* **isolation**: a guest WRMSR never writes a physical MSR (except Kai's
  eager-load pass-through, on the CPU the vCPU is loaded on), a guest reads
  only its own hash, and a guest EINIT is decided by its own hash only;
* **policy**: under an enforcing policy no enclave whose signer the host
  forbids ever initializes, on the host or in a guest;
* **counting**: each design's RDMSR/WRMSR per launch follows from the state
  before it (the identities of ``docs/simulator.md``).

Every EINIT is the real one: RSA-3072 signatures, SHA-256 measurement.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from sgxlab.errors import GeneralProtection, PolicyRefusal
from sgxlab.host.designs import DESIGNS, PerCpuCache, PerCpuCacheRetry
from sgxlab.host.samples import SignedEnclave, signed_enclave
from sgxlab.hw.arch import MSR_IA32_SGXLEPUBKEYHASH, LeHash
from sgxlab.hw.platform import Platform
from sgxlab.kvm import Kvm, SgxGuestConfig
from sgxlab.kvm.guest import passes_through
from sgxlab.kvm.policy import ENFORCING_POLICIES, POLICY_NAMES, policy_by_name
from sgxlab.kvm.vcpu import Vcpu, Vm

NCPUS = 2
SIGNERS: tuple[SignedEnclave, ...] = tuple(signed_enclave(k, tag=b"stateful") for k in (1, 2, 3))
APPROVED = (SIGNERS[0].mrsigner, SIGNERS[1].mrsigner)  # signer 2 is forbidden by every signer policy
FIRMWARES = ("flexible", "locked-intel", "no-lc")
COHERENT = ("read-compare", "always-write", "percpu-cache-retry", "eager-load")
"""Designs that must run every EINIT with the intended hash in hardware."""
HASH = MSR_IA32_SGXLEPUBKEYHASH


def _configs() -> list[SgxGuestConfig]:
    s0, s2 = SIGNERS[0].mrsigner, SIGNERS[2].mrsigner
    return [
        SgxGuestConfig(epc=64 << 20),
        SgxGuestConfig(epc=64 << 20, lehash=s0),
        SgxGuestConfig(epc=64 << 20, lehash=s2),
        SgxGuestConfig(epc=64 << 20, lewr=True),
        SgxGuestConfig(epc=64 << 20, lehash=s2, lewr=True),
        SgxGuestConfig(epc=64 << 20, mode="merged", sgxlc=True),
    ]


CONFIGS = _configs()


def _words(h: LeHash) -> tuple[int, int, int, int]:
    w = h.words
    return (w[0], w[1], w[2], w[3])


def _stale_fails(cache: list[int], hw: tuple[int, ...], want: tuple[int, ...]) -> bool:
    """A per-CPU cache skips word i when it already says ``want[i]``; EINIT then
    sees the hardware's word, which is wrong iff it differs."""
    return any(cache[i] == want[i] and hw[i] != want[i] for i in range(4))


class LaunchControl(RuleBasedStateMachine):
    """A host with two CPUs, its KVM, VMs and vCPUs; see the module docstring."""

    def __init__(self) -> None:
        super().__init__()
        self.platform: Platform
        self.kvm: Kvm

    # -- set-up ---------------------------------------------------------------

    firmware = "flexible"
    design = "always-write"

    @initialize(policy=st.sampled_from(POLICY_NAMES))
    def boot(self, policy: str) -> None:
        self.platform = Platform(NCPUS, self.firmware)
        self.kvm = Kvm(self.platform, policy=policy_by_name(policy, APPROVED), design=self.design)
        for config in CONFIGS:  # every VM the policy lets in, from the start
            try:
                self.kvm.create_vm(config, 2)
            except PolicyRefusal:
                pass

    # -- helpers ----------------------------------------------------------------

    def _hw(self) -> list[tuple[int, ...]]:
        return [self.platform.cpu(i).lehash_words for i in range(NCPUS)]

    def _guest_words(self) -> dict[int, tuple[int, ...]]:
        return {id(v): tuple(v.lc.words) for vm in self.kvm.vms for v in vm.vcpus}

    def _forbidden(self, signer: LeHash) -> bool:
        return self.kvm.policy.name in ENFORCING_POLICIES and not self.kvm.policy.permits(signer)

    # -- operations -------------------------------------------------------------

    def _vcpu(self, pick: int) -> Vcpu | None:
        live = [v for vm in self.kvm.vms for v in vm.vcpus]
        return live[pick % len(live)] if live else None

    @rule(create=st.booleans(), config=st.sampled_from(CONFIGS), pick=st.integers(0, 15))
    def vm_life(self, create: bool, config: SgxGuestConfig, pick: int) -> None:
        """Create a VM (if the host lets it in) or destroy one."""
        if create:
            try:
                self.kvm.create_vm(config, 2)
            except PolicyRefusal:
                pass
        elif self.kvm.vms:
            vm: Vm = self.kvm.vms[pick % len(self.kvm.vms)]
            self.kvm.destroy_vm(vm)
            assert vm.destroyed and all(v.pcpu is None for v in vm.vcpus)

    @rule(pick=st.integers(0, 31), op=st.sampled_from(("load", "load", "put", "reset")), cpu=st.integers(0, NCPUS - 1))
    def schedule(self, pick: int, op: str, cpu: int) -> None:
        """Migrate (load on a CPU), put or reset a vCPU."""
        vcpu = self._vcpu(pick)
        if vcpu is None:
            return
        if op == "load":
            vcpu.load(cpu)
            if passes_through(self.kvm.lc_writable, self.kvm.design):
                assert self.platform.cpu(cpu).lehash_words == tuple(vcpu.lc.words)
        elif op == "put":
            vcpu.put()
        else:
            vcpu.reset()
            assert tuple(vcpu.lc.words) == tuple(vcpu.lc.initial) and vcpu.pcpu is None

    @rule(
        event=st.sampled_from(("s3", "policy", "design")),
        policy=st.sampled_from(POLICY_NAMES),
        design=st.sampled_from(tuple(DESIGNS)),
    )
    def host_event(self, event: str, policy: str, design: str) -> None:
        """S3, a host policy change, or a design switch (a new kernel)."""
        if event == "s3":
            self.kvm.s3_resume()
        elif event == "policy":
            try:
                self.kvm.set_policy(policy_by_name(policy, APPROVED))
            except PolicyRefusal as e:
                # refused: a live VM could not be created under the new policy
                assert e.policy == policy, e
        else:
            try:
                self.kvm.set_design(design)
            except PolicyRefusal as e:
                assert e.policy == self.kvm.policy.name, e

    @rule(pick=st.integers(0, 31), word=st.integers(0, 4), signer=st.integers(0, 2))
    def guest_wrmsr(self, pick: int, word: int, signer: int) -> None:
        """The guest writes one word of a junk value (``word`` 0-3), or a signer's
        whole hash, word by word (``word`` 4), as a guest LE driver would."""
        vcpu = self._vcpu(pick)
        if vcpu is None:
            return
        writes = list(enumerate(_words(SIGNERS[signer].mrsigner))) if word == 4 else [(word, 0x1234)]
        for i, value in writes:
            self._one_wrmsr(vcpu, i, value)

    def _one_wrmsr(self, vcpu: Vcpu, word: int, value: int) -> None:
        hw, others = self._hw(), self._guest_words()
        try:
            vcpu.wrmsr(HASH[word], value)
            accepted = True
        except GeneralProtection:
            accepted = False
        after = self._hw()
        through = accepted and vcpu.pcpu is not None and passes_through(self.kvm.lc_writable, self.kvm.design)
        for i in range(NCPUS):
            if through and vcpu.pcpu is not None and i == vcpu.pcpu.index:
                assert after[i][word] == value
            else:
                assert after[i] == hw[i], "a guest WRMSR changed a physical MSR"
        now = self._guest_words()
        for key, words in others.items():
            if key != id(vcpu):
                assert now[key] == words, "a guest WRMSR changed another vCPU's hash"
        event(f"guest WRMSR {'accepted' if accepted else '#GP'}{' (passed through)' if through else ''}")
        if accepted:
            assert vcpu.lc.words[word] == value

    @rule(pick=st.integers(0, 31), word=st.integers(0, 3))
    def guest_rdmsr(self, pick: int, word: int) -> None:
        vcpu = self._vcpu(pick)
        if vcpu is None or vcpu.vm.destroyed:
            return
        try:
            value = vcpu.rdmsr(HASH[word])
        except GeneralProtection:
            return
        assert value == vcpu.lc.words[word], "a guest read a hash that is not its own"

    @rule(cpu=st.integers(0, NCPUS - 1), signer=st.integers(0, 2))
    def host_launch(self, cpu: int, signer: int) -> None:
        s = SIGNERS[signer]
        kvm, c = self.kvm, self.platform.cpu(cpu)
        policy = kvm.policy
        want = _words(policy.host_lehash if policy.host_lehash is not None else s.mrsigner)
        hw = c.lehash_words
        design = kvm.design
        cache = list(design.cache[cpu]) if isinstance(design, PerCpuCache) else None
        try:
            out = kvm.host_einit(cpu, s.sigstruct_bytes, s.fresh())
        except PolicyRefusal:
            assert self.platform.cpu(cpu).lehash_words == hw, "a refused launch touched the MSRs"
            return
        launched = out.result.code == 0
        if self._forbidden(s.mrsigner):
            assert not launched, "the host ran an enclave its policy forbids"
        if cache is not None and kvm.lc_writable:
            assert list(design.cache[cpu]) == list(want), "the cache does not hold what it loaded"
            if type(design).retry is PerCpuCache.retry and policy.host_lehash is None:
                assert launched == (not _stale_fails(cache, hw, want)), "percpu-cache failed without a stale cache"
        if not kvm.lc_writable:
            assert out.wrmsr == 0 and c.lehash_words == hw
            return
        self._check_design(design, cache, hw, want, out, c.lehash_words)
        if design.name in COHERENT and policy.host_lehash is None:
            assert launched, f"{design.name} ran EINIT without the signer's hash in the MSRs"

    @rule(pick=st.integers(0, 31), signer=st.integers(0, 2))
    def guest_launch(self, pick: int, signer: int) -> None:
        vcpu = self._vcpu(pick)
        if vcpu is None or vcpu.vm.destroyed:
            return
        s = SIGNERS[signer]
        kvm = self.kvm
        cpu = vcpu.pcpu.index if vcpu.pcpu is not None else vcpu.last_pcpu
        c = self.platform.cpu(cpu)
        own = tuple(vcpu.lc.words)
        design = kvm.design
        cache = list(design.cache[cpu]) if isinstance(design, PerCpuCache) else None
        hw = c.lehash_words
        try:
            r = vcpu.einit(s.sigstruct_bytes, s.fresh())
        except GeneralProtection:
            return  # guest firmware did not enable SGX
        assert r.cpu == cpu
        event(f"guest EINIT {'trapped' if r.trapped else 'native'}: {'launched' if r.launched else 'refused'}")
        if self._forbidden(s.mrsigner):
            assert not r.launched, f"policy {kvm.policy.name} let a guest run a forbidden signer"
        if r.policy_refused:
            assert not r.launched and r.outcome is None
            return
        own_ok = own == _words(s.mrsigner)
        if r.trapped and r.outcome is not None:
            self._check_design(design, cache, hw, own, r.outcome, c.lehash_words)
            if cache is not None:
                assert list(design.cache[cpu]) == list(own), "the cache does not hold what it loaded"
        if isinstance(design, PerCpuCache) and not isinstance(design, PerCpuCacheRetry) and r.trapped:
            assert cache is not None
            assert r.launched == (own_ok and not _stale_fails(cache, hw, own))
        else:
            # Isolation: the guest's own hash decides, never another VM's or the host's.
            assert r.launched == own_ok, (design.name, r)

    # -- the design's own counting -------------------------------------------------

    @staticmethod
    def _check_design(
        design: Any,
        cache: list[int] | None,
        hw: tuple[int, ...],
        want: tuple[int, ...],
        out: Any,
        hw_after: tuple[int, ...],
    ) -> None:
        differ = sum(hw[i] != want[i] for i in range(4))
        name = design.name
        if name in ("always-write", "eager-load"):
            assert (out.rdmsr, out.wrmsr) == (0, 4 * out.einits)
            assert hw_after == want
        elif name == "read-compare":
            assert (out.rdmsr, out.wrmsr) == (4, differ)
            assert hw_after == want
        elif isinstance(design, PerCpuCache):
            assert cache is not None
            first = sum(cache[i] != want[i] for i in range(4))
            stale = _stale_fails(cache, hw, want)
            assert out.rdmsr == 0
            if isinstance(design, PerCpuCacheRetry):
                # on SGX_INVALID_EINITTOKEN the retry force-writes all four words and runs EINIT again
                assert out.retries == 1 or not stale
                assert (out.wrmsr, out.einits) == (first + 4 * out.retries, 1 + out.retries)
                assert hw_after == want
            else:
                assert out.wrmsr == first
                if stale:
                    assert out.result.code != 0, "a stale cache launched"
                else:
                    assert hw_after == want, "a fresh cache left the wrong hash"

    # -- invariants -----------------------------------------------------------------

    @invariant()
    def loaded_vcpus_are_where_they_say(self) -> None:
        kvm = getattr(self, "kvm", None)
        if kvm is None:
            return
        for cpu, v in kvm._loaded.items():
            assert v.pcpu is not None and v.pcpu.index == cpu and not v.vm.destroyed


SETTINGS = settings(
    max_examples=25,
    stateful_step_count=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@pytest.mark.parametrize("design", tuple(DESIGNS))
@pytest.mark.parametrize("firmware", FIRMWARES)
def test_launch_control(firmware: str, design: str) -> None:
    """Every design booted on every firmware; policies, VMs and later designs are drawn."""
    machine = type(f"LaunchControl_{firmware}_{design}", (LaunchControl,), {"firmware": firmware, "design": design})
    run_state_machine_as_test(machine, settings=SETTINGS)
