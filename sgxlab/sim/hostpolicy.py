"""Host launch policies in the simulator: the KVM layer's policy objects, asked once per VM and signer.

Both engines take the very :class:`~sgxlab.kvm.policy.HostPolicy` objects
that :class:`~sgxlab.kvm.vcpu.Kvm` takes. A policy's answers depend only on
the guest's configuration and the enclave's signer, never on time, so before
a run :func:`policy_tables` asks the policy every question the run could
raise, with the signers' real hashes (signer *s* is test key *s*), and keeps
the answers in flat tables that the exact engine's per-event loop and the
fast engine's numpy code read alike. That is what makes the two engines give
identical refusal and bypass counts.

What the simulator does with the answers (the contract is
``docs/simulator.md``):

* **VM creation** (``check_vm``): a refused VM never exists; none of its
  rows run.
* **Host EINIT** (``check_host_einit``): a refused launch never reaches
  ENCLS[EINIT]; the ioctl fails first, so it costs no MSR access.
* **Trapped guest EINIT** (``check_guest_einit``): KVM's
  ``handle_encls_einit`` refuses it and reflects the code hardware would give
  (:data:`~sgxlab.kvm.vcpu.POLICY_REFUSAL_CODE`); no MSR access, no EINIT.
  An EINIT that is not trapped never reaches the host, so no policy sees it.
* **Bypass** (``permits``): a guest launch that succeeds for a signer the
  host may not run itself: Andy Lutomirski's "little VM".
* **A host with one launch enclave** (``host_lehash``, the ``single-le``
  policy): the host keeps that LE's hash in its MSRs and launches with the
  LE's EINITTOKENs; a signer the LE will not give a token to is refused
  before EINIT, like any other host refusal. The LE's token policy is the
  policy's intent: it gives a token exactly to the signers the policy
  :meth:`~sgxlab.kvm.policy.HostPolicy.permits`.

Which policy a run uses (:func:`run_policy`): the one given to the engine,
or else the trace's (``Trace.policy`` with the signer indices
``Trace.allowlist`` as its host-approved set, :func:`resolve_policy`).
Signer *s*'s hash is test key *s*'s MRSIGNER, loaded once per process
(:func:`signer_hashes`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import sgxlab.kvm.guest as guest
from sgxlab.errors import ConfigError
from sgxlab.host.designs import Design
from sgxlab.hw.arch import INTEL_LEPUBKEYHASH, LeHash
from sgxlab.hw.crypto import NUM_TEST_KEYS, load_test_key
from sgxlab.kvm.config import SgxGuestConfig
from sgxlab.kvm.policy import POLICIES, POLICY_NAMES, HostPolicy, policy_by_name
from sgxlab.sim.trace import Trace

__all__ = [
    "builtin_equivalent",
    "PolicyTables",
    "SimHost",
    "SimGuest",
    "policy_tables",
    "resolve_policy",
    "run_policy",
    "run_tables",
    "same_policy",
    "signer_hashes",
]

GUEST_EPC = 64 << 20
"""The EPC size the simulator's guests are created with (it decides nothing here)."""


@lru_cache(maxsize=NUM_TEST_KEYS)
def _signer_hash(s: int) -> LeHash:
    return load_test_key(s).mrsigner


def signer_hashes(n: int) -> tuple[LeHash, ...]:
    """The MRSIGNER of signers ``0..n-1`` (test keys ``data/keys/keyNN.pem``; each
    key file is read once per process)."""
    if not 0 <= n <= NUM_TEST_KEYS:
        raise ConfigError("signers", n, f"the simulator has {NUM_TEST_KEYS} test-key signers")
    return tuple(_signer_hash(s) for s in range(n))


class SimHost:
    """The host facts a policy may ask about when a VM is created
    (:class:`~sgxlab.kvm.policy.HostFacts`): a host whose launch control is
    writable (the simulator's firmware is always ``flexible``)."""

    def __init__(self, design: type[Design]) -> None:
        self._design = design

    @property
    def traps_einit(self) -> bool:
        return guest.traps_einit(True, self._design)

    def why_untrapped(self) -> str:
        if not self.traps_einit:
            return f"design {self._design.name} does not trap EINIT"
        return "EINIT is trapped"

    def initial_lehash(self, config: SgxGuestConfig) -> LeHash:
        # A host with writable launch control gives new vCPUs Intel's hash
        # (setup_default_sgx_lepubkeyhash), then QEMU writes Kai's lehash.
        return guest.initial_lehash(config, INTEL_LEPUBKEYHASH)


@dataclass(frozen=True)
class SimGuest:
    """A simulated guest as a policy sees it (:class:`~sgxlab.kvm.policy.GuestRef`)."""

    name: str
    config: SgxGuestConfig


@dataclass(frozen=True)
class PolicyTables:
    """A policy's answers for one run, by VM index and signer index.

    ``vm_refused[v]`` / ``vm_reasons[v]``: VM *v* is not created.
    ``host_refused[s]`` / ``host_reasons[s]``: a host launch of signer *s*
    is refused before EINIT. ``guest_refused[v][s]`` / ``guest_reasons[v][s]``:
    a trapped guest EINIT of signer *s* in VM *v* is refused (asked for every
    VM, even where EINIT is not trapped and the answer is never used). ``forbidden[s]``: host root may not run signer *s* (a guest that
    does is a bypass). ``host_le``: for a host with one launch enclave, the
    signer index of that LE (host launches then load its hash and use its
    tokens), else ``None``.
    """

    name: str
    policy: HostPolicy
    vm_refused: tuple[bool, ...]
    vm_reasons: tuple[str | None, ...]
    host_refused: tuple[bool, ...]
    host_reasons: tuple[str | None, ...]
    guest_refused: tuple[tuple[bool, ...], ...]
    guest_reasons: tuple[tuple[str | None, ...], ...]
    forbidden: tuple[bool, ...]
    host_le: int | None

    @property
    def checks_anything(self) -> bool:
        """Whether any launch could be refused or counted as a bypass."""
        return (
            any(self.vm_refused) or any(self.host_refused) or any(map(any, self.guest_refused)) or any(self.forbidden)
        )


def resolve_policy(
    policy: HostPolicy | str | None,
    approved: Sequence[int],
    nsigners: int,
) -> HostPolicy:
    """A policy object: ``policy`` itself, or the built-in named ``policy``
    (default ``allow-all``) with the signer indices ``approved`` as its
    host-approved set (for ``single-le``, ``approved[0]`` is the one LE)."""
    if policy is None:
        policy = "allow-all"
    if isinstance(policy, HostPolicy):
        return policy
    if not isinstance(policy, str):
        raise ConfigError("policy", policy, f"expected a HostPolicy or one of {', '.join(POLICY_NAMES)}")
    hashes = signer_hashes(max(nsigners, max(approved, default=-1) + 1))
    return policy_by_name(policy, approved=[hashes[s] for s in approved])


def policy_tables(
    policy: HostPolicy,
    design: type[Design],
    vms: Iterable[tuple[bool, int]],
    nsigners: int,
) -> PolicyTables:
    """Ask ``policy`` everything a run on ``design`` could need.

    ``vms`` gives each VM's ``(lewr, lehash signer index or -1)``;
    ``nsigners`` is the number of signers the trace uses.
    """
    hashes = signer_hashes(nsigners)
    host = SimHost(design)
    vm_refused: list[bool] = []
    vm_reasons: list[str | None] = []
    guest_reasons: list[tuple[str | None, ...]] = []
    for v, (lewr, lehash) in enumerate(vms):
        config = SgxGuestConfig(epc=GUEST_EPC, lehash=hashes[lehash] if lehash >= 0 else None, lewr=lewr)
        why = policy.check_vm(config, host)
        vm_refused.append(why is not None)
        vm_reasons.append(why)
        guest = SimGuest(f"vm{v}", config)
        guest_reasons.append(tuple(policy.check_guest_einit(guest, h) for h in hashes))
    host_le: int | None = None
    if policy.host_lehash is not None:
        if policy.host_lehash not in hashes:
            raise ConfigError(
                "policy",
                policy.describe(),
                "the host's launch enclave must be one of the run's signers (a test key) in the simulator",
            )
        host_le = hashes.index(policy.host_lehash)
    host_reasons: list[str | None] = []
    for h in hashes:
        why = policy.check_host_einit(h)
        if why is None and policy.host_lehash is not None and not policy.permits(h):
            why = f"the host's launch enclave {policy.host_lehash.short()} gives no EINITTOKEN to signer {h.short()}"
        host_reasons.append(why)
    return PolicyTables(
        name=policy.name,
        policy=policy,
        vm_refused=tuple(vm_refused),
        vm_reasons=tuple(vm_reasons),
        host_refused=tuple(r is not None for r in host_reasons),
        host_reasons=tuple(host_reasons),
        guest_refused=tuple(tuple(r is not None for r in row) for row in guest_reasons),
        guest_reasons=tuple(guest_reasons),
        forbidden=tuple(not policy.permits(h) for h in hashes),
        host_le=host_le,
    )


def run_policy(trace: Trace, policy: HostPolicy | str | None = None) -> HostPolicy:
    """The policy a run of ``trace`` uses: ``policy`` (an object, or a built-in's
    name built with the trace's approved set), or else the trace's own."""
    return resolve_policy(trace.policy_name if policy is None else policy, trace.approved, trace.nsigners)


def run_tables(trace: Trace, design: type[Design], policy: HostPolicy | str | None = None) -> PolicyTables:
    """:func:`policy_tables` of :func:`run_policy` for a run of ``trace`` on ``design``."""
    pol = run_policy(trace, policy)
    return policy_tables(pol, design, [(spec.lewr, spec.lehash) for spec in trace.vms], trace.nsigners)


def same_policy(a: HostPolicy, b: HostPolicy) -> bool:
    """Whether two policy objects are the same policy: one class, equal settings."""
    return type(a) is type(b) and vars(a) == vars(b)


def builtin_equivalent(policy: HostPolicy, trace: Trace) -> str | None:
    """The built-in name that, with ``trace``'s approved set, gives ``policy``
    itself (so a run config can name it), or ``None``."""
    name = policy.name
    if POLICIES.get(name) is not type(policy):
        return None
    try:
        builtin = resolve_policy(name, trace.approved, trace.nsigners)
    except ConfigError:
        return None
    return name if same_policy(policy, builtin) else None
