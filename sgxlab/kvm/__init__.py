"""The hypervisor layer: SGX guests under KVM and QEMU, trapped EINIT, host launch policies.

* :mod:`sgxlab.kvm.config` -- a guest as QEMU is asked to create it (Kai
  Huang's ``-sgx`` option string, QEMU 6.2's ``sgxlc``);
* :mod:`sgxlab.kvm.guest` -- the guest's launch-control state, written once
  and used by both :mod:`sgxlab.kvm.vcpu` and the exact simulation engine;
* :mod:`sgxlab.kvm.vcpu` -- :class:`Kvm`, :class:`Vm`, :class:`Vcpu`: vCPUs,
  guest MSR accesses and trapped EINIT;
* :mod:`sgxlab.kvm.policy` -- host launch policies (all six listed in
  :data:`~sgxlab.kvm.policy.POLICY_CATALOG`);
* :mod:`sgxlab.kvm.consistency` -- could real hardware have shown a guest
  what it saw?

The names below are re-exported here for convenience.
"""

from sgxlab.kvm.config import MAX_EPC, GuestOptionError, SgxGuestConfig, format_size, parse_size
from sgxlab.kvm.consistency import GuestView, hardware_consistent, reference_einit
from sgxlab.kvm.guest import GuestLc
from sgxlab.kvm.policy import (
    ENFORCING_POLICIES,
    HOST_POLICY_NAMES,
    POLICIES,
    POLICY_CATALOG,
    POLICY_NAMES,
    AllowAll,
    Allowlist,
    ApprovedSet,
    HostAllowlist,
    HostPolicy,
    Mainline,
    PolicyInfo,
    SingleLE,
    policy_by_name,
)
from sgxlab.kvm.vcpu import (
    POLICY_REFUSAL_CODE,
    POLICY_REFUSAL_CODE_LE,
    GuestEinit,
    Kvm,
    Vcpu,
    Vm,
    launch_le_in_guest,
)

__all__ = [
    "MAX_EPC",
    "GuestOptionError",
    "SgxGuestConfig",
    "format_size",
    "parse_size",
    "GuestView",
    "hardware_consistent",
    "reference_einit",
    "GuestLc",
    "ENFORCING_POLICIES",
    "HOST_POLICY_NAMES",
    "POLICIES",
    "POLICY_CATALOG",
    "POLICY_NAMES",
    "AllowAll",
    "Allowlist",
    "ApprovedSet",
    "HostAllowlist",
    "HostPolicy",
    "Mainline",
    "PolicyInfo",
    "SingleLE",
    "policy_by_name",
    "POLICY_REFUSAL_CODE",
    "POLICY_REFUSAL_CODE_LE",
    "GuestEinit",
    "Kvm",
    "Vcpu",
    "Vm",
    "launch_le_in_guest",
]
