"""`ksdk export sft|rl RUN_DIR... -o FILE`: evolution runs as training data (see docs/export.md)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from ksdk.cli.main import app

export_app = typer.Typer(no_args_is_help=True, help="Turn evolution run directories into SFT or RL training data.")
app.add_typer(export_app, name="export")

_FORMAT = typer.Option("jsonl", "--format", "-f", help="jsonl, or parquet (needs pip install 'ksdk\\[parquet]')")
_OUT = typer.Option(..., "--out", "-o", help="output file; validation goes to <stem>.val<ext>, card to <stem>.card.md")


@export_app.command("sft")
def sft(
    run_dirs: List[Path] = typer.Argument(..., help="run directories written by `ksdk evolve`"),
    out: Path = _OUT,
    min_gain: float = typer.Option(1.05, "--min-gain", help="keep steps whose child is at least this much faster"),
    max_per_task: Optional[int] = typer.Option(None, "--max-per-task", help="at most N records per task"),
    val_fraction: float = typer.Option(0.1, "--val-fraction", help="share of TASKS held out for validation"),
    fmt: str = _FORMAT,
    seed: int = typer.Option(0, "--seed", help="seed of the task split"),
    no_dedup: bool = typer.Option(False, "--no-dedup", help="keep repeated programs"),
):
    """Kept steps (parent and child correct, gain >= --min-gain, new programs) as chat "messages" records."""
    from pydantic import ValidationError

    from ksdk.errors import KsdkError
    from ksdk.export.sft import SftOptions, export_sft

    try:
        opts = SftOptions(min_gain=min_gain, max_per_task=max_per_task, val_fraction=val_fraction, seed=seed,
                          dedup=not no_dedup)
    except ValidationError as e:
        first = e.errors()[0]
        raise KsdkError(f"--{str(first['loc'][0]).replace('_', '-')}: {first['msg']}") from None
    stats = export_sft(run_dirs, out, fmt=fmt, options=opts)
    _report(stats)


@export_app.command("rl")
def rl(
    run_dirs: List[Path] = typer.Argument(..., help="run directories written by `ksdk evolve`"),
    out: Path = _OUT,
    reward_config: Optional[Path] = typer.Option(None, "--reward-config", help="RewardConfig weights (.json/.toml)"),
    fmt: str = _FORMAT,
):
    """Every step (failed mutations too) with prompt, reply, raw verdicts and reward."""
    from ksdk.export.rl import export_rl, load_reward_config

    cfg = load_reward_config(reward_config) if reward_config else None
    stats = export_rl(run_dirs, out, fmt=fmt, reward_config=cfg)
    _report(stats)


def _report(stats) -> None:
    print(stats.summary())
    for split, path in stats.files.items():
        print(f"  {split}: {path}")
    for w in stats.warnings:
        print(f"  warning: {w}")
