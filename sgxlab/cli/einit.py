"""``sgxlab einit``: run one ENCLS[EINIT] on a fresh platform with flexible launch control.

::

    sgxlab einit --sigstruct F (--sgxs F | --mrenclave HEX) [--token F]
                 [--lehash HEX|intel] [--secs-attributes FLAGS[/XFRM]] [--json]

The platform and the enclave
----------------------------
The platform has one logical CPU and firmware that locked IA32_FEATURE_CONTROL
with SGX_LC_ENABLED, so the command can WRMSR the four IA32_SGXLEPUBKEYHASH
MSRs to ``--lehash`` (64 hex digits in MRSIGNER byte order, or ``intel``, the
default reset value) the way Linux does before EINIT. The enclave is built by
replaying an SGXS stream or, for an enclave whose image is not available
(Intel's launch enclave), stands for a given MRENCLAVE. Its SECS gets
``--secs-attributes`` (default: the SIGSTRUCT's ATTRIBUTES) and the
SIGSTRUCT's MISCSELECT. Without ``--token`` EINIT gets an all-zero token
(VALID=0), the token-less launch.

Decisions
---------
The SIGSTRUCT is parsed without validation, because a malformed one is EINIT's
business (SGX_INVALID_SIG_STRUCT). Exit status 0 whenever EINIT ran, whatever
it returned; 2 with one line on stderr for input it cannot run on (a missing
or wrong-size file, bad hex, an SGXS stream or SECS that ECREATE/EADD refuse).
"""

from __future__ import annotations

import argparse

from sgxlab.cli import print_json, print_table, read_file

ENCLAVE_SIZE_GIVEN = 0x2000
"""SECS.SIZE for an enclave known only by ``--mrenclave`` (ECREATE's minimum; it is not measured here)."""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "einit",
        help="run one EINIT on a fresh platform with flexible launch control and print its SGX result",
        description="Run one ENCLS[EINIT] on CPU 0 of a fresh one-CPU platform whose firmware enabled "
        "flexible launch control. Exit status 0 whenever EINIT ran, whatever its result.",
    )
    p.add_argument("--sigstruct", required=True, metavar="F", help="a 1808-byte SIGSTRUCT")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--sgxs", metavar="F", help="build the enclave by replaying this SGXS stream")
    src.add_argument("--mrenclave", metavar="HEX", help="an enclave known only by its MRENCLAVE (64 hex digits)")
    p.add_argument(
        "--token",
        metavar="F",
        help="an EINITTOKEN (304 bytes, or a 1024-byte SDK launch token); default: all zero, VALID=0",
    )
    p.add_argument(
        "--lehash",
        metavar="HEX|intel",
        default="intel",
        help="write IA32_SGXLEPUBKEYHASH0..3: 64 hex digits in MRSIGNER byte order, or 'intel' (default)",
    )
    p.add_argument(
        "--secs-attributes",
        metavar="FLAGS[/XFRM]",
        help="SECS.ATTRIBUTES at ECREATE, e.g. 0x6/0x7 or DEBUG|MODE64BIT/0x7 (XFRM defaults to 0x3); "
        "default: the SIGSTRUCT's ATTRIBUTES",
    )
    p.add_argument("--json", action="store_true", help='print {"code": int, "name": str, "reason": str}')
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sgxlab.errors import ConfigError, GeneralProtection
    from sgxlab.hw.arch import MSR_IA32_SGXLEPUBKEYHASH, LeHash, hex_digest
    from sgxlab.hw.einit import einit
    from sgxlab.hw.measure import Enclave, replay_sgxs
    from sgxlab.hw.platform import Platform
    from sgxlab.hw.structs import Attributes, Einittoken, Secs, Sigstruct

    # Parse every input before anything runs, so bad input never half-executes.
    sig = Sigstruct.from_bytes(read_file(args.sigstruct, "--sigstruct"), validate=False)
    lehash = LeHash.parse(args.lehash, option="--lehash")
    if args.secs_attributes is not None:
        attrs_option = "--secs-attributes"
        attrs = Attributes.parse(args.secs_attributes, option=attrs_option)
    else:
        attrs_option = "SIGSTRUCT.ATTRIBUTES (the default SECS attributes)"
        attrs = sig.attributes
    mrenclave_given = (
        hex_digest(args.mrenclave, "--mrenclave", what="a MRENCLAVE") if args.mrenclave is not None else None
    )
    token = Einittoken.from_bytes(read_file(args.token, "--token")) if args.token is not None else Einittoken.zero()
    try:  # ECREATE's checks on the attributes, reported against the option that gave them
        secs = Secs.new(size=ENCLAVE_SIZE_GIVEN, attributes=attrs, miscselect=sig.miscselect)
        given = Enclave(secs) if mrenclave_given is None else Enclave.with_measurement(secs, mrenclave_given)
    except GeneralProtection as e:
        raise ConfigError(attrs_option, str(attrs), f"ECREATE refuses this SECS ({e.reason})") from None
    if mrenclave_given is None:
        enclave = replay_sgxs(read_file(args.sgxs, "--sgxs"), attributes=attrs, miscselect=sig.miscselect)
    else:
        enclave = given

    platform = Platform(1, "flexible")
    cpu = platform.cpu(0)
    for msr, word in zip(MSR_IA32_SGXLEPUBKEYHASH, lehash.words):
        cpu.wrmsr(msr, word)
    secs_attrs = enclave.secs.attributes
    mrenclave = enclave.mrenclave()
    result = einit(cpu, sig, enclave, token)

    if args.json:
        print_json(result.as_json())
        return 0
    print_table(
        [
            ("EINIT", f"CPU {cpu.index} of a fresh platform, firmware {platform.firmware.name}"),
            ("IA32_SGXLEPUBKEYHASH0..3", " ".join(f"{w:#018x}" for w in cpu.lehash_words)),
            ("SIGSTRUCT MRSIGNER", sig.mrsigner.hex()),
            ("MRENCLAVE", mrenclave.hex() + ("" if enclave.replayed else " (given)")),
            ("SECS.ATTRIBUTES", f"{secs_attrs} ({secs_attrs.names()})"),
            ("EINITTOKEN", "VALID=1" if token.valid & 1 else "VALID=0 (token-less launch)"),
            ("result", f"{result.name} ({int(result.code)})"),
            ("reason", result.reason),
        ]
    )
    return 0
