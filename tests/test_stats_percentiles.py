"""Nearest-rank percentiles of long arrays: the sampled brackets give the sort's element.

``stats.percentiles`` brackets the ranks of an array of ``4 * _SAMPLE`` values
or more from a strided sample and partitions only the values inside the
brackets; when a bracket misses (contrived data) it partitions everything.
Either way the answer must be ``sorted(values)[ceil(q * n) - 1]``.
"""

from __future__ import annotations

import numpy as np
import pytest

from sgxlab.sim import stats
from sgxlab.sim.stats import _bracketed, _rank, latency_summary, percentiles

N = 4 * stats._SAMPLE + 17
QS = (0.5, 0.99, 0.0001, 1.0)


def _sorted_answer(v: np.ndarray, qs: tuple[float, ...]) -> list[int]:
    s = np.sort(v)
    return [int(s[_rank(len(v), q)]) for q in qs]


def _cases() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    step = N // stats._SAMPLE
    strided = np.full(N, 10**9, dtype=np.int64)
    strided[::step] = 0  # the sample sees only zeros: the brackets miss
    return {
        "latency-like": rng.gamma(2.0, 3e4, N).astype(np.int64),
        "ties": rng.integers(0, 3, N).astype(np.int64),
        "one value": np.full(N, 42, dtype=np.int64),
        "ascending": np.arange(N, dtype=np.int64),
        "descending": np.arange(N, dtype=np.int64)[::-1].copy(),
        "sawtooth": (np.arange(N) % 1000).astype(np.int64),
        "rare huge": np.where(rng.random(N) < 0.995, 5, 2**62).astype(np.int64),
        "full range": rng.integers(-(2**62), 2**62, N),
        "int32": rng.integers(0, 2**31 - 1, N).astype(np.int32),
        "sample misses": strided,
    }


@pytest.mark.parametrize("name", list(_cases()))
@pytest.mark.parametrize("overwrite", [False, True])
def test_percentiles_equal_the_sorted_ones(name: str, overwrite: bool) -> None:
    v = _cases()[name]
    want = _sorted_answer(v, QS)
    before = v.copy()
    assert percentiles(v, QS, overwrite=overwrite) == want
    if not overwrite:
        assert np.array_equal(v, before)  # a copy was partitioned, if anything
    else:
        assert np.array_equal(np.sort(v), np.sort(before))  # reordered at most


def test_a_missed_bracket_is_detected() -> None:
    v = _cases()["sample misses"]
    ks = [_rank(len(v), q) for q in (0.5, 0.99)]
    assert _bracketed(v, ks) is None
    assert percentiles(v, (0.5, 0.99)) == _sorted_answer(v, (0.5, 0.99))


@pytest.mark.parametrize("seed", range(5))
def test_brackets_hit_on_ordinary_data(seed: int) -> None:
    rng = np.random.default_rng(seed)
    v = rng.lognormal(10, 1, N).astype(np.int64)
    ks = [_rank(N, q) for q in (0.5, 0.99)]
    assert _bracketed(v, ks) == _sorted_answer(v, (0.5, 0.99))


def test_latency_summary_takes_known_totals_and_small_ints() -> None:
    rng = np.random.default_rng(3)
    v = rng.integers(0, 10**6, N).astype(np.int32)
    full = latency_summary(v.astype(np.int64))
    total, top = int(v.astype(np.int64).sum()), int(v.max())
    assert latency_summary(v, total=total, maximum=top, overwrite=True) == full
    assert latency_summary(np.zeros(0, dtype=np.int32)) == {"mean": 0.0, "p50": 0, "p99": 0, "max": 0}
