"""Fuzzing where users reach: every parser, fed mutated real files and hostile text.

The seeds are the third-party files in ``../shared/vectors`` (Intel's launch
enclave SIGSTRUCT, Fortanix SGXS streams, SDK tokens, PEM keys) and the
project's own example trace and configs. Each is mutated by bit flips,
truncation, extension and overwrites. A parser either succeeds or raises one
of the project's typed errors (:class:`~sgxlab.errors.SgxlabError`); nothing
else escapes. A structure that parses round-trips: parse, serialize, parse
gives an equal object and the same bytes.

The command line gets the same treatment in subprocesses with a memory cap
and a timeout: exit status 0 or 2, and for 2 exactly one line on stderr and
no traceback.
"""

from __future__ import annotations

import json
import os
import random
import resource
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sgxlab.errors import SgxlabError
from sgxlab.hw.arch import LeHash
from sgxlab.hw.crypto import SigningKey
from sgxlab.hw.measure import parse_sgxs
from sgxlab.hw.structs import Attributes, Einittoken, Sigstruct
from sgxlab.kvm.config import SgxGuestConfig, parse_size
from sgxlab.sim.costs import CostModel
from sgxlab.sim.result import RunConfig
from sgxlab.sim.workloads import parse_trace_csv

ROOT = Path(__file__).resolve().parent.parent
FUZZ = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# --------------------------------------------------------------------------- mutations


@st.composite
def mutated(draw: st.DrawFn, seed: bytes) -> bytes:
    """``seed`` after a few bit flips, truncations, extensions and overwrites."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(("flip", "truncate", "extend", "overwrite", "flip")))
        if op == "flip" and data:
            i = draw(st.integers(0, len(data) - 1))
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "truncate":
            data = data[: draw(st.integers(0, len(data)))]
        elif op == "extend":
            data += draw(st.binary(min_size=1, max_size=64))
        elif op == "overwrite" and data:
            i = draw(st.integers(0, len(data) - 1))
            chunk = draw(st.binary(min_size=1, max_size=16))
            data[i : i + len(chunk)] = chunk
    return bytes(data)


def _ok_or_typed(parse: Callable[[Any], Any], data: Any) -> Any:
    """``parse(data)``, or ``None`` when it refused with a project error."""
    try:
        return parse(data)
    except SgxlabError as e:
        assert str(e), "an error without a message"
        assert "\n" not in str(e).strip() or len(str(e)) < 4000
        return None


def _vector(vectors: Path, rel: str) -> bytes:
    return (vectors / rel).read_bytes()


# --------------------------------------------------------------------------- binary structures

SIGSTRUCTS = (
    "intel-linux-sgx/le_prod_css.bin",
    "intel-linux-sgx/pce_2.25_sigstruct_extracted.bin",
    "fortanix-rust-sgx/sig1.sigstruct.bin",
    "fortanix-rust-sgx/test_enclave.sig",
)


@pytest.mark.parametrize("rel", SIGSTRUCTS)
def test_sigstruct_mutations(vectors: Path, rel: str) -> None:
    seed = _vector(vectors, rel)

    @FUZZ
    @given(mutated(seed))
    def check(data: bytes) -> None:
        s = _ok_or_typed(Sigstruct.from_bytes, data)
        if s is not None:
            again = Sigstruct.from_bytes(s.to_bytes())
            assert again == s and again.to_bytes() == s.to_bytes() == data

    check()


TOKENS = (
    "intel-sdk-sim-tokens/enclave-hello.enclave.token",
    "intel-sdk-sim-tokens/sip-sgx.enclave.token",
    "real-hw-token/minimal-sgx.enclave.token",
)


@pytest.mark.parametrize("rel", TOKENS)
def test_einittoken_mutations(vectors: Path, rel: str) -> None:
    seed = _vector(vectors, rel)

    @FUZZ
    @given(mutated(seed))
    def check(data: bytes) -> None:
        t = _ok_or_typed(Einittoken.from_bytes, data)
        if t is not None:
            again = Einittoken.from_bytes(t.to_bytes())
            assert again == t and again.to_bytes() == t.to_bytes()

    check()


@pytest.mark.parametrize("rel", ("fortanix-rust-sgx/report.sgxs", "fortanix-rust-sgx/test_enclave.sgxs"))
def test_sgxs_mutations(vectors: Path, rel: str) -> None:
    seed = _vector(vectors, rel)

    @settings(FUZZ, max_examples=60)
    @given(mutated(seed))
    def check(data: bytes) -> None:
        _ok_or_typed(parse_sgxs, data)

    check()


PEMS = (
    "fortanix-rust-sgx/sig1.key.pem",
    "linux-selftest/sign_key.pem",
    "intel-linux-sgx/ref_le_enclave_private_test_key.pem",
    "real-hw-token/minimal-sgx.private-key.pem",
)


@pytest.mark.parametrize("rel", PEMS)
def test_pem_key_mutations(vectors: Path, rel: str) -> None:
    seed = _vector(vectors, rel)

    @settings(FUZZ, max_examples=40)
    @given(mutated(seed))
    def check(data: bytes) -> None:
        _ok_or_typed(SigningKey.from_pem, data)

    check()


# --------------------------------------------------------------------------- option strings

HEX = "ab" * 32
SGX_SEEDS = (
    f"epc=64M,lehash={HEX},lewr",
    f"-sgx epc=64M,lehash='{HEX}',lewr",
    "epc=8192",
    "lewr,epc=4K",
)
QEMU_SEEDS = (
    "-cpu host,+sgx,+sgxlc -object memory-backend-epc,id=mem1,size=64M,prealloc=on "
    "-M sgx-epc.0.memdev=mem1,sgx-epc.0.node=0",
    "-cpu host,+sgx,+sgxlc,+sgx-provisionkey,enforce=on -object memory-backend-epc,id=m,size=8M -M sgx-epc.0.memdev=m",
)
HOSTILE = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=80) | st.sampled_from(
    ("", ",", "=", "epc=", "epc=" + "9" * 5000, "lehash=" + "g" * 64, "epc=64M,lewr=on", "epc=64M,,", "\x00", "epc=0")
)


def _text_mutations(seeds: tuple[str, ...]) -> st.SearchStrategy[str]:
    return (
        st.sampled_from(seeds).flatmap(lambda s: mutated(s.encode()).map(lambda b: b.decode("utf-8", "replace")))
        | HOSTILE
    )


@FUZZ
@given(_text_mutations(SGX_SEEDS))
def test_sgx_option_strings(text: str) -> None:
    c = _ok_or_typed(SgxGuestConfig.parse, text)
    if c is not None:
        assert SgxGuestConfig.parse(c.to_option()) == c


@FUZZ
@given(_text_mutations(QEMU_SEEDS))
def test_qemu_option_strings(text: str) -> None:
    c = _ok_or_typed(SgxGuestConfig.parse_qemu, text)
    if c is not None:
        assert SgxGuestConfig.parse(c.to_option()) == c


@FUZZ
@given(_text_mutations(("64M", "4K", "1G", "8192")))
def test_sizes(text: str) -> None:
    _ok_or_typed(parse_size, text)


@FUZZ
@given(_text_mutations((HEX, "intel", "0x" + HEX, HEX.upper())))
def test_lehash_spellings(text: str) -> None:
    h = _ok_or_typed(LeHash.parse, text)
    if h is not None:
        assert LeHash.parse(h.hex()) == h


@FUZZ
@given(_text_mutations(("0x4/0x3", "0x24", "MODE64BIT|EINITTOKEN_KEY", "0x14/0x3")))
def test_attribute_spellings(text: str) -> None:
    _ok_or_typed(Attributes.parse, text)


# --------------------------------------------------------------------------- costs, traces, run configs

COST_VALUES = st.one_of(
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.none(),
    st.booleans(),
    st.lists(st.integers(), max_size=2),
)


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from(("einit", "wrmsr_lehash", "rdmsr_lehash", "lock", "vm_exit", "bogus", "")),
        COST_VALUES,
        max_size=4,
    )
)
def test_cost_models(values: dict[str, Any]) -> None:
    _ok_or_typed(CostModel.from_dict, values)


@FUZZ
@given(
    st.lists(
        st.sampled_from(("einit=5", "einit=x", "=", "lock", "lock=1e99", "vm_exit=-1", "wrmsr_lehash=0x10", "a=b=c")),
        max_size=4,
    )
)
def test_cost_overrides(overrides: list[str]) -> None:
    _ok_or_typed(CostModel().with_overrides, overrides)


def _example_csv() -> str:
    found = sorted((ROOT / "data").rglob("*.csv"))
    assert found, "data/ has an example trace"
    return found[0].read_text()


@settings(FUZZ, max_examples=200)
@given(st.just(_example_csv()).flatmap(lambda s: mutated(s.encode())))
def test_trace_csv_mutations(data: bytes) -> None:
    _ok_or_typed(parse_trace_csv, data.decode("utf-8", "replace"))


CONFIG_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.text(max_size=10) | st.floats(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


VALID_CONFIG = {
    "design": "percpu-cache",
    "workload": "workshop",
    "params": {"launches": 40},
    "costs": {"einit": 60000},
    "seed": 3,
    "engine": "fast",
}
CONFIG_KEYS = ("design", "workload", "params", "costs", "seed", "engine", "policy", "version", "x")


@FUZZ
@given(
    st.one_of(
        st.dictionaries(st.sampled_from(CONFIG_KEYS), CONFIG_VALUES, max_size=6),
        # a valid config with one field replaced or dropped, so that some examples parse
        st.tuples(st.sampled_from(CONFIG_KEYS), CONFIG_VALUES | st.just(VALID_CONFIG["design"]), st.booleans()).map(
            lambda kv: {k: v for k, v in {**VALID_CONFIG, kv[0]: kv[1]}.items() if not (kv[2] and k == kv[0])}
        ),
        st.just(VALID_CONFIG),
    )
)
def test_run_config_dicts(data: dict[str, Any]) -> None:
    c = _ok_or_typed(RunConfig.from_dict, data)
    if c is not None:
        assert RunConfig.from_dict(c.as_dict()) == c


# --------------------------------------------------------------------------- the command line, in subprocesses

MEMORY_CAP = 1 << 30  # 1 GiB of address space is far more than any of these needs
TIMEOUT = 60


def _limit() -> None:  # pragma: no cover - runs in the child
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP * 2, MEMORY_CAP * 2))


def _cli(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONIOENCODING="utf-8", COLUMNS="80")
    return subprocess.run(
        [sys.executable, "-m", "sgxlab", *argv],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        preexec_fn=_limit,
        cwd=cwd,
        env=env,
        check=False,
    )


def _mutate_file(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    op = rng.choice(("flip", "truncate", "extend", "flip3"))
    if op == "flip" and b:
        b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
    elif op == "flip3" and b:
        for _ in range(3):
            b[rng.randrange(len(b))] ^= 0xFF
    elif op == "truncate":
        b = b[: rng.randrange(len(b) + 1)]
    else:
        b += bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
    return bytes(b)


def _cases(vectors: Path, tmp: Path) -> list[tuple[str, ...]]:
    """A fixed, seeded set of hostile command lines (mutated files and option values)."""
    rng = random.Random(20261202)
    cases: list[tuple[str, ...]] = []
    for n, rel in enumerate(SIGSTRUCTS[:2] + ("fortanix-rust-sgx/report.sgxs",) + TOKENS[:1]):
        for k in range(2):
            f = tmp / f"m{n}-{k}.bin"
            f.write_bytes(_mutate_file(rng, (vectors / rel).read_bytes()))
            if rel.endswith(".sgxs"):
                cases.append(("measure", str(f)))
            elif rel.endswith(".token"):
                sig = str(vectors / "intel-sdk-sim-tokens/enclave-hello.sigstruct.bin")
                cases.append(("einit", "--sigstruct", sig, "--mrenclave", "00" * 32, "--token", str(f)))
            else:
                cases.append(("sigstruct", str(f)))
    csv = tmp / "trace.csv"
    csv.write_bytes(_mutate_file(rng, _example_csv().encode()))
    cases += [
        ("run", "--workload", f"trace:{csv}", "--design", "always-write"),
        ("guest", "--sgx", "epc=" + "9" * 5000),
        ("guest", "--sgx", "epc=64M,lehash=" + "z" * 64),
        ("guest", "--sgx", "epc=64M", "--policy", "nope"),
        ("run", "--design", "always-write", "--workload", "workshop", "--param", "launches=-1"),
        ("run", "--design", "always-write", "--workload", "workshop", "--cost", "einit=abc"),
        ("run", "--design", "no-such-design", "--workload", "workshop"),
        ("einit", "--sigstruct", str(tmp / "missing.bin"), "--mrenclave", "00" * 32),
        ("compare", "--designs", ",,,", "--workload", "workshop"),
        ("sweep", "--designs", "always-write", "--vary", "einit="),
    ]
    return cases


def test_cli_never_shows_a_traceback(vectors: Path, tmp_path: Path) -> None:
    failures = []
    for argv in _cases(vectors, tmp_path):
        p = _cli(*argv, cwd=tmp_path)
        ok = p.returncode == 0 or (
            p.returncode == 2 and "Traceback" not in p.stderr and p.stderr.count("\n") == 1 and len(p.stderr) < 2000
        )
        if not ok:
            failures.append((argv, p.returncode, p.stderr[-600:]))
    assert not failures, json.dumps([(list(a), rc, e) for a, rc, e in failures], indent=1)[:6000]
