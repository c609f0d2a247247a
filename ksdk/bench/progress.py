"""A bench's live view: a rich table of the problems in flight and the latest verdicts under a progress bar
(problems done, correct, fast_1 so far) on a terminal; one line per finished problem otherwise (CI, pipes)."""

from __future__ import annotations

import sys
import time

from ksdk.bench.store import INTERPRETED, ProblemRecord

RECENT = 12  # finished problems kept in the live table


def speedup_text(r: ProblemRecord) -> str:
    if r.speedup is not None and r.speedup_interval is not None:
        return f"{r.speedup:.3f}x [{r.speedup_interval[0]:.2f}-{r.speedup_interval[1]:.2f}]"
    if r.speedup is not None:
        return f"{r.speedup:.3f}x"
    return "untimed" if r.correct or r.verdict == INTERPRETED else "-"


def verdict_text(r: ProblemRecord) -> str:
    if r.correct or r.verdict == INTERPRETED or not r.error_kind:
        return r.verdict
    return f"{r.verdict}: {r.error_kind}" + (f" at {r.stage}" if r.stage else "")


class BenchProgress:
    """Shows a bench as it runs. `done` are the records a continued bench already had."""

    def __init__(self, total: int, done: list[ProblemRecord], title: str, enabled: bool = True, stream=None,
                 live: bool | None = None):
        from rich.console import Console

        self.total, self.title, self.enabled = total, title, enabled
        self.console = Console(file=stream or sys.stderr, highlight=False)
        self.live = self.console.is_terminal if live is None else live
        self.done: list[ProblemRecord] = list(done)
        self.running: dict[str, tuple[str, float]] = {}
        self._live = None

    @property
    def correct(self) -> int:
        return sum(1 for r in self.done if r.correct)

    @property
    def fast_1(self) -> int:
        return sum(1 for r in self.done if r.correct and r.speedup is not None and r.speedup >= 1.0)

    def counts(self) -> str:
        return f"done {len(self.done)}/{self.total}, correct {self.correct}, fast_1 {self.fast_1}"

    def start(self) -> None:
        if not self.enabled:
            return
        if self.live:
            from rich.live import Live

            self._live = Live(console=self.console, refresh_per_second=2, transient=False,
                              get_renderable=self._render)  # re-rendered each refresh: running times tick
            self._live.start()
        else:
            self.console.print(f"{self.title}: {self.counts()}", soft_wrap=True)

    def started(self, problem_id: str, where: str) -> None:
        self.running[problem_id] = (where, time.monotonic())
        self._refresh()

    def finished(self, record: ProblemRecord) -> None:
        self.running.pop(record.id, None)
        self.done.append(record)
        if self.enabled and self._live is None:
            flag = f" [{record.flag}]" if record.flag else ""
            self.console.print(f"bench [{len(self.done)}/{self.total}] {record.id}: {verdict_text(record)} "
                               f"{speedup_text(record)} in {record.wall_s:.1f} s{flag} | {self.counts()}",
                               soft_wrap=True, markup=False)
        self._refresh()

    def stop(self) -> None:
        if self._live is not None:
            self._live.refresh()
            self._live.stop()
            self._live = None

    def _refresh(self) -> None:
        if self._live is not None:
            self._live.refresh()

    def _render(self):
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table

        t = Table(title=self.title, expand=False)
        for col in ("problem", "state", "speedup", "candidates", "wall s"):
            t.add_column(col)
        now = time.monotonic()
        for pid, (where, since) in list(self.running.items()):
            t.add_row(pid, f"running on {where}", "", "", f"{now - since:.0f}")
        for r in self.done[-RECENT:]:
            style = "green" if r.correct else "red"
            t.add_row(r.id, f"[{style}]{verdict_text(r)}[/]" + (" [yellow](flagged)[/]" if r.flag else ""),
                      speedup_text(r), str(r.evaluated) if r.evaluated is not None else "", f"{r.wall_s:.1f}")
        bar = Table.grid(padding=(0, 1))
        bar.add_row(ProgressBar(total=max(self.total, 1), completed=len(self.done), width=40), self.counts())
        return Group(t, bar)
