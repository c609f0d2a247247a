"""The judge's race on the CPU, for real (cpu_c, the quickstart's naive matmul against its own C baseline, about
1x): with a mark far above what it can reach, its timing stops at the least rounds and says why; with a mark below
it, it is timed as usual. The figure is the judge's either way."""

import asyncio
from pathlib import Path

from ksdk.evaluation.performance import MIN_ROUNDS
from ksdk.models import Candidate, Status
from ksdk.tasks import load_task

QUICKSTART = Path(__file__).resolve().parents[2] / "examples" / "quickstart"


def test_a_clear_loser_stops_at_the_least_rounds_and_one_that_may_win_does_not():
    from ksdk.evaluation.local import LocalEvaluator

    task = load_task(QUICKSTART / "matmul.py", correctness_trials=1)
    seed = Candidate(source=(QUICKSTART / "matmul_seed.c").read_text(), language="c")

    def marked(mark):
        return task.model_copy(update={"timing": task.timing.model_copy(update={"race_below": mark})})

    async def go():
        ev = LocalEvaluator("cpu_c", cache=False)
        try:
            return [await ev.evaluate(marked(m), seed) for m in (1000.0, 0.01)]
        finally:
            await ev.close()

    lost, usual = asyncio.run(go())
    for r in (lost, usual):
        assert r.status == Status.OK and 0.3 < r.speedup < 3.0, (r.status, r.message, r.speedup)
    assert lost.candidate_timing.n == MIN_ROUNDS
    assert "stopped early in the search's race" in lost.candidate_timing.method
    assert "1000.000x" in lost.candidate_timing.method
    assert "race" not in usual.candidate_timing.method
