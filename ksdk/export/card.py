"""Figures gathered during an export and the dataset card (Markdown) written beside the data."""

from __future__ import annotations

import statistics
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Optional

from ksdk._version import __version__
from ksdk.export.reader import RunInfo

GAIN_BINS = (1.0, 1.05, 1.1, 1.25, 1.5, 2.0, 4.0)  # upper edges; the last bin is >= 4x
REWARD_BINS = (-1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 1.0, 2.0)


def _bin_label(edges: tuple[float, ...], i: int, unit: str = "") -> str:
    if i == 0:
        return f"< {edges[0]:g}{unit}"
    if i == len(edges):
        return f">= {edges[-1]:g}{unit}"
    return f"[{edges[i - 1]:g}, {edges[i]:g}){unit}"


def _bin(edges: tuple[float, ...], value: float) -> int:
    for i, e in enumerate(edges):
        if value < e:
            return i
    return len(edges)


@dataclass
class TaskFigures:
    steps: int = 0
    kept: int = 0
    split: str = "train"
    gains: list[float] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)


@dataclass
class ExportStats:
    """What an export read, kept and dropped; rendered as the dataset card and printed by the CLI."""

    kind: str  # 'sft' or 'rl'
    runs: list[RunInfo]
    filters: dict[str, Any]
    steps: int = 0
    written: Counter = field(default_factory=Counter)  # split -> records
    dropped: Counter = field(default_factory=Counter)  # reason -> steps
    outcomes: Counter = field(default_factory=Counter)
    gain_hist: Counter = field(default_factory=Counter)
    reward_hist: Counter = field(default_factory=Counter)
    tasks: dict[str, TaskFigures] = field(default_factory=lambda: defaultdict(TaskFigures))
    backends: Counter = field(default_factory=Counter)
    devices: Counter = field(default_factory=Counter)
    files: dict[str, str] = field(default_factory=dict)  # split -> path
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def saw(self, task: str, outcome: str) -> None:
        self.steps += 1
        self.tasks[task].steps += 1
        self.outcomes[outcome] += 1

    def kept(self, task: str, split: str, backend: str, device: str, gain: Optional[float],
             reward: Optional[float] = None) -> None:
        self.written[split] += 1
        t = self.tasks[task]
        t.kept += 1
        t.split = split
        self.backends[backend] += 1
        self.devices[device] += 1
        if gain is not None:
            t.gains.append(gain)
            self.gain_hist[_bin(GAIN_BINS, gain)] += 1
        if reward is not None:
            t.rewards.append(reward)
            self.reward_hist[_bin(REWARD_BINS, reward)] += 1

    def summary(self) -> str:
        """One line for the terminal."""
        kept = ", ".join(f"{n} {s}" for s, n in sorted(self.written.items())) or "0 records"
        drop = ", ".join(f"{n} {r}" for r, n in self.dropped.most_common()) or "none"
        return (f"{self.kind}: read {self.steps} steps from {len(self.runs)} run(s) in {self.seconds:.1f}s; "
                f"wrote {kept}; dropped: {drop}")


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return out


def render_card(stats: ExportStats) -> str:
    """The dataset card: what the data is, where it came from, how it was filtered, and its figures."""
    title = "supervised fine-tuning" if stats.kind == "sft" else "reinforcement learning"
    lines = [f"# ksdk {stats.kind.upper()} dataset ({title})", "",
             f"Exported by ksdk {__version__} on {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())} "
             f"from {len(stats.runs)} evolution run(s).", ""]
    lines += ["## Files", ""]
    lines += [f"- {split}: `{path}` ({stats.written.get(split, 0)} records)" for split, path in stats.files.items()]
    lines += ["", "## Filters and settings", ""]
    lines += [f"- {k}: {v}" for k, v in stats.filters.items()]
    lines += ["", "## Counts", "", f"- steps read: {stats.steps}"]
    lines += [f"- records ({split}): {n}" for split, n in sorted(stats.written.items())]
    lines += [f"- dropped ({reason}): {n}" for reason, n in stats.dropped.most_common()]
    lines += ["", "Step outcomes (all steps read):", ""]
    lines += _table(["outcome", "steps"], [[o, n] for o, n in stats.outcomes.most_common()])
    if stats.gain_hist:
        lines += ["", "## Gain histogram (child speedup / parent speedup, records written)", ""]
        lines += _table(["gain", "records"], [[_bin_label(GAIN_BINS, i, "x"), stats.gain_hist.get(i, 0)]
                                              for i in range(len(GAIN_BINS) + 1)])
    if stats.reward_hist:
        lines += ["", "## Reward histogram (records written)", ""]
        lines += _table(["reward", "records"], [[_bin_label(REWARD_BINS, i), stats.reward_hist.get(i, 0)]
                                                for i in range(len(REWARD_BINS) + 1)])
    lines += ["", "## Per task", ""]
    rows = []
    for name in sorted(stats.tasks):
        t = stats.tasks[name]
        g = t.gains
        rows.append([name, t.split, t.steps, t.kept,
                     f"{statistics.median(g):.3f}" if g else "-", f"{max(g):.3f}" if g else "-",
                     f"{statistics.mean(t.rewards):.3f}" if t.rewards else "-"])
    lines += _table(["task", "split", "steps", "records", "median gain", "max gain", "mean reward"], rows)
    lines += ["", "## Sources", ""]
    lines += _table(["run", "task", "backend", "device", "finished", "path"],
                    [[r.name, r.task, r.backend, r.device, "yes" if r.finished else "no", str(r.path)]
                     for r in stats.runs])
    lines += ["", "Records per backend: " + (", ".join(f"{b} {n}" for b, n in stats.backends.most_common()) or "-"),
              "", "Records per device: " + (", ".join(f"{d} {n}" for d, n in stats.devices.most_common()) or "-")]
    if stats.warnings:
        lines += ["", "## Warnings", ""] + [f"- {w}" for w in stats.warnings]
    return "\n".join(lines) + "\n"
