"""``sgxlab guest --sgx OPTIONS [--policy NAME] [--json]``: would this host create this SGX guest?

``OPTIONS`` is Kai Huang's 2017 option string (``epc=64M,lehash=<64 hex>,lewr``)
or, written ``--sgx='-cpu host,+sgxlc -object memory-backend-epc,...'``, the
QEMU 6.2 command line (:meth:`sgxlab.kvm.SgxGuestConfig.parse`). The command
prints the parsed configuration, what the guest would be given (CPUID SGX_LC,
FEATURE_CONTROL, initial hash, whether EINIT is trapped), QEMU's warnings
(``warnings``: a ``+sgxlc`` that QEMU 6.2 drops on a host whose launch
control is not writable, :meth:`sgxlab.kvm.Kvm.qemu_warnings`) and whether the
host's KVM and launch policy would create the VM (``created``, ``reason``;
with ``enforce=on`` QEMU refuses instead of warning). A bad option string
exits with status 2 and one line on stderr.

The host is a flexible platform unless ``--firmware`` says otherwise. The
host-approved hashes default to those of ``sgxlab policy-matrix`` (test keys
00 and 01); ``--approve HEX`` (repeatable) replaces them.

PROVISIONKEY: ``+sgx-provisionkey`` (QEMU 6.2) or ``provisionkey`` (in
Kai's form, an sgxlab extension) asks QEMU to pass ``/dev/sgx_provision`` to
KVM with KVM_CAP_SGX_ATTRIBUTE; ``--provision`` says the tenant QEMU runs as
may open it. The output says whether the VM gets ``sgx_provisioning_allowed``
and whether KVM intercepts its ECREATE (``sgx_intercept_encls_ecreate``);
under ``--policy mainline`` such a VM's ECREATE of a PROVISIONKEY SECS gets
#GP. Policies: :data:`sgxlab.kvm.policy.POLICY_CATALOG`.
"""

from __future__ import annotations

import argparse
from typing import Any

from sgxlab.cli import print_json, print_table


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from sgxlab.hw.platform import FIRMWARE_NAMES
    from sgxlab.kvm.policy import HOST_POLICY_NAMES

    p = sub.add_parser("guest", help="parse an SGX guest configuration and ask the host policy whether to create it")
    p.add_argument("--sgx", required=True, metavar="OPTIONS", help="e.g. 'epc=64M,lehash=<64 hex>,lewr'")
    p.add_argument(
        "--policy", default="allow-all", help=f"host policy: {', '.join(HOST_POLICY_NAMES)} (default allow-all)"
    )
    p.add_argument(
        "--provision",
        action="store_true",
        help="the tenant QEMU runs as may open /dev/sgx_provision (for +sgx-provisionkey)",
    )
    p.add_argument(
        "--approve", action="append", metavar="HEX", help="a host-approved hash (repeatable; default: test keys 00, 01)"
    )
    p.add_argument("--firmware", default="flexible", help=f"host firmware: {', '.join(FIRMWARE_NAMES)}")
    p.add_argument("--firmware-lehash", metavar="HEX", help="the hash a locked-third-party firmware locks in")
    p.add_argument("--design", default="always-write", help="MSR-update design (default always-write)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def _fc_text(fc: int) -> str:
    bits = ["locked" if fc & 1 else "unlocked", "SGX on" if fc & (1 << 18) else "SGX off"]
    bits.append("bit 17 set" if fc & (1 << 17) else "bit 17 clear")
    return f"{fc:#x} ({', '.join(bits)})"


def run(args: argparse.Namespace) -> int:
    import sgxlab.kvm.guest as kvm_guest
    from sgxlab.experiments.matrix import default_approved
    from sgxlab.host.provision import Tenant
    from sgxlab.hw.arch import LeHash
    from sgxlab.hw.platform import Platform
    from sgxlab.kvm import Kvm, SgxGuestConfig
    from sgxlab.kvm.policy import policy_by_name

    config = SgxGuestConfig.parse(args.sgx)
    approved = [LeHash.parse(h, option="--approve") for h in args.approve] if args.approve else list(default_approved())
    policy = policy_by_name(args.policy, approved=approved)
    platform = Platform(1, args.firmware, lehash=args.firmware_lehash)
    kvm = Kvm(platform, policy, args.design)
    tenant = Tenant("qemu", sgx_provision=args.provision)
    created, party, reason = kvm.would_create(config, tenant)
    gates = policy.gates_provisionkey
    warnings = list(kvm.qemu_warnings(config))
    pk_warning = kvm_guest.qemu_provisionkey_warning(config, gates, tenant)
    if pk_warning is not None:
        warnings.append(pk_warning)
    allowed = kvm_guest.sgx_provisioning_allowed(gates, config, tenant)
    guest: dict[str, Any] = {
        "cpuid_sgx_lc": kvm.guest_cpuid_sgx_lc(config),
        "feature_control": kvm.guest_feature_control(config),
        "initial_lehash": kvm.initial_lehash(config).hex(),
        "einit_trapped": kvm.traps_einit,
        "sgx_provisioning_allowed": allowed,
        "ecreate_trapped": kvm_guest.sgx_intercept_encls_ecreate(allowed),
    }
    host = {
        "firmware": platform.firmware.name,
        "lc_writable": kvm.lc_writable,
        "policy": policy.name,
        "gates_provisionkey": gates,
        "tenant_sgx_provision": args.provision,
        "approved": [h.hex() for h in approved],
        "design": kvm.design.name,
    }
    if args.json:
        out = dict(config.as_json())
        out.update(host=host, guest=guest, warnings=warnings, created=created, refused_by=party, reason=reason)
        print_json(out)
        return 0
    rows = [
        ("mode", config.mode),
        ("epc", f"{config.epc} bytes ({config.as_json()['epc_size']})"),
    ]
    if config.mode == "merged":
        rows.append(("sgxlc", "yes" if config.sgxlc else "no"))
        rows.append(("enforce", "yes" if config.enforce else "no"))
    else:
        rows.append(("lehash", config.lehash.hex() if config.lehash else "(KVM's default)"))
        rows.append(("lewr", "yes" if config.lewr else "no"))
    rows.append(("provisionkey", "yes" if config.provisionkey else "no"))
    rows += [
        ("option", config.to_option()),
        (
            "host",
            f"{host['firmware']}, LC {'writable' if kvm.lc_writable else 'not writable'}, design {kvm.design.name}",
        ),
        ("policy", policy.describe()),
        *(("warning", f"QEMU: {w}") for w in warnings),
        ("guest SGX_LC", "yes" if guest["cpuid_sgx_lc"] else "no"),
        ("guest FEAT_CTL", _fc_text(guest["feature_control"])),
        ("initial hash", guest["initial_lehash"]),
        ("guest EINIT", "trapped" if kvm.traps_einit else "native (not trapped)"),
        (
            "PROVISIONKEY",
            ("allowed (KVM_CAP_SGX_ATTRIBUTE)" if allowed else "not allowed: its ECREATE is trapped, #GP")
            + ("" if gates else ", not gated by this policy"),
        ),
        ("created", "yes" if created else "no"),
    ]
    if not created:
        rows.append(("reason", f"{party}: {reason}"))
    print_table(rows)
    return 0
