"""Re-timing the leaders before a run reports its best: the top candidates and the seed evaluated again, round after
round in turn (A B C, B C A, ...), so that the figure a run reports is a median over fresh measurements with an
interval, and not the luckiest of many noisy ones (the maximum of noisy speedups is biased upward)."""

from __future__ import annotations

import asyncio
import time
from typing import Callable, Optional

from ksdk.archives.retimings import Retiming, Round
from ksdk.archives.sqlite import SqliteArchive
from ksdk.interfaces.evaluator import Evaluator
from ksdk.interfaces.mutator import Scored
from ksdk.models import Candidate, ErrorKind, EvalResult, Status, Task

DEFAULT_TOP = 3
DEFAULT_ROUNDS = 5
SEED_STEP = 7919  # each round draws its inputs from another seed: no verdict cache can answer it, no input set rules


def plan(top: Optional[int], rounds: Optional[int], evaluated: int) -> tuple[int, int]:
    """(leaders, rounds) to re-time. Given values stand; a value left unset defaults to DEFAULT_TOP or
    DEFAULT_ROUNDS, shrunk (leaders first, down to 1; rounds down to 2) until the re-timing, seed included, costs at
    most half the evaluations the session made (never less than 2 rounds of the best and the seed)."""
    t = DEFAULT_TOP if top is None else top
    r = DEFAULT_ROUNDS if rounds is None else rounds
    cap = max(4, evaluated // 2)
    while top is None and t > 1 and (t + 1) * r > cap:
        t -= 1
    while rounds is None and r > 2 and (t + 1) * r > cap:
        r -= 1
    return t, r


def leaders_to_retime(archive: SqliteArchive, top: int) -> list[Scored]:
    """The `top` best correct, timed candidates by the search's figure, and the seed (when correct and timed)."""
    if top <= 0:
        return []
    timed = [e for e in archive.best(max(top, 0) + 1) if e.result.speedup is not None][:top]
    seed = next((e for e in archive.all() if not e.candidate.parent_ids), None)
    if (seed is not None and seed.result is not None and seed.result.correct and seed.result.speedup is not None
            and all(e.candidate.id != seed.candidate.id for e in timed)):
        timed.append(seed)
    return timed


def round_task(task: Task, i: int) -> Task:
    """The task of round i: the same problem and policy, inputs drawn from a seed of its own; the first round also
    times torch.compile beside PyTorch eager where the backend's judge can (on a device)."""
    timing = task.timing.model_copy(update={"compile_baseline": True}) if i == 0 else task.timing
    return task.model_copy(update={"seed": task.seed + SEED_STEP * (i + 1), "timing": timing})


async def retime(task: Task, evaluator: Evaluator, entries: list[Scored], rounds: int,
                 stopped: Callable[[], bool] = lambda: False,
                 on_round: Optional[Callable[[int], None]] = None) -> Optional[list[Retiming]]:
    """Evaluate every entry `rounds` times, in turn; None when `stopped()` turned true before the end (nothing
    half-done is kept). Up to `evaluator.workers` evaluations of a round run at once."""
    out = {e.candidate.id: Retiming(candidate_id=e.candidate.id, baseline=e.result.baseline if e.result else "",
                                    search_speedup=e.result.speedup if e.result else None) for e in entries}
    gate = asyncio.Semaphore(max(1, evaluator.workers))

    async def one(t: Task, c: Candidate) -> EvalResult:
        async with gate:
            try:
                return await evaluator.evaluate(t, c)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # the evaluator broke: a round that does not count, not a crash
                return EvalResult(candidate_id=c.id, status=Status.INFRA_ERROR, error_kind=ErrorKind.INFRA,
                                  message=f"evaluator error: {type(e).__name__}: {e}")

    for i in range(rounds):
        if stopped():
            return None
        shift = i % max(len(entries), 1)
        order = entries[shift:] + entries[:shift]
        t = round_task(task, i)
        results = await asyncio.gather(*(one(t, e.candidate) for e in order))
        for e, r in zip(order, results):
            out[e.candidate.id].rounds.append(Round.of(r))
            if r.baseline and not out[e.candidate.id].baseline:
                out[e.candidate.id].baseline = r.baseline
        if on_round is not None:
            on_round(i + 1)
    return None if stopped() else [out[e.candidate.id] for e in entries]


async def retime_run(archive: SqliteArchive, task: Task, evaluator: Evaluator, top: Optional[int],
                     rounds: Optional[int], evaluated: int, stopped: Callable[[], bool] = lambda: False,
                     say: Callable[[str], None] = lambda _m: None) -> Optional[list[Retiming]]:
    """Re-time a run's leaders (as `plan` sizes it for a session that made `evaluated` evaluations) and store the
    outcome in its archive; None (nothing stored) when there is nothing to re-time, `rounds` is 0, or `stopped()`
    turned true."""
    top, rounds = plan(top, rounds, evaluated)
    entries = leaders_to_retime(archive, top)
    if not entries or rounds <= 0:
        return None
    n = len(entries)
    t0 = time.monotonic()
    say(f"re-timing the {n} leading candidate(s), seed included, {rounds} rounds in turn ({n * rounds} evaluations; "
        "--retime-rounds 0 skips it)")
    found = await retime(task, evaluator, entries, rounds, stopped,
                         on_round=lambda i: say(f"re-timing: round {i}/{rounds} done"))
    if found is None:
        return None
    archive.save_retimings(found, {"at": time.time(), "evaluated": archive.selector.evaluated, "rounds": rounds,
                                   "top": top, "seconds": round(time.monotonic() - t0, 2)})
    return found
