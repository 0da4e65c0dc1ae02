"""``sgxlab sigstruct FILE [--json]``: decode a SIGSTRUCT and check its signature."""

from __future__ import annotations

import argparse
from typing import TypedDict

from sgxlab.cli import print_json, print_table, read_file
from sgxlab.hw.structs import Sigstruct


class SigstructInfo(TypedDict):
    """The JSON view of a SIGSTRUCT (``sgxlab sigstruct --json``)."""

    mrsigner: str
    enclavehash: str
    lepubkeyhash: list[str]
    signature_valid: bool
    q1q2_valid: bool
    vendor: str
    date: str
    swdefined: str
    attributes: dict[str, str]
    attributemask: dict[str, str]
    miscselect: str
    miscmask: str
    isvprodid: int
    isvsvn: int


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("sigstruct", help="decode a SIGSTRUCT file, verify it, print MRSIGNER and the MSR words")
    p.add_argument("file", help="a 1808-byte SIGSTRUCT")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def describe(sig: Sigstruct) -> SigstructInfo:
    """The JSON view of a SIGSTRUCT used by the CLI and the notebooks."""
    from sgxlab.hw.crypto import verify_sigstruct

    check = verify_sigstruct(sig)
    return {
        "mrsigner": sig.mrsigner.hex(),
        "enclavehash": sig.enclavehash.hex(),
        "lepubkeyhash": [f"{w:#018x}" for w in sig.mrsigner.words],
        "signature_valid": check.signature_valid,
        "q1q2_valid": check.q1q2_valid,
        "vendor": f"{sig.vendor:#x}",
        "date": f"{sig.date:#010x}",
        "swdefined": f"{sig.swdefined:#x}",
        "attributes": sig.attributes.as_json(),
        "attributemask": sig.attributemask.as_json(),
        "miscselect": f"{sig.miscselect:#x}",
        "miscmask": f"{sig.miscmask:#x}",
        "isvprodid": sig.isvprodid,
        "isvsvn": sig.isvsvn,
    }


def run(args: argparse.Namespace) -> int:
    sig = Sigstruct.from_bytes(read_file(args.file, "FILE"))
    d = describe(sig)
    if args.json:
        print_json(d)
        return 0
    print_table(
        [
            ("MRSIGNER", d["mrsigner"]),
            ("IA32_SGXLEPUBKEYHASH0..3", " ".join(d["lepubkeyhash"])),
            ("ENCLAVEHASH", d["enclavehash"]),
            ("signature", "valid" if d["signature_valid"] else "INVALID"),
            ("q1/q2", "valid" if d["q1q2_valid"] else "INVALID"),
            ("VENDOR", d["vendor"]),
            ("DATE", d["date"]),
            ("ATTRIBUTES", f"{sig.attributes} ({sig.attributes.names()})"),
            ("ATTRIBUTEMASK", str(sig.attributemask)),
            ("MISCSELECT/MISCMASK", f"{d['miscselect']}/{d['miscmask']}"),
            ("ISVPRODID", str(sig.isvprodid)),
            ("ISVSVN", str(sig.isvsvn)),
        ]
    )
    return 0
