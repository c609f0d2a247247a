"""The figures papers report for a kernel suite: correctness rate, fast_p, mean and geometric-mean speedup, AMSR.

Every share is over ALL problems of the group (a problem without a correct kernel, or without any candidate,
counts against it). A problem is `(correct, speedup)`: speedup is the best verified speedup of its correct
kernels, None when it was not timed (Triton's interpreter) or has no correct kernel."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

from ksdk.models import Model

FAST_PS = (1.0, 1.5, 2.0)
Outcome = tuple[bool, float | None]


def p_key(p: float) -> str:
    """The JSON key of fast_p: '1', '1.5', '2'."""
    return f"{p:g}"


def fast_p(outcomes: Sequence[Outcome], p: float) -> float:
    """Share of all problems that are correct and at least `p` times faster (speedup >= p).

    KernelBench's own script counts speedup > p; the two differ only for a speedup of exactly p."""
    if not outcomes:
        return 0.0
    return sum(1 for ok, s in outcomes if ok and s is not None and s >= p) / len(outcomes)


def geomean(values: Sequence[float]) -> float | None:
    """Geometric mean of positive values (None for none)."""
    if not values:
        return None
    return math.exp(sum(math.log(v) for v in values) / len(values))


def amsr(outcomes: Sequence[Outcome], failed_as: float) -> float | None:
    """Average over all problems of each problem's best verified speedup, a problem with no correct kernel counting
    as `failed_as` (0: nothing gained; 1: the reference is kept). None when a correct problem is untimed (its
    speedup is unknown, so no average over all problems exists)."""
    if not outcomes or any(ok and s is None for ok, s in outcomes):
        return None
    return sum(s if ok else failed_as for ok, s in outcomes) / len(outcomes)


class Metrics(Model):
    """The figures for one group of problems (a level, or all of them)."""

    problems: int
    correct: int
    timed: int = 0
    infra_errors: int = 0
    does_not_fit: int = 0  # problems too large for the device, left out of every share
    interpreted: int = 0  # problems whose kernel was correct in an interpreter only (no device), left out too
    correctness_rate: float = 0.0
    fast_p: dict[str, float]
    mean_speedup: float | None = None
    geomean_speedup: float | None = None
    median_speedup: float | None = None
    amsr_failed_as_0: float | None = None
    amsr_failed_as_1: float | None = None


def compute(outcomes: Sequence[Outcome], infra_errors: int = 0, does_not_fit: int = 0,
            interpreted: int = 0) -> Metrics:
    """Metrics of a group of problems; mean, geomean and median are over the correct, timed ones."""
    speedups = [s for ok, s in outcomes if ok and s is not None]
    correct = sum(1 for ok, _ in outcomes if ok)
    return Metrics(
        problems=len(outcomes), correct=correct, timed=len(speedups), infra_errors=infra_errors,
        does_not_fit=does_not_fit, interpreted=interpreted,
        correctness_rate=correct / len(outcomes) if outcomes else 0.0,
        fast_p={p_key(p): fast_p(outcomes, p) for p in FAST_PS},
        mean_speedup=sum(speedups) / len(speedups) if speedups else None,
        geomean_speedup=geomean(speedups),
        median_speedup=statistics.median(speedups) if speedups else None,
        amsr_failed_as_0=amsr(outcomes, 0.0), amsr_failed_as_1=amsr(outcomes, 1.0),
    )
