"""Mutator: turns a parent, its feedback and some inspirations into a new candidate."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Optional

from pydantic import Field

from ksdk.models import Candidate, EvalResult, Model, Mutation, Task


class Scored(Model):
    """A candidate with its verdict, as the archive hands it to a mutator."""

    candidate: Candidate
    result: Optional[EvalResult] = None


class MutationRequest(Model):
    """Everything a mutator sees for one proposal."""

    task: Task
    parent: Scored
    inspirations: list[Scored] = Field(default_factory=list)
    backend: str = ""
    hints: str = ""
    language: str = "triton"
    notes: list[str] = Field(default_factory=list, description="e.g. edit blocks of the last reply that did not apply")


class MutationOutcome(Model):
    """A proposal: a new candidate, or a recorded failure (malformed reply, edits that did not apply)."""

    candidate: Optional[Candidate] = None
    mutation: Mutation
    error: Optional[str] = None


class Mutator(ABC):
    """Registered under `ksdk.mutators`. Must never raise for a bad reply: return an outcome with `error`."""

    name: str = ""

    @abstractmethod
    async def propose(self, request: MutationRequest) -> MutationOutcome:
        """Propose one child of `request.parent`."""

    def observe(self, known: list[Scored]) -> None:
        """What the run's archive already holds, given once when a run (or a resumed run) starts, so that a
        mutator with memory does not propose it again. Default: nothing."""

    @property
    def cost_usd(self) -> float:
        """Money spent so far by this mutator."""
        return 0.0

    async def close(self) -> None:
        """Release clients and connections."""
