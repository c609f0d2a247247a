"""Per-stage seconds of a few evaluations of the Triton conformance task (the `stages` every verdict records): what a
candidate pays beyond its kernels, on this machine's device or, without one, in Triton's interpreter on the CPU.

  python benchmarks/stage_costs.py [--n 5] [--spares 1]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time


async def run(n: int, spares: int | None) -> None:
    from ksdk_triton_nvidia.conformance import GOOD, TASK

    from ksdk.evaluation.local import LocalEvaluator
    from ksdk.models import Candidate
    from ksdk.tasks import task_from_source

    ev = LocalEvaluator("triton_nvidia", cache=False, workers=1, spares=spares)
    walls, stages = [], []
    try:
        for i in range(n + 1):  # the first starts the process pool: not counted
            t = time.perf_counter()
            r = await ev.evaluate(task_from_source("conformance", TASK), Candidate(source=GOOD, language=ev.language))
            if i:
                walls.append(time.perf_counter() - t)
                stages.append(r.stages or {})
            print(f"{i}: {r.status.value} {time.perf_counter() - t:.2f} s", flush=True)
    finally:
        await ev.close()
    names = sorted({k for s in stages for k in s}, key=lambda k: -statistics.median(s.get(k, 0.0) for s in stages))
    print(f"wall: median {statistics.median(walls):.3f} s over {n}")
    for k in names:
        print(f"  {k:32s} {statistics.median(s.get(k, 0.0) for s in stages):.3f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=5)
    ap.add_argument("--spares", type=int, default=None)
    a = ap.parse_args()
    asyncio.run(run(a.n, a.spares))


if __name__ == "__main__":
    main()
