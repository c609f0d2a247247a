"""Statistics over repeated timings: median, IQR, outliers. Backends time; this summarises."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ksdk.models import TimingStats


def summarize(samples_ms: Sequence[float], method: str = "") -> TimingStats:
    """Robust summary of timing samples; raises ValueError on an empty or non-finite set."""
    a = np.asarray(list(samples_ms), dtype=np.float64)
    if a.size == 0 or not np.all(np.isfinite(a)):
        raise ValueError(f"timing samples must be a non-empty set of finite numbers, got {a[:5]}")
    q1, med, q3 = np.percentile(a, [25, 50, 75])
    iqr = q3 - q1
    outliers = int(np.sum((a < q1 - 1.5 * iqr) | (a > q3 + 1.5 * iqr)))
    return TimingStats(
        median_ms=float(med), iqr_ms=float(iqr), mean_ms=float(a.mean()), std_ms=float(a.std()),
        min_ms=float(a.min()), max_ms=float(a.max()), n=int(a.size), outliers=outliers, method=method,
    )


def speedup(baseline: TimingStats, candidate: TimingStats) -> float:
    """Baseline median over candidate median."""
    return baseline.median_ms / candidate.median_ms
