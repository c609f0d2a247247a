"""Evaluation cache: identical candidates (normalized source, task, backend, device) are evaluated once."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Optional

from ksdk.languages import Language
from ksdk.models import Candidate, EvalResult, Status, Task


def cache_key(task: Task, candidate: Candidate, backend: str, device: str,
              language: Optional[Language] = None) -> str:
    """Key of one evaluation: what must match for a stored verdict to stand for a new one (the source normalised in
    the backend's language: a change of comments only is the same program)."""
    return f"{task.digest}:{(language or Language()).source_hash(candidate.source)}:{backend}:{device}"


class ResultCache:
    """In memory, and in SQLite when given a path so that a resumed run reuses earlier verdicts."""

    def __init__(self, path: Optional[str | Path] = None):
        self._mem: dict[str, str] = {}
        self._lock = threading.Lock()
        self._db = None
        if path is not None:
            self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, result TEXT NOT NULL)")

    def get(self, key: str) -> Optional[EvalResult]:
        with self._lock:
            raw = self._mem.get(key)
            if raw is None and self._db is not None:
                row = self._db.execute("SELECT result FROM results WHERE key=?", (key,)).fetchone()
                raw = row[0] if row else None
        return EvalResult.model_validate_json(raw) if raw else None

    def put(self, key: str, result: EvalResult) -> None:
        # Harness failures are not the candidate's verdict: never cache them.
        if result.status == Status.INFRA_ERROR:
            return
        raw = result.model_dump_json()
        with self._lock:
            self._mem[key] = raw
            if self._db is not None:
                self._db.execute("INSERT OR REPLACE INTO results VALUES (?, ?)", (key, raw))

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
