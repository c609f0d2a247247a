"""The export driver: stream records into one writer per split and commit every file together, or none."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Iterator

from ksdk.export.card import ExportStats, render_card
from ksdk.export.writers import AtomicText, RecordWriter, open_writer, sibling

TRAIN, VAL = "train", "val"


def output_paths(out: Path, splits: list[str]) -> dict[str, Path]:
    """`data.jsonl` -> train `data.jsonl`, val `data.val.jsonl` (the card goes to `data.card.md`)."""
    return {s: out if s == TRAIN else sibling(out, s) for s in splits}


def card_path(out: Path) -> Path:
    return out.with_name(f"{out.stem if out.suffix else out.name}.card.md")


def run_export(out: Path, fmt: str, splits: list[str], schema: Callable[[Any], Any], stats: ExportStats,
               records: Iterator[tuple[str, dict[str, Any]]]) -> ExportStats:
    """Write `records` (split, record) and the card; on any error remove every temp file and re-raise."""
    started = time.perf_counter()
    paths = output_paths(Path(out), splits)
    writers: dict[str, RecordWriter] = {}
    card = None
    try:
        for split, path in paths.items():
            writers[split] = open_writer(path, fmt, schema)
        card = AtomicText(card_path(Path(out)))
        for split, record in records:
            writers[split].write(record)
        stats.files = {s: str(p) for s, p in paths.items()}
        stats.seconds = time.perf_counter() - started
        card.write(render_card(stats))
        for w in writers.values():
            w.finish()
    except BaseException:
        for w in writers.values():
            w.abort()
        if card is not None:
            card.abort()
        raise
    # every file is complete on disk: move them into place (renames within one directory)
    pending = [*writers.values(), card]
    try:
        while pending:
            pending[0].commit()
            pending.pop(0)
    except BaseException:
        for f in pending:  # a failed rename leaves no temp file behind
            f.abort()
        raise
    return stats
