"""Jobs behind the service: a bounded queue in front of the evaluator, dedup by idempotency key, results kept."""

from __future__ import annotations

import asyncio
import hashlib
import math
import os
import time
import uuid
from dataclasses import dataclass, field
from typing import Optional

from ksdk.interfaces.evaluator import Evaluator
from ksdk.models import EvalResult, Status, Task
from ksdk.service.models import EvaluateRequest, JobState, JobStatus
from ksdk.service.store import VerdictStore


class QueueFull(Exception):
    """Every worker is busy and the queue is full; retry after `retry_after` seconds."""

    def __init__(self, retry_after: int, pending: int):
        super().__init__(f"the evaluation queue is full ({pending} pending)")
        self.retry_after = retry_after


class KeyConflict(Exception):
    """An idempotency key was reused for a different task or candidate."""


def job_id_for(key: str) -> str:
    """Job ids follow from keys, so a job stays findable by id after a restart (through the store)."""
    return "k" + hashlib.sha256(key.encode()).hexdigest()[:23]


@dataclass
class Job:
    status: JobStatus
    digest: str = ""
    done: asyncio.Event = field(default_factory=asyncio.Event)
    request: Optional[EvaluateRequest] = None


class JobManager:
    """Admits at most workers + queue_size jobs at once and runs `workers` of them at a time."""

    def __init__(self, evaluator: Evaluator, queue_size: int, store: Optional[VerdictStore] = None,
                 keep_s: float = 3600.0, max_stage_s: float = 600.0):
        self.evaluator = evaluator
        self.workers = max(1, evaluator.workers)
        self.queue_size = queue_size
        self.store = store
        self.keep_s = keep_s
        self.max_stage_s = max_stage_s
        self._jobs: dict[str, Job] = {}
        self._slots: Optional[asyncio.Semaphore] = None
        self._tasks: set[asyncio.Task] = set()
        self._mean_s = 1.0
        self.evaluated = 0
        self.replayed = 0

    # -- counts ----------------------------------------------------------------------------------
    def count(self, state: JobState) -> int:
        return sum(1 for j in self._jobs.values() if j.status.state == state)

    @property
    def pending(self) -> int:
        return sum(1 for j in self._jobs.values() if j.status.state in (JobState.QUEUED, JobState.RUNNING))

    def retry_after(self) -> int:
        """Seconds until a queue slot likely frees: one evaluation's mean time over the worker count."""
        return int(min(60, max(1, math.ceil(self._mean_s / self.workers))))

    # -- submit / look up ------------------------------------------------------------------------
    def submit(self, req: EvaluateRequest) -> Job:
        """The job for this request: an existing one for its key, a stored verdict, or a new queued job."""
        self._purge()
        digest = req.digest()
        key = req.idempotency_key
        jid = job_id_for(key) if key else "r" + uuid.uuid4().hex[:23]
        if key:
            job = self._jobs.get(jid)
            if job is not None and job.status.state != JobState.FAILED:
                if job.digest != digest:
                    raise KeyConflict(key)
                return job
            if self.store is not None:
                stored = self.store.get(key)
                if stored is not None:
                    stored_jid, stored_digest, result, finished = stored
                    if stored_digest != digest:
                        raise KeyConflict(key)
                    self.replayed += 1
                    return self._remember_done(stored_jid, key, digest, result, finished)
        if self.pending >= self.workers + self.queue_size:
            raise QueueFull(self.retry_after(), self.pending)
        now = time.time()
        status = JobStatus(id=jid, state=JobState.QUEUED, idempotency_key=key, candidate_id=req.candidate.id,
                           task=req.task.name, submitted_at=now)
        job = Job(status=status, digest=digest, request=req)
        self._jobs[jid] = job
        t = asyncio.get_running_loop().create_task(self._run(job))
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)
        return job

    def get(self, job_id: str) -> Optional[Job]:
        """A job by id: in memory while kept, else a finished one from the store (after a restart)."""
        self._purge()
        job = self._jobs.get(job_id)
        if job is None and self.store is not None:
            stored = self.store.get_job(job_id)
            if stored is not None:
                key, digest, result, finished = stored
                job = self._remember_done(job_id, key, digest, result, finished)
        return job

    def _remember_done(self, jid: str, key: str, digest: str, result: EvalResult, finished: float) -> Job:
        status = JobStatus(id=jid, state=JobState.DONE, idempotency_key=key, candidate_id=result.candidate_id,
                           task=result.task, submitted_at=finished, finished_at=finished, result=result,
                           replayed=True)
        job = Job(status=status, digest=digest)
        job.done.set()
        self._jobs[jid] = job
        return job

    def _purge(self) -> None:
        cutoff = time.time() - self.keep_s
        old = [jid for jid, j in self._jobs.items()
               if j.status.finished_at is not None and j.status.finished_at < cutoff]
        for jid in old:
            del self._jobs[jid]

    # -- running ---------------------------------------------------------------------------------
    def _bounded_task(self, task: Task) -> Task:
        """The client's task with each stage timeout capped at the service's limit."""
        t = task.timeouts
        capped = {s: min(getattr(t, s), self.max_stage_s) for s in type(t).model_fields}
        return task.model_copy(update={"timeouts": type(t)(**capped)})

    async def _run(self, job: Job) -> None:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.workers)
        req, st = job.request, job.status
        try:
            async with self._slots:
                st.state, st.started_at = JobState.RUNNING, time.time()
                result = await self.evaluator.evaluate(self._bounded_task(req.task), req.candidate)
            self._finish(job, result)
        except asyncio.CancelledError:
            st.state, st.error, st.finished_at = JobState.FAILED, "the service shut down", time.time()
            raise
        except Exception as e:  # a harness failure: the job fails, a retry with the same key runs it again
            st.state, st.error, st.finished_at = JobState.FAILED, f"{type(e).__name__}: {e}", time.time()
        finally:
            job.request = None
            job.done.set()

    def _finish(self, job: Job, result: EvalResult) -> None:
        st = job.status
        now = time.time()
        self.evaluated += 1
        self._mean_s = 0.8 * self._mean_s + 0.2 * max(0.001, now - (st.started_at or now))
        # Stored before anyone is answered: a kill after this line loses no verdict. Harness failures are
        # not the candidate's verdict, so they stay out of the store and a retry evaluates again.
        if self.store is not None and st.idempotency_key and result.status != Status.INFRA_ERROR:
            self.store.put(st.idempotency_key, st.id, job.digest, result, os.getpid())
        st.result, st.state, st.finished_at = result, JobState.DONE, now

    async def close(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

