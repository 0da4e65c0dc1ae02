"""Summary statistics shared by both engines, so their answers can be identical."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["percentile", "latency_summary"]


def percentile(sorted_values: np.ndarray, q: float) -> int:
    """Nearest-rank percentile of an ascending int array: ``sorted[ceil(q*n) - 1]`` (0 if empty)."""
    n = len(sorted_values)
    if n == 0:
        return 0
    k = max(1, math.ceil(q * n))
    return int(sorted_values[k - 1])


def latency_summary(latencies: np.ndarray) -> dict[str, float | int]:
    """``{mean, p50, p99, max}`` of integer latencies in cycles."""
    lat = np.sort(np.asarray(latencies, dtype=np.int64))
    n = len(lat)
    total = int(lat.sum()) if n else 0
    return {
        "mean": total / n if n else 0.0,
        "p50": percentile(lat, 0.50),
        "p99": percentile(lat, 0.99),
        "max": int(lat[-1]) if n else 0,
    }
