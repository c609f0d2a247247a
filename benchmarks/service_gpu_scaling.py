"""Throughput of Triton evaluations through `ksdk serve`: one service on one GPU vs one service per GPU.

    python benchmarks/service_gpu_scaling.py [--gpus 2] [--candidates 12] [--json out.json]

For each configuration (1 service, then N services), fresh services start on loopback (one per GPU,
`--devices i`, a fresh Triton cache each so no phase reuses another's compiles), each is warmed with one
evaluation, then the same candidates (the elementwise_chain example seed with each BLOCK_SIZE x NUM_WARPS
combination) go through one MultiEvaluator with 2 evaluations in flight per service. Reports
candidates/minute per configuration and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from service_load import Service  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "triton_nvidia" / "elementwise_chain"


def candidate_sources(n: int) -> list[str]:
    from ksdk.mutators.tunables import apply_tunables

    seed = (EXAMPLE / "seed.py").read_text()
    combos = list(itertools.product([256, 512, 1024, 2048, 4096], [2, 4, 8]))
    return [apply_tunables(seed, {"BLOCK_SIZE": b, "NUM_WARPS": w}) for b, w in combos[:n]]


async def phase(gpus: list[int], sources: list[str], task) -> dict:
    from ksdk.models import Candidate
    from ksdk.service.client import ServiceEvaluator
    from ksdk.service.multi import MultiEvaluator

    services = []
    for g in gpus:
        state = Path(tempfile.mkdtemp(prefix=f"ksdk-gpu{g}-"))
        env = dict(os.environ, TRITON_CACHE_DIR=str(state / "triton-cache"))
        svc = Service("triton_nvidia", state, 1, 64, extra=("--devices", str(g), "--no-auth"), env=env)
        svc.start()
        services.append(svc)
    ev = MultiEvaluator([ServiceEvaluator(s.url, backend="triton_nvidia", wait_s=60) for s in services])
    try:
        t0 = time.perf_counter()
        warm = [Candidate(source=candidate_sources(1)[0] + f"\nWARMUP = {i}\n", language="triton") for i in gpus]
        await asyncio.gather(*(m.evaluate(task, c) for m, c in zip(ev.members, warm)))
        warm_s = time.perf_counter() - t0
        cands = [Candidate(source=s, language="triton") for s in sources]
        gate = asyncio.Semaphore(2 * len(gpus))

        async def one(c):
            async with gate:
                return await ev.evaluate(task, c)

        t0 = time.perf_counter()
        results = await asyncio.gather(*(one(c) for c in cands))
        wall = time.perf_counter() - t0
    finally:
        await ev.close()
        for s in services:
            s.signal(signal.SIGTERM)
    return {
        "gpus": gpus, "warmup_s": round(warm_s, 1), "wall_s": round(wall, 2),
        "candidates_per_min": round(60 * len(cands) / wall, 1),
        "correct": sum(r.correct for r in results), "n": len(results),
        "devices": sorted({r.device.name for r in results}),
        "eval_wall_s_median": round(sorted(r.wall_s for r in results)[len(results) // 2], 2),
        "speedups": [round(r.speedup, 3) if r.speedup else None for r in results],
        "statuses": [r.status.value + ("" if r.correct else f":{r.error_kind}") for r in results],
    }


async def main_async(args) -> dict:
    from ksdk.tasks import load_task

    task = load_task(EXAMPLE / "task.py")
    sources = candidate_sources(args.candidates)
    one = await phase([0], sources, task)
    many = await phase(list(range(args.gpus)), sources, task) if args.gpus > 1 else None
    out = {"date": time.strftime("%Y-%m-%d"), "task": "examples/triton_nvidia/elementwise_chain", "one_service": one}
    if many:
        out["services_one_per_gpu"] = many
        out["throughput_ratio"] = round(many["candidates_per_min"] / one["candidates_per_min"], 2)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gpus", type=int, default=2)
    ap.add_argument("--candidates", type=int, default=12)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    report = asyncio.run(main_async(args))
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
