"""One vCPU's launch-control state and KVM's rules for it, written once.

:class:`GuestLc` is what KVM keeps per vCPU for SGX launch control: the four
virtual IA32_SGXLEPUBKEYHASH words (``vcpu_vmx.msr_ia32_sgxlepubkeyhash``,
memory only), the guest's CPUID SGX_LC bit and its IA32_FEATURE_CONTROL,
with the guest's RDMSR/WRMSR rules, the ENCLS #GP check and vCPU reset. The
functions beside it are the host's side: the initial value, whether EINIT is
trapped, whether an accepted guest write also reaches hardware, the
schedule-in hook and the reload after S3. :class:`sgxlab.kvm.vcpu.Vcpu`
delegates to this module, and so does the exact simulation engine
(:mod:`sgxlab.sim.exact`), so the two cannot drift apart; that is why the
state is a small slotted class over ints and tuples and the hot calls
(:meth:`GuestLc.lewr`, :func:`schedule_in_hook`) allocate nothing.

Sources (``../shared/reference/linux-kvm-qemu.md`` §2 and §5, paraphrased):

* ``vmx_get_msr``/``vmx_set_msr`` (commit 8f102445d404): a guest read of
  0x8C-0x8F needs CPUID SGX_LC; a guest write needs SGX_LC and a
  FEATURE_CONTROL that is unlocked or locked with bit 17; the write only
  changes memory. Host-initiated accesses (QEMU's KVM_GET/SET_MSRS) skip
  those checks. A guest write of FEATURE_CONTROL needs it unlocked and only
  the guest's valid bits (LOCK, SGX_ENABLE, and bit 17 iff CPUID SGX_LC:
  ``vmx_vcpu_after_set_cpuid``). A host-initiated one ignores the lock and
  accepts every bit of ``KVM_SUPPORTED_FEATURE_CONTROL`` (LOCK, VMX inside
  and outside SMX, SGX_LC_ENABLED, SGX_ENABLED and LMCE), since Sean
  Christopherson's June 2022 patch, Message-Id ``20220607232353.3375324-2``
  (``is_vmx_feature_control_msr_valid``); before it (5.13-5.18) host writes
  were held to the guest's valid bits.
* EINIT exiting (``vmx_write_encls_bitmap``, commit b6f084ca5538): EINIT is
  intercepted iff the host has SGX_LC, i.e. its launch control is writable;
  sgxlab adds the MSR-update design's say (``Design.traps_einit``: Kai
  Huang's 2017 eager-load design does not trap).
* ``handle_encls``: #GP unless the guest's firmware enabled SGX, i.e.
  FEATURE_CONTROL locked with SGX_ENABLE (``sgx_enabled_in_guest_bios``).
* The initial value: ``setup_default_sgx_lepubkeyhash`` (from
  ``hardware_setup``; Intel's hash on a host with writable or no launch
  control, otherwise what the host's firmware locked in), copied into each
  vCPU by ``vcpu_setup_sgx_lepubkeyhash``; then QEMU writes the configured
  hash host-initiated. Since Linux 5.16 ``__vmx_vcpu_reset`` calls
  ``vcpu_setup_sgx_lepubkeyhash``, and QEMU's reset path
  (``x86_cpu_reset_hold`` then ``kvm_put_msrs``) writes the configured hash
  back, so :meth:`GuestLc.reset` restores the same value.
* Eager-load (Kai's 2017 RFC): the vCPU's words are written to the MSRs at
  each schedule-in, and an accepted guest write while the vCPU is loaded is
  passed through to the physical CPU (:func:`passes_through`).
* S3: the hash MSRs of every CPU go back to Intel's value; the frozen vCPU
  threads then run again and KVM schedules each current vCPU in again on its
  CPU (``kvm_sched_in`` -> ``kvm_arch_vcpu_load``), so the design's
  ``vcpu_load`` runs with that vCPU's words (:func:`s3_resume`).
* QEMU 6.2 and ``+sgxlc`` on a host whose launch control is not writable:
  KVM leaves SGX_LC out of its supported CPUID, QEMU's
  ``x86_cpu_filter_features`` drops the flag with a warning and
  ``x86_cpu_realizefn`` fails only with ``enforce=on`` (off by default); the
  guest then sees SGX_LC clear and FEATURE_CONTROL = LOCK | SGX_ENABLE
  (:func:`qemu_filtered_features`, :func:`guest_feature_control`).

The exact engine's use
----------------------
Once per run: ``trapped = traps_einit(lc_writable, design)``,
``through = passes_through(lc_writable, design)``,
``vload = schedule_in_hook(lc_writable, design)`` (``None``: nothing to do
at schedule-in). Per vCPU: ``GuestLc(vcpu_initial_words(default, configured),
True, firmware_feature_control(lewr))``. Per lewr launch:
``g.lewr(words, cpu if through else None)`` (``None`` back means accepted:
four MSR exits; otherwise the #GP reason), then EINIT with ``g.words``
(``g.sgx_enabled`` says ENCLS would not fault). A guest launch the
PROVISIONKEY gate refuses (:func:`handle_encls_ecreate_refusal`) ends at its
trapped ECREATE, before the lewr writes and EINIT. Per SCHED row:
``vload(cpu, g.words)`` if ``vload`` is not ``None``. Per S3 row:
``s3_resume(platform, design, [(cpu, g.words) for each current vCPU])``,
which returns ``(schedule_ins, hash RDMSRs, hash WRMSRs)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from operator import itemgetter
from typing import TYPE_CHECKING

from sgxlab.errors import GeneralProtection
from sgxlab.host.designs import Design
from sgxlab.host.provision import SGX_ATTR_PROVISIONKEY, Tenant, sgx_set_attribute
from sgxlab.hw.arch import (
    FEAT_CTL_LOCKED,
    FEAT_CTL_SGX_ENABLED,
    FEAT_CTL_SGX_LC_ENABLED,
    INTEL_LEPUBKEYHASH,
    MSR_IA32_FEATURE_CONTROL,
    MSR_IA32_SGXLEPUBKEYHASH,
    LeHash,
    Words,
)
from sgxlab.hw.platform import FEAT_CTL_VMX_INSIDE_SMX, FEAT_CTL_VMX_OUTSIDE_SMX

if TYPE_CHECKING:
    from sgxlab.hw.platform import Cpu, Platform
    from sgxlab.kvm.config import SgxGuestConfig

__all__ = [
    "FEAT_CTL_LMCE_ENABLED",
    "KVM_SUPPORTED_FEATURE_CONTROL",
    "SGX_ENABLED_IN_BIOS",
    "Words",
    "GuestLc",
    "firmware_feature_control",
    "guest_cpuid_sgx_lc",
    "guest_feature_control",
    "handle_encls_ecreate_refusal",
    "initial_lehash",
    "passes_through",
    "qemu_enforce_refusal",
    "qemu_filter_warning",
    "qemu_filtered_features",
    "qemu_provisionkey_warning",
    "s3_resume",
    "sgx_intercept_encls_ecreate",
    "sgx_provisioning_allowed",
    "schedule_in_hook",
    "setup_default_sgx_lepubkeyhash",
    "traps_einit",
    "vcpu_initial_words",
]


FEAT_CTL_LMCE_ENABLED = 1 << 20
"""IA32_FEATURE_CONTROL bit 20, local machine-check exceptions enabled."""

KVM_SUPPORTED_FEATURE_CONTROL = (
    FEAT_CTL_LOCKED
    | FEAT_CTL_VMX_INSIDE_SMX
    | FEAT_CTL_VMX_OUTSIDE_SMX
    | FEAT_CTL_SGX_LC_ENABLED
    | FEAT_CTL_SGX_ENABLED
    | FEAT_CTL_LMCE_ENABLED
)
"""The bits a host-initiated FEATURE_CONTROL write may set (``vmx.c``,
``KVM_SUPPORTED_FEATURE_CONTROL``): LOCK, VMX inside and outside SMX,
SGX_LC_ENABLED, SGX_ENABLED and LMCE."""

SGX_ENABLED_IN_BIOS = FEAT_CTL_LOCKED | FEAT_CTL_SGX_ENABLED
"""FEATURE_CONTROL bits ``sgx_enabled_in_guest_bios`` needs, and what guest
firmware locks without launch control."""

_H0, _H1, _H2, _H3 = MSR_IA32_SGXLEPUBKEYHASH
_HASH_SLOT = {msr: i for i, msr in enumerate(MSR_IA32_SGXLEPUBKEYHASH)}
_FC = MSR_IA32_FEATURE_CONTROL

# #GP reasons (KVM vmx_get_msr / vmx_set_msr / handle_encls).
R_NO_LC = (
    "guest CPUID.(EAX=07H,ECX=0):ECX[30] (SGX_LC) is clear: KVM refuses guest access to "
    "IA32_SGXLEPUBKEYHASHn (vmx_get_msr/vmx_set_msr)"
)
R_LOCKED = (
    "the guest's IA32_FEATURE_CONTROL is locked without bit 17 (FEAT_CTL_SGX_LC_ENABLED): "
    "KVM refuses the write (vmx_set_msr)"
)
R_FC_LOCKED = "the guest's IA32_FEATURE_CONTROL is locked: KVM refuses guest writes (vmx_set_msr)"
R_UNKNOWN = "MSR not emulated for SGX guests here (sgxlab models 0x3a and 0x8c-0x8f)"
R_SGX_OFF = "SGX is not enabled in the guest: its IA32_FEATURE_CONTROL is not locked with bit 18 (SGX_ENABLE)"


# --------------------------------------------------------------------------- the vCPU's state


class GuestLc:
    """One vCPU's launch-control state: what KVM keeps in ``vcpu_vmx``.

    ``words`` is the virtual IA32_SGXLEPUBKEYHASH0..3 (a tuple, replaced
    whole on every write, so callers may keep a reference), ``cpuid_sgx_lc``
    the guest's CPUID.(7,0):ECX[30], ``feature_control`` its
    IA32_FEATURE_CONTROL and ``wrote`` whether one of the guest's own
    WRMSRs to the hash was accepted. ``initial`` is the VM's initial hash
    (KVM's default, then QEMU's configured value) and ``firmware_fc`` what
    guest firmware locks FEATURE_CONTROL with; :meth:`reset` returns to them.
    ``firmware=False`` starts with FEATURE_CONTROL 0, before guest firmware
    ran.

    The access methods return ``None`` when KVM allows the access and
    otherwise the reason for the #GP, changing nothing; raising is the
    caller's business (:class:`~sgxlab.kvm.vcpu.Vcpu` raises
    :class:`~sgxlab.errors.GeneralProtection`).

    Two flags are kept up to date whenever ``cpuid_sgx_lc`` or
    ``feature_control`` is set, for the hot path: ``hash_writable`` (a guest
    WRMSR of the hash is accepted now) and ``sgx_enabled`` (ENCLS does not
    fault).
    """

    __slots__ = (
        "words",
        "wrote",
        "initial",
        "firmware_fc",
        "hash_writable",
        "sgx_enabled",
        "_cpuid_sgx_lc",
        "_fc",
    )

    def __init__(self, initial: Words, cpuid_sgx_lc: bool, firmware_fc: int, *, firmware: bool = True) -> None:
        self.initial: Words = initial
        self.firmware_fc: int = firmware_fc
        self.words: Words = initial
        self.wrote = False
        self._cpuid_sgx_lc = bool(cpuid_sgx_lc)
        self._fc = firmware_fc if firmware else 0
        self._derive()

    def _derive(self) -> None:
        fc = self._fc
        self.hash_writable = self._cpuid_sgx_lc and not (fc & FEAT_CTL_LOCKED and not fc & FEAT_CTL_SGX_LC_ENABLED)
        self.sgx_enabled = fc & SGX_ENABLED_IN_BIOS == SGX_ENABLED_IN_BIOS

    @property
    def cpuid_sgx_lc(self) -> bool:
        """Guest CPUID.(EAX=07H,ECX=0):ECX[30]."""
        return self._cpuid_sgx_lc

    @cpuid_sgx_lc.setter
    def cpuid_sgx_lc(self, value: bool) -> None:
        self._cpuid_sgx_lc = bool(value)
        self._derive()

    @property
    def feature_control(self) -> int:
        """The guest's IA32_FEATURE_CONTROL (``vcpu_vmx.msr_ia32_feature_control``)."""
        return self._fc

    @feature_control.setter
    def feature_control(self, value: int) -> None:
        self._fc = value
        self._derive()

    # -- rules -----------------------------------------------------------------------

    def read_refusal(self, msr: int, host_initiated: bool = False) -> str | None:
        """Why KVM's ``vmx_get_msr`` refuses this RDMSR, or ``None``."""
        if msr in _HASH_SLOT:
            return None if host_initiated or self._cpuid_sgx_lc else R_NO_LC
        if msr == _FC:
            return None
        return R_UNKNOWN

    def write_refusal(self, msr: int, value: int, host_initiated: bool = False) -> str | None:
        """Why KVM's ``vmx_set_msr`` refuses this WRMSR, or ``None``."""
        if msr in _HASH_SLOT:
            return None if host_initiated else self.hash_write_refusal()
        if msr == _FC:
            return self.feature_control_refusal(value, host_initiated)
        return R_UNKNOWN

    def hash_write_refusal(self) -> str | None:
        """Why a guest WRMSR of IA32_SGXLEPUBKEYHASHn faults now, or ``None``:
        it needs CPUID SGX_LC, and FEATURE_CONTROL unlocked or locked with bit 17."""
        if self.hash_writable:
            return None
        return R_NO_LC if not self._cpuid_sgx_lc else R_LOCKED

    def feature_control_refusal(self, value: int, host_initiated: bool = False) -> str | None:
        """``is_vmx_feature_control_msr_valid``: a guest write needs the MSR
        unlocked and only the guest's valid bits; a host-initiated one ignores
        the lock and may set any bit of :data:`KVM_SUPPORTED_FEATURE_CONTROL`."""
        if host_initiated:
            bad = value & ~KVM_SUPPORTED_FEATURE_CONTROL
            return f"bits {bad:#x} are not in KVM_SUPPORTED_FEATURE_CONTROL: KVM_SET_MSRS fails" if bad else None
        if self._fc & FEAT_CTL_LOCKED:
            return R_FC_LOCKED
        bad = value & ~self.guest_feature_control_valid_bits
        if not bad:
            return None
        if bad & FEAT_CTL_SGX_LC_ENABLED:
            return "bit 17 (SGX_LC_ENABLED) is reserved: the guest CPUID has no SGX_LC"
        return f"reserved bits {bad:#x} of the guest's IA32_FEATURE_CONTROL"

    @property
    def guest_feature_control_valid_bits(self) -> int:
        """KVM's ``msr_ia32_feature_control_valid_bits`` for an SGX guest without
        nested VMX or LMCE: LOCK, SGX_ENABLE, and bit 17 iff CPUID SGX_LC."""
        return SGX_ENABLED_IN_BIOS | (FEAT_CTL_SGX_LC_ENABLED if self._cpuid_sgx_lc else 0)

    def encls_refusal(self) -> str | None:
        """``handle_encls``: #GP unless guest firmware locked FEATURE_CONTROL
        with SGX_ENABLE (``sgx_enabled_in_guest_bios``), else ``None``."""
        return None if self.sgx_enabled else R_SGX_OFF

    # -- accesses --------------------------------------------------------------------

    def read(self, msr: int) -> int:
        """The value of 0x8C-0x8F or 0x3A (check :meth:`read_refusal` first)."""
        i = _HASH_SLOT.get(msr)
        return self._fc if i is None else self.words[i]

    def wrmsr(self, msr: int, value: int, host_initiated: bool = False, through: Cpu | None = None) -> str | None:
        """A WRMSR by KVM's ``vmx_set_msr`` rules: ``None`` and the value stored,
        or the refusal and nothing changed.

        An accepted hash write changes ``words`` (memory only); a guest one
        sets ``wrote``. ``through`` is the physical CPU an accepted hash write
        also goes to (:func:`passes_through`: eager-load while the vCPU is
        loaded), else ``None``.
        """
        why = self.write_refusal(msr, value, host_initiated)
        if why is not None:
            return why
        i = _HASH_SLOT.get(msr)
        if i is None:
            self._fc = value
            self._derive()
            return None
        w = list(self.words)
        w[i] = value
        self.words = (w[0], w[1], w[2], w[3])
        if not host_initiated:
            self.wrote = True
        if through is not None:
            through.wrmsr(msr, value)
        return None

    def lewr(self, words: Words, through: Cpu | None = None) -> str | None:
        """The guest writes all four hash MSRs, 0x8C to 0x8F, with ``words``
        (a Linux guest's ``sgx_update_lepubkeyhash``): four MSR exits.

        The same rule decides all four (the writes do not change it), so this
        is one check: ``None`` and ``words`` stored (the tuple itself, no
        copy) and, with ``through``, written to that CPU; or the #GP reason of
        the first WRMSR, nothing stored (the guest faults there: one exit).
        """
        if not self.hash_writable:
            return self.hash_write_refusal()
        self.words = words
        self.wrote = True
        if through is not None:
            wrmsr = through.wrmsr
            wrmsr(_H0, words[0])
            wrmsr(_H1, words[1])
            wrmsr(_H2, words[2])
            wrmsr(_H3, words[3])
        return None

    def reset(self, firmware: bool = True) -> None:
        """vCPU reset (Linux 5.16+ ``__vmx_vcpu_reset``, then QEMU's reset path).

        The hash goes back to ``initial`` (``vcpu_setup_sgx_lepubkeyhash``
        gives KVM's default, QEMU's ``kvm_put_msrs`` writes the configured
        value over it), ``wrote`` is cleared, and FEATURE_CONTROL is 0 (QEMU
        writes its reset value host-initiated, which ignores the lock) until
        guest firmware locks it again as it did at boot (``firmware``).
        """
        self.words = self.initial
        self.wrote = False
        self._fc = self.firmware_fc if firmware else 0
        self._derive()

    @property
    def lehash(self) -> LeHash:
        return LeHash.from_words(self.words)

    def __repr__(self) -> str:
        lc = "SGX_LC" if self.cpuid_sgx_lc else "no SGX_LC"
        return f"<GuestLc {lc}, FEATURE_CONTROL={self.feature_control:#x}, lehash={self.lehash.short()}>"


# --------------------------------------------------------------------------- the host's side


def traps_einit(lc_writable: bool, design: Design | type[Design]) -> bool:
    """Guest EINIT is intercepted: the host's launch control is writable
    (``vmx_write_encls_bitmap`` tests the host's SGX_LC) and the design traps."""
    return lc_writable and design.traps_einit


def passes_through(lc_writable: bool, design: Design | type[Design]) -> bool:
    """An accepted hash write of a loaded vCPU also goes to its physical CPU:
    under a design that loads on schedule-in (eager-load; Kai's RFC passed
    the guest's values through), on a host whose MSRs are writable. Mainline
    KVM never does this."""
    return lc_writable and design.loads_on_schedule


def schedule_in_hook(lc_writable: bool, design: Design) -> Callable[[Cpu, Words], None] | None:
    """What a schedule-in (``vcpu_load``) does to hardware: the design's
    ``vcpu_load(cpu, words)``, or ``None`` when that is nothing (a host whose
    MSRs are not writable, or a design that keeps the base class's empty hook)."""
    if not lc_writable:
        return None
    if not design.loads_on_schedule and type(design).vcpu_load is Design.vcpu_load:
        return None
    return design.vcpu_load


def s3_resume(platform: Platform, design: Design, current: Iterable[tuple[int, Words]]) -> tuple[int, int, int]:
    """Suspend to RAM and resume with vCPUs running.

    The platform loses its EPC and its MSRs return to Intel's hash
    (:meth:`~sgxlab.hw.platform.Platform.s3_resume`), the design hears of it
    (``on_epc_loss``), then each current vCPU, given as ``(cpu index, its
    words)``, is scheduled in again on its CPU, in CPU order. Returns
    ``(schedule_ins, hash RDMSRs, hash WRMSRs)`` of those schedule-ins.
    """
    platform.s3_resume()
    design.on_epc_loss()
    hook = schedule_in_hook(platform.lc_writable, design)
    n = rd = wr = 0
    cpus = platform.cpus
    for c, words in sorted(current, key=itemgetter(0)):
        n += 1
        if hook is not None:
            cpu = cpus[c]
            r0, w0 = cpu.hash_rd, cpu.hash_wr
            hook(cpu, words)
            rd += cpu.hash_rd - r0
            wr += cpu.hash_wr - w0
    return n, rd, wr


def setup_default_sgx_lepubkeyhash(lc_writable: bool, cpu: Cpu) -> LeHash:
    """KVM's ``setup_default_sgx_lepubkeyhash()``: the hash new vCPUs start with.

    Intel's when the host's launch control is writable (guests may write at
    will) or when RDMSR of the hash faults on ``cpu`` (no launch control:
    Intel's hash is fused in); otherwise the value the host firmware locked
    in, read from ``cpu`` (four counted RDMSRs).
    """
    if lc_writable:
        return INTEL_LEPUBKEYHASH
    try:
        words = (cpu.rdmsr(_H0), cpu.rdmsr(_H1), cpu.rdmsr(_H2), cpu.rdmsr(_H3))
    except GeneralProtection:
        return INTEL_LEPUBKEYHASH
    return LeHash.from_words(words)


def vcpu_initial_words(default: Words, configured: Words | None) -> Words:
    """A new (or reset) vCPU's hash: KVM's default (``vcpu_setup_sgx_lepubkeyhash``),
    then the configured value if QEMU writes one (host-initiated)."""
    return default if configured is None else configured


def initial_lehash(config: SgxGuestConfig, default: LeHash) -> LeHash:
    """:func:`vcpu_initial_words` for a configuration: Kai's ``lehash`` if given."""
    return config.lehash if config.lehash is not None else default


def qemu_filtered_features(config: SgxGuestConfig, lc_writable: bool) -> tuple[str, ...]:
    """The requested CPU flags QEMU 6.2 drops (``x86_cpu_filter_features``) because
    KVM does not offer them: ``sgxlc`` on a host whose launch control is not
    writable (``kvm_set_cpu_caps`` masks SGX_LC by the host's). Only the
    launch-control flag is modelled. Kai's 2017 form has no CPU flags."""
    if config.mode == "merged" and config.sgxlc and not lc_writable:
        return ("sgxlc",)
    return ()


def qemu_filter_warning(feature: str) -> str:
    """The warning QEMU prints for a dropped flag (``mark_unavailable_features``)."""
    assert feature == "sgxlc", feature
    return "host doesn't support requested feature: CPUID.07H:ECX.sgxlc [bit 30]"


def qemu_enforce_refusal(config: SgxGuestConfig, lc_writable: bool) -> str | None:
    """With ``enforce=on``, ``x86_cpu_realizefn`` fails when a flag was dropped:
    QEMU's error, or ``None``."""
    if config.enforce and qemu_filtered_features(config, lc_writable):
        return "Host doesn't support requested features"
    return None


def guest_cpuid_sgx_lc(config: SgxGuestConfig, lc_writable: bool) -> bool:
    """Guest CPUID.(7,0):ECX[30]. KVM offers SGX_LC only on a host whose launch
    control is writable; Kai's RFC gave it whenever KVM offered it, QEMU 6.2
    gives it iff ``sgxlc`` was asked for and not filtered out."""
    if config.mode == "merged":
        return config.sgxlc and lc_writable
    return lc_writable


def firmware_feature_control(lc_enabled: bool) -> int:
    """IA32_FEATURE_CONTROL as guest firmware locks it: LOCK | SGX_ENABLE, plus
    bit 17 iff launch control is enabled."""
    return SGX_ENABLED_IN_BIOS | (FEAT_CTL_SGX_LC_ENABLED if lc_enabled else 0)


def guest_feature_control(config: SgxGuestConfig, cpuid_sgx_lc: bool) -> int:
    """:func:`firmware_feature_control` for a configuration. QEMU 6.2 puts bit
    17 into the ``etc/msr_feature_control`` fw_cfg file according to the
    guest's (filtered) CPUID, so a dropped ``sgxlc`` gives LOCK | SGX_ENABLE.
    Kai's RFC: bit 17 iff ``lewr`` (a host that cannot back it refuses the
    VM, :meth:`sgxlab.kvm.vcpu.Kvm.hardware_refusal`)."""
    if config.mode == "merged":
        return firmware_feature_control(cpuid_sgx_lc)
    return firmware_feature_control(config.lewr)


# --------------------------------------------------------------------------- the PROVISIONKEY gate in guests


def sgx_provisioning_allowed(gates: bool, config: SgxGuestConfig, tenant: Tenant) -> bool:
    """``kvm->arch.sgx_provisioning_allowed`` for a VM that ``tenant``'s QEMU creates.

    With ``provisionkey`` (``+sgx-provisionkey``) QEMU opens
    ``/dev/sgx_provision`` as ``tenant`` and passes the fd with
    ``kvm_vm_enable_cap(KVM_CAP_SGX_ATTRIBUTE, fd)``; KVM's
    ``kvm_vm_ioctl_enable_cap`` checks it with ``sgx_set_attribute`` and sets
    the flag (commit fe7e948837f3; reference §5). A host that does not gate
    (``gates`` false: the 2017 policies, where PROVISIONKEY was the launch
    enclave's business) lets every VM have it.
    """
    if not gates:
        return True
    if not config.provisionkey:
        return False
    fd = tenant.open_sgx_provision()
    allowed, ret = sgx_set_attribute(0, fd)
    return ret == 0 and allowed == SGX_ATTR_PROVISIONKEY


def qemu_provisionkey_warning(config: SgxGuestConfig, gates: bool, tenant: Tenant) -> str | None:
    """QEMU's warning when ``+sgx-provisionkey`` was asked for but ``/dev/sgx_provision``
    could not be opened: ``__kvm_enable_sgx_provisioning`` then leaves the
    capability off, KVM's supported CPUID.(12H,1) lacks PROVISIONKEY and
    ``x86_cpu_filter_features`` drops the flag. ``None`` otherwise."""
    if gates and config.provisionkey and tenant.open_sgx_provision() is None:
        return (
            f"could not open /dev/sgx_provision as {tenant.name}: KVM_CAP_SGX_ATTRIBUTE not enabled, "
            "host doesn't support requested feature: CPUID.12H_1:EAX.sgx-provisionkey [bit 4]"
        )
    return None


def sgx_intercept_encls_ecreate(provisioning_allowed: bool) -> bool:
    """KVM's ``sgx_intercept_encls_ecreate`` (``arch/x86/kvm/vmx/sgx.c``): ECREATE
    exits when the VM may not use PROVISIONKEY (or its CPUID.0x12 differs from
    the host's, which sgxlab's guests never do). ``vmx_write_encls_bitmap``
    re-traps ECREATE then, whether or not EINIT is trapped."""
    return not provisioning_allowed


def handle_encls_ecreate_refusal(attributes: int, provisioning_allowed: bool) -> str | None:
    """``__handle_encls_ecreate``'s PROVISIONKEY test on a trapped ECREATE: the
    reason for the #GP it injects, or ``None`` (KVM then runs ECREATE for the
    guest). KVM copies the SECS into the kernel first (no TOCTOU)."""
    if attributes & SGX_ATTR_PROVISIONKEY and not provisioning_allowed:
        return (
            f"__handle_encls_ecreate injected #GP: SECS.ATTRIBUTES {attributes:#x} asks for PROVISIONKEY "
            "and the VM has no KVM_CAP_SGX_ATTRIBUTE (sgx_provisioning_allowed is false); "
            "ECREATE failed, so no EINIT and no hash-MSR write"
        )
    return None
