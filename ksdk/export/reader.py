"""Streaming, read-only reader of evolution run directories: yields one Step per mutation attempt."""

from __future__ import annotations

import json
import sqlite3
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional
from urllib.parse import quote

from pydantic import ValidationError

from ksdk.archives.retimings import Retiming
from ksdk.errors import RunDirError
from ksdk.interfaces.mutator import Scored
from ksdk.languages import Language
from ksdk.models import Candidate, ErrorKind, EvalResult, Mutation, Stage, Status

ARCHIVE = "archive.sqlite"
RUN_JSON = "run.json"
TABLES = ("candidates", "results", "attempts")
BUSY_TIMEOUT_S = 5.0  # how long to wait for a writer that holds the archive before calling it locked
_SQLITE_MAGIC = b"SQLite format 3\x00"
# Error kinds that mean the program never got to run, wherever the backend noticed (Triton compiles lazily,
# so its compile errors surface during the correctness stage).
_BUILD_ERRORS = {ErrorKind.SYNTAX, ErrorKind.IMPORT, ErrorKind.MISSING_ENTRY, ErrorKind.COMPILE}


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
        (not evaluated yet), 'infra' (harness failure), 'build_failed', 'incorrect' or 'correct'."""
        if self.child is None:
            return "duplicate" if (self.error or "").startswith("duplicate of ") else "malformed"
        r = self.child.result
        if r is None:
            return "pending"
        if r.status == Status.INFRA_ERROR:
            return "infra"
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


def iter_steps(runs: list[RunInfo], batch: int = 512) -> Iterator[Step]:
    """Steps of several runs, run by run in the order given, attempts in the order they were made."""
    for run in runs:
        with RunReader(run, batch=batch) as reader:
            yield from reader.steps()
