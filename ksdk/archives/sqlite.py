"""SqliteArchive: every candidate, verdict and mutation attempt in one SQLite file (WAL), durable per write.

A run directory is this file: the loop, the report, `ksdk show` and `ksdk export` all read it, so it is not a
plugin (docs/evolution.md documents the schema, readable without ksdk)."""

from __future__ import annotations

import json
import random
import sqlite3
import time
from pathlib import Path
from typing import Any, Iterable, Optional

from pydantic import ValidationError

from ksdk.archives.retimings import Retiming
from ksdk.archives.selection import Selection, SelectionConfig, Selector
from ksdk.errors import RunDirError
from ksdk.interfaces.mutator import Scored
from ksdk.languages import Language
from ksdk.models import Candidate, EvalResult, Mutation, Status

SCHEMA = """
CREATE TABLE IF NOT EXISTS candidates (
    id TEXT PRIMARY KEY, parent_id TEXT, candidate TEXT NOT NULL, source_hash TEXT, created_at REAL);
CREATE TABLE IF NOT EXISTS results (
    candidate_id TEXT PRIMARY KEY, result TEXT NOT NULL, correct INTEGER, score REAL, speedup REAL,
    evaluated_at REAL);
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT, parent_id TEXT, candidate_id TEXT NULL, mutation TEXT, context TEXT,
    error TEXT NULL, created_at REAL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS retimings (candidate_id TEXT PRIMARY KEY, retiming TEXT NOT NULL, median REAL,
    created_at REAL);
CREATE INDEX IF NOT EXISTS candidates_hash ON candidates(source_hash);
CREATE INDEX IF NOT EXISTS results_score ON results(score);
"""
SCHEMA_VERSION = "2"  # 2: the retimings table (created in older archives when opened)


class SqliteArchive:
    """The RUN_DIR archive. Reads are served from memory; each write is committed before the call returns.

    `language` decides which programs are the same (its comment syntax): a duplicate is never evaluated twice."""

    def __init__(self, path: str | Path, selection: Optional[SelectionConfig] = None, must_exist: bool = False,
                 language: Optional[Language] = None):
        self.path = Path(path)
        self.language = language or Language()
        if must_exist and not self.path.is_file():
            raise RunDirError(f"no archive at {self.path}: not a ksdk run directory (expected archive.sqlite)")
        self._db: Optional[sqlite3.Connection] = None
        try:
            self._db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode survives a killed process (not a power cut) and keeps each commit cheap.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)
        except sqlite3.DatabaseError as e:
            self.close()
            raise RunDirError(f"{self.path} is not a usable ksdk archive: {e}") from None
        self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
        # an older archive has gained the tables it lacked (SCHEMA): say so; an up-to-date one is not written to
        self._db.execute("UPDATE meta SET value=? WHERE key='schema_version' AND value<>?", (SCHEMA_VERSION,) * 2)
        self.selector = Selector(selection, self.language)
        self._order: dict[str, Scored] = {}  # every candidate, oldest first
        self._by_hash: dict[str, str] = {}
        self.cost_usd = 0.0  # money recorded in attempts (survives resume)
        self.device_s = 0.0
        self.attempt_count = 0
        self.failed_attempts = 0
        self.last_notes: dict[str, list[str]] = {}  # parent id -> notes of its last attempt (unapplied edits...)
        self.retimings: dict[str, Retiming] = {}  # the leaders' re-timings, by candidate id (the last session's)
        try:
            self._load()
        except BaseException:
            self.close()
            raise

    def _parse(self, cls, raw: str, where: str):
        try:
            return cls.model_validate_json(raw)
        except ValidationError as e:
            msg = e.errors()[0].get("msg", "invalid") if e.errors() else "invalid"
            raise RunDirError(f"{self.path} is damaged: {where} is not valid JSON for ksdk ({msg}); "
                              "restore the archive from a copy or start a new run") from None

    # -- loading ----------------------------------------------------------------------------------
    def _load(self) -> None:
        for cid, raw in self._db.execute("SELECT id, candidate FROM candidates ORDER BY created_at, rowid"):
            c = self._parse(Candidate, raw, f"candidate {cid}")
            self._order[c.id] = Scored(candidate=c)
            self._by_hash.setdefault(self.language.source_hash(c.source), c.id)
        for cid, raw in self._db.execute("SELECT candidate_id, result FROM results ORDER BY evaluated_at, rowid"):
            entry = self._order.get(cid)
            if entry is None:
                continue
            entry.result = self._parse(EvalResult, raw, f"the result of {cid}")
            self.device_s += entry.result.device_s
            self.selector.observe(entry)
        for cid, raw in self._db.execute("SELECT candidate_id, retiming FROM retimings"):
            self.retimings[cid] = self._parse(Retiming, raw, f"the re-timing of {cid}")
        for aid, parent, mut, err in self._db.execute(
                "SELECT id, parent_id, mutation, error FROM attempts ORDER BY id"):
            self.attempt_count += 1
            self.failed_attempts += err is not None
            if mut:
                m = self._parse(Mutation, mut, f"attempt {aid}")
                self.cost_usd += m.cost_usd
                self.last_notes[parent] = list(m.notes)

    # -- candidates and verdicts ---------------------------------------------------------------------
    def add(self, candidate: Candidate, result: Optional[EvalResult]) -> None:
        """Store a candidate and its verdict (None while not yet evaluated) in one transaction."""
        with self._db:  # one transaction: candidate and verdict land together
            self._db.execute("BEGIN")
            self._insert_candidate(candidate)
            if result is not None:
                self._insert_result(candidate, result)
        self._remember(candidate, result)

    def _insert_candidate(self, c: Candidate) -> None:
        self._db.execute(
            "INSERT OR IGNORE INTO candidates VALUES (?, ?, ?, ?, ?)",
            (c.id, c.parent_ids[0] if c.parent_ids else None, c.to_json(), self.language.source_hash(c.source),
             c.created_at),
        )

    def _insert_result(self, c: Candidate, r: EvalResult) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?, ?)",
            (c.id, r.to_json(), int(r.correct), r.score, r.speedup, time.time()),
        )

    def _remember(self, c: Candidate, r: Optional[EvalResult]) -> None:
        entry = self._order.get(c.id)
        if entry is None:
            entry = self._order[c.id] = Scored(candidate=c)
            self._by_hash.setdefault(self.language.source_hash(c.source), c.id)
        if r is not None:
            entry.result = r
            self.device_s += r.device_s
            self.selector.observe(entry)

    def select(self, rng: random.Random, n_inspirations: int = 3) -> Selection:
        """A parent and inspirations (top performers and diverse programs), the island the child joins and why the
        parent was chosen."""
        return self.selector.select(rng, n_inspirations)

    def get(self, candidate_id: str) -> Optional[Scored]:
        """One candidate with its verdict, or None."""
        return self._order.get(candidate_id)

    def best(self, k: int = 1) -> list[Scored]:
        """The k best correct candidates, best first."""
        correct = [e for e in self._order.values() if e.result is not None and e.result.correct]
        return sorted(correct, key=lambda e: -e.result.score)[:k]

    def leaders(self, k: int = 1) -> list[Scored]:
        """The k best correct candidates as verified: re-timed ones by their median speedup over fresh evaluations,
        then the others by the speedup the search measured; one that failed its re-timing comes last."""
        def rank(e: Scored) -> tuple[int, float]:
            rt = self.retimings.get(e.candidate.id)
            if rt is None:
                return 1, -e.result.score
            return (0, -(rt.median or 0.0)) if rt.ok else (2, -e.result.score)

        correct = [e for e in self._order.values() if e.result is not None and e.result.correct]
        return sorted(correct, key=rank)[:k]

    def save_retimings(self, retimings: list[Retiming], info: dict[str, Any]) -> None:
        """Replace the stored re-timings with these (one transaction), and record how they were made in meta."""
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM retimings")
            for rt in retimings:
                self._db.execute("INSERT INTO retimings VALUES (?, ?, ?, ?)",
                                 (rt.candidate_id, rt.to_json(), rt.median, time.time()))
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('retimed', ?)", (json.dumps(info),))
        self.retimings = {rt.candidate_id: rt for rt in retimings}

    def all(self) -> Iterable[Scored]:
        """Every candidate, oldest first."""
        return list(self._order.values())

    def find_duplicate(self, candidate: Candidate) -> Optional[Scored]:
        """A stored candidate with the same program (normalised in the archive's language), if any."""
        cid = self._by_hash.get(self.language.source_hash(candidate.source))
        return self._order.get(cid) if cid else None

    def in_verdict_order(self) -> list[Scored]:
        """Candidates with a verdict, in the order their verdicts were stored."""
        rows = self._db.execute("SELECT candidate_id FROM results ORDER BY evaluated_at, rowid")
        return [self._order[cid] for (cid,) in rows if cid in self._order]

    def close(self) -> None:
        """Close the file (every write is already committed)."""
        if self._db is not None:
            self._db.close()
            self._db = None

    # -- beyond the interface: attempts, pending work, metadata -----------------------------------
    def propose(self, candidate: Optional[Candidate], parent_id: Optional[str], mutation: Mutation,
                context: dict[str, Any], error: Optional[str] = None) -> int:
        """Record one mutation attempt, and the candidate it made (if any), in one transaction."""
        with self._db:
            self._db.execute("BEGIN")
            if candidate is not None:
                self._insert_candidate(candidate)
            cur = self._db.execute(
                "INSERT INTO attempts (parent_id, candidate_id, mutation, context, error, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (parent_id, candidate.id if candidate else None, mutation.to_json(), json.dumps(context), error,
                 time.time()),
            )
        if candidate is not None:
            self._remember(candidate, None)
        self.attempt_count += 1
        self.failed_attempts += error is not None
        self.cost_usd += mutation.cost_usd
        if parent_id is not None:
            self.last_notes[parent_id] = list(mutation.notes)
        return int(cur.lastrowid)

    def pending(self) -> list[Candidate]:
        """Candidates stored without a verdict (or with a harness failure): to evaluate, oldest first."""
        return [e.candidate for e in self._order.values()
                if e.result is None or e.result.status == Status.INFRA_ERROR]

    def evaluated(self) -> list[Scored]:
        """Candidates with a verdict from the candidate itself (harness failures excluded), oldest first."""
        return [e for e in self._order.values() if e.result is not None and e.result.status != Status.INFRA_ERROR]

    def attempts(self) -> list[dict[str, Any]]:
        """Every mutation attempt, oldest first, as dicts (mutation and context parsed)."""
        rows = self._db.execute(
            "SELECT id, parent_id, candidate_id, mutation, context, error, created_at FROM attempts ORDER BY id")
        return [
            {"id": i, "parent_id": p, "candidate_id": c, "mutation": json.loads(m) if m else None,
             "context": json.loads(x) if x else None, "error": e, "created_at": t}
            for i, p, c, m, x, e, t in rows
        ]

    def lineage(self, candidate_id: str) -> list[Scored]:
        """The candidate and its first-parent ancestors, seed first."""
        chain, seen = [], set()
        cur = self._order.get(candidate_id)
        while cur is not None and cur.candidate.id not in seen:
            seen.add(cur.candidate.id)
            chain.append(cur)
            pid = cur.candidate.parent_ids[0] if cur.candidate.parent_ids else None
            cur = self._order.get(pid) if pid else None
        return chain[::-1]

    def set_meta(self, key: str, value: Any) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    def get_meta(self, key: str, default: Any = None) -> Any:
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def __len__(self) -> int:
        return len(self._order)
