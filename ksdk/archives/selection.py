"""Parent and inspiration selection: islands in a ring, a MAP-Elites grid per island, elitism, a FIX mode.

The policy and its parameters are documented in docs/evolution.md.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
import re
from dataclasses import dataclass, field
from typing import Optional

from pydantic import Field, field_validator

from ksdk.interfaces.mutator import Scored
from ksdk.languages import Language
from ksdk.models import EvalResult, Model, Stage, Status

DESCRIPTORS = ("kernels", "matmul", "length", "registers", "shared_mem", "num_warps", "num_stages", "tunables")
_RENAMED = {"tl_dot": "matmul"}  # runs from before languages were data name it so


class SelectionConfig(Model):
    """Parameters of the selection policy (see docs/evolution.md)."""

    islands: int = Field(3, ge=1, description="populations evolving side by side")
    migration_interval: int = Field(20, ge=1, description="evaluations between two ring migrations")
    migration_size: int = Field(2, ge=0, description="top candidates of each island copied to the next one")
    exploitation: float = Field(0.7, ge=0.0, le=1.0, description="share of parents drawn from the top performers")
    elite_size: int = Field(8, ge=1, description="how many top candidates of an island exploitation draws from")
    temperature: float = Field(1.0, gt=0.0, description="sharpness of the sigmoid weight around the median score")
    fix_pool: int = Field(5, ge=1, description="in FIX mode, parents come from this many closest-to-correct")
    descriptors: list[str] = Field(default_factory=lambda: list(DESCRIPTORS),
                                   description=f"MAP-Elites features, from {', '.join(DESCRIPTORS)}")

    @field_validator("descriptors")
    @classmethod
    def _known(cls, names: list[str]) -> list[str]:  # found at setup, not at the run's first verdict
        names = [_RENAMED.get(n, n) for n in names]
        for n in names:
            if n not in DESCRIPTORS:
                raise ValueError(f"unknown descriptor '{n}' (known: {', '.join(DESCRIPTORS)})")
        return names


@dataclass
class Selection:
    """One pick: the parent, its inspirations, the island the child joins and why the parent was chosen."""

    parent: Scored
    inspirations: list[Scored]
    island: int
    mode: str  # "exploit", "explore" or "fix"


_TUNE = re.compile(r"^\s*(?:#define\s+)?([A-Za-z_]\w*)\s*=?\s*([^\s#/]+).*ksdk:tune", re.M)


def _bucket(value: Optional[int], edges: tuple[int, ...]) -> Optional[int]:
    if value is None:
        return None
    return sum(value > e for e in edges)


def describe(entry: Scored, features: list[str], language: Optional[Language] = None) -> tuple:
    """The MAP-Elites cell of a candidate: compiler facts when the backend gives them, source facts always (those
    about kernels and matrix multiplies as the language declares them)."""
    src = entry.candidate.source
    language = language or Language()
    kernels = entry.result.kernels if entry.result else []
    out = []
    for f in features:
        if f == "kernels":
            found = re.findall(language.kernel_pattern, src, re.M) if language.kernel_pattern else []
            out.append(min(len(found), 4))
        elif f == "matmul":
            out.append(bool(language.matmul_pattern and re.search(language.matmul_pattern, src, re.M)))
        elif f == "length":
            lines = src.count("\n") + 1
            out.append(int(math.log2(max(lines, 1))))
        elif f == "registers":
            out.append(_bucket(max((k.registers or 0 for k in kernels), default=None), (32, 64, 128, 192)))
        elif f == "shared_mem":
            out.append(_bucket(max((k.shared_mem_bytes or 0 for k in kernels), default=None),
                               (0, 16 << 10, 48 << 10, 100 << 10)))
        elif f == "num_warps":
            out.append(max((k.num_warps or 0 for k in kernels), default=None))
        elif f == "num_stages":
            out.append(max((k.num_stages or 0 for k in kernels), default=None))
        elif f == "tunables":
            out.append(tuple(_TUNE.findall(src)))
        else:
            raise ValueError(f"unknown descriptor '{f}' (known: {', '.join(DESCRIPTORS)})")
    return tuple(out)


def closeness(result: Optional[EvalResult]) -> float:
    """How near an incorrect candidate came to correct: later stage first, then smaller output error."""
    if result is None or result.status == Status.INFRA_ERROR:
        return -1.0
    base = float(result.stage.order * 10)
    if result.stage.order >= Stage.CORRECTNESS.order and result.outputs:
        ok = sum(o.ok for o in result.outputs) / len(result.outputs)
        worst = max(min(o.max_rel_error, 1e30) for o in result.outputs)
        base += 4 * ok + 4 / (1 + math.log1p(max(worst, 0.0)))
    return base


@dataclass
class _Island:
    members: set = field(default_factory=set)  # ids of own children and migrants
    ranked: list = field(default_factory=list)  # (-score, arrival, id), best first (kept sorted on insert)
    cells: dict = field(default_factory=dict)  # descriptor -> id of the best member in that cell


class Selector:
    """In-memory selection state rebuilt from the archive; feed it every verdict in evaluation order."""

    def __init__(self, config: Optional[SelectionConfig] = None, language: Optional[Language] = None):
        self.config = config or SelectionConfig()
        self.language = language or Language()
        self.entries: dict[str, Scored] = {}
        self.scores: dict[str, float] = {}  # cached: EvalResult.score is too slow to recompute in sorts
        self._ranked: list = []  # every correct candidate, (-score, arrival, id), best first
        self._arrival = itertools.count()
        self.children: dict[str, int] = {}
        self.islands = [_Island() for _ in range(self.config.islands)]
        self.evaluated = 0
        self.valid = 0
        self._turn = 0
        self._best_id: Optional[str] = None
        self._closest: list[str] = []  # incorrect candidates, best closeness first (for FIX mode)

    # -- state ------------------------------------------------------------------------------------
    def observe(self, entry: Scored) -> None:
        """Record one evaluated candidate (call once per verdict, in evaluation order)."""
        cid = entry.candidate.id
        r = entry.result
        if r is None or r.status == Status.INFRA_ERROR:  # a harness failure says nothing about the program
            return
        if cid in self.entries:
            return
        self.entries[cid] = entry
        for p in entry.candidate.parent_ids:
            self.children[p] = self.children.get(p, 0) + 1
        self.evaluated += 1
        self.scores[cid] = r.score
        if r.correct:
            self.valid += 1
            bisect.insort(self._ranked, (-r.score, next(self._arrival), cid))
            island = self.islands[entry.candidate.island % len(self.islands)]
            self._join(island, entry)
            self._best_id = self._ranked[0][2]
        else:
            self._closest.append(cid)
            self._closest.sort(key=lambda i: -closeness(self.entries[i].result))
            del self._closest[self.config.fix_pool * 4:]
        if self.config.islands > 1 and self.evaluated % self.config.migration_interval == 0:
            self.migrate()

    def _score(self, cid: str) -> float:
        return self.scores.get(cid, -1.0)

    def _join(self, island: _Island, entry: Scored) -> None:
        cid = entry.candidate.id
        if cid in island.members:
            return
        island.members.add(cid)
        bisect.insort(island.ranked, (-self._score(cid), next(self._arrival), cid))
        cell = describe(entry, self.config.descriptors, self.language)
        held = island.cells.get(cell)
        if held is None or self._score(cid) > self._score(held):  # the cell keeps its elite
            island.cells[cell] = cid

    def migrate(self) -> None:
        """Ring migration: each island's top `migration_size` join the next island."""
        tops = [self._top(isl, self.config.migration_size) for isl in self.islands]
        for i, top in enumerate(tops):
            dest = self.islands[(i + 1) % len(self.islands)]
            for cid in top:
                self._join(dest, self.entries[cid])

    def _top(self, island: _Island, k: int) -> list[str]:
        return [cid for _, _, cid in island.ranked[:k]]

    @property
    def best(self) -> Optional[Scored]:
        return self.entries[self._best_id] if self._best_id else None

    # -- picking ----------------------------------------------------------------------------------
    def select(self, rng: random.Random, n_inspirations: int = 3) -> Selection:
        """A parent and inspirations. FIX mode while nothing is correct; else exploit or explore an island."""
        if not self.entries:
            raise LookupError("the archive is empty: evaluate a seed candidate first")
        island_idx = self._turn % len(self.islands)
        self._turn += 1
        if self._best_id is None:
            return self._fix(rng, island_idx, n_inspirations)
        island = self.islands[island_idx]
        top = self._top(island, self.config.elite_size) or self._global_top(self.config.elite_size)
        if rng.random() < self.config.exploitation or len(island.cells) < 2:
            mode = "exploit"
            parent = self._weighted_top(rng, top)
        else:
            mode = "explore"
            parent = rng.choice(list(island.cells.values()))
        return Selection(self.entries[parent], self._inspirations(rng, parent, island, n_inspirations),
                         island_idx, mode)

    def _global_top(self, k: int) -> list[str]:
        return [cid for _, _, cid in self._ranked[:k]]

    def _weighted_top(self, rng: random.Random, top: list[str]) -> str:
        """Sigmoid of the score against the median of the top, divided by 1 + children already made."""
        scores = [self._score(c) for c in top]
        median = sorted(scores)[len(scores) // 2]
        spread = (max(scores) - min(scores)) or 1.0
        weights = []
        for cid, s in zip(top, scores):
            z = max(-50.0, min(50.0, (s - median) / spread * 6.0 / self.config.temperature))
            weights.append((1.0 / (1.0 + math.exp(-z))) / (1.0 + self.children.get(cid, 0)))
        return rng.choices(top, weights=weights)[0]

    def _inspirations(self, rng: random.Random, parent: str, island: _Island, n: int) -> list[Scored]:
        picks: list[str] = []
        ordered = [self._best_id] + self._top(island, 1)
        others = []
        for isl in [island] + rng.sample(self.islands, len(self.islands)):
            cells = list(isl.cells.values())
            others.extend(rng.sample(cells, min(len(cells), n + 1)))
        for cid in ordered + others:
            if len(picks) >= n:
                break
            if cid and cid != parent and cid not in picks:
                picks.append(cid)
        return [self.entries[c] for c in picks]

    def _fix(self, rng: random.Random, island_idx: int, n: int) -> Selection:
        pool = self._closest[: self.config.fix_pool]
        if not pool:  # nothing evaluated with a usable verdict yet: fall back to the oldest candidate
            pool = [next(iter(self.entries))]
        weights = [1.0 / ((rank + 1) * (1 + self.children.get(c, 0))) for rank, c in enumerate(pool)]
        parent = rng.choices(pool, weights=weights)[0]
        insp = [self.entries[c] for c in self._closest if c != parent][:n]
        return Selection(self.entries[parent], insp, island_idx, "fix")
