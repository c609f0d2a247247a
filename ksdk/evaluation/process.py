"""One worker process seen from the parent: start it, send a candidate, enforce per-stage timeouts.

A crash, hang or sticky device error becomes a verdict; the process (and its whole process group) is
killed and a fresh one takes its place on the next evaluation.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, NamedTuple, Optional

from ksdk.evaluation import containment, device_lock, frames
from ksdk.evaluation.procs import pool, signal_name, spawner
from ksdk.evaluation.protocol import JUDGE_ENV, PARENT_ENV, WORKER_FD_ENV, Evaluate, Note
from ksdk.evaluation.sandbox_env import scrubbed_env
from ksdk.models import Candidate, ErrorKind, EvalResult, Stage, Status, Task, trim_message

READY_TIMEOUT_S = 180.0
DEVICE_WAIT_S = 3600.0  # the most a judge may wait for its device's lock (held by other judges' evaluations)
STAGE_MARGIN_S = 30.0  # beyond a stage's limit, the judge gets this long to report the candidate's timeout itself


def _waiter() -> ThreadPoolExecutor:
    """Threads that wait for standby workers to become ready (the forking itself stays on the spawner)."""
    return pool("ksdk-worker-standby", 8)


class _Started(NamedTuple):
    """A judge process that has loaded its backend: its socket, its reader, its output log and its versions."""

    proc: subprocess.Popen
    sock: socket.socket
    reader: frames.Reader
    log: Any
    versions: dict


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL a worker's whole process group (it may already be gone)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _end(proc: subprocess.Popen, sock: Optional[socket.socket]) -> None:
    """Kill a worker's process group, reap it, remove the containment boxes it left, and close its socket."""
    _kill_group(proc)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass
    containment.remove_boxes(proc.pid)
    if sock is not None:
        try:
            sock.close()
        except OSError:
            pass


def _discard(started: _Started) -> None:
    """End a started worker that will never serve, and close its log."""
    _end(started.proc, started.sock)
    started.log.close()


def _recv(reader: frames.Reader, deadline: float) -> Optional[Note]:
    """The judge's next message (None when it closed its end); TimeoutError past the deadline, ValueError when it
    is not a well-formed Note."""
    try:
        msg, _fds = reader.recv(deadline)
    except frames.PeerClosed:
        return None
    except frames.FrameError as e:
        raise ValueError(str(e)) from None
    return Note.model_validate(msg)


class WorkerStartError(RuntimeError):
    """The worker could not load its backend (an installation problem, not a candidate's)."""


class WorkerProcess:
    """A persistent worker bound to one backend and one device."""

    def __init__(self, backend: str, device: int, interpret: bool, env_allow: tuple[str, ...] = (),
                 env_overrides: Optional[dict[str, str]] = None, standby: bool = False, spares: int = 1,
                 sandbox: bool = True):
        self.backend, self.device, self.interpret = backend, device, interpret
        self.spares, self.sandbox = spares, sandbox
        self.warnings: list[str] = []
        self._env_allow, self._env_overrides = env_allow, dict(env_overrides or {})
        self.standby = standby
        self.proc: Optional[subprocess.Popen] = None
        self.versions: dict[str, str] = {}
        self.restarts = -1
        self._log = None
        self._sock: Optional[socket.socket] = None
        self._reader: Optional[frames.Reader] = None
        self._spare: Optional[Future] = None

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        """Make a ready process the active one: the standby (started ahead) if there is one, else a new one.
        With standby on, the next spare starts at once, so replacing a killed worker costs no start-up time."""
        self.kill()
        self.restarts += 1
        started = self._take_spare() or self._launch()
        if self._log is not None:
            self._log.close()
        self.proc, self._sock, self._reader, self._log, self.versions = started
        if self.standby:
            self._spare = _waiter().submit(self._launch)

    def _take_spare(self) -> Optional[_Started]:
        fut, self._spare = self._spare, None
        if fut is None:
            return None
        try:
            started = fut.result()  # still starting: waiting for it is never slower than starting another
        except Exception:
            return None
        if started.proc.poll() is not None:
            _discard(started)
            return None
        return started

    def _launch(self) -> _Started:
        """Spawn a judge process and wait until its backend is loaded (blocking)."""
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        env = scrubbed_env(self._env_allow, self._env_overrides)
        env[WORKER_FD_ENV] = str(theirs.fileno())
        env[PARENT_ENV] = str(os.getpid())
        env[JUDGE_ENV] = json.dumps({"spares": self.spares, "sandbox": self.sandbox,
                                     "device_lock": None if self.interpret else device_lock.default_path(self.device)})
        env.setdefault("PYTHONUNBUFFERED", "1")
        log = tempfile.TemporaryFile()
        cmd = [sys.executable, "-m", "ksdk.evaluation.worker", self.backend, str(self.device)]
        if self.interpret:
            cmd.append("--interpret")
        # Spawned from one long-lived thread: Linux ties a worker's parent-death signal to the thread that
        # forked it, and an executor thread that ends (e.g. when an asyncio.run returns) would kill the worker.
        proc = spawner().submit(
            subprocess.Popen, cmd, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            pass_fds=(theirs.fileno(),), start_new_session=True, close_fds=True,
        ).result()
        theirs.close()
        started = _Started(proc, mine, frames.Reader(mine), log, {})
        try:
            msg = _recv(started.reader, time.monotonic() + READY_TIMEOUT_S)
        except (TimeoutError, ValueError, OSError):
            msg = None
        if msg is None or msg.op != "ready":
            log.flush()
            log.seek(0)
            detail = (msg.message if msg else None) or log.read().decode(errors="replace").strip()[-3000:] or \
                "no output"
            _discard(started)
            raise WorkerStartError(f"worker for backend '{self.backend}' failed to start: {detail}")
        self.warnings = [str(w) for w in msg.warnings]
        return started._replace(versions=dict(msg.versions))

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """Kill the worker and everything it spawned (its process group)."""
        if self.proc is None:
            return
        _end(self.proc, self._sock)
        self._sock = self._reader = None
        self.proc = None

    def interrupt(self) -> None:
        """Kill the process group from another thread; the thread inside `evaluate` sees EOF and cleans up."""
        proc = self.proc
        if proc is not None:
            _kill_group(proc)

    def close(self) -> None:
        """Ask the worker to exit, then make sure it has."""
        if self.alive:
            try:
                self._send({"op": "exit"})
                self.proc.wait(timeout=5)
            except Exception:
                pass
        self.kill()
        if self._log is not None:
            self._log.close()
            self._log = None
        fut, self._spare = self._spare, None
        if fut is not None:  # a standby still starting is discarded as soon as it is up
            fut.add_done_callback(lambda f: None if f.exception() else _discard(f.result()))

    def log_tail(self, limit: int = 3000) -> str:
        """The end of what the worker (and the candidate) printed."""
        if self._log is None:
            return ""
        self._log.flush()
        size = self._log.seek(0, os.SEEK_END)
        self._log.seek(max(0, size - limit))
        return self._log.read().decode(errors="replace").strip()

    # -- protocol --------------------------------------------------------------------------------
    def _send(self, msg: dict) -> None:
        frames.send(self._sock, msg)

    def _recv(self, deadline: float) -> Optional[Note]:
        """Next message, or None when the judge closed its end; TimeoutError past the deadline."""
        return _recv(self._reader, deadline)

    # -- one evaluation --------------------------------------------------------------------------
    def evaluate(self, task: Task, candidate: Candidate, skip_performance: bool = False) -> EvalResult:
        """Evaluate in the worker, starting it first if needed. Never raises for candidate behaviour. A worker
        that dies before it accepts the evaluation (so before any of this candidate's code ran: a standby killed
        from outside, the OOM killer) is replaced and the evaluation sent again, once; the candidate is not blamed."""
        for _ in range(2):
            result = self._evaluate_once(task, candidate, skip_performance)
            if result is not None:
                return result
        res = EvalResult(stage=Stage.LOAD, status=Status.INFRA_ERROR, error_kind=ErrorKind.INFRA)
        res.message = ("two fresh workers died before accepting the evaluation: the machine, not the candidate "
                       f"(see the worker log: {self.log_tail(1000) or 'empty'})")
        return res

    def _evaluate_once(self, task: Task, candidate: Candidate, skip_performance: bool) -> Optional[EvalResult]:
        """One attempt; None when the worker died before accepting it."""
        if not self.alive:
            self.start()
        nonce = uuid.uuid4().hex
        stage = Stage.LOAD
        accepted = False
        t0 = time.monotonic()
        limit = task.timeouts.for_stage(stage)
        deadline = t0 + limit + STAGE_MARGIN_S
        log_mark = self._log.seek(0, os.SEEK_END) if self._log else 0
        left: Optional[float] = None  # while the judge waits for its device: what its stage had left
        try:
            self._send(Evaluate(nonce=nonce, task=task.model_dump(mode="json"),
                                candidate=candidate.model_dump(mode="json"),
                                skip_performance=skip_performance).model_dump(mode="json"))
            while True:
                msg = self._recv(deadline)
                if msg is None:
                    return self._died_or_retry(accepted, stage, log_mark, t0)
                if msg.nonce != nonce:
                    continue  # a stale message from an earlier evaluation
                if msg.op == "accepted":
                    accepted = True
                elif msg.op == "stage":
                    new = Stage(msg.stage)
                    if new.order > stage.order:  # stages, and so deadlines, only move forward
                        stage = new
                        limit = float(msg.limit or task.timeouts.for_stage(stage))
                        deadline = time.monotonic() + limit + STAGE_MARGIN_S
                elif msg.op == "waiting" and left is None:
                    left = max(0.0, deadline - time.monotonic())
                    deadline = time.monotonic() + DEVICE_WAIT_S
                elif msg.op == "resumed" and left is not None:
                    deadline, left = time.monotonic() + left, None
                elif msg.op == "result":
                    result = EvalResult.model_validate(msg.result)
                    if msg.recycle:
                        result.warnings.append("judge process recycled after this evaluation (its device state is "
                                               "not trusted)")
                        self.kill()
                    return result
        except TimeoutError:
            self.kill()
            if left is not None:
                res = EvalResult(status=Status.INFRA_ERROR, error_kind=ErrorKind.INFRA, stage=stage)
                res.message = (f"the judge waited more than {DEVICE_WAIT_S:g} s for its device, held by other judges' "
                               "evaluations: run fewer workers per device")
                return res
            return EvalResult(status=Status.FAILED).fail(
                stage, ErrorKind.TIMEOUT,
                f"stage '{stage.value}' exceeded its {limit:g} s limit; the judge and every candidate process it "
                "started were killed",
            )
        except (BrokenPipeError, OSError):
            return self._died_or_retry(accepted, stage, log_mark, t0)
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            self.kill()
            res = EvalResult(status=Status.INFRA_ERROR, error_kind=ErrorKind.INFRA, stage=stage)
            res.message = trim_message(f"the judge process sent a malformed protocol message during stage "
                                       f"'{stage.value}' ({type(e).__name__}: {e})")
            return res

    def _died_or_retry(self, accepted: bool, stage: Stage, log_mark: int, t0: float) -> Optional[EvalResult]:
        """The candidate's crash verdict once the worker had accepted it; before that, None (retry elsewhere)."""
        if accepted:
            return self._died(stage, log_mark, time.monotonic() - t0)
        self.kill()
        return None

    def _died(self, stage: Stage, log_mark: int, elapsed: float) -> EvalResult:
        code = 0
        if self.proc is not None:
            try:
                code = self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:  # it closed its result channel but lives on: kill it
                self.interrupt()
                code = self.proc.wait(timeout=10)
        tail = ""
        if self._log is not None:
            self._log.seek(log_mark)
            tail = self._log.read().decode(errors="replace").strip()[-2000:]
        self.kill()
        text = f"the worker process died during stage '{stage.value}' ({signal_name(code)})"
        if tail:
            text += "\nlast output:\n" + tail
        res = EvalResult(status=Status.FAILED).fail(stage, ErrorKind.CRASH, trim_message(text))
        res.wall_s = elapsed
        return res
