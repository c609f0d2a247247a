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


def median_ci(samples: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """(low, median, high): a distribution-free confidence interval for the median from order statistics (the
    binomial ranks whose coverage is at least `level`; with fewer than 6 samples, the range)."""
    from math import comb

    a = sorted(float(x) for x in samples)
    n = len(a)
    if n == 0:
        raise ValueError("no samples")
    med = float(np.median(a))
    if n < 6:
        return a[0], med, a[-1]
    cdf, j = 0.0, 0
    tail = (1.0 - level) / 2.0
    while j < n and cdf + comb(n, j) / 2.0 ** n <= tail:
        cdf += comb(n, j) / 2.0 ** n
        j += 1
    lo = max(0, j - 1)
    return a[lo], med, a[n - 1 - lo]
