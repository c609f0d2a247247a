"""A search's race in the performance stage: once the speedup's interval lies wholly below the best so far
(`TimingSettings.race_below`), more rounds cannot make the candidate the best, so its timing stops there."""

from __future__ import annotations

from typing import Optional


def out(hi: float, race_below: Optional[float]) -> bool:
    """True when the interval's top `hi` is below the race's mark (never without one)."""
    return race_below is not None and hi < race_below


def note(hi: float, race_below: Optional[float]) -> str:
    """What the timing's description adds for a candidate whose rounds stopped in a race (else nothing); `hi` is the
    top of the interval the rounds ended with, which stopped them wherever it lies below the mark."""
    if not out(hi, race_below):
        return ""
    return (f"; stopped early in the search's race: its speedup's 95% interval reached {hi:.3f}x at most, below the "
            f"best so far ({race_below:.3f}x)")
