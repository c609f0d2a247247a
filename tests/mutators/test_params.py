"""ParamMutator: explores declared choices only, never repeats itself, and climbs towards the best config."""

import asyncio
import itertools
import math

from ksdk.interfaces.mutator import MutationRequest, Scored
from ksdk.models import Candidate, EvalResult, Stage, Status, Task
from ksdk.mutators.params import ParamMutator
from ksdk.mutators.tunables import find_tunables
from ksdk.registry import load

SRC = """import triton
BM = 64  # ksdk:tune [16, 32, 64, 128, 256]
BN = 32  # ksdk:tune [16, 32, 64, 128]
W = 4  # ksdk:tune [1, 2, 4, 8]
"""
TASK = Task(name="t", source="class Model: pass")
CHOICES = {t.name: t.choices for t in find_tunables(SRC)}


def ok(speedup: float) -> EvalResult:
    return EvalResult(stage=Stage.PERFORMANCE, status=Status.OK, speedup=speedup)


def values(candidate: Candidate) -> dict:
    return {t.name: t.value for t in find_tunables(candidate.source)}


def objective(cfg: dict) -> EvalResult:
    """A smooth landscape with its peak at BM=128, BN=16, W=2 and a failing corner."""
    i = {n: CHOICES[n].index(v) for n, v in cfg.items()}
    if i["BM"] == 4 and i["BN"] == 3:
        return EvalResult(stage=Stage.COMPILE, status=Status.FAILED)
    return ok(4.0 * math.exp(-0.3 * ((i["BM"] - 3) ** 2 + (i["BN"] - 0) ** 2 + (i["W"] - 1) ** 2)))


def search(mutator: ParamMutator, budget: int) -> list[Scored]:
    archive = [Scored(candidate=Candidate(source=SRC), result=objective(values(Candidate(source=SRC))))]

    async def loop():
        while len(archive) < budget:
            top = sorted(archive, key=lambda s: -s.result.score)
            out = await mutator.propose(MutationRequest(task=TASK, parent=archive[-1], inspirations=top[:3]))
            assert out.candidate is not None, out.error
            archive.append(Scored(candidate=out.candidate, result=objective(values(out.candidate))))

    asyncio.run(loop())
    return archive


def test_children_stay_within_choices_and_are_never_repeated():
    archive = search(ParamMutator(seed=1, explore=0.5), budget=60)
    seen = set()
    for s in archive:
        cfg = values(s.candidate)
        assert all(any(v == c for c in CHOICES[n]) for n, v in cfg.items()), cfg
        key = tuple(cfg.values())
        assert key not in seen
        seen.add(key)
    child = archive[1].candidate
    assert child.mutation.mutator == "params" and child.mutation.reply_format == "params"
    assert child.mutation.params == values(child) and child.parent_ids == [archive[0].candidate.id]
    assert child.generation == 1


def test_reaches_the_grid_optimum_with_a_quarter_of_the_grid():
    grid = 5 * 4 * 4
    best = max(
        objective(dict(zip(CHOICES, combo))).score for combo in itertools.product(*CHOICES.values())
    )
    archive = search(ParamMutator(seed=0), budget=grid // 4)
    assert max(s.result.score for s in archive) >= 0.97 * best


def test_exhausted_space_and_missing_tunables_are_reported_not_raised():
    small = "A = 1  # ksdk:tune [1, 2]\n"
    mutator = ParamMutator(seed=0)
    parent = Scored(candidate=Candidate(source=small), result=ok(1.0))
    first = asyncio.run(mutator.propose(MutationRequest(task=TASK, parent=parent)))
    assert values(first.candidate) == {"A": 2}
    again = asyncio.run(mutator.propose(MutationRequest(task=TASK, parent=parent)))
    assert again.candidate is None and "already proposed" in again.error
    none = asyncio.run(mutator.propose(MutationRequest(task=TASK, parent=Scored(candidate=Candidate(source="x=1")))))
    assert none.candidate is None and "declares no tunables" in none.error


def test_registered_as_entry_point():
    cls = load("mutators", "params")
    assert cls is ParamMutator and isinstance(cls(seed=3), ParamMutator)


def test_observed_archive_is_never_proposed_again():
    src = "A = 1  # ksdk:tune [1, 2, 3]\n"
    mutator = ParamMutator(seed=0)
    mutator.observe([Scored(candidate=Candidate(source=src), result=ok(1.0)),
                     Scored(candidate=Candidate(source=src.replace("A = 1", "A = 3")))])  # pending: no verdict yet
    first = asyncio.run(mutator.propose(MutationRequest(task=TASK, parent=Scored(candidate=Candidate(source=src)))))
    assert values(first.candidate) == {"A": 2}
    again = asyncio.run(mutator.propose(MutationRequest(task=TASK, parent=Scored(candidate=Candidate(source=src)))))
    assert again.candidate is None and "already proposed" in again.error
