"""Summary statistics shared by both engines, so their answers can be identical.

The percentiles are nearest-rank (``sorted[ceil(q*n) - 1]``) and are found with
``np.partition`` (linear time) rather than a full sort; the result is the same
element a sort would give. Sums of int64 columns are exact Python integers.
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


def percentiles(values: np.ndarray, qs: tuple[float, ...]) -> list[int]:
    """Nearest-rank percentiles of unsorted ``values`` (as :func:`percentile` of the sorted
    array), found with one ``np.partition`` of a copy; 0 for each if empty."""
    v = np.asarray(values)
    n = len(v)
    if n == 0:
        return [0 for _ in qs]
    ks = [_rank(n, q) for q in qs]
    part = np.partition(v, sorted(set(ks)))
    return [int(part[k]) for k in ks]


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


def latency_summary(latencies: np.ndarray) -> dict[str, float | int]:
    """``{mean, p50, p99, max}`` of integer latencies in cycles."""
    lat = np.asarray(latencies, dtype=np.int64)
    n = len(lat)
    total = exact_sum(lat)
    p50, p99 = percentiles(lat, (0.50, 0.99))
    return {
        "mean": total / n if n else 0.0,
        "p50": p50,
        "p99": p99,
        "max": int(lat.max()) if n else 0,
    }
