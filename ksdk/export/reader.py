"""Streaming, read-only reader of evolution run directories: yields one Step per mutation attempt."""

from __future__ import annotations

import json
import sqlite3
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, Iterator, Optional

from pydantic import ValidationError

from ksdk.archives.retimings import Retiming
from ksdk.errors import RunDirError
from ksdk.export.runs import ARCHIVE, RunInfo, _get, _sqlite_problem, connect, open_run, open_runs  # noqa: F401
from ksdk.interfaces.mutator import Scored
from ksdk.models import Candidate, ErrorKind, EvalResult, Mutation, Stage, Status

# Error kinds that mean the program never got to run, wherever the backend noticed (Triton compiles lazily,
# so its compile errors surface during the correctness stage).
_BUILD_ERRORS = {ErrorKind.SYNTAX, ErrorKind.IMPORT, ErrorKind.MISSING_ENTRY, ErrorKind.COMPILE}


@dataclass
class Step:
    """One mutation attempt: what the mutator saw, what it replied, and how parent and child fared."""

    run: RunInfo
    attempt_id: int
    parent: Optional[Scored]
    child: Optional[Scored]
    mutation: Optional[Mutation]
    context: dict[str, Any]
    error: Optional[str]
    created_at: Optional[float]
    inspiration_ids: list[str] = field(default_factory=list)
    retimed: dict[str, float] = field(default_factory=dict, repr=False)  # re-timed medians of the run's leaders
    parent_raw: Optional[str] = field(default=None, repr=False)  # the results rows' JSON text, as stored
    child_raw: Optional[str] = field(default=None, repr=False)
    _load: Optional[Callable[[str], Optional[Scored]]] = field(default=None, repr=False, compare=False)

    @cached_property
    def inspirations(self) -> list[Scored]:
        """The archive programs the mutator was shown beside the parent (read on first use, while streaming)."""
        if self._load is None:
            return []
        return [s for s in map(self._load, self.inspiration_ids) if s is not None]

    @property
    def key(self) -> str:
        """Stable id of the step across exports: run name and attempt id."""
        return f"{self.run.name}:{self.attempt_id}"

    @property
    def task(self) -> str:
        return self.run.task

    @property
    def parent_result(self) -> Optional[EvalResult]:
        return self.parent.result if self.parent else None

    @property
    def child_result(self) -> Optional[EvalResult]:
        return self.child.result if self.child else None

    @cached_property
    def parent_correct(self) -> bool:
        """The parent passed correctness (computed once: exports ask often)."""
        p = self.parent_result
        return p is not None and p.correct

    @cached_property
    def outcome(self) -> str:
        """'malformed' (no program), 'duplicate' (a program already in the archive, not re-evaluated), 'pending'
        (not evaluated yet), 'infra' (harness failure), 'build_failed', 'incorrect', 'interpreted' (correct in an
        interpreter, not run on a device) or 'correct'."""
        if self.child is None:
            return "duplicate" if (self.error or "").startswith("duplicate of ") else "malformed"
        r = self.child.result
        if r is None:
            return "pending"
        if r.status == Status.INFRA_ERROR:
            return "infra"
        if r.interpreted:
            return "interpreted"  # correct in an interpreter, never a verified device result
        if r.correct:
            return "correct"
        return "build_failed" if not compiled(r) else "incorrect"

    @property
    def parent_speedup(self) -> Optional[float]:
        """The parent's speedup: its re-timed median when the run re-timed it, else the search's figure."""
        return self._speedup(self.parent)

    @property
    def child_speedup(self) -> Optional[float]:
        return self._speedup(self.child)

    def _speedup(self, s: Optional[Scored]) -> Optional[float]:
        if s is None or s.result is None:
            return None
        return self.retimed.get(s.candidate.id, s.result.speedup)

    @cached_property
    def gain(self) -> Optional[float]:
        """Child speedup over parent speedup (each re-timed where the run re-timed it), when both are correct and
        timed; None otherwise."""
        if self.parent_result is None or not self.parent_correct or self.outcome != "correct":
            return None
        p, c = self.parent_speedup, self.child_speedup
        if not p or c is None or p <= 0:
            return None
        return c / p

    @property
    def gain_verified(self) -> bool:
        """Both sides of the gain are medians of re-timing rounds, not single evaluations of the search."""
        return (self.gain is not None and self.parent is not None and self.child is not None
                and self.parent.candidate.id in self.retimed and self.child.candidate.id in self.retimed)

    @property
    def device(self) -> str:
        """The run's device; the child's verdict names it when run.json does not."""
        r = self.child_result
        if self.run.device == "unknown" and r is not None:
            return r.device.name
        return self.run.device

    def tags(self) -> dict[str, Any]:
        """Where a record comes from: task, backend, device, run, step and the parent and child ids."""
        return {
            "task": self.task,
            "backend": self.run.backend,
            "device": self.device,
            "run": self.run.name,
            "step": self.attempt_id,
            "parent_id": self.parent.candidate.id if self.parent else None,
            "child_id": self.child.candidate.id if self.child else None,
        }


def compiled(result: EvalResult) -> bool:
    """True when the program got past loading and compiling (it ran, right or wrong)."""
    if result.correct:
        return True
    if result.stage in (Stage.LOAD, Stage.COMPILE):
        return False
    return result.error_kind not in _BUILD_ERRORS


class RunReader:
    """Streams the steps of one run in attempt order, fetching rows in batches; memory stays bounded."""

    def __init__(self, run: RunInfo, batch: int = 512, busy_timeout_s: Optional[float] = None, cache: int = 1024):
        self.run = run
        self.batch = batch
        self.busy_timeout_s = busy_timeout_s
        self._cache: OrderedDict[str, Optional[tuple[Scored, Optional[str]]]] = OrderedDict()
        self._cache_size = cache
        self._con: Optional[sqlite3.Connection] = None
        self._retimed: Optional[dict[str, float]] = None

    def count(self) -> int:
        """Number of attempts (steps) in the run."""
        return int(self._q("SELECT COUNT(*) FROM attempts").fetchone()[0])

    def steps(self) -> Iterator[Step]:
        """Every attempt, oldest first, with parent and child joined and parsed."""
        sql = ("SELECT a.id, a.parent_id, a.candidate_id, a.mutation, a.context, a.error, a.created_at, "
               "c.candidate, r.result FROM attempts a "
               "LEFT JOIN candidates c ON c.id = a.candidate_id "
               "LEFT JOIN results r ON r.candidate_id = a.candidate_id ORDER BY a.id")
        cur = self._q(sql)
        while True:
            try:
                rows = cur.fetchmany(self.batch)
            except sqlite3.Error as e:
                raise RunDirError(_sqlite_problem(self.run.path / ARCHIVE, e)) from None
            if not rows:
                return
            for row in rows:
                yield self._step(*row)

    def _step(self, aid, parent_id, child_id, mut, ctx, error, created, cand, res) -> Step:
        where = f"attempt {aid}"
        context = self._json(ctx, where, "context") if ctx else {}
        if not isinstance(context, dict):
            context = {}
        mutation = self._model(Mutation, mut, where, "mutation") if mut else None
        child = None
        if child_id is not None and cand is not None:
            c = self._model(Candidate, cand, f"candidate {child_id}", "candidate")
            r = self._model(EvalResult, res, f"result of {child_id}", "result") if res else None
            child = Scored(candidate=c, result=r)
            if mutation is None:
                mutation = c.mutation
        # the child names the program it was made from; a parameter mutator may edit the best known config
        # rather than the sampled parent, and the revision must be read against what it really edited
        if child is not None and child.candidate.parent_ids:
            parent_id = child.candidate.parent_ids[0]
        found = self._get(parent_id) if parent_id else None
        return Step(run=self.run, attempt_id=int(aid), parent=found[0] if found else None, child=child,
                    retimed=self.retimed(),
                    mutation=mutation, context=context, error=error, created_at=created,
                    inspiration_ids=_inspiration_ids(context), parent_raw=found[1] if found else None,
                    child_raw=res if child is not None else None, _load=self.get)

    def retimed(self) -> dict[str, float]:
        """Re-timed median speedups of the run's leaders by candidate id (none in runs made before ksdk re-timed)."""
        if self._retimed is None:
            self._retimed = {}
            tables = {r[0] for r in self._q("SELECT name FROM sqlite_master WHERE type='table'")}
            if "retimings" in tables:
                for cid, raw in self._q("SELECT candidate_id, retiming FROM retimings"):
                    rt = self._model(Retiming, raw, f"re-timing of {cid}", "retiming")
                    if rt.median is not None:
                        self._retimed[cid] = rt.median
        return self._retimed

    def get(self, candidate_id: str) -> Optional[Scored]:
        """One candidate with its verdict, or None."""
        found = self._get(candidate_id)
        return found[0] if found else None

    def _get(self, candidate_id: str) -> Optional[tuple[Scored, Optional[str]]]:
        # LRU-cached: parents and inspirations repeat across neighbouring steps
        if candidate_id in self._cache:
            self._cache.move_to_end(candidate_id)
            return self._cache[candidate_id]
        row = self._q("SELECT c.candidate, r.result FROM candidates c LEFT JOIN results r "
                      "ON r.candidate_id = c.id WHERE c.id = ?", (candidate_id,)).fetchone()
        found = None
        if row is not None:
            c = self._model(Candidate, row[0], f"candidate {candidate_id}", "candidate")
            r = self._model(EvalResult, row[1], f"result of {candidate_id}", "result") if row[1] else None
            found = (Scored(candidate=c, result=r), row[1])
        self._cache[candidate_id] = found
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return found

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    def _q(self, sql: str, args: tuple = ()) -> sqlite3.Cursor:
        if self._con is None:
            self._con = connect(self.run, self.busy_timeout_s)
        try:
            return self._con.execute(sql, args)
        except sqlite3.Error as e:
            raise RunDirError(_sqlite_problem(self.run.path / ARCHIVE, e)) from None

    def _json(self, text: str, where: str, what: str) -> Any:
        try:
            return json.loads(text)
        except (TypeError, json.JSONDecodeError) as e:
            raise RunDirError(f"{self.run.path / ARCHIVE}: {where}: corrupt {what} JSON ({e}); "
                              "the archive is damaged, leave this run out") from None

    def _model(self, cls, text: str, where: str, what: str):
        try:
            return cls.model_validate_json(text)
        except ValidationError as e:
            first = e.errors()[0] if e.errors() else {}
            loc = ".".join(str(x) for x in first.get("loc", ()))
            raise RunDirError(f"{self.run.path / ARCHIVE}: {where}: corrupt {what} JSON "
                              f"({first.get('msg', 'invalid')}{' at ' + loc if loc else ''}); "
                              "the archive is damaged, leave this run out") from None

    def __enter__(self) -> "RunReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _inspiration_ids(context: dict[str, Any]) -> list[str]:
    ids = context.get("inspirations") or context.get("inspiration_ids") or []
    out = []
    for x in ids if isinstance(ids, list) else []:
        if isinstance(x, str):
            out.append(x)
        elif isinstance(x, dict):  # a full Scored or Candidate, depending on how the loop recorded it
            cid = _get(x, "candidate", "id") or x.get("id")
            if isinstance(cid, str):
                out.append(cid)
    return out


def iter_steps(runs: list[RunInfo], batch: int = 512) -> Iterator[Step]:
    """Steps of several runs, run by run in the order given, attempts in the order they were made."""
    for run in runs:
        with RunReader(run, batch=batch) as reader:
            yield from reader.steps()
