"""KVM and QEMU for SGX guests: virtual launch-control MSRs, trapped EINIT, host policies.

This is the hypervisor layer the 2017 thread argued about. Kai Huang's KVM
RFC (May 2017) let QEMU create a guest with ``-sgx epc=<size>,lehash='<SHA-256>',lewr``:
``lehash`` is the initial value of the guest's IA32_SGXLEPUBKEYHASH0..3 and
``lewr`` lets the guest rewrite it at run time (its firmware then locks
IA32_FEATURE_CONTROL with bit 17 set). Andy Lutomirski wanted KVM to keep the
guest's values in memory only and to trap EINIT, so that a host launch policy
also covers guests. KVM as merged in Linux 5.13 does the keeping and the
trapping, and QEMU 6.2 replaced Kai's options by an ``sgxlc`` CPU flag.

What is modelled, with its source (``../shared/reference/linux-kvm-qemu.md``
§2 and §5, ``hardware-and-einit.md`` "Linux/KVM behaviour"; all paraphrased).
The per-vCPU state and its rules live in :mod:`sgxlab.kvm.guest`
(:class:`~sgxlab.kvm.guest.GuestLc`), shared with the exact simulation
engine; this module adds the objects, counters, faults and EINIT around it.

* **Guest configuration** (:class:`SgxGuestConfig`). Kai's option string,
  parsed exactly (``epc`` with a K/M/G suffix and a multiple of 4 KiB,
  ``lehash`` as 64 hex digits, quotes allowed as in his mail, the ``lewr``
  flag), and as a second mode the interface QEMU 6.2 merged
  (``docs/system/i386/sgx.rst``): ``-cpu ...,+sgxlc`` plus a
  ``memory-backend-epc`` object, no lehash and no lewr, guest firmware sets
  FEATURE_CONTROL bit 17 iff ``sgxlc``.
* **The initial virtual hash**, KVM's ``setup_default_sgx_lepubkeyhash()``
  (called from ``hardware_setup()``) and ``vcpu_setup_sgx_lepubkeyhash()``:
  Intel's hash when the host has a writable LC or no LC at all (its RDMSR
  faults), otherwise the value the host firmware locked in. Kai's ``lehash``,
  when given, replaces it (QEMU writes it host-initiated).
* **vCPU reset** (:meth:`Vcpu.reset`, :meth:`Vm.reset`): since Linux 5.16
  ``__vmx_vcpu_reset`` calls ``vcpu_setup_sgx_lepubkeyhash`` and QEMU's reset
  path writes the configured hash back, so the hash returns to the initial
  value; FEATURE_CONTROL is reset and guest firmware locks it again.
* **Guest RDMSR/WRMSR** of 0x8C-0x8F and 0x3A (``vmx_get_msr``/``vmx_set_msr``,
  commit 8f102445d404): a read needs guest CPUID SGX_LC; a write needs SGX_LC
  and a FEATURE_CONTROL that is unlocked or locked with
  FEAT_CTL_SGX_LC_ENABLED. An accepted write changes
  ``msr_ia32_sgxlepubkeyhash`` in memory only; no hardware WRMSR happens.
  Host-initiated accesses (QEMU's KVM_GET/SET_MSRS) skip the checks; a
  host-initiated FEATURE_CONTROL write ignores the lock and may set any bit
  of ``KVM_SUPPORTED_FEATURE_CONTROL``, LMCE included (Sean Christopherson,
  June 2022, Message-Id 20220607232353.3375324-2). Every guest access is an
  MSR exit and is counted.
* **CPUID**: KVM offers SGX_LC to guests only if the host's MSRs are
  writable (``kvm_cpu_cap_mask``; the QEMU commit says so). On such a host
  QEMU 6.2 drops a requested ``+sgxlc`` with a warning
  (``x86_cpu_filter_features``) and starts the VM with SGX_LC clear and
  FEATURE_CONTROL = LOCK | SGX_ENABLE (:attr:`Vm.warnings`); only with
  ``enforce=on`` does it refuse to start (``x86_cpu_realizefn``). Kai's 2017
  ``lewr`` (never merged) is refused there, as before: see
  :meth:`Kvm.hardware_refusal`.
* **EINIT exiting** (``vmx_write_encls_bitmap``, commit b6f084ca5538): EINIT
  is intercepted iff the host has SGX_LC, i.e. its LC is writable. A trapped
  EINIT goes through ``handle_encls_einit`` and ``sgx_virt_einit``: here the
  host policy looks at it (:meth:`sgxlab.kvm.policy.HostPolicy.check_guest_einit`),
  then the MSR-update :class:`~sgxlab.host.designs.Design` loads the guest's
  virtual values on the physical CPU the vCPU runs on and the real emulated
  EINIT runs; RAX and ZF are reflected to the guest unchanged (KVM does not
  retry). The eager-load design of Kai's RFC does not trap (its
  ``traps_einit`` is false): it writes the guest's values at each schedule-in
  (:meth:`Vcpu.load`), and, as his RFC passed guest writes through, a guest
  WRMSR while the vCPU is loaded also goes to hardware. An untrapped EINIT
  runs natively against whatever the physical CPU holds.
* **S3** (:meth:`Kvm.s3_resume`): every CPU's hash MSRs return to Intel's
  value, then each loaded vCPU is scheduled in again on its CPU, in CPU
  order (``kvm_sched_in`` -> ``kvm_arch_vcpu_load``).
* **Host EINIT** (:meth:`Kvm.host_einit`): the policy, then Linux's
  token-less flow (the design writes the enclave's own MRSIGNER).
* **The PROVISIONKEY gate** (policy ``mainline``, reference §5 and §7). On
  the host, ``sgx_encl_init()`` returns ``-EACCES`` for an enclave whose
  SECS asks for PROVISIONKEY unless the launching
  :class:`~sgxlab.host.provision.Tenant` used SGX_IOC_ENCLAVE_PROVISION
  (:class:`~sgxlab.host.provision.ProvisionRefusal`, raised before any MSR
  access or EINIT). In a guest, a VM whose QEMU passed ``/dev/sgx_provision``
  with KVM_CAP_SGX_ATTRIBUTE has ``sgx_provisioning_allowed``
  (:attr:`Vm.sgx_provisioning_allowed`); otherwise KVM traps the guest's
  ECREATE (``sgx_intercept_encls_ecreate``, counted in
  ``Vcpu.ecreate_exits``) and ``__handle_encls_ecreate`` injects #GP for a
  SECS with PROVISIONKEY (:meth:`Vcpu.ecreate`; :meth:`Vcpu.einit` does the
  ECREATE first, so a refused enclave never reaches EINIT). The launch
  enclave's token policy for PROVISIONKEY is a separate, older mechanism.

Decisions where the sources leave a choice
------------------------------------------

* *What a guest sees when the host policy refuses a trapped EINIT.* KVM has no
  such path (mainline has no policy). sgxlab reflects, with ZF set, the code
  hardware's own launch control gives when the hash MSRs do not hold the
  enclave's signer: SGX_INVALID_EINITTOKEN (16) for an ordinary enclave, and
  SGX_INVALID_ATTRIBUTE (2) for one with the controlled EINITTOKEN_KEY
  attribute (a launch enclave), where the controlled-attribute check comes
  first (SDM EINIT order). A guest driver already handles both; faulting with
  #GP instead would be a fault EINIT never raises for a well-formed request.
  ``Kvm(refusal_code=...)`` fixes one code instead. The :class:`GuestEinit`
  records ``step="policy"`` and ``policy_refused=True``.
* *Hardware consistency* (:func:`hardware_consistent`). A guest observation
  is inconsistent when no real machine with the guest's CPUID and
  FEATURE_CONTROL could produce it. sgxlab runs the same EINIT on a reference
  CPU: SGX_LC as in the guest's CPUID, hash MSRs holding the guest's virtual
  values (Intel's hard-wired hash if the guest CPUID has no SGX_LC), then
  compares that "raw hardware" code with the code the guest saw. They must be
  equal, except that SGX_UNMASKED_EVENT may appear anywhere (an interrupt can
  abort any EINIT). A guest WRMSR that was accepted although FEATURE_CONTROL
  was locked without bit 17 would be inconsistent too (KVM never does that).
  Kai's objection is the standard example: bit 17 set, the WRMSR accepted,
  the MSRs holding the enclave's signer, and EINIT still failing because of a
  host allowlist. A less obvious one: on a host whose firmware locked in a
  third-party hash, KVM hides SGX_LC from the guest yet the guest's EINIT is
  checked against that third-party hash, which no CPU without SGX_LC has.

Counters: ``Vcpu.msr_exits`` (guest RDMSR/WRMSR), ``Vcpu.encls_exits``
(trapped EINITs, each one VM exit and entry), ``Vcpu.schedule_ins``
(:meth:`Vcpu.load`). Guest firmware's boot-time setup is not counted, as
:class:`~sgxlab.hw.platform.Platform` does not count host firmware.

There is no module-level mutable state: a :class:`Kvm` owns its VMs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sgxlab.kvm.guest as guest
from sgxlab.errors import ConfigError, GeneralProtection, PolicyRefusal, SgxlabError
from sgxlab.host.designs import Design, LaunchOutcome, design_class
from sgxlab.host.provision import ProvisionRefusal, SgxEncl, Tenant, eacces_reason
from sgxlab.hw.arch import CONTROLLED_ATTRIBUTES, LeHash, SgxError, msr_name
from sgxlab.hw.einit import SigInfo, einit
from sgxlab.hw.platform import Cpu, Platform
from sgxlab.hw.structs import Einittoken, Sigstruct
from sgxlab.kvm.config import SgxGuestConfig
from sgxlab.kvm.consistency import GuestView, hardware_consistent, reference_einit
from sgxlab.kvm.guest import GuestLc, Words
from sgxlab.kvm.policy import AllowAll, HostFacts, HostPolicy, policy_by_name

if TYPE_CHECKING:
    from sgxlab.host.le import LaunchEnclave
    from sgxlab.hw.measure import Enclave


SigArg = Sigstruct | bytes | SigInfo

_U64_MAX = (1 << 64) - 1

POLICY_REFUSAL_CODE = SgxError.SGX_INVALID_EINITTOKEN
"""What a guest sees in RAX when the host policy refuses its trapped EINIT of an
ordinary enclave (see the module text)."""

POLICY_REFUSAL_CODE_LE = SgxError.SGX_INVALID_ATTRIBUTE
"""The same for an enclave with controlled attributes (a launch enclave)."""


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class GuestEinit:
    """One guest EINIT as the guest experienced it.

    ``trapped``: KVM intercepted it (``handle_encls_einit``). ``code``/``zf``:
    the guest-visible RAX and ZF. ``step``: the EINIT check that decided
    (:data:`sgxlab.hw.einit.CHECKS` or ``"commit"``), or ``"policy"`` when the
    host policy refused. ``bypass``: it launched an enclave the host policy
    forbids host root to run. ``hw_consistent``/``consistency``: see
    :func:`hardware_consistent`; ``raw_code`` is what raw hardware would have
    returned. ``cpu``: the physical CPU it ran on.
    """

    vcpu: str
    trapped: bool
    code: int
    zf: bool
    reason: str
    step: str
    policy_refused: bool
    bypass: bool
    hw_consistent: bool
    consistency: str
    raw_code: int
    signer: LeHash
    cpu: int
    outcome: LaunchOutcome | None = None

    @property
    def launched(self) -> bool:
        return self.code == 0

    ok = launched

    @property
    def name(self) -> str:
        return SgxError(self.code).name

    @property
    def rax(self) -> int:
        return self.code

    def as_json(self) -> dict[str, Any]:
        return {
            "vcpu": self.vcpu,
            "trapped": self.trapped,
            "code": self.code,
            "name": self.name,
            "zf": self.zf,
            "step": self.step,
            "policy_refused": self.policy_refused,
            "bypass": self.bypass,
            "hw_consistent": self.hw_consistent,
            "raw_code": self.raw_code,
            "signer": self.signer.hex(),
            "cpu": self.cpu,
            "reason": self.reason,
            "consistency": self.consistency,
        }

    def __str__(self) -> str:
        how = "trapped" if self.trapped else "native"
        return f"{self.vcpu} EINIT ({how}, CPU {self.cpu}): {self.name} ({self.code}) at {self.step}: {self.reason}"


def _siginfo(platform: Platform, sigstruct: SigArg) -> SigInfo:
    if isinstance(sigstruct, SigInfo):
        return sigstruct
    if isinstance(sigstruct, (bytes, bytearray)):
        return platform.siginfo(bytes(sigstruct))
    if isinstance(sigstruct, Sigstruct):
        return SigInfo.of(sigstruct)
    raise ConfigError("sigstruct", sigstruct, "expected a Sigstruct, its 1808 bytes or a SigInfo")


def _check_u64(option: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= _U64_MAX:
        raise ConfigError(option, value, "an MSR value is an integer that fits in 64 bits (EDX:EAX)")
    return value


# --------------------------------------------------------------------------- KVM


class Kvm:
    """The host hypervisor on ``platform``: its launch policy, MSR-update design and VMs.

    ``policy`` is a :class:`~sgxlab.kvm.policy.HostPolicy` or a policy name
    (default :class:`~sgxlab.kvm.policy.AllowAll`, mainline). ``design`` is a
    :class:`~sgxlab.host.designs.Design` name, subclass or instance (default
    ``"always-write"``, mainline). ``refusal_code`` fixes the code a guest
    sees when the policy refuses a trapped EINIT (default ``None``: the code
    launch control itself would give, see :meth:`policy_refusal_code`).

    Construction runs KVM's ``hardware_setup()`` part that matters here,
    :meth:`setup_default_sgx_lepubkeyhash`; on a host whose LC is not writable
    that reads CPU 0's hash MSRs once (counted) or faults (no LC).
    """

    def __init__(
        self,
        platform: Platform,
        policy: HostPolicy | str | None = None,
        design: str | type[Design] | Design = "always-write",
        *,
        refusal_code: SgxError | int | None = None,
    ) -> None:
        if not isinstance(platform, Platform):
            raise ConfigError("platform", platform, "expected a sgxlab.hw.platform.Platform")
        self.platform = platform
        if policy is None:
            policy = AllowAll()
        elif isinstance(policy, str):
            policy = policy_by_name(policy)
        if not isinstance(policy, HostPolicy):
            raise ConfigError("policy", policy, "expected a HostPolicy or a policy name")
        self.policy: HostPolicy = policy
        if isinstance(design, Design):
            if design.platform is not platform:
                raise ConfigError("design", design, "the design instance belongs to another platform")
            self.design: Design = design
        else:
            self.design = design_class(design)(platform)
        code: SgxError | None = None
        if refusal_code is not None:
            try:
                code = SgxError(refusal_code)
            except ValueError:
                raise ConfigError("refusal_code", refusal_code, "not an ENCLS status code") from None
            if code == SgxError.SUCCESS:
                raise ConfigError("refusal_code", refusal_code, "a refusal cannot report success")
        self.refusal_code: SgxError | None = code
        self.vms: list[Vm] = []
        self._next_vm = 1
        self._loaded: dict[int, Vcpu] = {}
        self.host_einits = 0
        self.sgx_pubkey_hash: LeHash = self.setup_default_sgx_lepubkeyhash()

    # -- changing the host ---------------------------------------------------------

    def _live_refusal(self, policy: HostPolicy, facts: HostFacts) -> str | None:
        for vm in self.vms:
            why = policy.check_vm(self.effective_config(vm.config), facts)
            if why is not None:
                return f"{vm.name} could not be created under it: {why}"
        return None

    def set_policy(self, policy: HostPolicy | str) -> None:
        """Switch the host launch policy (an administrator's change at run time).

        Every live VM must still be one the new policy would create;
        otherwise :class:`~sgxlab.errors.PolicyRefusal` (named after the new
        policy) and nothing changes. Each VM's ``sgx_provisioning_allowed``
        follows the new policy's gate.
        """
        if isinstance(policy, str):
            policy = policy_by_name(policy)
        if not isinstance(policy, HostPolicy):
            raise ConfigError("policy", policy, "expected a HostPolicy or a policy name")
        why = self._live_refusal(policy, self)
        if why is not None:
            raise PolicyRefusal(policy.name, why)
        self.policy = policy
        for vm in self.vms:
            vm.sgx_provisioning_allowed = guest.sgx_provisioning_allowed(
                policy.gates_provisionkey, vm.config, vm.tenant
            )

    def set_design(self, design: str | type[Design] | Design) -> None:
        """Switch the MSR-update design (a new kernel), on this platform.

        Whether guest EINIT is trapped may change with it, so every live VM
        must still be one the policy would create on the new host; otherwise
        :class:`~sgxlab.errors.PolicyRefusal` (named after the policy) and
        nothing changes. The new design starts with its boot state.
        """
        if isinstance(design, Design):
            if design.platform is not self.platform:
                raise ConfigError("design", design, "the design instance belongs to another platform")
            new = design
        else:
            new = design_class(design)(self.platform)
        facts = _HostWith(self, new)
        why = self._live_refusal(self.policy, facts)
        if why is not None:
            raise PolicyRefusal(self.policy.name, why)
        self.design = new

    # -- host facts ----------------------------------------------------------------

    def setup_default_sgx_lepubkeyhash(self) -> LeHash:
        """KVM's ``setup_default_sgx_lepubkeyhash()``: the hash new vCPUs start with
        (:func:`sgxlab.kvm.guest.setup_default_sgx_lepubkeyhash` on CPU 0).

        Intel's when the host has SGX_LC (writable: guests may write at will),
        or when RDMSR of IA32_SGXLEPUBKEYHASH0 faults (no LC: Intel's hash is
        fused in); otherwise the value the host firmware locked in.
        """
        return guest.setup_default_sgx_lepubkeyhash(self.lc_writable, self.platform.cpus[0])

    @property
    def lc_writable(self) -> bool:
        """The host's LE hash MSRs are writable (Linux keeps X86_FEATURE_SGX_LC)."""
        return self.platform.lc_writable

    @property
    def traps_einit(self) -> bool:
        """Guest EINIT is intercepted: the host LC is writable and the design traps
        (:func:`sgxlab.kvm.guest.traps_einit`)."""
        return guest.traps_einit(self.platform.lc_writable, self.design)

    def policy_refusal_code(self, enclave: Enclave) -> SgxError:
        """The code a guest sees when the policy refuses its EINIT of ``enclave``.

        ``refusal_code`` if one was fixed; otherwise what hardware launch
        control answers when the MSRs do not hold the signer: 2 if the SECS
        has a controlled attribute (EINITTOKEN_KEY), else 16.
        """
        if self.refusal_code is not None:
            return self.refusal_code
        if enclave.secs.attributes.flags & CONTROLLED_ATTRIBUTES:
            return POLICY_REFUSAL_CODE_LE
        return POLICY_REFUSAL_CODE

    def why_untrapped(self) -> str:
        if not self.lc_writable:
            return f"the host's launch control is not writable (firmware {self.platform.firmware.name})"
        if not self.design.traps_einit:
            return f"design {self.design.name} does not trap EINIT"
        return "EINIT is trapped"

    def initial_lehash(self, config: SgxGuestConfig) -> LeHash:
        """The value a new (or reset) vCPU's virtual IA32_SGXLEPUBKEYHASH starts with."""
        return guest.initial_lehash(config, self.sgx_pubkey_hash)

    def guest_cpuid_sgx_lc(self, config: SgxGuestConfig) -> bool:
        """Guest CPUID.(7,0):ECX[30]: what KVM offers (rfc2017), or the sgxlc flag
        unless QEMU filtered it out (merged; :func:`sgxlab.kvm.guest.guest_cpuid_sgx_lc`)."""
        return guest.guest_cpuid_sgx_lc(config, self.lc_writable)

    def guest_feature_control(self, config: SgxGuestConfig) -> int:
        """IA32_FEATURE_CONTROL as guest firmware locks it: bit 17 iff lewr, or
        iff the guest's CPUID has SGX_LC (merged)."""
        return guest.guest_feature_control(config, self.guest_cpuid_sgx_lc(config))

    def qemu_warnings(self, config: SgxGuestConfig) -> tuple[str, ...]:
        """The warnings QEMU 6.2 prints when it creates ``config`` here: one per
        CPU flag it drops because KVM does not offer it (``+sgxlc`` on a host
        whose launch control is not writable; ``x86_cpu_filter_features``
        reports them when ``check`` or ``enforce`` is on, and ``check`` is on
        by default). With ``enforce=on`` QEMU then refuses to start the VM
        (:meth:`hardware_refusal`). Kai's 2017 form has none."""
        return tuple(guest.qemu_filter_warning(f) for f in guest.qemu_filtered_features(config, self.lc_writable))

    def effective_config(self, config: SgxGuestConfig) -> SgxGuestConfig:
        """``config`` as the VM gets it: with a filtered ``sgxlc`` switched off.

        The host policy judges this one (:meth:`would_create`): a guest whose
        ``+sgxlc`` QEMU dropped has no launch control to police.
        """
        if "sgxlc" in guest.qemu_filtered_features(config, self.lc_writable):
            return dataclasses.replace(config, sgxlc=False)
        return config

    def hardware_refusal(self, config: SgxGuestConfig) -> str | None:
        """Why this host cannot give the guest ``config`` at all, or ``None``.

        * Kai's 2017 ``lewr`` on a host whose launch control is not writable:
          KVM cannot offer SGX_LC, so the guest firmware's bit 17 could not be
          backed. That interface was never merged and its QEMU code is not at
          hand (reference §8); sgxlab keeps refusing the VM, as a user saw
          QEMU do in intel/qemu-sgx#14.
        * QEMU 6.2's ``+sgxlc`` there is dropped with a warning
          (:meth:`qemu_warnings`) and the VM starts without launch control;
          only with ``enforce=on`` does ``x86_cpu_realizefn`` refuse it.
        * A ``lehash`` the host cannot honour: guest EINIT runs untrapped
          against the host's hash, so any other value would be a lie.
        """
        if config.mode == "rfc2017" and config.lewr and not self.lc_writable:
            return (
                f"lewr needs SGX_LC in the guest, but KVM offers SGX_LC only when the host's "
                f"LE hash MSRs are writable, and this host's are not (firmware {self.platform.firmware.name}); "
                "Kai's 2017 -sgx interface (never merged) cannot give it, and sgxlab refuses such a VM "
                "(as reported for QEMU in intel/qemu-sgx#14)"
            )
        why = guest.qemu_enforce_refusal(config, self.lc_writable)
        if why is not None:
            return (
                f"QEMU refuses to start the VM: {why} (enforce=on, and sgxlc was filtered out: KVM offers "
                f"SGX_LC only when the host's LE hash MSRs are writable, and this host's are not, "
                f"firmware {self.platform.firmware.name})"
            )
        if config.lehash is not None and not self.lc_writable and config.lehash != self.sgx_pubkey_hash:
            return (
                f"lehash {config.lehash.short()} cannot be honoured: guest EINIT runs untrapped here "
                f"({self.why_untrapped()}), against the host's hash {self.sgx_pubkey_hash.short()}"
            )
        return None

    def would_create(
        self, config: SgxGuestConfig | str, tenant: Tenant | None = None
    ) -> tuple[bool, str | None, str | None]:
        """``(created, refusing_party, reason)`` for ``config``, with no side effects.

        The refusing party is ``"kvm"`` (hardware, or QEMU with
        ``enforce=on``) or the policy's name. The policy sees
        :meth:`effective_config`. A VM created with warnings is still created
        (:meth:`qemu_warnings`). ``tenant``: the process QEMU runs as; with
        ``enforce=on``, a ``+sgx-provisionkey`` it cannot back (no
        ``/dev/sgx_provision`` on a gating host) makes QEMU refuse to start.
        """
        if isinstance(config, str):
            config = SgxGuestConfig.parse(config)
        why = self.hardware_refusal(config)
        if why is not None:
            return False, "kvm", why
        if config.enforce and guest.qemu_provisionkey_warning(
            config, self.policy.gates_provisionkey, Tenant() if tenant is None else tenant
        ):
            return (
                False,
                "kvm",
                (
                    "QEMU refuses to start the VM: Host doesn't support requested features (enforce=on, and "
                    "sgx-provisionkey was filtered out: its process could not open /dev/sgx_provision, so KVM "
                    "has no KVM_CAP_SGX_ATTRIBUTE for it)"
                ),
            )
        why = self.policy.check_vm(self.effective_config(config), self)
        if why is not None:
            return False, self.policy.name, why
        return True, None, None

    # -- VMs -----------------------------------------------------------------------

    def create_vm(
        self,
        config: SgxGuestConfig | str,
        nvcpus: int = 1,
        name: str | None = None,
        *,
        guest_firmware: bool = True,
        tenant: Tenant | None = None,
    ) -> Vm:
        """Create a VM, or raise :class:`~sgxlab.errors.PolicyRefusal`.

        The refusal's ``policy`` is ``"kvm"`` when the host hardware cannot
        give the configuration, else the host policy's name. With
        ``guest_firmware=False`` the vCPUs start with FEATURE_CONTROL 0
        (unlocked), as before guest firmware ran; the caller plays firmware.
        ``tenant`` is the process QEMU runs as (default: one without
        ``/dev/sgx_provision``); with ``config.provisionkey`` it decides
        whether the VM gets KVM_CAP_SGX_ATTRIBUTE
        (:func:`sgxlab.kvm.guest.sgx_provisioning_allowed`).
        """
        if tenant is None:
            tenant = Tenant()
        if not isinstance(tenant, Tenant):
            raise ConfigError("tenant", tenant, "expected a sgxlab.host.provision.Tenant")
        if isinstance(config, str):
            config = SgxGuestConfig.parse(config)
        if not isinstance(config, SgxGuestConfig):
            raise ConfigError("config", config, "expected a SgxGuestConfig or an option string")
        if not isinstance(nvcpus, int) or isinstance(nvcpus, bool) or not 1 <= nvcpus <= 1024:
            raise ConfigError("nvcpus", nvcpus, "expected an integer in 1..1024")
        if name is None:
            name = f"vm{self._next_vm}"
        if not isinstance(name, str) or not name:
            raise ConfigError("name", name, "a VM name is a non-empty string")
        if any(vm.name == name for vm in self.vms):
            raise ConfigError("name", name, "a VM with that name exists on this host")
        ok, party, why = self.would_create(config, tenant)
        if not ok:
            assert party is not None and why is not None
            raise PolicyRefusal(party, why)
        self._next_vm += 1
        vm = Vm(self, name, config, nvcpus, guest_firmware=guest_firmware, tenant=tenant)
        self.vms.append(vm)
        return vm

    def s3_resume(self) -> int:
        """Suspend to RAM and resume with the VMs running (:func:`sgxlab.kvm.guest.s3_resume`).

        Every CPU's hash MSRs return to Intel's value and the design's
        ``on_epc_loss`` runs; then each loaded vCPU is scheduled in again on
        its CPU, in CPU order (counted in its ``schedule_ins``). Returns the
        number of vCPUs scheduled in again.
        """
        current = sorted(self._loaded.items())
        n, _, _ = guest.s3_resume(self.platform, self.design, [(c, v.lc.words) for c, v in current])
        for _, v in current:
            v.schedule_ins += 1
        return n

    def destroy_vm(self, vm: Vm) -> None:
        """Tear a VM down: its vCPUs are put and it leaves :attr:`vms`."""
        for v in vm.vcpus:
            v.put()
        if vm in self.vms:
            self.vms.remove(vm)
        vm.destroyed = True

    # -- host EINIT ----------------------------------------------------------------

    def host_gate_refusal(self, attributes: int, tenant: Tenant | None = None) -> str | None:
        """``sgx_encl_init()``'s first test for ``tenant``'s enclave with SECS
        ``attributes`` (flags): the -EACCES sentence, or ``None``. Only a policy
        that :attr:`~sgxlab.kvm.policy.HostPolicy.gates_provisionkey` gates."""
        if tenant is None:
            tenant = Tenant()
        if not isinstance(tenant, Tenant):
            raise ConfigError("tenant", tenant, "expected a sgxlab.host.provision.Tenant")
        if not self.policy.gated_attributes(attributes):
            return None
        encl = SgxEncl.for_tenant(attributes, tenant)
        if encl.sgx_encl_init_check() == 0:
            return None
        return eacces_reason(attributes, tenant.name)

    def host_einit(
        self,
        cpu_index: int,
        sigstruct: SigArg,
        enclave: Enclave,
        token: Einittoken | None = None,
        *,
        tenant: Tenant | None = None,
    ) -> LaunchOutcome:
        """The host kernel's own EINIT on CPU ``cpu_index``, for ``tenant``.

        The policy first (:class:`~sgxlab.errors.PolicyRefusal` if it says no;
        the ioctl fails before any EINIT). Then ``sgx_encl_init()``'s
        PROVISIONKEY test (:meth:`host_gate_refusal`): ``-EACCES`` raises
        :class:`~sgxlab.host.provision.ProvisionRefusal` (``errno`` -13)
        before any MSR access or EINIT. Then, on a host with writable LC,
        the design loads the enclave's own MRSIGNER (Linux's token-less
        ``sgx_encl_init``) or the policy's ``host_lehash`` (a host with one
        LE) and runs EINIT. On a host without writable LC, EINIT runs against
        the fixed hash and needs a token (mainline Linux would not even load
        its driver there; this is the out-of-tree flow). A vCPU loaded on that
        CPU is put first: the host task preempted it.
        """
        info = _siginfo(self.platform, sigstruct)
        why = self.policy.check_host_einit(info.mrsigner)
        if why is not None:
            raise PolicyRefusal(self.policy.name, why)
        why = self.host_gate_refusal(enclave.secs.attributes.flags, tenant)
        if why is not None:
            raise ProvisionRefusal(why)
        cpu = self.platform.cpu(cpu_index)
        other = self._loaded.get(cpu.index)
        if other is not None:
            other.put()
        self.host_einits += 1
        if not self.lc_writable:
            return LaunchOutcome(einit(cpu, info, enclave, token), 1, 0, 0, 0)
        target = self.policy.host_lehash if self.policy.host_lehash is not None else info.mrsigner
        return self.design.einit(cpu, target.words, info, enclave, token)

    # -- trapped guest EINIT ---------------------------------------------------------

    def handle_encls_einit(
        self, vcpu: Vcpu, sigstruct: SigInfo, enclave: Enclave, token: Einittoken | None
    ) -> tuple[LaunchOutcome | None, str | None]:
        """KVM's ``handle_encls_einit`` for a trapped guest EINIT on ``vcpu``.

        Counts the ENCLS exit, asks the host policy (the hook mainline KVM
        does not have), then calls :meth:`sgx_virt_einit` with the vCPU's
        virtual hash. Returns ``(outcome, None)`` or ``(None, refusal)``.
        """
        vcpu.encls_exits += 1
        refusal = self.policy.check_guest_einit(vcpu.vm, sigstruct.mrsigner)
        if refusal is not None:
            return None, refusal
        assert vcpu.pcpu is not None
        return self.sgx_virt_einit(vcpu.pcpu, vcpu.lc.words, sigstruct, enclave, token), None

    def sgx_virt_einit(
        self, cpu: Cpu, words: Words, sigstruct: SigArg, enclave: Enclave, token: Einittoken | None = None
    ) -> LaunchOutcome:
        """``sgx_virt_einit()`` (arch/x86/kernel/cpu/sgx/virt.c): on a host with
        writable LC, load ``words`` on ``cpu`` the design's way and EINIT
        (mainline: preemption off, ``sgx_update_lepubkeyhash``, ``__einit``; no
        cache, no retry); otherwise a plain EINIT."""
        if not self.lc_writable:
            return LaunchOutcome(einit(cpu, sigstruct, enclave, token), 1, 0, 0, 0)
        return self.design.einit(cpu, words, sigstruct, enclave, token, retry_unmasked=False)

    # -- counters ------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """Totals over live VMs: MSR exits, ENCLS[EINIT] exits, trapped ECREATEs,
        schedule-ins; host EINITs."""
        return {
            "msr_exits": sum(vm.msr_exits for vm in self.vms),
            "encls_exits": sum(vm.encls_exits for vm in self.vms),
            "ecreate_exits": sum(vm.ecreate_exits for vm in self.vms),
            "schedule_ins": sum(v.schedule_ins for vm in self.vms for v in vm.vcpus),
            "host_einits": self.host_einits,
        }

    def __repr__(self) -> str:
        return (
            f"<Kvm on {self.platform.firmware.name} host, policy {self.policy.describe()}, "
            f"design {self.design.name}, EINIT {'trapped' if self.traps_einit else 'native'}, "
            f"{len(self.vms)} VM{'s' if len(self.vms) != 1 else ''}>"
        )


class _HostWith:
    """``kvm``'s host facts with another design (what :meth:`Kvm.set_design` asks the policy)."""

    def __init__(self, kvm: Kvm, design: Design) -> None:
        self._kvm = kvm
        self._design = design

    @property
    def traps_einit(self) -> bool:
        return guest.traps_einit(self._kvm.lc_writable, self._design)

    def why_untrapped(self) -> str:
        if not self._kvm.lc_writable:
            return self._kvm.why_untrapped()
        if not self._design.traps_einit:
            return f"design {self._design.name} does not trap EINIT"
        return "EINIT is trapped"

    def initial_lehash(self, config: SgxGuestConfig) -> LeHash:
        return self._kvm.initial_lehash(config)


class Vm:
    """A guest: its configuration and vCPUs. Made by :meth:`Kvm.create_vm`.

    ``config`` is what QEMU was asked for; ``warnings`` what QEMU printed
    while creating the VM (a ``+sgxlc`` it dropped, :meth:`Kvm.qemu_warnings`);
    ``cpuid_sgx_lc``, ``feature_control`` (as guest firmware locks it) and
    ``initial_lehash`` are what each vCPU is given. ``tenant`` is the process
    QEMU runs as and ``sgx_provisioning_allowed`` whether it gave the VM
    KVM_CAP_SGX_ATTRIBUTE. ``guest_firmware=False``:
    the vCPUs start, and come back from :meth:`reset`, with FEATURE_CONTROL 0,
    and the caller plays guest firmware.
    """

    def __init__(
        self,
        kvm: Kvm,
        name: str,
        config: SgxGuestConfig,
        nvcpus: int,
        *,
        guest_firmware: bool = True,
        tenant: Tenant | None = None,
    ) -> None:
        self.kvm = kvm
        self.name = name
        self.config = config
        self.destroyed = False
        self.guest_firmware = guest_firmware
        self.tenant = Tenant() if tenant is None else tenant
        gates = kvm.policy.gates_provisionkey
        self.sgx_provisioning_allowed: bool = guest.sgx_provisioning_allowed(gates, config, self.tenant)
        """KVM's ``kvm->arch.sgx_provisioning_allowed``: set by KVM_CAP_SGX_ATTRIBUTE."""
        pk_warning = guest.qemu_provisionkey_warning(config, gates, self.tenant)
        self.warnings: tuple[str, ...] = kvm.qemu_warnings(config) + (() if pk_warning is None else (pk_warning,))
        self.cpuid_sgx_lc = kvm.guest_cpuid_sgx_lc(config)
        self.feature_control = kvm.guest_feature_control(config)
        self.initial_lehash = kvm.initial_lehash(config)
        self.vcpus: list[Vcpu] = [Vcpu(self, i) for i in range(nvcpus)]

    def vcpu(self, i: int) -> Vcpu:
        if isinstance(i, int) and not isinstance(i, bool) and 0 <= i < len(self.vcpus):
            return self.vcpus[i]
        raise ConfigError("vcpu", i, f"{self.name} has vCPUs 0..{len(self.vcpus) - 1}")

    def reset(self) -> None:
        """System reset: every vCPU is reset (:meth:`Vcpu.reset`)."""
        for v in self.vcpus:
            v.reset()

    @property
    def msr_exits(self) -> int:
        return sum(v.msr_exits for v in self.vcpus)

    @property
    def encls_exits(self) -> int:
        return sum(v.encls_exits for v in self.vcpus)

    @property
    def ecreate_exits(self) -> int:
        return sum(v.ecreate_exits for v in self.vcpus)

    @property
    def intercepts_ecreate(self) -> bool:
        """KVM's ``sgx_intercept_encls_ecreate`` for this VM."""
        return guest.sgx_intercept_encls_ecreate(self.sgx_provisioning_allowed)

    def __repr__(self) -> str:
        return f"<Vm {self.name} {self.config.to_option()!r}, {len(self.vcpus)} vCPUs>"


class Vcpu:
    """One virtual CPU: its launch-control state ``lc``, physical placement and counters.

    ``lc`` is a :class:`~sgxlab.kvm.guest.GuestLc`, the model shared with
    the exact engine; ``cpuid_sgx_lc``, ``msr_ia32_feature_control`` and
    ``msr_ia32_sgxlepubkeyhash`` (KVM's ``vcpu_vmx`` fields: the guest's
    four hash words, in memory only, as a tuple) read it. ``pcpu`` is the
    physical :class:`~sgxlab.hw.platform.Cpu` the vCPU is loaded on
    (``None`` when put). ``feature_control`` overrides the FEATURE_CONTROL
    it starts with (default: as the VM's guest firmware locks it, or 0).
    """

    def __init__(self, vm: Vm, index: int, feature_control: int | None = None) -> None:
        self.vm = vm
        self.index = index
        self.label = f"vcpu {index} of {vm.name}"
        self.lc = GuestLc(vm.initial_lehash.words, vm.cpuid_sgx_lc, vm.feature_control, firmware=vm.guest_firmware)
        if feature_control is not None:
            self.lc.feature_control = _check_u64("feature_control", feature_control)
        self.msr_exits = 0
        self.encls_exits = 0
        self.ecreate_exits = 0
        self.schedule_ins = 0
        self.gp_count = 0
        self.pcpu: Cpu | None = None
        self.last_pcpu = index % vm.kvm.platform.ncpus

    def vcpu_setup_sgx_lepubkeyhash(self) -> None:
        """KVM's ``vcpu_setup_sgx_lepubkeyhash()`` plus QEMU's host-initiated lehash write:
        the hash goes back to the VM's initial value (FEATURE_CONTROL is untouched;
        :meth:`reset` does both)."""
        self.lc.words = self.lc.initial

    # -- state ---------------------------------------------------------------------

    @property
    def cpuid_sgx_lc(self) -> bool:
        return self.lc.cpuid_sgx_lc

    @property
    def msr_ia32_feature_control(self) -> int:
        return self.lc.feature_control

    feature_control = msr_ia32_feature_control

    @property
    def msr_ia32_sgxlepubkeyhash(self) -> Words:
        return self.lc.words

    lehash_words = msr_ia32_sgxlepubkeyhash

    @property
    def wrote_lehash(self) -> bool:
        return self.lc.wrote

    @property
    def lehash(self) -> LeHash:
        return LeHash.from_words(self.lc.words)

    def view(self) -> GuestView:
        lc = self.lc
        return GuestView(self.vm.config, lc.cpuid_sgx_lc, lc.feature_control, lc.words, lc.wrote)

    def _gp(self, reason: str, msr: int, value: int | None) -> GeneralProtection:
        self.gp_count += 1
        return GeneralProtection(reason, msr=msr, msr_name=msr_name(msr), value=value, cpu=self.label)

    def _alive(self) -> Kvm:
        if self.vm.destroyed:
            raise SgxlabError(f"{self.label}: the VM was destroyed")
        return self.vm.kvm

    # -- MSRs ------------------------------------------------------------------------

    def rdmsr(self, msr: int, *, host_initiated: bool = False) -> int:
        """Guest (or, with ``host_initiated``, QEMU's) RDMSR, by KVM's ``vmx_get_msr``
        rules (:meth:`GuestLc.read_refusal <sgxlab.kvm.guest.GuestLc.read_refusal>`)."""
        self._alive()
        if not host_initiated:
            self.msr_exits += 1
        why = self.lc.read_refusal(msr, host_initiated)
        if why is not None:
            raise self._gp(why, msr, None)
        return self.lc.read(msr)

    def wrmsr(self, msr: int, value: int, *, host_initiated: bool = False) -> None:
        """Guest (or QEMU's) WRMSR, by KVM's ``vmx_set_msr`` rules
        (:meth:`GuestLc.wrmsr <sgxlab.kvm.guest.GuestLc.wrmsr>`).

        An accepted hash write changes memory only, except under a design
        that loads on schedule (eager-load) while this vCPU is loaded on a
        host with writable LC: Kai's RFC passed the guest's value through, so
        the physical CPU is written as well (:func:`sgxlab.kvm.guest.passes_through`).
        """
        kvm = self._alive()
        if isinstance(msr, bool) or not isinstance(msr, int):
            raise ConfigError("msr", msr, "an MSR number is an integer")
        value = _check_u64(f"{self.label} MSR {msr:#x}", value)
        if not host_initiated:
            self.msr_exits += 1
        through = self.pcpu if guest.passes_through(kvm.lc_writable, kvm.design) else None
        why = self.lc.wrmsr(msr, value, host_initiated, through)
        if why is not None:
            raise self._gp(why, msr, value)

    def reset(self) -> None:
        """Reset this vCPU (QEMU's system reset; KVM 5.16+).

        QEMU kicks the vCPU out of KVM_RUN first, so it is put; then
        :meth:`GuestLc.reset <sgxlab.kvm.guest.GuestLc.reset>`: the virtual
        hash returns to the VM's initial value (KVM's
        ``vcpu_setup_sgx_lepubkeyhash`` from ``__vmx_vcpu_reset``, then QEMU's
        configured hash via ``x86_cpu_reset_hold`` and ``kvm_put_msrs``), the
        wrote flag is cleared and FEATURE_CONTROL is locked again as guest
        firmware locked it at boot (0 for a VM made with
        ``guest_firmware=False``). The next KVM_RUN schedules it in again.
        Counters are kept.
        """
        self._alive()
        self.put()
        self.lc.reset(firmware=self.vm.guest_firmware)

    # -- scheduling ------------------------------------------------------------------

    def load(self, cpu_index: int) -> None:
        """Schedule this vCPU in on physical CPU ``cpu_index`` (KVM's vcpu_load).

        A vCPU already there is put first. The design's ``vcpu_load`` hook
        runs (eager-load writes the four words to hardware); on a host whose
        LC is not writable there is nothing it could write, so it is skipped
        (:func:`sgxlab.kvm.guest.schedule_in_hook`).

        Loading a vCPU again on the CPU it is already loaded on is a
        schedule-in as well (counted, and the hook runs): that is what
        happens when its thread runs again there, e.g. after an S3 resume
        thaws it (:meth:`Kvm.s3_resume`), and ``kvm_arch_vcpu_load`` runs once
        more (from the preempt notifier ``kvm_sched_in`` in
        ``virt/kvm/kvm_main.c``, or from the ``vcpu_load`` of the next KVM_RUN).
        """
        kvm = self._alive()
        cpu = kvm.platform.cpu(cpu_index)
        other = kvm._loaded.get(cpu.index)
        if other is not None and other is not self:
            other.put()
        if self.pcpu is not None and self.pcpu is not cpu:
            self.put()
        self.pcpu = cpu
        self.last_pcpu = cpu.index
        kvm._loaded[cpu.index] = self
        self.schedule_ins += 1
        hook = guest.schedule_in_hook(kvm.lc_writable, kvm.design)
        if hook is not None:
            hook(cpu, self.lc.words)

    def put(self) -> None:
        """Schedule this vCPU out (KVM's vcpu_put)."""
        if self.pcpu is None:
            return
        loaded = self.vm.kvm._loaded
        if loaded.get(self.pcpu.index) is self:
            del loaded[self.pcpu.index]
        self.pcpu = None

    # -- ECREATE ---------------------------------------------------------------------

    def ecreate(self, enclave: Enclave) -> None:
        """The guest executes ENCLS[ECREATE] for ``enclave``'s SECS.

        If the VM lacks ``sgx_provisioning_allowed``, KVM intercepts it
        (``sgx_intercept_encls_ecreate``; counted in ``ecreate_exits``) and
        ``__handle_encls_ecreate`` injects #GP
        (:class:`~sgxlab.errors.GeneralProtection`, ``instruction="ECREATE"``)
        for a SECS with PROVISIONKEY; otherwise ECREATE succeeds. It touches
        no hash MSR. (The enclave's pages are the emulator's own; this is the
        permission check, not a second build.)
        """
        self._alive()
        why = self.lc.encls_refusal()
        if why is not None:
            self.gp_count += 1
            raise GeneralProtection(why, instruction="ECREATE", cpu=self.label)
        if not self.vm.intercepts_ecreate:
            return
        self.ecreate_exits += 1
        why = guest.handle_encls_ecreate_refusal(enclave.secs.attributes.flags, self.vm.sgx_provisioning_allowed)
        if why is not None:
            self.gp_count += 1
            raise GeneralProtection(why, instruction="ECREATE", cpu=self.label)

    # -- EINIT -----------------------------------------------------------------------

    def einit(self, sigstruct: SigArg, enclave: Enclave, token: Einittoken | None = None) -> GuestEinit:
        """The guest executes ENCLS[EINIT].

        If the vCPU is not loaded it is loaded on its last physical CPU first
        (KVM_RUN does vcpu_load). Trapped (host LC writable and the design
        traps): ``handle_encls_einit`` asks the host policy, then the design
        runs EINIT with the guest's virtual words on the vCPU's physical CPU.
        Not trapped: EINIT runs natively there. An already initialized SECS
        faults (#GP), as on hardware.

        An enclave whose ECREATE this VM's KVM refuses (the PROVISIONKEY
        gate, :meth:`ecreate`) cannot exist in the guest, so it never gets
        here: the ECREATE's #GP is raised instead (the trapped ECREATE is
        counted), with no MSR access and no EINIT.
        """
        kvm = self._alive()
        why = self.lc.encls_refusal()
        if why is not None:
            # handle_encls(): #GP unless the guest's BIOS enabled SGX
            # (sgx_enabled_in_guest_bios: FEATURE_CONTROL locked with SGX_ENABLE).
            self.gp_count += 1
            raise GeneralProtection(why, instruction="EINIT", cpu=self.label)
        if guest.handle_encls_ecreate_refusal(enclave.secs.attributes.flags, self.vm.sgx_provisioning_allowed):
            self.ecreate(enclave)  # raises the #GP of the trapped ECREATE
        if enclave.initialized:
            self.gp_count += 1
            raise GeneralProtection(
                "the SECS is already initialized: EINIT on an initialized enclave faults",
                instruction="EINIT",
                cpu=self.label,
            )
        if self.pcpu is None:
            self.load(self.last_pcpu)
        cpu = self.pcpu
        assert cpu is not None
        info = _siginfo(kvm.platform, sigstruct)
        signer = info.mrsigner
        view = self.view()
        raw = reference_einit(kvm.platform, view, info, enclave, token, cpu_index=cpu.index)
        trapped = kvm.traps_einit
        outcome: LaunchOutcome | None = None
        refusal: str | None = None
        if trapped:
            outcome, refusal = kvm.handle_encls_einit(self, info, enclave, token)
        if refusal is not None:
            shown = kvm.policy_refusal_code(enclave)
            code = int(shown)
            step = "policy"
            reason = (
                f"host policy {kvm.policy.name} refused the trapped EINIT: {refusal}; "
                f"KVM reflected {shown.name} ({code}) with ZF set"
            )
        else:
            result = outcome.result if outcome is not None else einit(cpu, info, enclave, token)
            code, step, reason = int(result.code), result.check, result.reason
        launched = code == 0
        bypass = launched and not kvm.policy.permits(signer)
        if bypass:
            reason += f"; POLICY BYPASS: the host's {kvm.policy.name} policy forbids signer {signer.short()}"
        consistent, why = hardware_consistent(view, int(raw.code), code)
        return GuestEinit(
            vcpu=self.label,
            trapped=trapped,
            code=code,
            zf=code != 0,
            reason=reason,
            step=step,
            policy_refused=refusal is not None,
            bypass=bypass,
            hw_consistent=consistent,
            consistency=why,
            raw_code=int(raw.code),
            signer=signer,
            cpu=cpu.index,
            outcome=outcome,
        )

    def __repr__(self) -> str:
        where = f"on CPU {self.pcpu.index}" if self.pcpu is not None else "not loaded"
        lc = "SGX_LC" if self.cpuid_sgx_lc else "no SGX_LC"
        return (
            f"<Vcpu {self.label}, {lc}, FEATURE_CONTROL={self.msr_ia32_feature_control:#x}, "
            f"lehash={self.lehash.short()}, {where}>"
        )


def launch_le_in_guest(vcpu: Vcpu, le: LaunchEnclave, *, sigstruct: SigArg | None = None) -> GuestEinit:
    """Run a launch enclave inside a guest: EINIT its image on ``vcpu``.

    On success the LE is bound to the physical CPU it ran on, so
    ``le.get_token`` works; its tokens verify wherever the guest's hash (real
    or virtual) is the LE's signer. ``sigstruct`` may pass the LE's SIGSTRUCT
    bytes to reuse the platform's signature cache.
    """
    enclave = le.fresh()
    r = vcpu.einit(le.sigstruct if sigstruct is None else sigstruct, enclave)
    if r.launched:
        le.enclave = enclave
        le.cpu = vcpu.vm.kvm.platform.cpu(r.cpu)
    return r
