"""Evaluator: policy and isolation around a backend. Local worker pool, HTTP service and Ray all fit here."""

from __future__ import annotations

from abc import ABC, abstractmethod

from ksdk.models import Candidate, EvalResult, EvaluatorInfo, Task


class Evaluator(ABC):
    """Turns (task, candidate) into an EvalResult, never raising for anything the candidate did."""

    @property
    @abstractmethod
    def workers(self) -> int:
        """How many evaluations may run at once (the evolution loop keeps this many in flight)."""

    @abstractmethod
    async def evaluate(self, task: Task, candidate: Candidate) -> EvalResult:
        """Evaluate one candidate; a crash, hang or cheat becomes a verdict, not an exception."""

    @abstractmethod
    def info(self) -> EvaluatorInfo:
        """Backend, candidate language, mode (on devices or in an interpreter), devices and versions."""

    async def close(self) -> None:
        """Release workers, connections and devices."""

    def hints(self) -> str:
        """The backend's hints for mutators (what kernels may use)."""
        return ""
