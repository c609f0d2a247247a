"""Run directories as the export reads them: checked and identified from run.json, their archives opened read-only,
each problem one line naming the directory and what to do."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional
from urllib.parse import quote

from pydantic import ValidationError

from ksdk.errors import RunDirError
from ksdk.languages import Language

ARCHIVE = "archive.sqlite"
RUN_JSON = "run.json"
TABLES = ("candidates", "results", "attempts")
BUSY_TIMEOUT_S = 5.0  # how long to wait for a writer that holds the archive before calling it locked
_SQLITE_MAGIC = b"SQLite format 3\x00"


@dataclass(frozen=True)
class RunInfo:
    """One run directory's identity, as recorded in its run.json."""

    path: Path
    name: str
    task: str
    backend: str
    device: str
    device_kind: str
    language: Language
    finished: bool
    task_source: Optional[str]
    config: dict[str, Any] = field(repr=False, compare=False, hash=False)


def _get(d: Any, *path: str) -> Any:
    for p in path:
        if not isinstance(d, dict):
            return None
        d = d.get(p)
    return d


def open_run(path: str | Path) -> RunInfo:
    """Check a run directory's shape and read its run.json; raises RunDirError naming the problem and the fix."""
    p = Path(path)
    if not p.exists():
        raise RunDirError(f"run directory not found: {p}")
    if not p.is_dir():
        raise RunDirError(f"{p} is not a directory (pass the run directories that `ksdk evolve` wrote)")
    rj = p / RUN_JSON
    if not rj.is_file():
        inner = sorted(c.name for c in p.iterdir() if (c / RUN_JSON).is_file()) if p.is_dir() else []
        hint = (f"; it holds {len(inner)} run directories, pass them instead (e.g. {p}/*)" if inner
                else "; pass the directories that `ksdk evolve` wrote")
        raise RunDirError(f"{p} is not a ksdk run directory (no {RUN_JSON}){hint}")
    try:
        config = json.loads(rj.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RunDirError(f"{rj}: unreadable run config ({e}); the run directory is damaged, leave it out") from None
    if not isinstance(config, dict):
        raise RunDirError(f"{rj}: expected a JSON object, found {type(config).__name__}; leave this run out")
    if not (p / ARCHIVE).is_file():
        raise RunDirError(f"{p}: no {ARCHIVE} (the run never started or was moved partially); leave it out")
    task = config.get("task")  # RunConfig writes task_name; tolerate a nested task object too
    task_name = config.get("task_name") or (task if isinstance(task, str) else _get(task, "name"))
    if not task_name:
        raise RunDirError(f"{rj}: no task_name; the run config is damaged or not from ksdk evolve, leave it out")
    backend = config.get("backend")
    backend = backend if isinstance(backend, str) else _get(backend, "name") or "unknown"
    dev = config.get("device")
    if isinstance(dev, list):  # a run over several devices records them all; tag with the first
        dev = dev[0] if dev else None
    device = dev if isinstance(dev, str) else _get(dev, "name") or "unknown"
    device_kind = _get(dev, "kind") or ""
    task_py = p / "task.py"
    return RunInfo(
        path=p,
        name=str(config.get("run_id") or config.get("name") or p.name),
        task=str(task_name),
        backend=str(backend),
        device=str(device),
        device_kind=str(device_kind),
        language=_language(config),
        finished=bool(config.get("finished", False)),
        task_source=task_py.read_text() if task_py.is_file() else _get(task, "source"),
        config=config,
    )


def _language(config: dict[str, Any]) -> Language:
    """The run's candidate language as its backend declared it (run.json keeps it), or, for older runs, its name."""
    declared = config.get("language")
    if isinstance(declared, dict):
        try:
            return Language.model_validate(declared)
        except ValidationError:
            pass  # a declaration this ksdk cannot read: fall back to the name
    name = config.get("seed_language") or (declared if isinstance(declared, str) else _get(declared, "name"))
    return Language(name=str(name or ""))


def connect(run: RunInfo, busy_timeout_s: Optional[float] = None) -> sqlite3.Connection:
    """Open a run's archive read-only; raises RunDirError if it is not a ksdk archive or stays locked."""
    db = run.path / ARCHIVE
    try:
        with open(db, "rb") as f:
            head = f.read(16)
    except OSError as e:
        raise RunDirError(f"{db}: cannot read ({e.strerror}); fix its permissions") from None
    if head != _SQLITE_MAGIC:
        raise RunDirError(f"{db}: not an SQLite database (damaged or truncated); leave this run out")
    try:
        timeout = BUSY_TIMEOUT_S if busy_timeout_s is None else busy_timeout_s
        con = sqlite3.connect(f"file:{quote(str(db.resolve()))}?mode=ro", uri=True, timeout=timeout,
                              check_same_thread=False)
        names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.Error as e:
        raise RunDirError(_sqlite_problem(db, e)) from None
    missing = [t for t in TABLES if t not in names]
    if missing:
        con.close()
        raise RunDirError(f"{db}: no table {', '.join(missing)}: not a ksdk run archive (or from an older ksdk)")
    return con


def _sqlite_problem(db: Path, e: sqlite3.Error) -> str:
    text = str(e)
    if "locked" in text or "busy" in text:
        return f"{db}: database is locked by another process (a run still writing?); retry when it is done"
    return f"{db}: cannot read the archive ({text}); leave this run out"


def open_runs(paths: Iterable[str | Path]) -> list[RunInfo]:
    """Validate every run directory up front (so a bad one fails before anything is written), in order given."""
    runs, seen = [], set()
    for p in paths:
        info = open_run(p)
        key = info.path.resolve()
        if key in seen:
            continue
        seen.add(key)
        connect(info).close()
        runs.append(info)
    if not runs:
        raise RunDirError("no run directories given; pass one or more directories that `ksdk evolve` wrote")
    names = [r.name for r in runs]
    if len(set(names)) != len(names):  # same dir name under different parents: tag runs by path instead
        runs = [RunInfo(**{**r.__dict__, "name": str(r.path)}) for r in runs]
    return runs
