"""The service's memory across restarts: finished verdicts by idempotency key, in a small SQLite file.

A driver that retries after the service was killed gets the stored verdict instead of a second evaluation.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Optional

from ksdk.models import EvalResult

SCHEMA = """
CREATE TABLE IF NOT EXISTS verdicts (
  key TEXT PRIMARY KEY, job_id TEXT NOT NULL, digest TEXT NOT NULL, result TEXT NOT NULL, finished_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS evaluations (   -- append-only: one row per evaluation run to a verdict
  id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT, job_id TEXT, candidate_id TEXT, cached INTEGER,
  pid INTEGER, finished_at REAL
);
"""


class VerdictStore:
    """Verdicts keyed by idempotency key (WAL, one row per key) plus a log of every evaluation run."""

    def __init__(self, path: str | Path, keep_days: float = 7.0):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # survives a killed process; that is the case we need
        self._db.executescript(SCHEMA)
        self._db.execute("DELETE FROM verdicts WHERE finished_at < ?", (time.time() - keep_days * 86400,))

    def get(self, key: str) -> Optional[tuple[str, str, EvalResult, float]]:
        """(job id, request digest, verdict, finished_at) stored for a key, if any."""
        with self._lock:
            row = self._db.execute(
                "SELECT job_id, digest, result, finished_at FROM verdicts WHERE key=?", (key,)).fetchone()
        if row is None:
            return None
        return row[0], row[1], EvalResult.model_validate_json(row[2]), row[3]

    def get_job(self, job_id: str) -> Optional[tuple[str, str, EvalResult, float]]:
        """(key, digest, verdict, finished_at) of a finished job, found after a restart."""
        with self._lock:
            row = self._db.execute(
                "SELECT key, digest, result, finished_at FROM verdicts WHERE job_id=?", (job_id,)).fetchone()
        if row is None:
            return None
        return row[0], row[1], EvalResult.model_validate_json(row[2]), row[3]

    def put(self, key: str, job_id: str, digest: str, result: EvalResult, pid: int) -> None:
        """Record a verdict before the service answers with it, so no answer is ever lost to a kill."""
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("INSERT OR REPLACE INTO verdicts VALUES (?, ?, ?, ?, ?)",
                             (key, job_id, digest, result.model_dump_json(), now))
            self._db.execute(
                "INSERT INTO evaluations (key, job_id, candidate_id, cached, pid, finished_at) VALUES (?,?,?,?,?,?)",
                (key, job_id, result.candidate_id, int(result.cached), pid, now))
            self._db.execute("COMMIT")

    def evaluation_counts(self) -> dict[str, int]:
        """How many evaluations ran to a verdict, per key (exactly-once means every value is 1)."""
        with self._lock:
            rows = self._db.execute("SELECT key, COUNT(*) FROM evaluations GROUP BY key").fetchall()
        return {k: n for k, n in rows}

    def close(self) -> None:
        with self._lock:
            self._db.close()
