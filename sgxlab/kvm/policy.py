"""Host launch policies: which enclaves a host lets run, and what it makes of its guests.

In May 2017 Andy Lutomirski and Kai Huang argued about launch policy under
KVM (LKML thread "[RFC PATCH 00/10] Basic KVM SGX Virtualization support",
excerpt in ``../shared/seed``). Andy saw two sensible classes of policy:
allow everything, or allow some things *and make sure that VMs are at least as
restrictive as host root*, because a host that restricts enclaves gains
nothing if host code can start a "little VM" and run the forbidden enclaves
there. Kai wanted the guest to see behaviour consistent with hardware, and
offered two restrictions applied when the VM is created instead of at EINIT
time: with a single host LE, refuse guests that may rewrite their hash
(``lewr``) and give them that LE's hash; with several approved LEs, refuse
``lewr`` and accept only an approved ``lehash``.

Each of those positions is a :class:`HostPolicy` here, with three hooks a
:class:`sgxlab.kvm.Kvm` calls:

* :meth:`HostPolicy.check_vm` when a VM is created (``None`` = create it,
  otherwise the refusal reason, which the caller raises as
  :class:`~sgxlab.errors.PolicyRefusal`);
* :meth:`HostPolicy.check_host_einit` before the host's own EINIT;
* :meth:`HostPolicy.check_guest_einit` before a guest EINIT that KVM trapped
  (``handle_encls_einit``); an EINIT that is not trapped never reaches the
  host, so no policy can see it.

and one statement of intent, :meth:`HostPolicy.permits`: would host root be
allowed to run an enclave of this signer? The emulator reports a *bypass*
when a guest launched an enclave the host's intent forbids; that is Andy's
"little VM" argument made observable.

========================  ============================================================
``allow-all``             Andy's option 1: every signer, nothing gated (Linux
                          mainline without its PROVISIONKEY gate).
``allowlist``             Andy's option 2: a signer allowlist applied to host EINIT
                          *and to every trapped guest EINIT*.
``single-le``             Kai's proposal for a host with one LE: refuse ``lewr``, the
                          guest's hash must be that LE's, so it sees bit 17 clear.
``approved-set``          Kai's compromise: refuse ``lewr``, ``lehash`` must be one of
                          the host-approved hashes.
``host-only``             The naive host: an allowlist for host EINIT only; guests are
                          not checked. It exists to show the bypass.
``mainline``              What Linux merged: every signer, and PROVISIONKEY gated on
                          the host (``-EACCES``) and in guests (#GP at ECREATE).
========================  ============================================================

:data:`POLICY_CATALOG` lists all six with a one-line summary each (the one
place a table or widget should read them from); :data:`HOST_POLICY_NAMES`
is their names (all of them a simulator trace may carry).
:data:`POLICY_NAMES` is the five of the 2017 thread.

**The PROVISIONKEY gate** (:attr:`HostPolicy.gates_provisionkey`, only
``mainline``) is not a signer policy: it asks who launches, not who signed.
On the host, ``sgx_encl_init()`` refuses an enclave whose SECS.ATTRIBUTES has
PROVISIONKEY outside ``encl->attributes_mask`` with ``-EACCES``, before it
touches the hash MSRs (:mod:`sgxlab.host.provision`); the process adds the
bit with ``SGX_IOC_ENCLAVE_PROVISION`` and an fd of ``/dev/sgx_provision``.
In a guest, KVM intercepts ECREATE unless the VM holds KVM_CAP_SGX_ATTRIBUTE
(``sgx_intercept_encls_ecreate``) and ``__handle_encls_ecreate`` injects #GP
for such a SECS. The launch enclave's token policy for PROVISIONKEY (Intel's
LE grants it only to whitelisted signers) is a separate, older mechanism of
the token flow (:mod:`sgxlab.host.le`); the gate does not consult it.

Write your own by subclassing :class:`HostPolicy`; keep ``name`` and
``source`` (where the idea comes from) filled in.

Sources: the seed thread above; ``../shared/reference/linux-kvm-qemu.md`` §7
(Linux's launch-policy outcome: allow-all except PROVISIONKEY, commit
c82c61865024 "x86/sgx: Add SGX_IOC_ENCLAVE_PROVISION"; Kai's restrictive
policy was never implemented) and §2.4 (``handle_encls_einit`` is the only
place a host sees a guest EINIT, and only when EINIT exiting is on).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import ClassVar, Protocol

from sgxlab.errors import ConfigError
from sgxlab.host.provision import SGX_ATTR_PROVISIONKEY
from sgxlab.hw.arch import LeHash
from sgxlab.kvm.config import SgxGuestConfig

__all__ = [
    "HostFacts",
    "GuestRef",
    "HostPolicy",
    "AllowAll",
    "Allowlist",
    "SingleLE",
    "ApprovedSet",
    "HostAllowlist",
    "Mainline",
    "PolicyInfo",
    "POLICIES",
    "POLICY_CATALOG",
    "POLICY_NAMES",
    "HOST_POLICY_NAMES",
    "ENFORCING_POLICIES",
    "policy_by_name",
]

SignerLike = LeHash | bytes | str


def _signer(value: object, option: str) -> LeHash:
    return LeHash.coerce(value, option=option)  # a hash, its bytes or text, a SigningKey or a LaunchEnclave


def _signers(values: Iterable[object] | None, option: str) -> frozenset[LeHash]:
    if values is None:
        return frozenset()
    if isinstance(values, (str, bytes, LeHash)):
        values = [values]
    return frozenset(_signer(v, option) for v in values)


class HostFacts(Protocol):
    """What a policy may ask of the host when a VM is created.

    :class:`sgxlab.kvm.vcpu.Kvm` provides it, and so does each simulation
    engine, so that the engines run the very same policy objects.
    """

    @property
    def traps_einit(self) -> bool:
        """Guest EINIT is intercepted on this host."""
        ...

    def why_untrapped(self) -> str:
        """Why guest EINIT is (or is not) intercepted, in words."""
        ...

    def initial_lehash(self, config: SgxGuestConfig) -> LeHash:
        """The value a new vCPU's virtual IA32_SGXLEPUBKEYHASH starts with."""
        ...


class GuestRef(Protocol):
    """The guest whose trapped EINIT a policy is asked about."""

    @property
    def name(self) -> str: ...

    @property
    def config(self) -> SgxGuestConfig: ...


def _short_set(signers: frozenset[LeHash]) -> str:
    if not signers:
        return "{}"
    return "{" + ", ".join(sorted(s.short() for s in signers)) + "}"


class HostPolicy:
    """Base class of host launch policies. The base class allows everything.

    Class attributes: ``name`` (what :func:`policy_by_name` accepts),
    ``source`` (where the policy comes from) and ``enforcing`` (the policy
    claims that no guest can run what the host may not; the test suite checks
    that claim against every configuration of :func:`sgxlab.policy_matrix`).

    ``host_lehash`` is the hash the host keeps in its MSRs for its own
    launches: ``None`` means Linux's token-less flow (write each enclave's
    own MRSIGNER before its EINIT).

    ``gates_provisionkey``: the host gates SECS.ATTRIBUTES.PROVISIONKEY the
    way mainline does (host: ``-EACCES`` from ``sgx_encl_init`` unless the
    launching process used SGX_IOC_ENCLAVE_PROVISION; guest: #GP at the
    trapped ECREATE unless the VM holds KVM_CAP_SGX_ATTRIBUTE). The 2017
    policies do not: then PROVISIONKEY was the launch enclave's business.
    """

    name: ClassVar[str] = "policy"
    source: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    enforcing: ClassVar[bool] = False
    gates_provisionkey: ClassVar[bool] = False
    host_lehash: LeHash | None = None

    def check_vm(self, config: SgxGuestConfig, host: HostFacts) -> str | None:
        """Reason to refuse creating a VM with ``config`` on ``host``, or ``None``."""
        return None

    def check_host_einit(self, mrsigner: LeHash) -> str | None:
        """Reason to refuse a host EINIT of an enclave signed by ``mrsigner``, or ``None``."""
        return None

    def check_guest_einit(self, vm: GuestRef, mrsigner: LeHash) -> str | None:
        """Reason to refuse a *trapped* guest EINIT in ``vm``, or ``None``."""
        return None

    def permits(self, mrsigner: LeHash) -> bool:
        """The host's intent: may host root run an enclave signed by ``mrsigner``?"""
        return True

    def gated_attributes(self, attributes: int) -> int:
        """The SECS.ATTRIBUTES flag bits of ``attributes`` this host gates by
        permission (PROVISIONKEY under ``mainline``, nothing otherwise)."""
        return attributes & SGX_ATTR_PROVISIONKEY if self.gates_provisionkey else 0

    def describe(self) -> str:
        """One line for tables and the command line."""
        return self.name

    def __repr__(self) -> str:
        return f"<policy {self.describe()}>"


class AllowAll(HostPolicy):
    """Allow every signer, on the host and in guests, and gate nothing.

    Andy Lutomirski's option 1 in the LKML thread of 12 May 2017, which he
    found quite sensible. Its signer rule is what Linux merged:
    ``sgx_encl_init()`` writes each enclave's own MRSIGNER into the MSRs and
    launches it (commit 9d0c151b41fe). Mainline's one restriction,
    PROVISIONKEY behind ``/dev/sgx_provision``, is about who launches rather
    than who signed; :class:`Mainline` adds it.
    """

    name = "allow-all"
    summary = "every signer, nothing gated (Andy Lutomirski's option 1)"
    source = "Andy Lutomirski's option 1, LKML 12 May 2017; Linux mainline's signer rule without its gate (commit 9d0c151b41fe)"


class Mainline(AllowAll):
    """What Linux merged: every signer, and PROVISIONKEY gated by permission.

    Sources: ``../shared/reference/linux-kvm-qemu.md`` §7 and §5. Host:
    commit c82c61865024 "x86/sgx: Add SGX_IOC_ENCLAVE_PROVISION" (Suggested-by
    Andy Lutomirski), ``arch/x86/kernel/cpu/sgx/ioctl.c``: ECREATE succeeds
    and ``encl->attributes_mask`` lacks PROVISIONKEY; ``sgx_ioc_enclave_provision``
    with an fd of ``/dev/sgx_provision`` adds it (``sgx_set_attribute``);
    ``sgx_encl_init()`` returns ``-EACCES`` for ``encl->attributes &
    ~encl->attributes_mask`` before it writes the hash MSRs or runs EINIT
    (:mod:`sgxlab.host.provision`). Guests: commit fe7e948837f3 "KVM: x86:
    Add capability to grant VM access to privileged SGX attribute"
    (``arch/x86/kvm/x86.c``, ``arch/x86/kvm/vmx/sgx.c``): QEMU's
    ``+sgx-provisionkey`` passes the fd with KVM_CAP_SGX_ATTRIBUTE and KVM
    sets ``sgx_provisioning_allowed``; without it ``sgx_intercept_encls_ecreate``
    traps ECREATE and ``__handle_encls_ecreate`` injects #GP for a SECS with
    PROVISIONKEY (:mod:`sgxlab.kvm.guest`).

    The permission belongs to the launching process (a
    :class:`~sgxlab.host.provision.Tenant`), not to a signer, so
    :meth:`permits` is true for every signer and no guest launch is a
    bypass: a VM holds the capability only if the process that created it
    held the permission, so the "little VM" argument does not apply.
    Intel's launch enclave refusing PROVISIONKEY tokens to unlisted signers
    is a different, older mechanism (the token flow) that this policy does
    not use.
    """

    name = "mainline"
    summary = "every signer; PROVISIONKEY needs /dev/sgx_provision (what Linux merged)"
    gates_provisionkey = True
    source = (
        "Linux mainline: commits 9d0c151b41fe (sgx_encl_init), c82c61865024 (SGX_IOC_ENCLAVE_PROVISION), "
        "fe7e948837f3 (KVM_CAP_SGX_ATTRIBUTE); QEMU +sgx-provisionkey"
    )


class _SignerSet(HostPolicy):
    """Shared plumbing: a frozen set of signer hashes."""

    def __init__(self, signers: Iterable[SignerLike] | None = (), *, option: str = "signers") -> None:
        self.signers: frozenset[LeHash] = _signers(signers, option)

    def permits(self, mrsigner: LeHash) -> bool:
        return mrsigner in self.signers

    def _not_listed(self, mrsigner: LeHash, where: str) -> str:
        return f"signer {mrsigner.short()} is not in the host's {where} {_short_set(self.signers)}"

    def describe(self) -> str:
        return f"{self.name} {_short_set(self.signers)}"


class Allowlist(_SignerSet):
    """An allowlist of signers, enforced on the host and on every trapped guest EINIT.

    Andy Lutomirski's option 2 (LKML 12 May 2017): allow some signers, and
    make every VM at least as restrictive as host root. He also predicted that KVM would trap EINIT for exactly this reason. KVM's
    ``handle_encls_einit`` is the hook: every trapped guest EINIT, the guest's
    own launch enclave included, is checked against the list, whatever the
    guest wrote into its virtual IA32_SGXLEPUBKEYHASH.

    Where guest EINIT is *not* trapped (a design such as eager-load, or a host
    whose LC is not writable) the list cannot see guest launches, so VM
    creation refuses what it could not police: a guest that may write its
    hash (lewr or sgxlc), and a guest whose hash is not a listed signer (its
    launch enclave would then decide alone).
    """

    name = "allowlist"
    summary = "a signer allowlist on host EINIT and every trapped guest EINIT (Andy's option 2)"
    enforcing = True
    source = "Andy Lutomirski's option 2, LKML 12 May 2017 (VMs at least as restrictive as host root)"

    def check_vm(self, config: SgxGuestConfig, host: HostFacts) -> str | None:
        if host.traps_einit:
            return None
        why = (
            f"guest EINIT is not trapped on this host ({host.why_untrapped()}), "
            "so the allowlist could not see the guest's launches"
        )
        if config.lc_enabled:
            return f"{config.lc_option} refused: {why}"
        initial = host.initial_lehash(config)
        if initial not in self.signers:
            return f"the guest's launch-enclave hash {initial.short()} is not an allowed signer: {why}"
        return None

    def check_host_einit(self, mrsigner: LeHash) -> str | None:
        return None if mrsigner in self.signers else self._not_listed(mrsigner, "allowlist")

    def check_guest_einit(self, vm: GuestRef, mrsigner: LeHash) -> str | None:
        return None if mrsigner in self.signers else self._not_listed(mrsigner, "allowlist")


class HostAllowlist(_SignerSet):
    """The naive host (policy name ``host-only``): an allowlist for the host's own EINITs, guests unchecked.

    The class is HostAllowlist, not HostOnly, so that it is not confused with
    the ``host-only`` workload (:class:`sgxlab.sim.workloads.HostOnly`).

    No one proposed this; it is what a host gets if it restricts its own
    launches and then runs KVM as merged (KVM does not consult any signer
    policy for guests, reference §7). It is the policy Andy's "little VM"
    argument is about: a guest with a writable hash runs what the host may not.
    """

    name = "host-only"
    summary = "an allowlist for host EINIT only; guests unchecked (shows the bypass)"
    source = "a host-side allowlist plus mainline KVM, which applies no signer policy to guests"

    def check_host_einit(self, mrsigner: LeHash) -> str | None:
        return None if mrsigner in self.signers else self._not_listed(mrsigner, "allowlist")


class SingleLE(HostPolicy):
    """Kai Huang's policy for a host that allows one launch enclave.

    LKML reply of 12 May 2017: if the host allows a single LE, KVM refuses to
    create guests with runtime changes to IA32_SGXLEPUBKEYHASHn (no ``lewr``)
    and gives them that LE's hash, so the guest sees IA32_FEATURE_CONTROL bit
    17 clear and its hash MSRs fixed at the host's value, exactly like a
    machine whose firmware locked in that LE. Nothing needs checking at EINIT
    time: hardware refuses every token-less launch but the LE's, and the LE
    issues tokens by its own policy.

    ``lehash`` is the single LE's hash. The host keeps it in its own MSRs
    (``host_lehash``) and launches its enclaves with that LE's tokens.
    ``signers`` is the LE's token policy, the host's intent (``None``: the LE
    decides, any signer may be intended).
    """

    name = "single-le"
    summary = "one host LE: no lewr, the guest's hash must be that LE's (Kai Huang)"
    enforcing = True
    source = "Kai Huang, LKML reply to Andy Lutomirski, 12 May 2017 (host allows one single LE)"

    def __init__(self, lehash: SignerLike, signers: Iterable[SignerLike] | None = None) -> None:
        self.lehash = _signer(lehash, "lehash")
        self.signers: frozenset[LeHash] | None = None if signers is None else _signers(signers, "signers")
        self.host_lehash = self.lehash

    def check_vm(self, config: SgxGuestConfig, host: HostFacts) -> str | None:
        if config.lc_enabled:
            return (
                f"{config.lc_option} refused: the host allows only the single LE {self.lehash.short()}, "
                "so its guests get IA32_FEATURE_CONTROL bit 17 clear"
            )
        initial = host.initial_lehash(config)
        if initial != self.lehash:
            return (
                f"the guest's IA32_SGXLEPUBKEYHASH would be {initial.short()}; it must be the host's single "
                f"LE hash {self.lehash.short()} (give lehash={self.lehash.hex()})"
            )
        return None

    def permits(self, mrsigner: LeHash) -> bool:
        return mrsigner == self.lehash or self.signers is None or mrsigner in self.signers

    def describe(self) -> str:
        return f"{self.name} {self.lehash.short()}"


class ApprovedSet(_SignerSet):
    """Kai Huang's compromise for a host that allows several LEs.

    LKML reply of 12 May 2017: refuse guests with ``lewr``, and create a guest
    only with one of the host-approved hashes as its ``lehash``. The guest
    behaves like hardware locked to that LE, at the price of running one LE
    only. The host itself runs approved signers only (token-less).
    """

    name = "approved-set"
    summary = "no lewr, the guest's hash must be host-approved (Kai Huang's compromise)"
    enforcing = True
    source = "Kai Huang, LKML reply to Andy Lutomirski, 12 May 2017 (the compromise: no lewr, approved lehash)"

    def check_vm(self, config: SgxGuestConfig, host: HostFacts) -> str | None:
        if config.lc_enabled:
            return (
                f"{config.lc_option} refused: guests may only run one of the host-approved LEs "
                f"{_short_set(self.signers)}, so they get IA32_FEATURE_CONTROL bit 17 clear"
            )
        initial = host.initial_lehash(config)
        if initial not in self.signers:
            return (
                f"the guest's IA32_SGXLEPUBKEYHASH would be {initial.short()}, which is not in the "
                f"host-approved set {_short_set(self.signers)}"
            )
        return None

    def check_host_einit(self, mrsigner: LeHash) -> str | None:
        return None if mrsigner in self.signers else self._not_listed(mrsigner, "approved set")


@dataclass(frozen=True, slots=True)
class PolicyInfo:
    """One built-in host policy for a table or widget: its ``name``, ``cls``,
    a one-line ``summary``, its ``source`` and whether it is ``enforcing``
    or ``gates_provisionkey``."""

    name: str
    cls: type[HostPolicy]
    summary: str
    source: str
    enforcing: bool
    gates_provisionkey: bool

    @classmethod
    def of(cls, policy: type[HostPolicy]) -> PolicyInfo:
        return cls(policy.name, policy, policy.summary, policy.source, policy.enforcing, policy.gates_provisionkey)


POLICY_CATALOG: tuple[PolicyInfo, ...] = tuple(
    PolicyInfo.of(p) for p in (AllowAll, Allowlist, SingleLE, ApprovedSet, HostAllowlist, Mainline)
)
"""Every built-in host policy, in the order tables list them: the one place to
discover them (names, one-line summaries, sources)."""

POLICIES: Mapping[str, type[HostPolicy]] = MappingProxyType({p.name: p.cls for p in POLICY_CATALOG})
"""The built-in policies by name, in the order the tables list them (all six)."""

HOST_POLICY_NAMES: tuple[str, ...] = tuple(POLICIES)
"""The names of all six built-in policies (:data:`POLICY_CATALOG`)."""

POLICY_NAMES: tuple[str, ...] = tuple(n for n in HOST_POLICY_NAMES if n != "mainline")
"""The five policies of the 2017 thread (every built-in but ``mainline``, which
gates PROVISIONKEY). A simulator trace may carry any of
:data:`HOST_POLICY_NAMES` (``sgxlab.sim.trace.POLICY_NAMES``, kept equal by a test)."""

ENFORCING_POLICIES: tuple[str, ...] = tuple(n for n, p in POLICIES.items() if p.enforcing)
"""Policies that claim guests cannot run what the host forbids."""


def policy_by_name(name: str, approved: Iterable[SignerLike] | None = ()) -> HostPolicy:
    """Build a built-in policy from its name and the host-approved hashes.

    ``approved`` is the signer allowlist for ``allowlist`` and ``host-only``,
    the approved LE hashes for ``approved-set``, and for ``single-le`` the
    first entry is the single LE's hash while all entries are its token
    policy. ``allow-all`` and ``mainline`` ignore it. Names are case-insensitive and ``_`` may
    stand for ``-``.
    """
    if not isinstance(name, str):
        raise ConfigError("policy", name, f"expected one of {', '.join(HOST_POLICY_NAMES)}")
    key = name.strip().lower().replace("_", "-")
    if key not in POLICIES:
        raise ConfigError("policy", name, f"unknown policy; valid names: {', '.join(HOST_POLICY_NAMES)}")
    signers = list(approved or ())
    if key == "allow-all":
        return AllowAll()
    if key == "mainline":
        return Mainline()
    if key == "single-le":
        if not signers:
            raise ConfigError("approved", signers, "policy 'single-le' needs the single LE's hash")
        return SingleLE(signers[0], signers)
    cls = POLICIES[key]
    return cls(signers)  # type: ignore[call-arg]
