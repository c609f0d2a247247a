"""Mutator: turns a parent, its feedback and some inspirations into a new candidate."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Optional

from pydantic import Field

from ksdk.languages import Language, LanguageField
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
    language: LanguageField = Field(default_factory=Language, description="the candidate language: its name, code "
                                    "fences and comment syntax (a bare name is taken as a language with no syntax)")
    notes: list[str] = Field(default_factory=list, description="e.g. edit blocks of the last reply that did not apply")


class MutationOutcome(Model):
    """A proposal: a new candidate, or a recorded failure (malformed reply, edits that did not apply)."""

    candidate: Optional[Candidate] = None
    mutation: Mutation
    error: Optional[str] = None
    fatal: bool = Field(False, description="the mutator cannot work at all (a rejected API key, an unknown model): "
                        "the run stops at once and `error`, which names the fix, is its error")


class Mutator(ABC):
    """Registered under `ksdk.mutators`. Must never raise for a bad reply: return an outcome with `error` (and
    `fatal=True` when no later call can succeed either)."""

    name: str = ""

    @abstractmethod
    async def propose(self, request: MutationRequest) -> MutationOutcome:
        """Propose one child of `request.parent`."""

    async def check(self) -> None:
        """A cheap check, before a run folder exists or anything is evaluated, that proposals can be made here (an
        LLM's key and endpoint); raises KsdkError naming the fix. Default: nothing to check."""

    def observe(self, known: list[Scored]) -> None:
        """What the run's archive already holds, given once when a run (or a resumed run) starts, so that a
        mutator with memory does not propose it again. Default: nothing."""

    @property
    def cost_usd(self) -> float:
        """Money spent so far by this mutator."""
        return 0.0

    async def close(self) -> None:
        """Release clients and connections."""
