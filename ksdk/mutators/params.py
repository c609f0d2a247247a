"""Parameter mutator (no LLM): tunes the constants a candidate declares with `ksdk:tune` within their choices.

Strategy (greedy coordinate search with a short beam and random restarts):
1. Learn from every request: the parent and inspirations (the archive's top and diverse programs) carry
   configurations and scores; configurations it proposed are remembered too, so it never proposes one twice.
2. Climb from the best scored configuration it knows (`start="best"`, the default) or from the parent
   (`start="parent"`). Its unvisited neighbours (one tunable moved to an adjacent choice) come first, ordered
   by what earlier moves taught: a move along a tunable and direction that improved a score elsewhere is tried
   before one that never helped, and one that hurt goes last.
3. When the best has no unvisited neighbour (a local optimum, or neighbours still being evaluated), climb
   from the next configurations of the beam (the top `beam` scored ones), then try two-tunable and
   two-step moves around the best, and only then jump to a random unvisited point.
4. With probability `explore`, jump to a random unvisited point at once (random restart).
Configurations are kept per program skeleton (the source with tunable values blanked), so programs that an
LLM changed structurally are tuned separately.
"""

from __future__ import annotations

import itertools
import math
import random
from typing import Any, Optional

from ksdk.interfaces.mutator import MutationOutcome, MutationRequest, Mutator, Scored
from ksdk.models import Candidate, Mutation
from ksdk.mutators.tunables import Tunable, TunableError, apply_tunables, find_tunables, skeleton_hash

Config = tuple[int, ...]  # one index into each tunable's choices, in declaration order


class _Space:
    """The configurations of one program skeleton: what was proposed, what scored what."""

    def __init__(self, tunables: list[Tunable]):
        self.names = [t.name for t in tunables]
        self.sizes = [len(t.choices) for t in tunables]
        self.choices = [t.choices for t in tunables]
        self.visited: set[Config] = set()
        self.scores: dict[Config, float] = {}
        self.owners: dict[Config, Scored] = {}  # a scored candidate holding that config (the source to edit)

    @property
    def size(self) -> int:
        return math.prod(self.sizes)

    def values(self, config: Config) -> dict[str, Any]:
        return {n: self.choices[i][k] for i, (n, k) in enumerate(zip(self.names, config))}

    def neighbours(self, config: Config, steps: int = 1) -> list[tuple[Config, tuple[tuple[int, int], ...]]]:
        """Configs one move away: every tunable moved by +-`steps` choices (moves: (tunable, direction))."""
        out = []
        for i, size in enumerate(self.sizes):
            for d in (-1, 1):
                k = config[i] + d * steps
                if 0 <= k < size:
                    out.append((config[:i] + (k,) + config[i + 1:], ((i, d),)))
        return out

    def pairs(self, config: Config) -> list[tuple[Config, tuple[tuple[int, int], ...]]]:
        """Configs two tunables away, each moved to an adjacent choice."""
        out = []
        for i, j in itertools.combinations(range(len(self.sizes)), 2):
            for di, dj in itertools.product((-1, 1), repeat=2):
                ki, kj = config[i] + di, config[j] + dj
                if 0 <= ki < self.sizes[i] and 0 <= kj < self.sizes[j]:
                    c = list(config)
                    c[i], c[j] = ki, kj
                    out.append((tuple(c), ((i, di), (j, dj))))
        return out

    def move_gains(self) -> dict[tuple[int, int], float]:
        """Average score change of each (tunable, direction) move between scored configs one move apart."""
        totals: dict[tuple[int, int], list[float]] = {}
        scored = self.scores
        for config, score in scored.items():
            for other, moves in self.neighbours(config):
                if other in scored:
                    totals.setdefault(moves[0], []).append(scored[other] - score)
        return {move: sum(v) / len(v) for move, v in totals.items()}


class ParamMutator(Mutator):
    """Proposes children that differ from a scored program only in `ksdk:tune` values."""

    name = "params"

    def __init__(self, seed: Optional[int] = None, explore: float = 0.1, beam: int = 3, start: str = "best"):
        if not 0.0 <= explore <= 1.0:
            raise TunableError(f"ParamMutator explore={explore} must be a probability in [0, 1]")
        if start not in ("best", "parent"):
            raise TunableError(f"ParamMutator start={start!r} must be 'best' or 'parent'")
        self.rng = random.Random(seed)
        self.explore = explore
        self.beam = max(1, int(beam))
        self.start = start
        self._spaces: dict[str, _Space] = {}

    def _space_of(self, scored: Scored) -> Optional[tuple[_Space, Config]]:
        """The space a candidate belongs to and its config; None when it declares no tunables."""
        tunables = find_tunables(scored.candidate.source)
        if not tunables:
            return None
        key = skeleton_hash(scored.candidate.source, tunables)
        space = self._spaces.get(key)
        if space is None:
            space = self._spaces[key] = _Space(tunables)
        # A value off its choices (hand-written seed) starts the search at the nearest choice.
        config = tuple(t.nearest_index() for t in tunables)
        space.owners.setdefault(config, scored)
        if all(t.index is not None for t in tunables):
            space.visited.add(config)
            if scored.result is not None:
                space.scores[config] = scored.result.score
        return space, config

    def observe(self, known: list[Scored]) -> None:
        """Mark every configuration already in the archive as visited (scored ones with their score): after a
        resume the search goes on from where it stopped instead of re-proposing what was evaluated."""
        for scored in known:
            try:
                self._space_of(scored)
            except TunableError:
                continue

    def _learn(self, request: MutationRequest) -> tuple[list[tuple[Scored, _Space, Config]], list[str]]:
        known, problems = [], []
        for scored in [request.parent, *request.inspirations]:
            try:
                found = self._space_of(scored)
            except TunableError as exc:
                problems.append(f"{scored.candidate.id}: {exc}")
                continue
            if found is not None:
                known.append((scored, *found))
        return known, problems

    def _best_start(self, known: list[tuple[Scored, _Space, Config]]) -> tuple[_Space, Config]:
        """The best scored configuration of any space seen so far (the parent's when none is scored)."""
        best: Optional[tuple[float, _Space, Config]] = None
        for space in self._spaces.values():
            for config, score in space.scores.items():
                if best is None or score > best[0]:
                    best = (score, space, config)
        if best is None:
            return known[0][1], known[0][2]
        return best[1], best[2]

    def _ordered(self, space: _Space, options, gains: dict[tuple[int, int], float]):
        """Unvisited options, most promising first (learned move gains, ties broken at random)."""
        fresh = [(c, m) for c, m in options if c not in space.visited]
        self.rng.shuffle(fresh)
        fresh.sort(key=lambda cm: -sum(gains.get(move, 0.0) for move in cm[1]))
        return fresh

    def _random_unvisited(self, space: _Space) -> Optional[Config]:
        if space.size <= 200_000:
            left = [c for c in itertools.product(*(range(s) for s in space.sizes)) if c not in space.visited]
            return self.rng.choice(left) if left else None
        for _ in range(1000):
            c = tuple(self.rng.randrange(s) for s in space.sizes)
            if c not in space.visited:
                return c
        return None

    def _choose(self, space: _Space, bases: list[Config]) -> tuple[Optional[Config], Optional[Config], str]:
        """(base, child, how) for the next proposal within one space."""
        if self.rng.random() < self.explore:
            child = self._random_unvisited(space)
            if child is not None:
                return bases[0], child, "random restart"
        gains = space.move_gains()
        for rank, base in enumerate(bases[: self.beam]):
            fresh = self._ordered(space, space.neighbours(base), gains)
            if fresh:
                return base, fresh[0][0], "neighbour of the best" if rank == 0 else f"neighbour of #{rank + 1}"
        best = bases[0]
        for how, options in (("two-tunable move", space.pairs(best)), ("two-step move", space.neighbours(best, 2))):
            fresh = self._ordered(space, options, gains)
            if fresh:
                return best, fresh[0][0], how
        child = self._random_unvisited(space)
        return best, child, "random point (neighbourhood exhausted)"

    async def propose(self, request: MutationRequest) -> MutationOutcome:
        """A child of the best known (or the parent's) configuration; an outcome with `error` when none is left."""
        known, problems = self._learn(request)
        if not known:
            why = "; ".join(problems) or (
                "it declares no tunables: mark constants like `BLOCK = 64  # ksdk:tune [32, 64, 128]`"
            )
            return MutationOutcome(
                mutation=Mutation(mutator=self.name, reply_format="params", notes=problems),
                error=f"parameter mutator: nothing to tune in candidate {request.parent.candidate.id}: {why}",
            )
        if self.start == "parent":
            _, space, start_config = known[0]  # the parent, or the first inspiration when the parent has none
        else:
            space, start_config = self._best_start(known)
        ranked = sorted(space.scores, key=lambda c: -space.scores[c])
        bases = [start_config] + [c for c in ranked if c != start_config]
        base, child, how = self._choose(space, bases)
        if child is None:
            return MutationOutcome(
                mutation=Mutation(mutator=self.name, reply_format="params"),
                error=(
                    f"parameter mutator: all {space.size} configurations of {', '.join(space.names)} were "
                    "already proposed; widen the ksdk:tune choices or switch to the llm mutator"
                ),
            )
        space.visited.add(child)
        owner = space.owners.get(base) or next(iter(space.owners.values()))
        values = space.values(child)
        source = apply_tunables(owner.candidate.source, values)
        old = space.values(base)
        changed = [f"{n} {old[n]!r}->{values[n]!r}" for n in space.names if old[n] != values[n]]
        parent = owner.candidate
        mutation = Mutation(
            mutator=self.name,
            reply_format="params",
            params=values,
            notes=[f"{how}: " + (", ".join(changed) or "same values")] + problems,
        )
        child_candidate = Candidate(
            source=source,
            language=parent.language,
            parent_ids=[parent.id],
            generation=parent.generation + 1,
            island=request.parent.candidate.island,
            mutation=mutation,
        )
        return MutationOutcome(candidate=child_candidate, mutation=mutation)
