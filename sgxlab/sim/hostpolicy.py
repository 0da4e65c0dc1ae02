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
* **The PROVISIONKEY gate** (``gates_provisionkey``, the ``mainline``
  policy; :mod:`sgxlab.host.provision`, :mod:`sgxlab.kvm.guest`): a host
  launch of a signer whose enclave asks for PROVISIONKEY, by a host without
  ``/dev/sgx_provision``, fails with ``-EACCES`` in ``sgx_encl_init()``
  (``host_gated``, reason code :data:`~sgxlab.host.provision.GATE_EACCES`);
  a guest launch of one in a VM without KVM_CAP_SGX_ATTRIBUTE ends with #GP
  at the trapped ECREATE (``guest_gated``,
  :data:`~sgxlab.host.provision.GATE_ECREATE_GP`), whether or not EINIT is
  trapped, before the lewr writes. Neither reaches EINIT; neither is a
  policy refusal nor an EINIT failure. Which signers ask and who holds the
  permission come from the run (:func:`run_tables` reads the trace's
  ``provisionkey``, ``host_provision`` and each VM's ``provision``).
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

import numpy as np

import sgxlab.kvm.guest as _guest
from sgxlab.errors import ConfigError, EngineUnsupported
from sgxlab.host.designs import Design
from sgxlab.host.provision import (
    GATE_EACCES,
    GATE_ECREATE_GP,
    SGX_ATTR_PROVISIONKEY,
    SgxEncl,
    Tenant,
    eacces_reason,
)
from sgxlab.hw.arch import INTEL_LEPUBKEYHASH, LeHash
from sgxlab.hw.crypto import NUM_TEST_KEYS, load_test_key
from sgxlab.kvm.config import SgxGuestConfig
from sgxlab.kvm.policy import HOST_POLICY_NAMES, POLICIES, HostPolicy, policy_by_name
from sgxlab.sim.trace import POLICY_NAMES as TRACE_POLICY_NAMES
from sgxlab.sim.trace import Trace

__all__ = [
    "GATE_EACCES",
    "GATE_ECREATE_GP",
    "REFUSED_POLICY",
    "builtin_equivalent",
    "gate_rows",
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

REFUSED_POLICY = "policy"
"""The reason code of a launch the host policy refused (beside the gate's
:data:`GATE_EACCES` and :data:`GATE_ECREATE_GP`)."""

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
        return _guest.traps_einit(True, self._design)

    def why_untrapped(self) -> str:
        if not self.traps_einit:
            return f"design {self._design.name} does not trap EINIT"
        return "EINIT is trapped"

    def initial_lehash(self, config: SgxGuestConfig) -> LeHash:
        # A host with writable launch control gives new vCPUs Intel's hash
        # (setup_default_sgx_lepubkeyhash), then QEMU writes Kai's lehash.
        return _guest.initial_lehash(config, INTEL_LEPUBKEYHASH)


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

    The PROVISIONKEY gate, apart from the policy's refusals:
    ``host_gated[s]`` / ``host_gate_reasons[s]``: a host launch of signer *s*
    fails with ``-EACCES`` in ``sgx_encl_init()`` (checked after
    ``host_refused``, which happens before the ioctl reaches it).
    ``guest_gated[v][s]`` / ``guest_gate_reasons[v][s]``: a guest launch of
    signer *s* in VM *v* ends with #GP at its trapped ECREATE, whether or not
    EINIT is trapped, and before the lewr WRMSRs and any policy check of
    EINIT. All false for a policy that does not gate, and when no signer asks
    for PROVISIONKEY.
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
    host_gated: tuple[bool, ...] = ()
    host_gate_reasons: tuple[str | None, ...] = ()
    guest_gated: tuple[tuple[bool, ...], ...] = ()
    guest_gate_reasons: tuple[tuple[str | None, ...], ...] = ()

    @property
    def checks_anything(self) -> bool:
        """Whether any launch could be refused or counted as a bypass."""
        return (
            any(self.vm_refused)
            or any(self.host_refused)
            or any(map(any, self.guest_refused))
            or any(self.forbidden)
            or self.gates_anything
        )

    @property
    def gates_anything(self) -> bool:
        """Whether the PROVISIONKEY gate refuses any launch of this run."""
        return any(self.host_gated) or any(map(any, self.guest_gated))

    def host_refusal(self, s: int) -> str | None:
        """Why a host launch of signer ``s`` is refused: :data:`REFUSED_POLICY`,
        :data:`GATE_EACCES` or ``None`` (it reaches EINIT)."""
        if self.host_refused[s]:
            return REFUSED_POLICY
        if self.host_gated and self.host_gated[s]:
            return GATE_EACCES
        return None

    def guest_refusal(self, v: int, s: int, trapped: bool) -> str | None:
        """Why a guest launch of signer ``s`` in VM ``v`` is refused, on a host
        where EINIT is ``trapped`` or not: :data:`GATE_ECREATE_GP` (at ECREATE,
        first), :data:`REFUSED_POLICY` (a trapped EINIT) or ``None``."""
        if self.guest_gated and self.guest_gated[v][s]:
            return GATE_ECREATE_GP
        if trapped and self.guest_refused[v][s]:
            return REFUSED_POLICY
        return None


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
        raise ConfigError("policy", policy, f"expected a HostPolicy or one of {', '.join(HOST_POLICY_NAMES)}")
    hashes = signer_hashes(max(nsigners, max(approved, default=-1) + 1))
    return policy_by_name(policy, approved=[hashes[s] for s in approved])


def _signer_set(values: Iterable[int], nsigners: int, option: str) -> frozenset[int]:
    out: set[int] = set()
    for s in values:
        if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s < max(nsigners, 1):
            raise ConfigError(option, s, f"a signer index in [0, {nsigners})")
        out.add(int(s))
    return frozenset(out)


def policy_tables(
    policy: HostPolicy,
    design: type[Design],
    vms: Iterable[tuple[bool, int] | tuple[bool, int, bool]],
    nsigners: int,
    *,
    provisionkey: Iterable[int] = (),
    host_provision: bool = False,
) -> PolicyTables:
    """Ask ``policy`` everything a run on ``design`` could need.

    ``vms`` gives each VM's ``(lewr, lehash signer index or -1)``, or
    ``(lewr, lehash, provision)`` where ``provision`` says its QEMU was
    started with ``+sgx-provisionkey`` by a tenant that may open
    ``/dev/sgx_provision`` (so the VM holds KVM_CAP_SGX_ATTRIBUTE);
    ``nsigners`` is the number of signers the trace uses. ``provisionkey``:
    the signer indices whose enclaves' SECS.ATTRIBUTES ask for PROVISIONKEY;
    ``host_provision``: the host's launching process holds
    ``/dev/sgx_provision`` (it did SGX_IOC_ENCLAVE_PROVISION).
    """
    hashes = signer_hashes(nsigners)
    host = SimHost(design)
    pk = _signer_set(provisionkey, nsigners, "provisionkey")
    if not isinstance(host_provision, bool):
        raise ConfigError("host_provision", host_provision, "expected a bool")
    vm_refused: list[bool] = []
    vm_reasons: list[str | None] = []
    guest_reasons: list[tuple[str | None, ...]] = []
    guest_gate: list[tuple[str | None, ...]] = []
    for v, spec in enumerate(vms):
        lewr, lehash = spec[0], spec[1]
        provision = bool(spec[2]) if len(spec) > 2 else False
        config = SgxGuestConfig(
            epc=GUEST_EPC, lehash=hashes[lehash] if lehash >= 0 else None, lewr=lewr, provisionkey=provision
        )
        why = policy.check_vm(config, host)
        vm_refused.append(why is not None)
        vm_reasons.append(why)
        guest = SimGuest(f"vm{v}", config)
        guest_reasons.append(tuple(policy.check_guest_einit(guest, h) for h in hashes))
        allowed = _guest.sgx_provisioning_allowed(
            policy.gates_provisionkey, config, Tenant(f"qemu-vm{v}", sgx_provision=provision)
        )
        guest_gate.append(
            tuple(
                _guest.handle_encls_ecreate_refusal(SGX_ATTR_PROVISIONKEY if s in pk else 0, allowed)
                for s in range(nsigners)
            )
        )
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
    host_tenant = Tenant("host", sgx_provision=host_provision)
    host_gate = tuple(
        _host_gate_reason(policy, SGX_ATTR_PROVISIONKEY if s in pk else 0, host_tenant) for s in range(nsigners)
    )
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
        host_gated=tuple(r is not None for r in host_gate),
        host_gate_reasons=host_gate,
        guest_gated=tuple(tuple(r is not None for r in row) for row in guest_gate),
        guest_gate_reasons=tuple(guest_gate),
    )


def gate_rows(
    tables: PolicyTables, is_launch: np.ndarray, vm: np.ndarray, signer: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | None:
    """The launches the PROVISIONKEY gate refuses, as two row masks over a trace's
    columns (``is_launch``, ``vm``, ``signer``): ``(host -EACCES, guest #GP at
    ECREATE)``, or ``None`` when it refuses none. A host row the policy already
    refuses (``host_refused``) is not in the host mask; a guest row is in the
    guest mask whether or not EINIT is trapped (the gate comes first)."""
    if not tables.gates_anything:
        return None
    sig = np.maximum(signer, 0)
    host = is_launch & (vm < 0) & (np.array(tables.host_gated, dtype=bool) & ~np.array(tables.host_refused))[sig]
    guest = np.zeros(len(is_launch), dtype=bool)
    if tables.guest_gated and any(map(any, tables.guest_gated)):
        gtab = np.array(tables.guest_gated, dtype=bool)
        guest = is_launch & (vm >= 0) & gtab[np.maximum(vm, 0), sig]
    return host, guest


def _host_gate_reason(policy: HostPolicy, attributes: int, tenant: Tenant) -> str | None:
    """``sgx_encl_init()``'s -EACCES test (the same code as :meth:`sgxlab.kvm.Kvm.host_gate_refusal`)."""
    if not policy.gated_attributes(attributes):
        return None
    encl = SgxEncl.for_tenant(attributes, tenant)
    return None if encl.sgx_encl_init_check() == 0 else eacces_reason(attributes, tenant.name)


def run_policy(trace: Trace, policy: HostPolicy | str | None = None) -> HostPolicy:
    """The policy a run of ``trace`` uses: ``policy`` (an object, or a built-in's
    name built with the trace's approved set), or else the trace's own."""
    return resolve_policy(trace.policy_name if policy is None else policy, trace.approved, trace.nsigners)


def run_tables(
    trace: Trace, design: type[Design], policy: HostPolicy | str | None = None, *, gate: bool = False
) -> PolicyTables:
    """:func:`policy_tables` of :func:`run_policy` for a run of ``trace`` on ``design``.

    The PROVISIONKEY facts come from the trace when it has them (its
    ``provisionkey`` signer indices, ``host_provision`` flag and each VM
    spec's ``provision``; absent = none). ``gate``: the calling engine
    models the gate (``host_gated``/``guest_gated``). An engine that does
    not (``gate=False``) gets :class:`~sgxlab.errors.EngineUnsupported`
    when the gate would refuse any launch, rather than wrong numbers; where
    it refuses none (every trace without PROVISIONKEY signers), ``mainline``
    runs exactly as ``allow-all``.
    """
    pol = run_policy(trace, policy)
    vms = [(spec.lewr, spec.lehash, bool(getattr(spec, "provision", False))) for spec in trace.vms]
    tables = policy_tables(
        pol,
        design,
        vms,
        trace.nsigners,
        provisionkey=tuple(int(s) for s in getattr(trace, "provisionkey", None) or ()),
        host_provision=bool(getattr(trace, "host_provision", False)),
    )
    if tables.gates_anything and not gate:
        raise EngineUnsupported(
            f"policy {pol.name}: the PROVISIONKEY gate refuses launches of this trace, and this engine "
            "does not model the gate yet (docs/simulator.md, 'Host launch policy')"
        )
    return tables


def same_policy(a: HostPolicy, b: HostPolicy) -> bool:
    """Whether two policy objects are the same policy: one class, equal settings."""
    return type(a) is type(b) and vars(a) == vars(b)


def builtin_equivalent(policy: HostPolicy, trace: Trace) -> str | None:
    """The built-in name that, with ``trace``'s approved set, gives ``policy``
    itself (so a run config can name it), or ``None``."""
    name = policy.name
    if POLICIES.get(name) is not type(policy) or name not in TRACE_POLICY_NAMES:
        return None
    try:
        builtin = resolve_policy(name, trace.approved, trace.nsigners)
    except ConfigError:
        return None
    return name if same_policy(policy, builtin) else None
