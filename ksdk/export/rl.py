"""RL export: every mutation attempt with its prompt, reply, raw verdicts and a configurable reward."""

from __future__ import annotations

import json
import math
try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

from pydantic import Field, ValidationError

from ksdk.errors import KsdkError
from ksdk.export.card import ExportStats
from ksdk.export.pipeline import TRAIN, run_export
from ksdk.export.prompts import prompt_messages, reset, revision
from ksdk.export.reader import RunInfo, Step, iter_steps, open_runs
from ksdk.export.writers import RawJson
from ksdk.models import Model


class RewardConfig(Model):
    """Weights of the step reward (see `reward`). Defaults: broken -0.5, wrong -0.25, correct 0, 2x faster +1."""

    malformed: float = Field(-1.0, description="the reply made no program (unparseable, edits that do not apply)")
    duplicate: Optional[float] = Field(-0.25, description="the reply repeated a program already in the archive")
    base: float = Field(-0.5, description="added for every evaluated child")
    compiled: float = Field(0.25, description="the child loaded and compiled")
    correct: float = Field(0.25, description="the child passed correctness")
    repair: float = Field(0.5, description="the child is correct and its parent was not")
    gain: float = Field(1.0, description="times log2(child speedup / parent speedup), both correct and timed")
    gain_clip: float = Field(2.0, ge=0, description="|log2 gain| is capped at this (2.0: 4x either way)")
    infra: Optional[float] = Field(None, description="harness failure, not the model's fault; None skips the step")


def load_reward_config(path: str | Path) -> RewardConfig:
    """Read a RewardConfig from a .json or .toml file; KsdkError naming the bad field."""
    p = Path(path)
    if not p.is_file():
        raise KsdkError(f"reward config not found: {p} (a .json or .toml file of RewardConfig weights)")
    try:
        data = tomllib.loads(p.read_text()) if p.suffix == ".toml" else json.loads(p.read_text())
        return RewardConfig.model_validate(data)
    except (ValueError, tomllib.TOMLDecodeError) as e:
        first = e.errors()[0] if isinstance(e, ValidationError) and e.errors() else None
        what = (f"{'.'.join(map(str, first['loc']))}: {first['msg']}" if first else str(e).splitlines()[0])
        raise KsdkError(f"{p}: bad reward config ({what}); fields: {', '.join(RewardConfig.model_fields)}") from None


def reward(step: Step, cfg: RewardConfig) -> Optional[float]:
    """The step's reward; None when the step has no verdict to learn from (pending, or skipped infra failure).

    malformed                                   if the reply made no program
    duplicate                                   if it made a program already in the archive (None: skipped)
    infra                                       if the harness failed (None: step skipped)
    base + compiled*[compiled] + correct*[correct] + repair*[correct and parent not]
         + gain * clip(log2(child speedup / parent speedup), -gain_clip, gain_clip)   [both correct and timed]
    """
    outcome = step.outcome
    if outcome == "malformed":
        return cfg.malformed
    if outcome == "duplicate":
        return cfg.duplicate
    if outcome == "pending":
        return None
    if outcome == "infra":
        return cfg.infra
    r = cfg.base
    if outcome in ("incorrect", "correct", "interpreted"):
        r += cfg.compiled
    if outcome == "interpreted":  # correct, but only in an interpreter: no device result to reward beyond that
        return r + cfg.correct
    if outcome == "correct":
        r += cfg.correct
        if not step.parent_correct:
            r += cfg.repair
        g = step.gain
        if g is not None and g > 0:
            r += cfg.gain * max(-cfg.gain_clip, min(cfg.gain_clip, math.log2(g)))
    return r


def _raw(text: Optional[str]) -> Optional[RawJson]:
    return RawJson(text) if text else None


def rl_record(step: Step, value: float) -> dict[str, Any]:
    """One RL example: prompt messages, the reply, raw parent/child verdicts (or the mutation error), reward."""
    m = step.mutation
    return {
        "prompt": prompt_messages(step),
        # TRL's conversational prompt-completion shape: both sides are message lists
        "completion": [{"role": "assistant", "content": revision(step) or ""}],
        "reward": value,
        "outcome": step.outcome,
        "gain": step.gain,
        "gain_verified": step.gain_verified,
        # the verdicts exactly as the archive stored them (JSON objects in JSONL, JSON text in Parquet)
        "parent_result": _raw(step.parent_raw),
        "child_result": _raw(step.child_raw),
        "error": step.error,
        **step.tags(),
        "mutator": m.mutator if m else None,
        "model": m.model if m else None,
        "reply_format": m.reply_format if m is not None and m.reply else ("edits" if step.child else None),
    }


def rl_schema(pa):
    """Parquet schema of an RL record; the raw verdicts are JSON strings (their shape varies by stage)."""
    msg = pa.struct([("role", pa.string()), ("content", pa.string())])
    return pa.schema([
        ("prompt", pa.list_(msg)), ("completion", pa.list_(msg)), ("reward", pa.float64()), ("outcome", pa.string()),
        ("gain", pa.float64()), ("gain_verified", pa.bool_()),
        ("parent_result", pa.string()), ("child_result", pa.string()), ("error", pa.string()),
        ("task", pa.string()), ("backend", pa.string()), ("device", pa.string()), ("run", pa.string()),
        ("step", pa.int64()), ("parent_id", pa.string()), ("child_id", pa.string()), ("mutator", pa.string()),
        ("model", pa.string()), ("reply_format", pa.string()),
    ])


def _records(runs: list[RunInfo], cfg: RewardConfig, stats: ExportStats,
             batch: int) -> Iterator[tuple[str, dict[str, Any]]]:
    for step in iter_steps(runs, batch=batch):
        stats.saw(step.task, step.outcome)
        if step.child is None and not (step.mutation and step.mutation.reply):
            stats.dropped["no reply (mutator asked no model)"] += 1
            continue
        value = reward(step, cfg)
        if value is None:
            stats.dropped[f"no reward ({step.outcome})"] += 1
            continue
        rec = rl_record(step, value)
        stats.kept(step.task, TRAIN, step.run.backend, step.device, step.gain, value)
        yield TRAIN, rec


def export_rl(run_dirs: Sequence[str | Path], out: str | Path, fmt: str = "jsonl",
              reward_config: Optional[RewardConfig] = None, batch: int = 512) -> ExportStats:
    """Export every step of the runs with its reward to `out` (+ `.card.md`)."""
    cfg = reward_config or RewardConfig()
    runs = open_runs(run_dirs)
    reset()
    filters = {"steps": "every mutation attempt (failed ones included)",
               "reward": ", ".join(f"{k}={v}" for k, v in cfg.model_dump().items())}
    stats = ExportStats(kind="rl", runs=runs, filters=filters)
    for r in runs:
        stats.tasks[r.task]
    return run_export(Path(out), fmt, [TRAIN], rl_schema, stats, _records(runs, cfg, stats, batch))
