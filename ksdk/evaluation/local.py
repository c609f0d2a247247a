"""LocalEvaluator: one isolated worker process per device, a verdict cache, and fail-closed policy."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Optional

from ksdk.errors import PluginError
from ksdk.evaluation import sandbox as sandbox_mod
from ksdk.evaluation.cache import ResultCache, cache_key
from ksdk.evaluation.process import WorkerProcess, WorkerStartError
from ksdk.interfaces.evaluator import Evaluator
from ksdk.languages import Language
from ksdk.models import Availability, Candidate, DeviceInfo, ErrorKind, EvalResult, EvaluatorInfo, Status, Task
from ksdk.registry import load_backend


class LocalEvaluator(Evaluator):
    """Evaluates on this machine's devices, each candidate in a worker process bound to one device.

    Without devices, a backend with an interpreter fallback runs there (correctness only, never a speedup).
    Every candidate runs in an OS sandbox (`sandbox=False`, or KSDK_NO_SANDBOX=1, runs them unsandboxed: only on
    purpose); `spares` candidate processes per worker are started ahead of need (default: 2 on GPUs, else 1).
    `standby` keeps a started spare judge process beside each worker (default off: candidates cannot kill it).
    """

    def __init__(self, backend: str, devices: Optional[list[int]] = None, workers: Optional[int] = None,
                 cache: bool | str | Path = True, interpret: Optional[bool] = None, standby: Optional[bool] = None,
                 sandbox: Optional[bool] = None, spares: Optional[int] = None):
        self.backend_name = backend
        cls = load_backend(backend)
        self._cls = cls
        self.language = Language.of(cls.language)
        self.availability: Availability = cls.probe()
        if not self.availability.usable:
            raise PluginError(
                f"backend '{backend}' is unavailable: {self.availability.reason}"
                + (f"; fix: {self.availability.fix}" if self.availability.fix else "")
            )
        self.interpret = (not self.availability.available) if interpret is None else interpret
        if devices is None:
            devices = [d.index for d in self.availability.devices] if not self.interpret else [0]
        if workers is not None and workers > len(devices):
            devices = (devices * workers)[:workers]  # several workers may share a device when asked (they take
            # turns to time: ksdk/evaluation/device_lock.py)
        elif workers is not None:
            devices = devices[:workers]
        gpu = not self.interpret and any(d.kind == "gpu" for d in self.availability.devices)
        self.standby = bool(standby)
        self.sandbox = (not sandbox_mod.opted_out()) if sandbox is None else sandbox
        if self.sandbox and not sandbox_mod.status().available:
            raise PluginError(sandbox_mod.status().line())
        self.spares = (2 if gpu else 1) if spares is None else spares
        self._procs = [
            WorkerProcess(backend, d, self.interpret, cls.env_allowlist(), cls.device_env(d), standby=self.standby,
                          spares=self.spares, sandbox=self.sandbox)
            for d in devices
        ]
        self._idle: Optional[asyncio.Queue[WorkerProcess]] = None
        self._idle_loop: Optional[asyncio.AbstractEventLoop] = None
        self._cache = None if cache is False else ResultCache(None if cache is True else cache)
        self._inflight: dict[str, asyncio.Future] = {}
        self._hints: Optional[str] = None

    @property
    def workers(self) -> int:
        return len(self._procs)

    def info(self) -> EvaluatorInfo:
        versions = next((p.versions for p in self._procs if p.versions), {})
        return EvaluatorInfo(backend=self.backend_name, workers=self.workers, availability=self.availability,
                             versions=versions, language=self.language, interpret=self.interpret)

    def hints(self) -> str:
        if self._hints is None:
            try:
                self._hints = self._cls().hints()
            except Exception:  # hints are advice for prompts: a backend that cannot build here has none
                self._hints = ""
        return self._hints

    def _device_label(self) -> str:
        return device_label(self.availability.devices, {p.device for p in self._procs}, self.interpret)

    async def evaluate(self, task: Task, candidate: Candidate) -> EvalResult:
        key = cache_key(task, candidate, self.backend_name, self._device_label(), self.language)
        while self._cache is not None:
            hit = self._cache.get(key)
            if hit is not None:
                return _as_cached(hit, candidate)
            shared = self._inflight.get(key)
            if shared is None:
                break
            # The same program is being evaluated right now: share its verdict. If that caller was cancelled,
            # its cancellation is not ours: look again (and evaluate it ourselves).
            await asyncio.wait([shared])
            if not shared.cancelled():
                return _as_cached(shared.result(), candidate)
        fut = asyncio.get_running_loop().create_future()
        self._inflight[key] = fut
        try:
            result = await self._run(task, candidate)
            if self._cache is not None:
                self._cache.put(key, result)
            fut.set_result(result)
            return result
        except asyncio.CancelledError:
            fut.cancel()  # waiters on this program evaluate it themselves
            raise
        except BaseException as e:
            fut.set_exception(e)
            fut.exception()  # mark retrieved
            raise
        finally:
            self._inflight.pop(key, None)

    async def _run(self, task: Task, candidate: Candidate) -> EvalResult:
        loop = asyncio.get_running_loop()
        if self._idle is None or self._idle_loop is not loop:
            # A queue belongs to one event loop: a second asyncio.run (a notebook, a script calling
            # evaluate_sync twice) gets a fresh pool of the same workers (the last loop's threads are done).
            self._idle, self._idle_loop = asyncio.Queue(), loop
            for p in self._procs:
                self._idle.put_nowait(p)
        proc = await self._idle.get()
        t0 = time.perf_counter()
        work = asyncio.ensure_future(asyncio.to_thread(proc.evaluate, task, candidate, self.interpret))
        try:
            result = await asyncio.shield(work)
        except WorkerStartError as e:
            result = EvalResult(status=Status.INFRA_ERROR, error_kind=ErrorKind.INFRA, message=str(e))
        except Exception as e:  # a harness bug: keep the (killed) worker in the pool, or later evaluations wait forever
            proc.kill()
            self._idle.put_nowait(proc)
            raise PluginError(f"evaluating with backend '{self.backend_name}' failed in the harness: "
                              f"{type(e).__name__}: {e}") from e
        except asyncio.CancelledError:
            # The thread cannot be cancelled: kill its worker so it returns at once, and give the worker back
            # to the pool only when the thread is done with it (never two threads on one worker).
            proc.interrupt()
            idle = self._idle
            work.add_done_callback(lambda _f: (_f.exception() if not _f.cancelled() else None, idle.put_nowait(proc)))
            raise
        self._idle.put_nowait(proc)
        wall = time.perf_counter() - t0
        result.candidate_id = candidate.id
        result.task = task.name
        result.backend = result.backend or self.backend_name
        result.wall_s = wall
        if not self.interpret:
            result.device_s = wall
        if not result.versions and proc.versions:
            result.versions = dict(proc.versions)
        return result

    def evaluate_sync(self, task: Task, candidate: Candidate) -> EvalResult:
        """Blocking convenience for scripts and the CLI."""
        return asyncio.run(self._evaluate_and_close(task, candidate))

    async def _evaluate_and_close(self, task: Task, candidate: Candidate) -> EvalResult:
        try:
            return await self.evaluate(task, candidate)
        finally:
            await self.close()

    async def close(self) -> None:
        for p in self._procs:
            await asyncio.to_thread(p.close)
        if self._cache is not None:
            self._cache.close()


def device_label(devices: list[DeviceInfo], used: set[int], interpret: bool) -> str:
    """What the verdict cache keys on for the devices the workers use: every distinct model among them, so a box
    with mixed GPUs never hands one model's timings to a request for another."""
    names = sorted({d.name for d in devices if d.index in used})
    return "interpreter" if interpret or not names else " + ".join(names)


def _as_cached(result: EvalResult, candidate: Candidate) -> EvalResult:
    r = result.model_copy(deep=True)
    r.candidate_id, r.cached, r.wall_s, r.device_s = candidate.id, True, 0.0, 0.0
    return r
