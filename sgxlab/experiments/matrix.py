"""The policy matrix: every host launch policy against every guest configuration.

Andy Lutomirski's "little VM" argument made observable: each row really runs
on the emulator, and ``bypass`` marks a guest that launched an enclave its
host forbids; ``hw_consistent`` marks where a guest saw what no real machine
could show (Kai Huang's objection). Rows with ``provisionkey`` show
mainline's PROVISIONKEY gate on the host and in guests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sgxlab.errors import GeneralProtection, PolicyRefusal
from sgxlab.host.designs import Design
from sgxlab.host.provision import GATE_EACCES, GATE_ECREATE_GP, Tenant
from sgxlab.hw.arch import (
    INTEL_LEPUBKEYHASH,
    MSR_IA32_SGXLEPUBKEYHASH,
    Attr,
    LeHash,
)
from sgxlab.hw.platform import Platform
from sgxlab.hw.structs import PT_TCS, SECINFO_R, SECINFO_X, Attributes, Einittoken, Secinfo, Sigstruct
from sgxlab.kvm.config import SgxGuestConfig
from sgxlab.kvm.policy import HOST_POLICY_NAMES, policy_by_name
from sgxlab.kvm.vcpu import GuestEinit, Kvm, launch_le_in_guest
from sgxlab.sim.schema import POLICY_MATRIX

if TYPE_CHECKING:
    import pandas

    from sgxlab.host.le import LaunchEnclave
    from sgxlab.hw.measure import Enclave


_HASH = MSR_IA32_SGXLEPUBKEYHASH


# --------------------------------------------------------------------------- the policy explorer

MATRIX_COLUMNS: tuple[str, ...] = POLICY_MATRIX.names
"""The columns of :func:`policy_matrix`, in order."""

MATRIX_LEHASH: tuple[str, ...] = ("intel", "approved", "other")
MATRIX_SIGNER: tuple[str, ...] = ("approved", "forbidden")

MATRIX_GATE_GUESTS: tuple[tuple[bool, str], ...] = ((True, "intel"), (False, "approved"), (False, "other"))
"""The guests of the PROVISIONKEY rows, as ``(lewr, lehash)``: each launches the
approved signer's PROVISIONKEY enclave, without and with ``provision``."""

HOST_EINIT = "einit"
"""``host`` column: host root's launch of the row's enclave would reach ENCLS[EINIT]."""

# Test keys (data/keys) and their roles in the matrix.
_KEY_APPROVED_LE = 0
_KEY_APPROVED_SIGNER = 1
_KEY_FORBIDDEN_SIGNER = 2
_KEY_OTHER_LE = 3


def default_approved() -> tuple[LeHash, LeHash]:
    """The host-approved hashes of :func:`policy_matrix` (and of ``sgxlab guest``):
    test key 00 (the approved LE) and test key 01 (the approved enclave signer)."""
    from sgxlab.hw.crypto import load_test_key

    return (load_test_key(_KEY_APPROVED_LE).mrsigner, load_test_key(_KEY_APPROVED_SIGNER).mrsigner)


@dataclass
class _MatrixSetup:
    """Everything the matrix signs or builds, made once per call."""

    approved: tuple[LeHash, ...]
    lehash: dict[str, LeHash]
    signer: dict[str, LeHash]
    sig: dict[str, bytes]
    image: Enclave
    les: dict[str, LaunchEnclave]
    le_sig: dict[str, bytes] = field(default_factory=dict)
    pk_sig: bytes = b""
    pk_image: Enclave | None = None

    @classmethod
    def build(cls) -> _MatrixSetup:
        from sgxlab.host.le import LaunchEnclave
        from sgxlab.hw.crypto import load_test_key, sign_sigstruct
        from sgxlab.hw.measure import Page, build_enclave

        k_le, k_ok, k_bad, k_other = (
            load_test_key(i) for i in (_KEY_APPROVED_LE, _KEY_APPROVED_SIGNER, _KEY_FORBIDDEN_SIGNER, _KEY_OTHER_LE)
        )
        approved = (k_le.mrsigner, k_ok.mrsigner)
        image = build_enclave(
            [
                Page(0x0, Secinfo.of(SECINFO_R | SECINFO_X), b"sgxlab policy-matrix enclave"),
                Page(0x1000, Secinfo.of(0, PT_TCS)),
            ]
        )
        unsigned = Sigstruct.new(enclavehash=image.mrenclave(), attributes=image.secs.attributes)
        sig = {
            "approved": sign_sigstruct(k_ok, unsigned).to_bytes(),
            "forbidden": sign_sigstruct(k_bad, unsigned).to_bytes(),
        }
        # The same pages in an enclave whose SECS asks for PROVISIONKEY (a provisioning enclave).
        pk_image = build_enclave(
            [
                Page(0x0, Secinfo.of(SECINFO_R | SECINFO_X), b"sgxlab policy-matrix enclave"),
                Page(0x1000, Secinfo.of(0, PT_TCS)),
            ],
            attributes=Attributes(int(Attr.MODE64BIT | Attr.PROVISIONKEY), 0x3),
        )
        pk_unsigned = Sigstruct.new(enclavehash=pk_image.mrenclave(), attributes=pk_image.secs.attributes)
        les = {
            # The host-approved LE: its token policy is the host's approved set, with no
            # provisioning list (like Intel's LE for an unlisted signer: no PROVISIONKEY token).
            "approved": LaunchEnclave.create(k_le, allowlist=approved),
            # The guest owner's own LE: it grants whatever the guest wants, PROVISIONKEY included.
            "other": LaunchEnclave.create(
                k_other, allowlist=(k_ok.mrsigner, k_bad.mrsigner), provision_allowlist=(k_ok.mrsigner,)
            ),
        }
        return cls(
            approved=approved,
            lehash={"intel": INTEL_LEPUBKEYHASH, "approved": k_le.mrsigner, "other": k_other.mrsigner},
            signer={"approved": k_ok.mrsigner, "forbidden": k_bad.mrsigner},
            sig=sig,
            image=image,
            les=les,
            le_sig={k: le.sigstruct.to_bytes() for k, le in les.items()},
            pk_sig=sign_sigstruct(k_ok, pk_unsigned).to_bytes(),
            pk_image=pk_image,
        )


def _host_column(kvm: Kvm, signer: LeHash, attributes: int, tenant: Tenant) -> str:
    """What host root (as ``tenant``) gets for the row's enclave: ``policy`` (the
    signer policy, or a single LE giving no token), ``eacces`` (the gate) or
    ``einit`` (it reaches ENCLS[EINIT]); the same checks as :meth:`Kvm.host_einit`."""
    pol = kvm.policy
    if pol.check_host_einit(signer) is not None or (pol.host_lehash is not None and not pol.permits(signer)):
        return "policy"
    if kvm.host_gate_refusal(attributes, tenant) is not None:
        return GATE_EACCES
    return HOST_EINIT


def _matrix_row(
    kvm: Kvm,
    setup: _MatrixSetup,
    lewr: bool,
    lehash: str,
    signer: str,
    provisionkey: bool = False,
    provision: bool = False,
) -> dict[str, object]:
    tenant = Tenant("tenant", sgx_provision=provision)
    image = setup.pk_image if provisionkey else setup.image
    assert image is not None
    enclave_sig = setup.pk_sig if provisionkey else setup.sig[signer]
    row: dict[str, object] = {
        "policy": kvm.policy.name,
        "lewr": lewr,
        "lehash": lehash,
        "signer": signer,
        "provisionkey": provisionkey,
        "provision": provision,
        "host": _host_column(kvm, setup.signer[signer], image.secs.attributes.flags, tenant),
    }
    config = SgxGuestConfig(epc=64 << 20, lehash=setup.lehash[lehash], lewr=lewr, provisionkey=provisionkey)
    name = f"{kvm.policy.name}/{'lewr' if lewr else 'nolewr'}/{lehash}/{signer}"
    if provisionkey:
        name += f"/pk/{'cap' if provision else 'nocap'}"
    try:
        vm = kvm.create_vm(config, name=name, tenant=tenant)
    except PolicyRefusal as e:
        row.update(
            vm_created=False,
            launched=False,
            code=None,
            step="vm",
            bypass=False,
            hw_consistent=True,
            reason=f"VM refused by {e.policy}: {e.reason}",
        )
        return row
    try:
        vcpu = vm.vcpus[0]
        vcpu.load(0)
        steps: list[GuestEinit] = []
        notes: list[str] = []
        if provisionkey:
            cap = "holds" if vm.sgx_provisioning_allowed else "lacks"
            notes.append(f"the VM {cap} KVM_CAP_SGX_ATTRIBUTE (QEMU +sgx-provisionkey as {tenant.name})")
        enclave = image.fork()
        try:
            # ECREATE comes first: before the guest kernel's SGX_IOC_ENCLAVE_INIT writes its
            # hash MSRs, and before a launch enclave is asked for a token.
            vcpu.ecreate(enclave)
        except GeneralProtection as e:
            if e.instruction != "ECREATE":
                raise
            # The gate: #GP at the trapped ECREATE, so no EINIT code exists. Hardware with the
            # guest's CPUID (PROVISIONKEY filtered out of CPUID.(12H,1)) would fault as well.
            row.update(
                vm_created=True,
                launched=False,
                code=None,
                step=GATE_ECREATE_GP,
                bypass=False,
                hw_consistent=True,
                reason="; ".join(notes + [f"ECREATE: {e}"])
                + "; the host gave this VM no capability, as host root without /dev/sgx_provision gets "
                "-EACCES: the little-VM argument does not apply to the gate",
            )
            return row
        token: Einittoken | None = None
        if lewr:
            for msr, w in zip(_HASH, setup.signer[signer].words):
                vcpu.wrmsr(msr, w)
            notes.append(f"guest wrote its IA32_SGXLEPUBKEYHASH = the enclave's signer {setup.signer[signer].short()}")
        elif lehash not in setup.les:
            notes.append(
                "no launch enclave for Intel's hash (sgxlab has no Intel-signed LE), so the guest tries a "
                "token-less EINIT"
            )
        else:
            le = setup.les[lehash].clone()  # its own KEYID stream: rows do not depend on each other
            r = launch_le_in_guest(vcpu, le, sigstruct=setup.le_sig[lehash])
            steps.append(r)
            if not r.launched:
                notes.append(f"the guest's LE {le.mrsigner.short()} did not launch ({r.name}: {r.reason})")
            else:
                sig = Sigstruct.from_bytes(enclave_sig)
                t = le.get_token(sig, image.secs.attributes)
                token = t.token
                if t.granted:
                    notes.append(f"the guest's LE {le.mrsigner.short()} issued a token")
                else:
                    notes.append(f"the guest's LE {le.mrsigner.short()} refused a token ({t.reason})")
        final = vcpu.einit(enclave_sig, enclave, token)
        steps.append(final)
        inconsistent = [s for s in steps if not s.hw_consistent]
        reason = "; ".join(notes + [f"EINIT: {final.name} ({final.code}) at {final.step}: {final.reason}"])
        if steps[0] is not final and steps[0].bypass:
            reason += f"; POLICY BYPASS: the guest ran its LE signed by {steps[0].signer.short()}"
        if inconsistent:
            reason += "; NOT HARDWARE-CONSISTENT: " + inconsistent[0].consistency
        row.update(
            vm_created=True,
            launched=final.launched,
            code=final.code,
            step=final.step,
            bypass=any(s.bypass for s in steps),
            hw_consistent=not inconsistent,
            reason=reason,
        )
        return row
    finally:
        kvm.destroy_vm(vm)


def policy_matrix_records(design: str | type[Design] = "always-write") -> list[dict[str, object]]:
    """The rows of :func:`policy_matrix` as plain dicts (``code`` is ``None`` for a
    refused VM or a #GP at ECREATE)."""
    setup = _MatrixSetup.build()
    rows: list[dict[str, object]] = []
    for pname in HOST_POLICY_NAMES:
        # A fresh host per policy: no MSR, cache or design state leaks from one policy's rows to the next.
        platform = Platform(2, "flexible")
        kvm = Kvm(platform, policy_by_name(pname, approved=setup.approved), design)
        for lewr in (False, True):
            for lehash in MATRIX_LEHASH:
                for signer in MATRIX_SIGNER:
                    rows.append(_matrix_row(kvm, setup, lewr, lehash, signer))
        for lewr, lehash in MATRIX_GATE_GUESTS:
            for provision in (False, True):
                rows.append(_matrix_row(kvm, setup, lewr, lehash, "approved", True, provision))
    return rows


def policy_matrix(design: str | type[Design] = "always-write") -> pandas.DataFrame:
    """Every host policy against every guest configuration, run on the emulator.

    For each policy (``allow-all``, ``allowlist``, ``single-le``,
    ``approved-set``, ``host-only``, ``mainline``:
    :data:`sgxlab.kvm.policy.HOST_POLICY_NAMES`), one row per combination of
    ``lewr`` (False/True), ``lehash`` (``"intel"``, ``"approved"``,
    ``"other"``) and enclave ``signer`` (``"approved"``, ``"forbidden"``),
    then six PROVISIONKEY rows (``provisionkey`` true): the approved signer's
    provisioning enclave in the guests of :data:`MATRIX_GATE_GUESTS`, each
    without and with ``provision``. 18 rows per policy, 108 in all, columns
    :data:`MATRIX_COLUMNS`. ``code`` is a nullable integer (``<NA>`` when the
    VM was refused or ECREATE faulted); ``step`` says where the row was
    decided: ``vm`` (VM refused), ``ecreate-gp`` (the gate's #GP at the
    trapped ECREATE: no EINIT code), ``policy`` (a trapped EINIT the policy
    refused) or EINIT's check (``commit`` on success).

    ``provision``: the tenant that runs the guest's QEMU (and, for the
    ``host`` column, launches on the host) may open ``/dev/sgx_provision``;
    its QEMU asks for ``+sgx-provisionkey`` in every PROVISIONKEY row, so the
    VM holds KVM_CAP_SGX_ATTRIBUTE exactly when ``provision`` is true.
    ``host``: what that tenant gets launching the same enclave on the host:
    ``einit`` (it reaches ENCLS[EINIT]), ``eacces`` (``sgx_encl_init()``'s
    gate) or ``policy``. Under ``mainline`` the two sides agree row by row:
    ``eacces`` on the host goes with ``ecreate-gp`` in the guest, so the
    "little VM" argument does not apply to the gate (the host decides which
    VMs get the capability). The other five policies do not gate; there a
    PROVISIONKEY enclave meets only the launch enclave's own, older token
    policy (the host-approved LE has no provisioning list and refuses it).

    Each row really runs: a flexible 2-CPU host with the policy and
    ``design`` (a fresh host for each policy's 12 rows, so no MSR or design
    state carries over from another policy); KVM creates the VM (or refuses
    it); the guest then launches a real enclave signed with a test key from
    ``data/keys`` (a guest's LE is a fresh :meth:`~sgxlab.host.le.LaunchEnclave.clone`
    with its own KEYID stream, so no row depends on the rows before it):

    * test key 00 signs the **host-approved LE** (``lehash="approved"``); its
      token policy is the host's approved set {key 00, key 01};
    * test key 01 is the **approved** enclave signer, key 02 the
      **forbidden** one;
    * test key 03 signs the guest owner's **other** LE, which grants a token
      to any enclave the guest wants.

    A guest with ``lewr`` does what a Linux guest does: it writes the
    enclave's signer into its IA32_SGXLEPUBKEYHASH and runs a token-less
    EINIT. A guest without it launches the LE its ``lehash`` names inside the
    VM, asks it for a token and runs EINIT with it (without a token when the
    LE refused one or did not launch). For ``lehash="intel"`` there is no LE
    to run, since Intel's LE needs Intel's private key, so the guest tries a
    token-less EINIT (Intel's production LE would not issue a token for a
    non-debug enclave of an unlisted signer anyway).

    ``bypass`` is true when any enclave the guest launched (its LE included)
    has a signer the host policy forbids host root to run. ``hw_consistent``
    is false when any guest EINIT in the row gave a result no real machine
    with the guest's CPUID and FEATURE_CONTROL could give. A refused VM has
    ``launched``/``bypass`` false and ``hw_consistent`` true (the guest never
    ran, so it observed nothing).
    """
    return POLICY_MATRIX.frame(policy_matrix_records(design))
