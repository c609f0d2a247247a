"""Verified figures: a run's leading candidates timed again in fresh evaluations (the archive's `retimings` table),
their median speedup with an interval, the winner chosen on it, and how far the baseline's own time drifted."""

from __future__ import annotations

import statistics
from typing import Iterable, Optional

from pydantic import Field

from ksdk.models import EvalResult, Model
from ksdk.timing import median_ci

BUSY_FLOOR = 0.10  # a baseline that moved less than 10% (10th to 90th percentile) is steady enough to say nothing
BUSY_NOISE = 3.0  # ... or less than this many times its own spread within one evaluation


class Round(Model):
    """One fresh evaluation of a candidate: its speedup and the times behind it, or why it did not count."""

    speedup: Optional[float] = None
    candidate_ms: Optional[float] = None
    baseline_ms: Optional[float] = None
    baseline_iqr_ms: Optional[float] = None
    extra_ms: dict[str, float] = Field(default_factory=dict, description="other baselines' medians (PyTorch eager, "
                                       "torch.compile) timed in the same evaluation")
    failed: Optional[str] = Field(None, description="the verdict when this evaluation was not correct and timed")

    @classmethod
    def of(cls, r: EvalResult) -> "Round":
        """The round an evaluation's verdict makes."""
        extra = {k: v.median_ms for k, v in r.extra_baselines.items()}
        out = cls(speedup=r.speedup, candidate_ms=r.candidate_timing.median_ms if r.candidate_timing else None,
                  baseline_ms=r.baseline_timing.median_ms if r.baseline_timing else None,
                  baseline_iqr_ms=r.baseline_timing.iqr_ms if r.baseline_timing else None, extra_ms=extra)
        if not r.correct:
            out.failed = f"{r.error_kind.value if r.error_kind else r.status.value} at {r.stage.value}"
        elif r.speedup is None:
            out.failed = f"untimed ({r.performance_skipped or 'no timing'})"
        return out


class Retiming(Model):
    """One candidate's re-timing: the rounds, in order, beside what the search had measured."""

    candidate_id: str
    baseline: str = Field("", description="what the speedups are over (EvalResult.baseline)")
    search_speedup: Optional[float] = Field(None, description="the speedup the search measured (one evaluation)")
    rounds: list[Round] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every round correct and timed."""
        return bool(self.rounds) and all(r.failed is None for r in self.rounds)

    @property
    def failure(self) -> Optional[str]:
        """The first round's failure, if any."""
        return next((r.failed for r in self.rounds if r.failed is not None), None)

    @property
    def speedups(self) -> list[float]:
        return [r.speedup for r in self.rounds if r.speedup is not None]

    @property
    def median(self) -> Optional[float]:
        """The median speedup over the rounds (None when a round failed)."""
        return statistics.median(self.speedups) if self.ok else None

    @property
    def interval(self) -> Optional[tuple[float, float]]:
        """A distribution-free interval for that median: 95% from 6 rounds on, the range below (see `level`)."""
        if not self.ok:
            return None
        lo, _, hi = median_ci(self.speedups)
        return lo, hi

    @property
    def level(self) -> str:
        """What the interval is: '95% interval' or 'range of N rounds'."""
        n = len(self.speedups)
        return "95% interval" if n >= 6 else f"range of {n} rounds"

    def versus(self, label: str) -> Optional[float]:
        """Median over rounds of another baseline's time over the candidate's (>1: the candidate is faster)."""
        ratios = [r.extra_ms[label] / r.candidate_ms for r in self.rounds
                  if r.candidate_ms and label in r.extra_ms and r.failed is None]
        return statistics.median(ratios) if ratios and self.ok else None

    def extra_ms(self, label: str) -> Optional[float]:
        """Median over rounds of another baseline's time."""
        ms = [r.extra_ms[label] for r in self.rounds if label in r.extra_ms]
        return statistics.median(ms) if ms else None

    def candidate_ms(self) -> Optional[float]:
        ms = [r.candidate_ms for r in self.rounds if r.candidate_ms is not None]
        return statistics.median(ms) if ms else None

    def text(self) -> str:
        """'7.21x (range of 5 rounds 6.95-7.48x)', or why it did not hold."""
        if not self.ok:
            return f"failed on re-timing: {self.failure or 'no round'}"
        lo, hi = self.interval or (0.0, 0.0)
        return f"{self.median:.3f}x ({self.level} {lo:.3f}-{hi:.3f}x)"

    def labels(self) -> list[str]:
        """The other baselines every round timed, in the order first seen."""
        seen: dict[str, None] = {}
        for r in self.rounds:
            for k in r.extra_ms:
                seen.setdefault(k, None)
        return list(seen)


class Drift(Model):
    """How far the baseline's own time moved between evaluations of one run, against its spread within one."""

    baseline: str = ""
    evaluations: int
    low_ms: float = Field(description="10th percentile of the baseline's per-evaluation medians")
    high_ms: float = Field(description="90th percentile")
    spread: float = Field(description="(high - low) / median of those medians")
    noise: float = Field(description="median over evaluations of the baseline's IQR / its median within one")

    @property
    def busy(self) -> bool:
        """The baseline moved by more than its own noise explains: the machine was loaded (or throttling)."""
        return self.spread > max(BUSY_FLOOR, BUSY_NOISE * self.noise)

    def line(self) -> str:
        """The one-line warning (empty when the baseline held still)."""
        if not self.busy:
            return ""
        name = short(self.baseline)
        return (f"the machine was busy: speedups from this run vary by up to {self.high_ms / self.low_ms:.1f}x with "
                f"load ({name} took {_ms(self.low_ms)} to {_ms(self.high_ms)} between evaluations, 10th to 90th "
                f"percentile, against {self.noise:.0%} within one); trust the re-timed figures, or rerun on a "
                "quiet machine")


def short(label: str) -> str:
    """A baseline's name without its particulars: 'naive C kernel shipped with the task (C_BASELINE), same ...'
    -> 'naive C kernel shipped with the task'."""
    for sep in (" (", ","):
        label = label.split(sep)[0]
    return label.strip() or "the baseline"


def _ms(x: float) -> str:
    return f"{x:.3g} ms"


def drift(results: Iterable[EvalResult], extra: Iterable[tuple[float, float]] = ()) -> Optional[Drift]:
    """The baseline's drift over a run's verdicts (its most common baseline) and any (median, IQR) pairs of
    re-timing rounds; None with fewer than 3 timings."""
    timed = [r for r in results if r.correct and r.baseline_timing is not None and r.baseline_timing.median_ms > 0]
    if not timed and not extra:
        return None
    label = statistics.mode([r.baseline for r in timed]) if timed else ""
    pairs = [(r.baseline_timing.median_ms, r.baseline_timing.iqr_ms) for r in timed if r.baseline == label]
    pairs += [(m, q) for m, q in extra if m and m > 0]
    if len(pairs) < 3:
        return None
    meds = sorted(m for m, _ in pairs)
    low, mid, high = (_quantile(meds, q) for q in (0.1, 0.5, 0.9))
    noise = statistics.median(q / m for m, q in pairs)
    return Drift(baseline=label, evaluations=len(pairs), low_ms=low, high_ms=high, spread=(high - low) / mid,
                 noise=noise)


def _quantile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolation quantile of sorted values (numpy's default), without numpy."""
    pos = q * (len(sorted_values) - 1)
    i = int(pos)
    j = min(i + 1, len(sorted_values) - 1)
    return sorted_values[i] + (sorted_values[j] - sorted_values[i]) * (pos - i)
