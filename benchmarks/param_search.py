"""How many evaluations ParamMutator needs to get within 3% of an exhaustive grid's best.

Replays the search over a table of scores: synthetic landscapes (default), or a measured grid written as JSON
`{"source": "<seed source with ksdk:tune lines>", "scores": [[{"NAME": value, ...}, score], ...]}` (for example
every configuration of a Triton task evaluated once on the GPU), so the search is judged on real timings.
The loop mimics the evolution loop: parents from the top (70%) or at random, the top 3 as inspirations, and
`--pipeline` proposals in flight before a result comes back.

    python benchmarks/param_search.py --landscapes 30
    python benchmarks/param_search.py --grid measured_grid.json --runs 20
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import random
import statistics
from typing import Callable, Optional

from ksdk.interfaces.mutator import MutationRequest, Scored
from ksdk.models import Candidate, EvalResult, Stage, Status, Task
from ksdk.mutators.params import ParamMutator
from ksdk.mutators.tunables import find_tunables

SYNTHETIC = """BM = 64  # ksdk:tune [16, 32, 64, 128, 256]
BN = 64  # ksdk:tune [16, 32, 64, 128, 256]
BK = 32  # ksdk:tune [16, 32, 64, 128]
W = 4  # ksdk:tune [1, 2, 4, 8, 16]
S = 3  # ksdk:tune [1, 2, 3, 4, 5]
"""
# The shape of examples/triton_nvidia/matmul_bias_relu's grid (216 configurations).
SYNTHETIC_SMALL = """BM = 64  # ksdk:tune [32, 64, 128]
BN = 64  # ksdk:tune [32, 64, 128, 256]
BK = 32  # ksdk:tune [16, 32, 64]
W = 4  # ksdk:tune [4, 8]
S = 3  # ksdk:tune [2, 3, 4]
"""


def result(score: Optional[float]) -> EvalResult:
    if score is None or score < 0:
        return EvalResult(stage=Stage.COMPILE, status=Status.FAILED)
    return EvalResult(stage=Stage.PERFORMANCE, status=Status.OK, speedup=score)


def synthetic(source: str, seed: int) -> Callable[[dict], Optional[float]]:
    """A smooth landscape (one peak, an interaction term, 1% noise) with a failing corner (too much memory)."""
    r = random.Random(seed)
    tunables = find_tunables(source)
    top = {t.name: len(t.choices) - 1 for t in tunables}
    peak = {t.name: r.randrange(len(t.choices)) for t in tunables}
    width = {t.name: r.uniform(0.05, 0.4) for t in tunables}
    inter = r.uniform(0, 0.2)

    def score(cfg: dict) -> Optional[float]:
        i = {t.name: t.choices.index(cfg[t.name]) for t in tunables}
        if sum(i[n] / top[n] for n in ("BM", "BN", "BK")) > 2.6:
            return None
        s = 3.0 * math.prod(math.exp(-width[n] * (i[n] - peak[n]) ** 2) for n in i)
        return s * (1 + inter * math.cos(i["BM"] + 2 * i["BN"] + i["W"])) * (1 + r.gauss(0, 0.01))

    return score


async def search(source: str, table: dict, seed: int, pipeline: int, target: float) -> list[float]:
    """Best score after each evaluation, starting with the seed's, until it reaches `target`."""
    mutator, rng, task = ParamMutator(seed=seed), random.Random(seed), Task(name="grid", source="")

    def evaluate(c: Candidate) -> Scored:
        key = tuple(t.value for t in find_tunables(c.source))
        return Scored(candidate=c, result=result(table.get(key)))

    archive = [evaluate(Candidate(source=source))]
    best = [archive[0].result.score]
    pending: list[Candidate] = []
    while len(archive) < len(table) and best[-1] < target:
        top = sorted(archive, key=lambda s: -s.result.score)
        parent = top[0] if rng.random() < 0.7 else rng.choice(archive)
        out = await mutator.propose(MutationRequest(task=task, parent=parent, inspirations=top[:3]))
        if out.candidate is not None:
            pending.append(out.candidate)
        if len(pending) >= pipeline or (out.candidate is None and pending):
            archive.append(evaluate(pending.pop(0)))
            best.append(max(best[-1], archive[-1].result.score))
        elif out.candidate is None:
            break
    return best


def evals_to_reach(best: list[float], target: float) -> Optional[int]:
    return next((i + 1 for i, b in enumerate(best) if b >= target), None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--grid", help="JSON table of measured scores (see the module docstring)")
    ap.add_argument("--landscapes", type=int, default=30, help="synthetic landscapes (without --grid)")
    ap.add_argument("--runs", type=int, default=10, help="search seeds per measured grid")
    ap.add_argument("--small", action="store_true", help="synthetic grid shaped like matmul_bias_relu's (216)")
    ap.add_argument("--pipeline", type=int, default=2, help="proposals in flight before a result returns")
    args = ap.parse_args()
    jobs = []
    if args.grid:
        data = json.load(open(args.grid))
        names = [t.name for t in find_tunables(data["source"])]
        table = {tuple(cfg[n] for n in names): s for cfg, s in data["scores"]}
        jobs = [(data["source"], table, seed) for seed in range(args.runs)]
    else:
        shape = SYNTHETIC_SMALL if args.small else SYNTHETIC
        for seed in range(args.landscapes):
            f = synthetic(shape, seed)
            tunables = find_tunables(shape)
            table = {combo: f(dict(zip([t.name for t in tunables], combo)))
                     for combo in itertools.product(*(t.choices for t in tunables))}
            jobs.append((shape, table, seed))
    shares = []
    for source, table, seed in jobs:
        optimum = max(s for s in table.values() if s is not None)
        best = asyncio.run(search(source, table, seed, args.pipeline, 0.97 * optimum))
        n = evals_to_reach(best, 0.97 * optimum)
        shares.append((n or len(table) + 1) / len(table))
    grid = len(jobs[0][1])
    print(f"grid of {grid} configurations, {len(jobs)} searches, pipeline {args.pipeline}")
    print(f"evaluations to reach 97% of the grid's best, as a share of the grid: median "
          f"{statistics.median(shares):.1%}, worst {max(shares):.1%}; "
          f"within 25% of the grid: {sum(s <= 0.25 for s in shares)}/{len(shares)}")


if __name__ == "__main__":
    main()
