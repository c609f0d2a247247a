"""Live progress of a run: a rich panel on a terminal, plain log lines otherwise (CI, pipes, files)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Optional

from rich.markup import escape


@dataclass
class Snapshot:
    """What the progress display shows; the loop fills it."""

    task: str = ""
    backend: str = ""
    mutator: str = ""
    evaluated: int = 0
    valid: int = 0
    attempts: int = 0
    failed_attempts: int = 0
    best_speedup: Optional[float] = None
    best_id: str = ""
    elapsed_s: float = 0.0
    session_s: float = 0.0
    session_evaluated: int = 0
    cost_usd: float = 0.0
    device_s: float = 0.0
    mutating: int = 0
    evaluating: int = 0
    queued: int = 0
    mode: str = ""
    limit: str = ""

    @property
    def valid_share(self) -> float:
        return self.valid / self.evaluated if self.evaluated else 0.0

    @property
    def per_hour(self) -> float:
        return self.session_evaluated / self.session_s * 3600 if self.session_s > 0 else 0.0

    def line(self) -> str:
        best = f"{self.best_speedup:.3f}x" if self.best_speedup is not None else "-"
        return (f"candidates {self.evaluated}{self.limit} | valid {self.valid_share:.0%} | best {best} | "
                f"{self.per_hour:.0f} eval/h | ${self.cost_usd:.4f} | {self.device_s:.0f} device-s | "
                f"{self.elapsed_s / 60:.1f} min")


class Progress:
    """Shows snapshots. `live` is decided by whether the stream is a terminal unless forced."""

    def __init__(self, enabled: bool = True, stream=None, live: Optional[bool] = None, log_every: int = 10):
        from rich.console import Console

        self.enabled = enabled
        self.console = Console(file=stream or sys.stderr, highlight=False)
        self.live = self.console.is_terminal if live is None else live
        self._live = None
        self._last_logged = -1
        self._last_best: Optional[float] = None
        self._log_every = log_every
        self._snap = Snapshot()

    def start(self, snap: Snapshot) -> None:
        self._snap = snap
        if not self.enabled:
            return
        if self.live:
            from rich.live import Live

            self._live = Live(self._render(), console=self.console, refresh_per_second=4, transient=False)
            self._live.start()
        else:
            self.console.print(escape(f"ksdk evolve: {snap.task} on {snap.backend} with {snap.mutator}"))

    def update(self, snap: Snapshot) -> None:
        self._snap = snap
        if not self.enabled:
            return
        if self._live is not None:
            self._live.update(self._render())
            return
        new_best = snap.best_speedup is not None and snap.best_speedup != self._last_best
        if new_best or (snap.evaluated - self._last_logged >= self._log_every):
            self._last_logged, self._last_best = snap.evaluated, snap.best_speedup
            self.console.print(escape(snap.line()), soft_wrap=True)

    def message(self, text: str) -> None:
        """A one-off event (new best, stop reason, warnings), printed as it is (never read as rich markup)."""
        if self.enabled:
            self.console.print(escape(text), soft_wrap=True)

    def stop(self) -> None:
        if self._live is not None:
            self._live.update(self._render())
            self._live.stop()
            self._live = None

    def _render(self):
        from rich.table import Table

        s = self._snap
        t = Table.grid(padding=(0, 2))
        t.add_column(style="bold cyan")
        t.add_column()
        best = escape(f"{s.best_speedup:.3f}x ({s.best_id})" if s.best_speedup is not None else "none correct yet")
        t.add_row("task", escape(f"{s.task} on {s.backend}, mutator {s.mutator}"))
        t.add_row("candidates", f"{s.evaluated}{s.limit}  valid {s.valid} ({s.valid_share:.0%})  "
                                f"attempts {s.attempts} ({s.failed_attempts} failed or duplicate)")
        t.add_row("best speedup", best)
        t.add_row("throughput", f"{s.per_hour:.0f} evaluations/hour")
        t.add_row("spent", f"${s.cost_usd:.4f}  {s.device_s:.1f} device-s  {s.elapsed_s / 60:.1f} min")
        t.add_row("in flight", f"{s.mutating} mutating, {s.queued} queued, {s.evaluating} evaluating"
                               + escape(f"  [{s.mode}]" if s.mode else ""))
        return t

