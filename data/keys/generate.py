"""Generate the public test keys data/keys/key00.pem .. key63.pem and their README.

Run from the repository root:  python data/keys/generate.py [--force]

Existing keys are kept unless --force is given (then all are replaced), so
re-running only fills gaps and rewrites README.md. Each key is RSA-3072 with
e = 3 (about a second of CPU each). These are PUBLIC TEST KEYS: they are
committed on purpose and protect nothing.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from sgxlab.hw.crypto import NUM_TEST_KEYS, SigningKey, load_test_key  # noqa: E402

README_HEAD = """# Test signing keys (PUBLIC — not secrets)

`key00.pem` .. `key{last:02d}.pem` are RSA-3072 keys with public exponent 3, the key
shape SGX requires for SIGSTRUCT signing. They are **public test keys**, committed
on purpose and worthless as secrets: anyone can sign an enclave with them. Use them
only to emulate launch control (`sgxlab.hw.crypto.load_test_key(i)`).

Regenerate with `python data/keys/generate.py --force` (from the repository root);
without `--force` the script only creates missing keys and rewrites this file.

MRSIGNER is SHA-256 of the 384-byte little-endian modulus, as EINIT computes it.

| key | MRSIGNER |
|---|---|
"""


def main(argv: list[str]) -> int:
    force = "--force" in argv
    for i in range(NUM_TEST_KEYS):
        path = HERE / f"key{i:02d}.pem"
        if force or not path.exists():
            path.write_bytes(SigningKey.generate(name=path.name).to_pem())
            print(f"generated {path.name}", flush=True)
    rows = [f"| key{i:02d}.pem | `{load_test_key(i, HERE).mrsigner.hex()}` |" for i in range(NUM_TEST_KEYS)]
    (HERE / "README.md").write_text(README_HEAD.format(last=NUM_TEST_KEYS - 1) + "\n".join(rows) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
