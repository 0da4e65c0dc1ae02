"""Shared fixtures.

``vectors`` is the folder of third-party SGX data beside the checkout
(``../shared/vectors``). CI always has it; a user's clone may not, and then
every test that needs it is skipped with a reason instead of failing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"


def _vectors_dir() -> Path:
    env = os.environ.get("SGXLAB_VECTORS")
    return Path(env) if env else ROOT.parent / "shared" / "vectors"


@pytest.fixture(scope="session")
def vectors() -> Path:
    d = _vectors_dir()
    if not (d / "expected.json").is_file():
        pytest.skip(f"third-party vectors not found at {d} (set SGXLAB_VECTORS); CI has them")
    return d


@pytest.fixture(scope="session")
def expected(vectors: Path) -> dict:
    return json.loads((vectors / "expected.json").read_text())


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA
