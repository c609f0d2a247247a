"""What a run reports as its best, read from its archive: the winner on re-timed figures, its interval, the
baseline named, the other baselines (PyTorch eager, torch.compile) beside it, and the busy-machine warning."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from ksdk.archives.retimings import Drift, Retiming, drift, short
from ksdk.archives.sqlite import SqliteArchive
from ksdk.interfaces.mutator import Scored


@dataclass
class Beside:
    """Another baseline timed in the same evaluations: its time and how the best compares with it."""

    label: str
    ms: float
    ratio: float  # its time over the best's: > 1 when the best is faster

    def text(self) -> str:
        if self.ratio >= 1:
            return f"{short(self.label)} {self.ms:.4g} ms: the best is {self.ratio:.2f}x faster"
        return f"{short(self.label)} {self.ms:.4g} ms: {1 / self.ratio:.2f}x faster than the best"


@dataclass
class Best:
    """A run's best as reported: `speedup` is the re-timed median when `retiming` holds, else the search's."""

    entry: Scored
    retiming: Optional[Retiming]
    speedup: Optional[float]
    search_speedup: Optional[float]
    baseline: str
    beside: list[Beside] = field(default_factory=list)
    stale: int = 0  # candidates evaluated after the re-timing was made

    @property
    def retimed(self) -> bool:
        return self.retiming is not None and self.retiming.ok

    @property
    def interval(self) -> Optional[tuple[float, float]]:
        return self.retiming.interval if self.retimed else None

    def text(self) -> str:
        """'7.210x over naive C kernel ... (range of 5 rounds 6.95-7.48x; the search measured 7.595x)'."""
        if self.speedup is None:
            return "untimed"
        over = f" over {short(self.baseline)}" if self.baseline else ""
        if not self.retimed:
            why = "not re-timed" if self.retiming is None else self.retiming.text()
            return f"{self.speedup:.3f}x{over} (one evaluation, {why})"
        lo, hi = self.interval or (0.0, 0.0)
        late = f"; {self.stale} candidate(s) evaluated since" if self.stale else ""
        return (f"{self.speedup:.3f}x{over} ({self.retiming.level} {lo:.3f}-{hi:.3f}x, re-timed; the search "
                f"measured {self.search_speedup:.3f}x{late})")


def best_of(archive: SqliteArchive) -> Optional[Best]:
    """The run's best as reported, or None when nothing is correct."""
    top = archive.leaders(1)
    if not top:
        return None
    e = top[0]
    rt = archive.retimings.get(e.candidate.id)
    search = e.result.speedup
    speedup = rt.median if rt is not None and rt.ok else search
    beside = []
    if rt is not None and rt.ok:
        for label in rt.labels():
            ms, ratio = rt.extra_ms(label), rt.versus(label)
            if ms is not None and ratio is not None:
                beside.append(Beside(label, ms, ratio))
    else:
        cand = e.result.candidate_timing
        for label, t in e.result.extra_baselines.items():
            if cand is not None and cand.median_ms > 0:
                beside.append(Beside(label, t.median_ms, t.median_ms / cand.median_ms))
    info = archive.get_meta("retimed", None) or {}
    stale = max(0, archive.selector.evaluated - int(info.get("evaluated", 0))) if rt is not None else 0
    return Best(entry=e, retiming=rt, speedup=speedup, search_speedup=search,
                baseline=(rt.baseline if rt is not None and rt.baseline else e.result.baseline), beside=beside,
                stale=stale)


def run_drift(archive: SqliteArchive) -> Optional[Drift]:
    """The baseline's drift over every verdict of the run and every re-timing round."""
    rounds = [(r.baseline_ms, r.baseline_iqr_ms or 0.0) for rt in archive.retimings.values() for r in rt.rounds
              if r.baseline_ms]
    return drift((e.result for e in archive.evaluated()), rounds)


def warnings_of(archive: SqliteArchive) -> list[str]:
    """One-line warnings a reader of the run's best must see: a busy machine, a leader that failed re-timing."""
    out = []
    d = run_drift(archive)
    if d is not None and d.busy:
        out.append(d.line())
    for cid, rt in archive.retimings.items():
        if not rt.ok:
            out.append(f"candidate {cid} ({rt.search_speedup or 0:.3f}x in the search) {rt.text()}: not ranked")
    return out


def figure(archive: SqliteArchive, entry: Scored) -> str:
    """One candidate's speedup as a table shows it: the re-timed median and interval, else the search's figure."""
    rt = archive.retimings.get(entry.candidate.id)
    if rt is not None:
        if not rt.ok:
            return "failed re-timing"
        lo, hi = rt.interval or (0.0, 0.0)
        return f"{rt.median:.3f}x [{lo:.2f}-{hi:.2f}]"
    r = entry.result
    return f"{r.speedup:.3f}x" if r is not None and r.speedup is not None else "-"


RANKING = ("ranked by speedup over the baseline: re-timed candidates (median of fresh evaluations, in turn, with "
           "its interval in brackets) first, then the others by the one evaluation the search made; 'median ms' is "
           "the candidate's own time in that evaluation")
