"""SFT export: kept steps (both correct, gain over a threshold, new programs) as chat "messages" records."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

from pydantic import Field

from ksdk.export.card import ExportStats
from ksdk.export.pipeline import TRAIN, VAL, run_export
from ksdk.export.prompts import prompt_messages, reset, revision
from ksdk.export.reader import RunInfo, Step, iter_steps, open_runs
from ksdk.models import Model


class SftOptions(Model):
    """Filters and split of an SFT export."""

    min_gain: float = Field(1.05, gt=0, description="keep steps whose child is at least this much faster")
    max_per_task: Optional[int] = Field(None, ge=1,
                                        description="keep at most N records per task (first N in run order)")
    val_fraction: float = Field(0.1, ge=0, lt=1, description="share of tasks (not steps) held out for validation")
    seed: int = 0
    dedup: bool = True


def split_tasks(tasks: Sequence[str], fraction: float, seed: int) -> set[str]:
    """Validation tasks: round(fraction * n) of the distinct tasks (at least one, never all), seeded shuffle."""
    names = sorted(set(tasks))
    if fraction <= 0 or len(names) < 2:
        return set()
    k = min(len(names) - 1, max(1, round(fraction * len(names))))
    random.Random(seed).shuffle(names)
    return set(names[:k])


def rejection(step: Step, min_gain: float) -> Optional[str]:
    """Why a step is not SFT material (None when it is): both programs correct and a real speed gain."""
    outcome = step.outcome
    if outcome != "correct":
        return f"child {outcome}"
    if not step.parent_correct:
        return "parent not correct"
    gain = step.gain
    if gain is None:
        return "untimed"
    if gain < min_gain:
        return "gain below threshold"
    return None


def sft_record(step: Step, split: str) -> dict[str, Any]:
    """One chat example: system + user (what the mutator saw) and the assistant's revision, with provenance."""
    m = step.mutation
    pr, cr = step.parent_result, step.child_result
    return {
        "messages": prompt_messages(step) + [{"role": "assistant", "content": revision(step) or ""}],
        **step.tags(),
        "gain": step.gain,
        "gain_verified": step.gain_verified,
        "parent_speedup": step.parent_speedup if pr else None,
        "child_speedup": step.child_speedup if cr else None,
        "mutator": m.mutator if m else None,
        "model": m.model if m else None,
        "reply_format": m.reply_format if m is not None and m.reply else "edits",
        "source_hash": step.run.language.source_hash(step.child.candidate.source) if step.child else None,
        "split": split,
    }


def sft_schema(pa):
    """Parquet schema of an SFT record (messages as a list of {role, content})."""
    msg = pa.struct([("role", pa.string()), ("content", pa.string())])
    return pa.schema([
        ("messages", pa.list_(msg)), ("task", pa.string()), ("backend", pa.string()), ("device", pa.string()),
        ("run", pa.string()), ("step", pa.int64()), ("parent_id", pa.string()), ("child_id", pa.string()),
        ("gain", pa.float64()), ("gain_verified", pa.bool_()), ("parent_speedup", pa.float64()),
        ("child_speedup", pa.float64()),
        ("mutator", pa.string()), ("model", pa.string()), ("reply_format", pa.string()),
        ("source_hash", pa.string()), ("split", pa.string()),
    ])


def _records(runs: list[RunInfo], opts: SftOptions, val: set[str], stats: ExportStats,
             batch: int) -> Iterator[tuple[str, dict[str, Any]]]:
    seen: set[str] = set()
    per_task: dict[str, int] = {}
    for step in iter_steps(runs, batch=batch):
        stats.saw(step.task, step.outcome)
        why = rejection(step, opts.min_gain)
        if why is None and opts.dedup:
            h = step.run.language.source_hash(step.child.candidate.source)
            if h in seen:
                why = "duplicate program"
            else:
                seen.add(h)
        if why is None and opts.max_per_task is not None and per_task.get(step.task, 0) >= opts.max_per_task:
            why = "task cap"
        if why is not None:
            stats.dropped[why] += 1
            continue
        per_task[step.task] = per_task.get(step.task, 0) + 1
        split = VAL if step.task in val else TRAIN
        stats.kept(step.task, split, step.run.backend, step.device, step.gain)
        yield split, sft_record(step, split)


def export_sft(run_dirs: Sequence[str | Path], out: str | Path, fmt: str = "jsonl",
               options: Optional[SftOptions] = None, batch: int = 512) -> ExportStats:
    """Export SFT data from run directories to `out` (+ `.val` file when tasks are held out, + `.card.md`)."""
    opts = options or SftOptions()
    runs = open_runs(run_dirs)
    reset()
    val = split_tasks([r.task for r in runs], opts.val_fraction, opts.seed)
    filters = {"both correct": "parent and child passed correctness", "min_gain": f"{opts.min_gain:g}x",
               "dedup": "by normalized child source" if opts.dedup else "off",
               "max_per_task": opts.max_per_task or "none", "val_fraction": f"{opts.val_fraction:g} of tasks",
               "seed": opts.seed, "validation tasks": ", ".join(sorted(val)) or "none"}
    stats = ExportStats(kind="sft", runs=runs, filters=filters)
    for r in runs:  # every task shows in the card, with the side it was put on, even when nothing was kept
        stats.tasks[r.task].split = VAL if r.task in val else TRAIN
    if opts.val_fraction > 0 and not val:
        stats.warnings.append("only one task: nothing held out for validation (export several tasks to split)")
    splits = [TRAIN, VAL] if val else [TRAIN]
    return run_export(Path(out), fmt, splits, sft_schema, stats, _records(runs, opts, val, stats, batch))
