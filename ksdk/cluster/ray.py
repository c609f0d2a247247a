"""RayEvaluator: evaluations on Ray actors that each own one isolated worker process on one GPU (or resource).

Each actor asks Ray for one GPU (num_gpus=1) or a custom resource per backend (e.g. {"maca": 1}), so one
Ray cluster of mixed machines serves one run. Inside, the actor drives the same WorkerProcess as
LocalEvaluator (same isolation, per-stage timeouts and recycling). An actor is replaced after a sticky
device error, and after it dies (the candidate is then retried once on the fresh actor). `ray` is imported
only here, lazily: it is an optional extra (`pip install "ksdk[ray]"`).
"""

from __future__ import annotations

import asyncio
import math
import os
import socket
from typing import Any, Optional

from ksdk.errors import KsdkError, PluginError
from ksdk.interfaces.evaluator import Evaluator
from ksdk.languages import Language
from ksdk.models import Availability, Candidate, ErrorKind, EvalResult, EvaluatorInfo, Status, Task

INSTALL_HINT = 'pip install "ksdk[ray]"'


def import_ray():
    """The ray module, or a PluginError saying how to install it."""
    try:
        import ray
    except ImportError as e:
        raise PluginError(f"the 'ray' evaluator needs Ray, which is not installed ({e}): {INSTALL_HINT}") from None
    return ray


class EvalActor:
    """Body of one Ray actor: a backend's worker process bound to the device Ray gave this actor."""

    def __init__(self, backend: str, interpret: Optional[bool]):
        from ksdk.evaluation.process import WorkerProcess
        from ksdk.registry import load_backend

        cls = load_backend(backend)
        self.availability: Availability = cls.probe()
        if not self.availability.usable:
            raise PluginError(f"backend '{backend}' is unavailable on {socket.gethostname()}: "
                              f"{self.availability.reason}" + (f"; fix: {self.availability.fix}"
                                                                if self.availability.fix else ""))
        self.interpret = (not self.availability.available) if interpret is None else interpret
        self.backend = cls()
        # Ray narrows CUDA_VISIBLE_DEVICES (or the vendor's equivalent) to this actor's GPU: device 0 is it.
        self.proc = WorkerProcess(backend, 0, self.interpret, cls.env_allowlist(), cls.device_env(0))

    def ready(self) -> dict[str, Any]:
        """Start the worker now (so a broken install shows at once) and say where this actor runs."""
        import ray  # this is a Ray actor process (never the worker that runs candidates)

        self.proc.start()
        return {"host": socket.gethostname(), "pid": os.getpid(), "node": ray.get_runtime_context().get_node_id(),
                "availability": self.availability.model_dump(),
                "versions": self.proc.versions, "hints": self.backend.hints(), "interpret": self.interpret,
                "language": Language.of(type(self.backend).language).model_dump()}

    def evaluate(self, task_json: str, candidate_json: str) -> tuple[str, bool]:
        """(EvalResult JSON, whether this actor should be replaced: a sticky device error)."""
        from ksdk.evaluation.process import WorkerStartError

        task, cand = Task.model_validate_json(task_json), Candidate.model_validate_json(candidate_json)
        try:
            result = self.proc.evaluate(task, cand, self.interpret)
        except WorkerStartError as e:
            result = EvalResult(status=Status.INFRA_ERROR, error_kind=ErrorKind.INFRA, message=str(e))
        try:
            sticky = bool(self.backend.sticky_error(result))
        except Exception:
            sticky = True
        if not result.versions and self.proc.versions:
            result.versions = dict(self.proc.versions)
        return result.model_dump_json(), sticky

    def close(self) -> None:
        self.proc.close()


class RayEvaluator(Evaluator):
    """Evaluates on `actors` Ray actors, each holding one GPU (num_gpus) or custom `resources`.

    address: a Ray cluster to join ("auto", "ray://host:10001", ...); None joins the one this process is
    already connected to, or starts a local one. actors: default, as many as the cluster's resources allow.
    """

    def __init__(self, backend: str, num_gpus: Optional[float] = None, resources: Optional[dict[str, float]] = None,
                 actors: Optional[int] = None, address: Optional[str] = None, num_cpus: float = 1.0,
                 interpret: Optional[bool] = None, start_timeout_s: float = 300.0):
        self._ray = import_ray()
        self.backend_name = backend
        self.num_gpus = 1.0 if num_gpus is None and not resources else float(num_gpus or 0)
        self.resources = dict(resources or {})
        self.address, self.num_cpus, self.interpret = address, num_cpus, interpret
        self.start_timeout_s = start_timeout_s
        self._n = actors
        self._handles: list[Any] = []
        self._ready: list[dict] = []
        self._idle: Optional[asyncio.Queue[int]] = None
        self._owns_ray = False
        self.recycled = 0  # actors replaced so far (sticky device errors or deaths)

    # -- setup -----------------------------------------------------------------------------------
    def _connect(self) -> None:
        ray = self._ray
        if not ray.is_initialized():
            ray.init(address=self.address, include_dashboard=False, log_to_driver=False,
                     ignore_reinit_error=True)
            self._owns_ray = True

    def _capacity(self) -> int:
        """How many actors the cluster's resources allow (at least 1)."""
        total = self._ray.cluster_resources()
        asks = dict(self.resources)
        if self.num_gpus:
            asks["GPU"] = self.num_gpus
        if not asks:
            return 1
        n = min(math.floor(total.get(k, 0.0) / v) for k, v in asks.items() if v > 0)
        if n < 1:
            have = ", ".join(f"{k}={v:g}" for k, v in sorted(total.items()) if not k.startswith("node:"))
            raise KsdkError(f"the Ray cluster offers no {asks} for backend '{self.backend_name}' (it has: {have}); "
                            "start nodes with those resources, e.g. `ray start --num-gpus=1` or "
                            "`ray start --resources='{\"maca\": 1}'`, or ask for other resources")
        return n

    def _spawn(self):
        actor_cls = self._ray.remote(EvalActor)
        return actor_cls.options(num_gpus=self.num_gpus or None, resources=self.resources or None,
                                 num_cpus=self.num_cpus, max_restarts=0).remote(self.backend_name, self.interpret)

    def _await_ready(self, handles: list) -> list[dict]:
        ray = self._ray
        refs = [h.ready.remote() for h in handles]
        try:
            return ray.get(refs, timeout=self.start_timeout_s)
        except ray.exceptions.GetTimeoutError:
            raise KsdkError(f"Ray could not place {len(handles)} actor(s) asking for "
                            f"{self._asks()} within {self.start_timeout_s:g} s; does the cluster have them free?") \
                from None
        except ray.exceptions.RayError as e:
            raise KsdkError(f"a Ray actor for backend '{self.backend_name}' failed to start: "
                            f"{_root_cause(e)}") from None

    def _asks(self) -> dict:
        asks = {"CPU": self.num_cpus, **self.resources}
        if self.num_gpus:
            asks["GPU"] = self.num_gpus
        return asks

    def _ensure(self) -> None:
        if self._handles:
            return
        self._connect()
        n = self._n or self._capacity()
        handles = [self._spawn() for _ in range(n)]
        self._ready = self._await_ready(handles)
        self._handles = handles

    # -- Evaluator -------------------------------------------------------------------------------
    @property
    def workers(self) -> int:
        if self._n:
            return self._n
        self._ensure()
        return len(self._handles)

    def info(self) -> EvaluatorInfo:
        self._ensure()
        first = Availability.model_validate(self._ready[0]["availability"])
        devices = []
        for r in self._ready:  # one device per actor: the one Ray gave it
            a = Availability.model_validate(r["availability"])
            if a.devices:
                d = a.devices[0].model_copy(deep=True)
                d.extra = {**d.extra, "host": r["host"]}
                devices.append(d)
        avail = first.model_copy(update={"devices": devices})
        return EvaluatorInfo(backend=self.backend_name, workers=len(self._handles), availability=avail,
                             versions=self._ready[0]["versions"], language=self._ready[0]["language"],
                             interpret=self._ready[0]["interpret"])

    def hints(self) -> str:
        self._ensure()
        return self._ready[0]["hints"]

    def placement(self) -> list[dict[str, Any]]:
        """Where each actor runs: host, Ray node id and actor pid."""
        self._ensure()
        return [{k: r[k] for k in ("host", "node", "pid")} for r in self._ready]

    async def evaluate(self, task: Task, candidate: Candidate) -> EvalResult:
        if not self._handles:
            await asyncio.to_thread(self._ensure)
        if self._idle is None:
            self._idle = asyncio.Queue()
            for i in range(len(self._handles)):
                self._idle.put_nowait(i)
        slot = await self._idle.get()
        try:
            return await self._evaluate_on(slot, task, candidate)
        finally:
            self._idle.put_nowait(slot)

    async def _evaluate_on(self, slot: int, task: Task, candidate: Candidate) -> EvalResult:
        ray = self._ray
        payload = (task.model_dump_json(), candidate.model_dump_json())
        for attempt in (1, 2):
            try:
                raw, sticky = await self._handles[slot].evaluate.remote(*payload)
            except ray.exceptions.RayActorError as e:  # the actor (or its node) died: replace it, retry once
                cause = _root_cause(e)
                await asyncio.to_thread(self._replace, slot)
                if attempt == 2:
                    return EvalResult(candidate_id=candidate.id, task=task.name, backend=self.backend_name,
                                      status=Status.INFRA_ERROR, error_kind=ErrorKind.INFRA,
                                      message=f"the Ray actor died twice evaluating this candidate: {cause}")
                continue
            result = EvalResult.model_validate_json(raw)
            result.candidate_id, result.task = candidate.id, task.name
            result.backend = result.backend or self.backend_name
            if attempt == 2:
                result.warnings.append("evaluated again on a fresh Ray actor after the first one died")
            if sticky:
                result.warnings.append("Ray actor replaced after this evaluation (device state not trusted)")
                await asyncio.to_thread(self._replace, slot)
            return result
        raise AssertionError("unreachable")

    def _replace(self, slot: int) -> None:
        """Kill the actor in `slot` (and so its device context) and start a fresh one there."""
        old = self._handles[slot]
        try:
            self._ray.kill(old, no_restart=True)
        except Exception:
            pass
        fresh = self._spawn()
        self._ready[slot] = self._await_ready([fresh])[0]
        self._handles[slot] = fresh
        self.recycled += 1

    async def close(self) -> None:
        ray = self._ray
        if self._handles:
            refs = [h.close.remote() for h in self._handles]
            try:
                await asyncio.to_thread(ray.get, refs, timeout=30)
            except ray.exceptions.RayError:
                pass
            for h in self._handles:
                ray.kill(h, no_restart=True)
            self._handles, self._ready, self._idle = [], [], None
        if self._owns_ray and ray.is_initialized():
            ray.shutdown()
            self._owns_ray = False


def _root_cause(e: BaseException) -> str:
    """The innermost error message Ray wrapped (an actor's own exception, not Ray's boilerplate)."""
    cause = getattr(e, "cause", None) or e.__cause__
    while cause is not None and (getattr(cause, "cause", None) or cause.__cause__) is not None:
        cause = getattr(cause, "cause", None) or cause.__cause__
    text = str(cause or e).strip()
    return text.splitlines()[-1] if text else type(e).__name__
