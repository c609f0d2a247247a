"""Evolution loop overhead: is the evaluator kept busy, and what does the engine itself cost per candidate?

Two measurements, one command:

1. pipeline: the quickstart matmul task on the cpu_c backend (real compiles, real CPU timing), mutated by the
   parameter mutator behind a simulated LLM latency (default 2 s a call, 8 calls at once). Reports the share of
   the run the evaluation worker spent evaluating, and the loop's own time per candidate (selection, archive
   writes, bookkeeping; mutation and evaluation excluded), as measured by the loop.
2. engine only: an instant mutator and an instant in-process evaluator (benchmark doubles), so the wall time
   per candidate is nothing but the engine: asyncio scheduling, selection, two SQLite commits, bookkeeping.

    python benchmarks/evolution_overhead.py [--candidates 40] [--latency 2] [--concurrency 8] [--json OUT]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import re
import sys
import tempfile
import time
from pathlib import Path

from ksdk.evolution.api import evolve_async, make_evaluator, make_mutator
from ksdk.interfaces.evaluator import Evaluator
from ksdk.interfaces.mutator import MutationOutcome, MutationRequest, Mutator
from ksdk.models import (Availability, Candidate, EvalResult, EvaluatorInfo, Mutation, Stage, Status, Task,
                         TimingStats)
from ksdk.tasks import load_task

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "examples" / "quickstart" / "matmul.py"


class DelayedMutator(Mutator):
    """Benchmark double: a real mutator answered only after a fixed latency (an LLM call's round trip)."""

    def __init__(self, inner: Mutator, latency_s: float):
        self.inner, self.latency_s, self.name = inner, latency_s, inner.name

    async def propose(self, request: MutationRequest) -> MutationOutcome:
        await asyncio.sleep(self.latency_s)
        return await self.inner.propose(request)


class CountingMutator(Mutator):
    """Benchmark double: X = n -> X = n + k, instantly (distinct children, no duplicates)."""

    name = "counting"

    def __init__(self):
        self.n = 0

    async def propose(self, request: MutationRequest) -> MutationOutcome:
        self.n += 1
        src = re.sub(r"^X = \d+", f"X = {self.n}", request.parent.candidate.source, flags=re.M)
        return MutationOutcome(candidate=Candidate(source=src, language="toy"), mutation=Mutation(mutator="counting"))


class InstantEvaluator(Evaluator):
    """Benchmark double: a verdict without any work (speedup = X), so only the engine's time remains."""

    @property
    def workers(self) -> int:
        return 1

    async def evaluate(self, task: Task, candidate: Candidate) -> EvalResult:
        x = float(re.search(r"X = (\d+)", candidate.source).group(1))
        t = TimingStats(median_ms=1 / (x + 1), iqr_ms=0, mean_ms=1, std_ms=0, min_ms=1, max_ms=1, n=3)
        return EvalResult(candidate_id=candidate.id, stage=Stage.PERFORMANCE, status=Status.OK, speedup=x + 1,
                          candidate_timing=t, baseline_timing=t)

    def info(self) -> EvaluatorInfo:
        return EvaluatorInfo(backend="instant", workers=1, availability=Availability(name="instant", available=True))


async def pipeline(candidates: int, latency: float, concurrency: int, out: Path) -> dict:
    task = load_task(QUICKSTART)
    evaluator = make_evaluator("cpu_c", None, 1)
    try:
        mutator = DelayedMutator(make_mutator("params", [], None, {}, 0), latency)
        s = await evolve_async(task, backend=evaluator, mutator=mutator, out=out, max_candidates=candidates,
                               mutation_concurrency=concurrency, progress=False, handle_signals=False)
    finally:
        await evaluator.close()
    return {"stop_reason": s.stop_reason, "candidates": s.evaluated, "valid": s.valid, "attempts": s.attempts,
            "failed": s.failed_attempts,
            "wall_s": round(s.session_s, 2), "evaluator_busy": round(s.evaluator_busy, 4),
            "engine_ms_per_candidate": round(s.engine_ms_per_candidate, 3),
            "mean_evaluation_s": round(s.evaluator_busy * s.session_s / max(s.session_evaluated, 1), 3),
            "best_speedup": round(s.best_speedup or 0.0, 3)}


async def engine_only(candidates: int, out: Path) -> dict:
    task = Task(name="instant", source="")
    seed = Candidate(source="X = 0\n", language="toy")
    t0 = time.perf_counter()
    s = await evolve_async(task, backend=InstantEvaluator(), mutator=CountingMutator(), seed=seed, out=out,
                           max_candidates=candidates, mutation_concurrency=8, progress=False, handle_signals=False)
    wall = time.perf_counter() - t0  # includes creating the run folder and writing the report
    return {"candidates": s.evaluated, "loop_wall_s": round(s.session_s, 3),
            "ms_per_candidate_wall": round(1000 * s.session_s / s.evaluated, 3),
            "engine_ms_per_candidate": round(s.engine_ms_per_candidate, 3), "total_wall_s": round(wall, 2)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--candidates", type=int, default=40)
    ap.add_argument("--latency", type=float, default=2.0)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--engine-candidates", type=int, default=1000)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pipe = asyncio.run(pipeline(args.candidates, args.latency, args.concurrency, Path(tmp) / "pipeline"))
        eng = asyncio.run(engine_only(args.engine_candidates, Path(tmp) / "engine"))
    result = {"date": time.strftime("%Y-%m-%d"), "load_avg_1min": round(__import__("os").getloadavg()[0], 2),
              "machine": f"{platform.processor() or platform.machine()}, "
              f"{__import__('os').cpu_count()} cores", "python": sys.version.split()[0],
              "latency_s": args.latency, "concurrency": args.concurrency, "pipeline": pipe, "engine_only": eng}
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    ok = pipe["evaluator_busy"] >= 0.90 and pipe["engine_ms_per_candidate"] <= 5 and eng["ms_per_candidate_wall"] <= 5
    print(f"targets (busy >= 90%, engine <= 5 ms/candidate): {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
