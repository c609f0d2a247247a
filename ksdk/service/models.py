"""What travels between ServiceEvaluator and `ksdk serve`: pydantic models, the same JSON as everywhere."""

from __future__ import annotations

import hashlib
from enum import Enum
from typing import Optional

from pydantic import Field

from ksdk.models import Candidate, EvalResult, EvaluatorInfo, Model, Task


class EvaluateRequest(Model):
    """One evaluation: the task, the candidate, and the key that makes a retry of it safe."""

    task: Task
    candidate: Candidate
    idempotency_key: Optional[str] = Field(
        None, min_length=1, max_length=256,
        description="same key, same request: the service evaluates it once and returns that verdict to every retry",
    )
    wait_s: Optional[float] = Field(
        None, ge=0, description="how long POST /evaluate may hold the request before answering 202 with a job",
    )

    def digest(self) -> str:
        """What a key must keep standing for: a key reused with another task or program is refused (409)."""
        c = self.candidate
        text = f"{self.task.digest}:{c.id}:{c.language}:{c.source_hash}"
        return hashlib.sha256(text.encode()).hexdigest()[:24]


def idempotency_key(task: Task, candidate: Candidate, backend: str = "") -> str:
    """The key ServiceEvaluator sends: candidate id, task digest and backend name."""
    return f"{candidate.id}:{task.digest}:{backend}"


class JobState(str, Enum):
    """Life of a job: waiting for a worker, evaluating, finished with a verdict, or failed in the harness."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class JobStatus(Model):
    """A job as GET /jobs/{id} shows it; `result` is set once the state is done."""

    id: str
    state: JobState
    idempotency_key: Optional[str] = None
    candidate_id: str = ""
    task: str = ""
    submitted_at: float = 0.0
    started_at: Optional[float] = None
    finished_at: Optional[float] = None
    result: Optional[EvalResult] = None
    error: Optional[str] = None
    replayed: bool = Field(False, description="the verdict came from the service's store, not a new evaluation")


class ServiceInfo(EvaluatorInfo):
    """GET /info: the evaluator's info (backend, devices, versions) plus how the service is set up."""

    hints: str = ""
    queue_size: int = 0
    max_request_bytes: int = 0
    request_timeout_s: float = 0.0
    auth: bool = True
    ksdk_version: str = ""
    started_at: float = 0.0
    queued: int = 0
    running: int = 0
    evaluated: int = Field(0, description="evaluations this process ran to a verdict")
    replayed: int = Field(0, description="requests answered from the idempotency store")

    def evaluator_info(self) -> EvaluatorInfo:
        """The plain EvaluatorInfo part."""
        return EvaluatorInfo(**{name: getattr(self, name) for name in EvaluatorInfo.model_fields})
