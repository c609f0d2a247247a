"""Shared helpers for the triton_nvidia tests: evaluate many (task, candidate) pairs through the real LocalEvaluator."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Optional

from ksdk.evaluation.local import LocalEvaluator
from ksdk.models import Candidate, EvalResult, Task
from ksdk.tasks import load_task, task_from_source
from ksdk_triton_nvidia.conformance import TASK

HERE = Path(__file__).parent
EXAMPLES = HERE.parent.parent / "examples" / "triton_nvidia"


def small_task(source: str = TASK, name: str = "t", **settings) -> Task:
    return task_from_source(name, source, **settings)


def shrink(source: str, shape: str) -> str:
    """An example task with its `SHAPE = (...)` line replaced by a size the interpreter runs in seconds."""
    out, n = re.subn(r"^SHAPE = \([^)]*\)", f"SHAPE = {shape}", source, flags=re.M)
    assert n == 1, "example tasks declare their size on one `SHAPE = (...)` line"
    return out


def example(name: str, shape: Optional[str] = None) -> tuple[Task, str]:
    task = load_task(EXAMPLES / name / "task.py")
    if shape:
        task = task.model_copy(update={"source": shrink(task.source, shape)})
    return task, (EXAMPLES / name / "seed.py").read_text()


def evaluate_all(pairs: dict[str, tuple[Task, str]], workers: int = 2, **kwargs) -> dict[str, EvalResult]:
    """Evaluate every pair concurrently on one evaluator (no cache); {key: result}."""

    async def go():
        ev = LocalEvaluator("triton_nvidia", cache=False, workers=workers, **kwargs)
        try:
            keys = list(pairs)
            results = await asyncio.gather(*(ev.evaluate(pairs[k][0], Candidate(source=pairs[k][1])) for k in keys))
            return dict(zip(keys, results))
        finally:
            await ev.close()

    return asyncio.run(go())


def evaluate_in_order(pairs: list[tuple[Task, str]], **kwargs) -> list[EvalResult]:
    """Evaluate pairs one after another on a single worker (to see one verdict's effect on the next)."""

    async def go():
        ev = LocalEvaluator("triton_nvidia", cache=False, workers=1, **kwargs)
        try:
            return [await ev.evaluate(t, Candidate(source=s)) for t, s in pairs]
        finally:
            await ev.close()

    return asyncio.run(go())
