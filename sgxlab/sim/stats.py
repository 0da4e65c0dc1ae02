"""Summary statistics shared by both engines, so their answers can be identical."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["percentile", "latency_summary", "exact_sum"]


def percentile(sorted_values: np.ndarray, q: float) -> int:
    """Nearest-rank percentile of an ascending int array: ``sorted[ceil(q*n) - 1]`` (0 if empty)."""
    n = len(sorted_values)
    if n == 0:
        return 0
    k = max(1, math.ceil(q * n))
    return int(sorted_values[k - 1])


def exact_sum(values: np.ndarray) -> int:
    """Sum of non-negative int64 values as a Python int, without int64 overflow
    (a saturated global lock over 10 M launches can exceed 2**63 in total)."""
    v = np.asarray(values, dtype=np.int64)
    if not len(v):
        return 0
    return (int((v >> 32).sum()) << 32) + int((v & 0xFFFFFFFF).sum())


def latency_summary(latencies: np.ndarray) -> dict[str, float | int]:
    """``{mean, p50, p99, max}`` of integer latencies in cycles."""
    lat = np.sort(np.asarray(latencies, dtype=np.int64))
    n = len(lat)
    total = exact_sum(lat)
    return {
        "mean": total / n if n else 0.0,
        "p50": percentile(lat, 0.50),
        "p99": percentile(lat, 0.99),
        "max": int(lat[-1]) if n else 0,
    }
