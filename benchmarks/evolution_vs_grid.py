"""Parameter-mutator evolution against an exhaustive grid over the same declared ranges, on a real device.

1. Evolve the task's seed with the real loop (ksdk.evolution.api.evolve, ParamMutator) for a quarter of the grid's
   size in candidates, through a LocalEvaluator with its cache on.
2. Evaluate every configuration of the grid through the SAME evaluator: configurations the evolution already
   visited are cache hits, so each configuration has exactly one measurement and both sides are judged on it.
Reports the evolution's best speedup as a share of the grid's best, and how many evaluations each used.

    python benchmarks/evolution_vs_grid.py examples/triton_nvidia/matmul_bias_relu/task.py --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import tempfile
import time
from pathlib import Path

from ksdk.evaluation.local import LocalEvaluator
from ksdk.evolution.api import evolve_async, find_seed
from ksdk.models import Candidate, TimingSettings
from ksdk.mutators.tunables import apply_tunables, find_tunables
from ksdk.tasks import load_task


async def run(args) -> dict:
    task = load_task(args.task)
    # Same policy on both sides; fewer trials and repetitions than the defaults keep the 200+ evaluations short.
    task = task.model_copy(update={"correctness_trials": args.trials, "timing": TimingSettings(
        warmup=5, repetitions=args.reps, min_time_ms=args.min_time_ms, max_repetitions=args.reps * 4)})
    ev = LocalEvaluator(args.backend, cache=True)
    seed_src = find_seed(task.path, ev.language, args.seed_file).read_text()
    tunables = find_tunables(seed_src)
    grid = [dict(zip([t.name for t in tunables], combo)) for combo in itertools.product(*[t.choices for t in tunables])]
    budget = max(2, math.floor(len(grid) * args.share))
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        seed = Candidate(source=seed_src, language=ev.language)
        summary = await evolve_async(task, backend=ev, mutator="params", seed=seed,
                                     out=Path(tmp) / "run", max_candidates=budget, random_seed=args.seed,
                                     progress=False, handle_signals=False)
        from ksdk.archives.sqlite import SqliteArchive

        archive = SqliteArchive(Path(tmp) / "run" / "archive.sqlite", must_exist=True)
        best = archive.best(1)
        best_cfg = {t.name: t.value for t in find_tunables(best[0].candidate.source)} if best else None
        archive.close()
    evolve_s = time.perf_counter() - t0
    rows = []
    t1 = time.perf_counter()
    for cfg in grid:
        r = await ev.evaluate(task, Candidate(source=apply_tunables(seed_src, cfg), language=ev.language))
        rows.append({"config": cfg, "speedup": r.speedup, "status": r.status.value, "error": r.error_kind and
                     r.error_kind.value, "message": r.message[:300] if r.error_kind else "", "cached": r.cached,
                     "median_ms": r.candidate_timing.median_ms if r.candidate_timing else None})
        print("row", json.dumps(rows[-1]), flush=True)  # a run cut short still shows what it measured
    grid_s = time.perf_counter() - t1
    await ev.close()
    scored = [r for r in rows if r["speedup"]]
    grid_best = max(scored, key=lambda r: r["speedup"])
    evolved = next((r for r in rows if r["config"] == best_cfg), None)
    out = {
        "task": task.name, "grid_size": len(grid), "evolution_budget": budget,
        "evolution_evaluated": summary.evaluated, "evolution_best_speedup_own": summary.best_speedup,
        "evolution_best_config": best_cfg, "evolution_best_speedup": evolved and evolved["speedup"],
        "grid_best_config": grid_best["config"], "grid_best_speedup": grid_best["speedup"],
        "share_of_grid_best": (evolved["speedup"] / grid_best["speedup"]) if evolved and evolved["speedup"] else None,
        "grid_failed": sum(1 for r in rows if not r["speedup"]), "evolve_wall_s": evolve_s, "grid_wall_s": grid_s,
        "device": ev.info().availability.devices[0].name if ev.info().availability.devices else "none",
        "rows": rows,
    }
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("task")
    p.add_argument("--backend", default="triton_nvidia")
    p.add_argument("--share", type=float, default=0.25, help="evolution budget as a share of the grid")
    p.add_argument("--trials", type=int, default=2)
    p.add_argument("--reps", type=int, default=50)
    p.add_argument("--min-time-ms", type=float, default=20.0)
    p.add_argument("--seed", type=int, default=0, help="random seed of the search")
    p.add_argument("--seed-file", help="seed candidate (default: the one shipped beside the task)")
    p.add_argument("--json")
    args = p.parse_args()
    out = asyncio.run(run(args))
    brief = {k: v for k, v in out.items() if k != "rows"}
    print(json.dumps(brief, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
