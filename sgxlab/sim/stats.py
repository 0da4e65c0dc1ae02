"""Summary statistics shared by both engines, so their answers can be identical.

The percentiles are nearest-rank (``sorted[ceil(q*n) - 1]``) and are found in
linear time rather than by a full sort (a long array: brackets from a sample,
then a partition of the values inside them; else ``np.partition``); the result
is the same element a sort would give. Sums of int64 columns are exact Python integers.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["percentile", "percentiles", "latency_summary", "exact_sum"]


def percentile(sorted_values: np.ndarray, q: float) -> int:
    """Nearest-rank percentile of an ascending int array: ``sorted[ceil(q*n) - 1]`` (0 if empty)."""
    n = len(sorted_values)
    if n == 0:
        return 0
    return int(sorted_values[_rank(n, q)])


def _rank(n: int, q: float) -> int:
    """The 0-based nearest-rank index of quantile ``q`` among ``n`` values."""
    return max(1, math.ceil(q * n)) - 1


_SAMPLE = 1 << 16
"""Values sampled to bracket the ranks of :func:`percentiles` (below four times that: a plain partition)."""
_BLOCK = 1 << 16
"""Values per block of the bracket-counting pass (its masks stay in cache)."""


def percentiles(values: np.ndarray, qs: tuple[float, ...], *, overwrite: bool = False) -> list[int]:
    """Nearest-rank percentiles of unsorted ``values`` (as :func:`percentile` of the sorted
    array); 0 for each if empty.

    For a long array the ranks are first bracketed from an evenly strided sample
    (:func:`_bracketed`): one pass counts the values below each bracket and keeps those
    inside, and only those are partitioned. When a bracket misses its rank (the exact
    counts tell) or holds too many values, one ``np.partition`` of the whole array
    decides instead, in place with ``overwrite`` (``values`` is then a writable array
    the caller no longer needs in its order), else of a copy. Either way the result is
    the element a sort would put at the rank.
    """
    v = np.asarray(values)
    n = len(v)
    if n == 0:
        return [0 for _ in qs]
    ks = [_rank(n, q) for q in qs]
    if n >= 4 * _SAMPLE and v.ndim == 1:
        got = _bracketed(v, ks)
        if got is not None:
            return got
    kth = sorted(set(ks))
    if overwrite and v.flags.writeable:
        v.partition(kth)
        part = v
    else:
        part = np.partition(v, kth)
    return [int(part[k]) for k in ks]


def _bracketed(v: np.ndarray, ks: list[int]) -> list[int] | None:
    """The values of ranks ``ks`` of ``v`` found through brackets, or ``None`` if one misses.

    A bracket ``[lo, hi]`` for rank *k* is taken from a sorted strided sample,
    wide enough (six standard deviations of a sample quantile) to hold the rank
    for any but contrived data. One blockwise pass counts, per bracket, the
    values below ``lo`` (``L``) and keeps the values in ``[lo, hi]``; if
    ``L <= k < L + kept`` the answer is the kept values' element ``k - L``.
    """
    n = len(v)
    sample = np.sort(v[:: n // _SAMPLE])
    ns = len(sample)
    brackets = []
    for k in ks:
        p = (k + 0.5) / n
        d = 6 * math.sqrt(ns * p * (1 - p)) + 16
        c = p * ns
        brackets.append((sample[max(0, int(c - d))], sample[min(ns - 1, int(c + d))]))
    below = [0] * len(ks)
    kept: list[list[np.ndarray]] = [[] for _ in ks]
    nkept = [0] * len(ks)
    limit = n // 8  # more inside a bracket than this: ties or odd data; partition instead
    lt = np.empty(min(_BLOCK, n), dtype=bool)
    inside = np.empty_like(lt)
    for a in range(0, n, _BLOCK):
        x = v[a : a + _BLOCK]
        m = len(x)
        for j, (lo, hi) in enumerate(brackets):
            np.less(x, lo, out=lt[:m])
            below[j] += int(np.count_nonzero(lt[:m]))
            np.less_equal(x, hi, out=inside[:m])
            np.greater(inside[:m], lt[:m], out=inside[:m])  # lo <= x <= hi
            if lo == hi:  # one value: counting is enough
                nkept[j] += int(np.count_nonzero(inside[:m]))
                continue
            got = x[inside[:m]]
            nkept[j] += len(got)
            if nkept[j] > limit:
                return None
            kept[j].append(got)
    out = []
    for j, k in enumerate(ks):
        r = k - below[j]
        if not 0 <= r < nkept[j]:
            return None
        lo, hi = brackets[j]
        if lo == hi:
            out.append(int(lo))
            continue
        x = np.concatenate(kept[j])
        out.append(int(np.partition(x, r)[r]))
    return out


def exact_sum(values: np.ndarray) -> int:
    """Sum of int64 values as a Python int, without int64 overflow (a saturated
    global lock over 10 M launches can exceed 2**63 in total): one numpy sum when
    no partial sum can overflow, else the high and low 32 bits summed apart."""
    v = np.asarray(values, dtype=np.int64)
    n = len(v)
    if not n:
        return 0
    bound = (2**63 - 1) // n
    if -bound <= int(v.min()) and int(v.max()) <= bound:  # no partial sum can overflow
        return int(v.sum(dtype=np.int64))
    return (int((v >> 32).sum()) << 32) + int((v & 0xFFFFFFFF).sum())


def latency_summary(
    latencies: np.ndarray, *, total: int | None = None, maximum: int | None = None, overwrite: bool = False
) -> dict[str, float | int]:
    """``{mean, p50, p99, max}`` of integer latencies in cycles (any integer dtype).

    A caller that already knows the exact sum (``total``) or the largest value
    (``maximum``) passes them, saving a pass each; with ``overwrite`` the array is
    reordered in place (:func:`percentiles`) instead of copied.
    """
    lat = np.asarray(latencies)
    if not np.issubdtype(lat.dtype, np.integer):
        lat = lat.astype(np.int64)
    n = len(lat)
    if total is None:
        total = exact_sum(lat)
    if maximum is None:
        maximum = int(lat.max()) if n else 0
    p50, p99 = percentiles(lat, (0.50, 0.99), overwrite=overwrite)
    return {
        "mean": total / n if n else 0.0,
        "p50": p50,
        "p99": p99,
        "max": maximum if n else 0,
    }
