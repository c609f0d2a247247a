"""A first look at the judge on a GPU: each Triton example's seed evaluated once with every record on (do_bench in the
judge, the candidate's own timing), printed as one block per task: verdict, speedup and its interval, both clocks'
medians, do_bench's figures, the stage breakdown and peak device memory.
Usage: python benchmarks/judge_smoke.py [--no-sandbox] [--no-flush] [TASK ...]
(--no-sandbox and --no-flush tell which part of the judge's clock a cost belongs to: the sandbox and its freezer, or
the judge's cache eviction before each batch)"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from ksdk.evaluation.local import LocalEvaluator
from ksdk.models import Candidate
from ksdk.tasks import load_task

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "triton_nvidia"


async def main(names: list[str], sandbox: bool = True, flush: bool = True) -> None:
    ev = LocalEvaluator("triton_nvidia", cache=False, workers=1, sandbox=sandbox)
    try:
        for name in names:
            task = load_task(EXAMPLES / name / "task.py")
            task = task.model_copy(update={"timing": task.timing.model_copy(
                update={"cross_check_do_bench": True, "cross_check_reported": True, "flush_l2": flush})})
            r = await ev.evaluate(task, Candidate(source=(EXAMPLES / name / "seed.py").read_text()))
            cc = {k: round(v.median_ms * 1e3, 2) for k, v in r.cross_checks.items()}
            print(f"== {name} (sandbox {sandbox}, eviction {flush}): {r.status.value} {r.error_kind} "
                  f"speedup {r.speedup} ci {r.speedup_ci}")
            if r.message:
                print("   message:", r.message[:600])
            if r.candidate_timing:
                print(f"   judge us: candidate {r.candidate_timing.median_ms * 1e3:.2f} (n={r.candidate_timing.n}) "
                      f"baseline {r.baseline_timing.median_ms * 1e3:.2f}; records us {cc}")
                db = r.cross_checks.get("do_bench:baseline"), r.cross_checks.get("do_bench:candidate")
                if all(db):
                    print(f"   do_bench speedup {db[0].median_ms / db[1].median_ms:.4f}; judge/do_bench "
                          f"{r.speedup / (db[0].median_ms / db[1].median_ms) - 1:+.4f}")
                print("   method:", r.candidate_timing.method[:300])
            print("   stages:", json.dumps({k: round(v, 3) for k, v in r.stages.items()}))
            print("   memory:", {k: round(v / 2**20) for k, v in r.device.extra.items() if k.endswith("_bytes")},
                  "MiB; wall", round(r.wall_s, 2), "s")
            print("   clock:", r.device.extra.get("clock"))
            for w in r.warnings:
                print("   warning:", w[:300])
    finally:
        await ev.close()


if __name__ == "__main__":
    names = [a for a in sys.argv[1:] if not a.startswith("--")]
    asyncio.run(main(names or ["elementwise_chain", "row_softmax", "layer_norm", "matmul_bias_relu"],
                     sandbox="--no-sandbox" not in sys.argv, flush="--no-flush" not in sys.argv))
