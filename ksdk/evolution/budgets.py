"""Budgets: when a run must stop (candidates, wall-clock, dollars, GPU-seconds, a target speedup)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from pydantic import Field, ValidationError, model_validator

from ksdk.errors import BudgetError
from ksdk.models import Model

DEFAULT_MAX_CANDIDATES = 100  # used only when no budget at all is given, so a run always ends


class Budgets(Model):
    """Limits of one run, totals across resumes; None means no limit of that kind."""

    max_candidates: Optional[int] = Field(None, ge=1, description="evaluated candidates, seed included")
    max_minutes: Optional[float] = Field(None, gt=0, description="wall-clock minutes of running")
    max_cost_usd: Optional[float] = Field(None, ge=0, description="mutator spend in US dollars")
    max_gpu_seconds: Optional[float] = Field(None, gt=0, description="sum of device-seconds of evaluations")
    target_speedup: Optional[float] = Field(None, gt=0, description="stop once a candidate reaches it")

    @model_validator(mode="after")
    def _some_limit(self) -> "Budgets":
        if all(v is None for v in (self.max_candidates, self.max_minutes, self.max_cost_usd,
                                   self.max_gpu_seconds, self.target_speedup)):
            self.max_candidates = DEFAULT_MAX_CANDIDATES
        return self

    def merged(self, **overrides: Optional[float]) -> "Budgets":
        """These budgets with the non-None overrides applied (a resumed run may raise its limits)."""
        data = self.model_dump()
        data.update({k: v for k, v in overrides.items() if v is not None})
        return make_budgets(**data)


def make_budgets(**values: Optional[float]) -> Budgets:
    """Budgets from keyword values; BudgetError naming the bad field instead of a pydantic error."""
    try:
        return Budgets(**values)
    except ValidationError as e:
        first = e.errors()[0]
        field = ".".join(str(x) for x in first.get("loc", ())) or "budget"
        raise BudgetError(f"bad budget {field}={first.get('input')!r}: {first.get('msg', 'invalid')} "
                          "(budgets must be positive numbers)") from None


@dataclass
class Usage:
    """What a run has consumed so far (totals across resumes)."""

    evaluated: int = 0
    valid: int = 0
    best_speedup: Optional[float] = None
    elapsed_s: float = 0.0
    cost_usd: float = 0.0
    device_s: float = 0.0

    @classmethod
    def of(cls, archive, elapsed_s: float, cost_usd: float) -> "Usage":
        """A run's usage from its archive (a SqliteArchive), its wall time and its spend."""
        best = archive.selector.best
        return cls(evaluated=archive.selector.evaluated, valid=archive.selector.valid,
                   best_speedup=best.result.speedup if best is not None else None, elapsed_s=elapsed_s,
                   cost_usd=cost_usd, device_s=archive.device_s)


def reached(b: Budgets, u: Usage) -> Optional[tuple[str, str]]:
    """(why the run must stop now, the CLI option that would let it go on), or None."""
    if b.target_speedup is not None and u.best_speedup is not None and u.best_speedup >= b.target_speedup:
        return (f"target speedup {b.target_speedup:g}x reached ({u.best_speedup:.3f}x)",
                f"--target-speedup {round(u.best_speedup * 1.5, 2):g}")
    if b.max_candidates is not None and u.evaluated >= b.max_candidates:
        return f"max candidates ({b.max_candidates}) evaluated", f"--max-candidates {2 * b.max_candidates}"
    if b.max_cost_usd is not None and u.cost_usd >= b.max_cost_usd:
        return (f"max cost ${b.max_cost_usd:g} spent (${u.cost_usd:.4f})",
                f"--max-cost {2 * max(b.max_cost_usd, 0.5):g}")
    if b.max_gpu_seconds is not None and u.device_s >= b.max_gpu_seconds:
        return (f"max GPU-seconds ({b.max_gpu_seconds:g}) used ({u.device_s:.1f} s)",
                f"--max-gpu-seconds {2 * b.max_gpu_seconds:g}")
    if b.max_minutes is not None and u.elapsed_s >= b.max_minutes * 60:
        return f"max wall time ({b.max_minutes:g} min) reached", f"--max-minutes {2 * b.max_minutes:g}"
    return None


def exhausted(b: Budgets, u: Usage) -> Optional[str]:
    """Why the run must stop now, or None."""
    stop = reached(b, u)
    return stop[0] if stop else None


def may_propose(b: Budgets, u: Usage, outstanding: int) -> bool:
    """Whether one more mutation fits: candidates in flight count against max_candidates."""
    if exhausted(b, u):
        return False
    return b.max_candidates is None or u.evaluated + outstanding < b.max_candidates
