"""Candidate processes started ahead of need (spares) and the judge's seed folder copied into each: `Pool.take`
hands out a ready process and starts its replacement; `Pool.held` stops starts in progress while a device timing
runs."""

from __future__ import annotations

import contextlib
import json
import shutil
import threading
from collections import deque
from concurrent.futures import Future
from pathlib import Path
from typing import Iterator, Optional

from ksdk.evaluation import sandbox
from ksdk.evaluation.procs import pool as _pool
from ksdk.evaluation.sandboxed import CandidateProcess, Launch, StartError

SEED_WAIT_S = 150.0  # how long a candidate waits for the judge's first seed build (once per judge)
SEED_REQUESTS_MAX = 64  # distinct seed requests a judge builds over its life


class Seeder:
    """The judge's seed folder (Backend.seed_cache): filled in a thread of the judge's, once at start and then with
    what candidates' Runners ask for (each request once, at most SEED_REQUESTS_MAX); each candidate's process gets
    a copy of it as it stands when the process is handed out."""

    def __init__(self, backend, ctx):
        self.backend, self.ctx = backend, ctx
        self.folder = sandbox.make_scratch(prefix="ksdk-seed-")
        self.asked: set[str] = set()
        self.first = _pool("ksdk-seed", 1).submit(self._build, [])

    def _build(self, requests: list) -> None:
        try:
            self.backend.seed_cache(self.ctx, self.folder, requests)
        except Exception:  # noqa: BLE001 - a seed that cannot be built only costs candidates the build
            pass

    def ask(self, requests: list) -> None:
        """Build what a candidate's Runner asked for, unless asked before (the backend validates each request)."""
        new = []
        for r in list(requests)[:16]:
            key = json.dumps(r, sort_keys=True, default=str)[:8192]
            if key not in self.asked and len(self.asked) < SEED_REQUESTS_MAX:
                self.asked.add(key)
                new.append(r)
        if new:
            _pool("ksdk-seed", 1).submit(self._build, new)

    def copy_into(self, scratch: Path) -> None:
        """Copy the folder as it stands into a candidate's scratch (waiting for the first build, at most
        SEED_WAIT_S); files a build is still writing (Triton's tmp.* folders) are left out."""
        try:
            self.first.result(timeout=SEED_WAIT_S)
        except Exception:  # noqa: BLE001 - late or failed: the candidate builds for itself
            pass
        try:
            if any(self.folder.iterdir()):
                shutil.copytree(self.folder, scratch, dirs_exist_ok=True, symlinks=True,
                                ignore=shutil.ignore_patterns("tmp.*", "*.tmp"))
        except (OSError, shutil.Error):  # a file replaced while copied: the candidate builds it for itself
            pass

    def close(self) -> None:
        sandbox.remove_scratch(self.folder)


class Pool:
    """Candidate processes started ahead of need: `take()` hands out a ready one, with a copy of the seeder's folder
    in its scratch, and starts its replacement."""

    def __init__(self, launch: Launch, spares: int, seeder: Optional[Seeder] = None):
        self.launch, self.spares, self.seeder = launch, max(0, spares), seeder
        self._ready: deque[Future] = deque()
        self._lock = threading.Lock()
        self._closed = False
        self._starting: set[CandidateProcess] = set()  # spares not yet ready
        self._holds = 0  # `held` blocks in progress
        self._fill()

    def _start(self) -> CandidateProcess:
        proc = CandidateProcess(self.launch)
        with self._lock:
            self._starting.add(proc)
            if self._holds:
                proc.hold()
        try:
            return proc.wait_ready()
        finally:
            with self._lock:
                self._starting.discard(proc)
                proc.release()  # it replied just before it was held: it waits for a request, using no CPU

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Spares still starting are stopped while the block runs (a device timing: a start imports the toolchain
        on the CPU that launches the timed calls and wakes their process), and go on after it."""
        with self._lock:
            self._holds += 1
            for proc in self._starting:
                proc.hold()
        try:
            yield
        finally:
            with self._lock:
                self._holds -= 1
                if not self._holds:
                    for proc in self._starting:
                        proc.release()

    def _fill(self) -> None:
        with self._lock:
            while not self._closed and len(self._ready) < self.spares:
                self._ready.append(_pool("ksdk-candidate-standby", 8).submit(self._start))

    def take(self) -> CandidateProcess:
        """A ready candidate process (a spare if one was started, else a new one); StartError if none starts."""
        while True:
            with self._lock:
                fut = self._ready.popleft() if self._ready else None
            self._fill()
            try:
                proc = self._start() if fut is None else fut.result()
            except StartError:
                raise
            except Exception as e:  # noqa: BLE001 - a spare that failed to start is retried as a fresh start
                raise StartError(f"a candidate process could not start: {type(e).__name__}: {e}") from e
            if proc.alive:
                if self.seeder is not None:
                    self.seeder.copy_into(proc.scratch)
                return proc
            proc.kill()

    def wait_spares(self) -> None:
        """Block until the spares have started (so that no process start overlaps a CPU timing)."""
        with self._lock:
            pending = list(self._ready)
        for fut in pending:
            try:
                fut.result()
            except Exception:  # noqa: BLE001 - take() reports it
                pass

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pending, self._ready = list(self._ready), deque()
        for fut in pending:
            fut.add_done_callback(lambda f: None if f.exception() else f.result().close())
