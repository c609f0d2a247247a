"""Archive: every candidate with its lineage and verdict, persisted; picks parents and inspirations."""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from typing import Iterable, Optional

from ksdk.interfaces.mutator import Scored
from ksdk.models import Candidate, EvalResult


class Archive(ABC):
    """Registered under `ksdk.archives`. Writes are durable when `add` returns."""

    @abstractmethod
    def add(self, candidate: Candidate, result: Optional[EvalResult]) -> None:
        """Store a candidate and its verdict (None while not yet evaluated)."""

    @abstractmethod
    def sample(self, rng: random.Random, n_inspirations: int = 3) -> tuple[Scored, list[Scored]]:
        """Pick a parent and inspirations, balancing top performers and diversity."""

    @abstractmethod
    def get(self, candidate_id: str) -> Optional[Scored]:
        """One candidate with its verdict, or None."""

    @abstractmethod
    def best(self, k: int = 1) -> list[Scored]:
        """The k best correct candidates, best first."""

    @abstractmethod
    def all(self) -> Iterable[Scored]:
        """Every candidate, oldest first."""

    def find_duplicate(self, source_hash: str) -> Optional[Scored]:
        """A stored candidate with the same normalized source, if any."""
        return None

    def close(self) -> None:
        """Flush and close storage."""
