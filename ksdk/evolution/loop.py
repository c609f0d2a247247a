"""The evolution loop: an asyncio pipeline that keeps the evaluator busy while mutations are being made.

Mutations run concurrently (up to `mutation_concurrency`, counting children waiting for a worker), one
coroutine per evaluation worker drains the queue, and every proposal and verdict is written to the archive
as it happens, so a killed run resumes where it stopped.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from typing import Optional

from ksdk.archives.sqlite import SqliteArchive
from ksdk.evolution.budgets import Budgets, Usage, exhausted, may_propose
from ksdk.evolution.progress import Progress, Snapshot
from ksdk.interfaces.evaluator import Evaluator
from ksdk.interfaces.mutator import MutationOutcome, MutationRequest, Mutator
from ksdk.languages import Language
from ksdk.models import Candidate, ErrorKind, EvalResult, Mutation, Status, Task

INTERRUPTED = "interrupted"


class Evolution:
    """One session of a run. `run()` returns the stop reason; the archive holds everything else.

    The loop is written against SqliteArchive: a run is its SQLite file, which `ksdk show`, `ksdk export` and
    resume read too."""

    def __init__(self, task: Task, evaluator: Evaluator, mutator: Mutator, archive: SqliteArchive,
                 budgets: Budgets, *, backend: str = "", language: Optional[Language] = None, mutator_name: str = "",
                 mutation_concurrency: Optional[int] = None, inspirations: int = 3, random_seed: int = 0,
                 progress: Optional[Progress] = None, elapsed_before: float = 0.0,
                 max_failures_in_row: int = 50, max_infra_in_row: int = 5, race: bool = True):
        self.task, self.evaluator, self.mutator, self.archive = task, evaluator, mutator, archive
        self.budgets = budgets
        self.backend, self.language = backend, language or archive.language
        self.mutator_name = mutator_name or getattr(mutator, "name", "") or type(mutator).__name__
        self.concurrency = mutation_concurrency or evaluator.workers + 1
        self.inspirations = inspirations
        self.race = race
        # A resumed session draws a fresh stream: replaying the first session's choices would repeat its work.
        self.rng = random.Random(random_seed * 1_000_003 + archive.attempt_count)
        self.progress = progress or Progress(enabled=False)
        self.max_failures_in_row, self.max_infra_in_row = max_failures_in_row, max_infra_in_row
        self._elapsed_before = elapsed_before
        self._cost_before = archive.cost_usd
        self._hints: Optional[str] = None
        # pipeline state
        self._queue: asyncio.Queue[Candidate] = asyncio.Queue()
        self._slot_ids: set[str] = set()
        self._slots_used = 0
        self._outstanding = 0  # mutating + queued + evaluating: what may still become a verdict
        self._mutating = 0
        self._evaluating = 0
        self._mutations: set[asyncio.Task] = set()
        self._failures_in_row = 0
        self._fail_verdicts = -1  # verdict count at the last failed attempt
        self._verdicts = 0
        self._infra_in_row = 0
        self._last_mode = ""
        self.stop_reason: Optional[str] = None
        self.interrupted = False  # a stop signal came (also after the run ended: it skips the re-timing)
        self.error: Optional[str] = None  # why the run could not do its job (a fatal mutator error), if so
        self._hard = False
        # measurements (for the summary and the overhead benchmark)
        self.session_evaluated = 0
        self.session_attempts = 0
        self.session_children = 0  # attempts that made a new candidate
        self.last_error: Optional[str] = None  # why the last attempt made none
        self.eval_busy_s = 0.0
        self.engine_s = 0.0  # time in the loop's own code: selection, bookkeeping, archive writes
        self.session_s = 0.0
        self._t0 = time.monotonic()

    # -- public -----------------------------------------------------------------------------------
    def request_stop(self, reason: str, hard: bool = False) -> None:
        """Stop proposing. Soft: finish evaluations in flight. Hard: cancel them (their candidates stay pending)."""
        self.interrupted = self.interrupted or reason == INTERRUPTED
        if self.stop_reason is None:
            self.stop_reason = reason
            self.progress.message(f"stopping: {reason}")
        self._hard = self._hard or hard
        self._poke()

    def usage(self) -> Usage:
        return Usage.of(self.archive, elapsed_s=self._elapsed_before + (time.monotonic() - self._t0),
                        cost_usd=max(self.archive.cost_usd, self._cost_before + float(self.mutator.cost_usd or 0.0)))

    async def run(self) -> str:
        """Evaluate pending candidates (the seed first), then evolve until a budget or a stop request."""
        self._t0 = time.monotonic()
        self._changed = asyncio.Event()
        self._done = asyncio.Event()
        self._hints = self.evaluator.hints() or ""
        self.mutator.observe(list(self.archive.all()))  # a resumed run's mutator learns what exists
        for cand in self.archive.pending():
            self._outstanding += 1
            self._queue.put_nowait(cand)
        self.progress.start(self.snapshot())
        self._crash: Optional[BaseException] = None
        workers = [self._spawn(self._evaluate_forever()) for _ in range(max(1, self.evaluator.workers))]
        producer = self._spawn(self._produce())
        ticker = self._spawn(self._tick())
        try:
            self._check()
            await self._done.wait()
            if self._crash is not None:
                raise self._crash
        finally:
            tasks = [producer, ticker, *workers, *self._mutations]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.session_s = time.monotonic() - self._t0
            self.archive.set_meta("elapsed_s", self.usage().elapsed_s)
            self.progress.update(self.snapshot())
            self.progress.stop()
        return self.stop_reason or INTERRUPTED

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.create_task(coro)
        task.add_done_callback(self._reap)
        return task

    def _reap(self, task: asyncio.Task) -> None:
        """A bug in the loop's own code (or a full disk) ends the run loudly instead of stalling it."""
        if task.cancelled() or task.exception() is None:
            return
        if self._crash is None:
            self._crash = task.exception()
        self.request_stop(f"internal error: {type(self._crash).__name__}: {self._crash}", hard=True)

    # -- producer: mutations ----------------------------------------------------------------------
    async def _produce(self) -> None:
        while self.stop_reason is None:
            self._changed.clear()
            if not self.archive.selector.evaluated:  # nothing evaluated yet: the seed goes first
                if self._outstanding == 0:
                    self.request_stop(self._no_seed_reason())
                    return
                await self._changed.wait()
                continue
            usage = self.usage()
            if not may_propose(self.budgets, usage, self._outstanding):
                if self._outstanding == 0:
                    self.request_stop(exhausted(self.budgets, usage) or "budget reached")
                    return
                await self._changed.wait()
                continue
            if self._slots_used >= self.concurrency or self._stalled():
                await self._changed.wait()
                continue
            self._slots_used += 1
            self._outstanding += 1
            self._mutating += 1
            t = self._spawn(self._mutate())
            self._mutations.add(t)
            t.add_done_callback(self._mutations.discard)
            await asyncio.sleep(0)  # let the new mutation start before the next selection

    def _no_seed_reason(self) -> str:
        last = next((e.result for e in reversed(list(self.archive.all())) if e.result is not None), None)
        detail = f": {last.message.splitlines()[0]}" if last is not None and last.message else ""
        return f"could not evaluate the seed candidate (harness error{detail})"

    async def _mutate(self) -> None:
        handed = False
        try:
            t0 = time.perf_counter()
            pick = self.archive.select(self.rng, self.inspirations)
            parent = pick.parent
            self._last_mode = pick.mode
            request = MutationRequest(
                task=self.task, parent=parent, inspirations=pick.inspirations, backend=self.backend,
                hints=self._hints or "", language=self.language,
                notes=list(self.archive.last_notes.get(parent.candidate.id, [])),
            )
            self.engine_s += time.perf_counter() - t0
            try:
                outcome = await self.mutator.propose(request)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # a mutator must not raise; if one does, it is a failed attempt, not a crash
                outcome = MutationOutcome(mutation=Mutation(mutator=self.mutator_name),
                                          error=f"mutator raised {type(e).__name__}: {e}")
            t1 = time.perf_counter()
            child, error = outcome.candidate, outcome.error
            if child is None and not error:
                error = "the mutator returned no candidate"
            if child is not None:
                # a mutator may name another parent than the sampled one (a tuner edits the best config)
                named = self.archive.get(child.parent_ids[0]) if child.parent_ids else None
                child = child.model_copy(update={
                    "parent_ids": child.parent_ids or [parent.candidate.id],
                    "mutation": child.mutation or outcome.mutation,
                    "generation": (named or parent).candidate.generation + 1,
                    "island": pick.island,
                    "language": parent.candidate.language,
                })
                dup = self.archive.find_duplicate(child)
                if dup is not None:  # the same program again: record the attempt, never re-evaluate
                    error, child = f"duplicate of {dup.candidate.id}", None
            context = {
                "task": self.task.name, "parent_id": parent.candidate.id, "mode": pick.mode, "island": pick.island,
                "feedback": parent.result.feedback() if parent.result else "",
                "inspirations": [s.candidate.id for s in pick.inspirations], "notes": request.notes,
            }
            self.archive.propose(child, parent.candidate.id, outcome.mutation, context, error)
            self.session_attempts += 1
            self.last_error = error if child is None else self.last_error
            if outcome.fatal and child is None:  # no later proposal can succeed either: propose no more, say why
                self.error = self.error or error  # (evaluations already under way finish: they need no mutator)
                self.request_stop(f"mutator error: {error}")
            elif child is None:
                self._failures_in_row += 1
                self._fail_verdicts = self._verdicts
                if self._failures_in_row in (3, 10, 25):  # no silent stretch while proposals keep failing
                    self.progress.message(f"{self._failures_in_row} proposals in a row made no candidate (last: "
                                          f"{str(error)[:300]})")
                if self._failures_in_row >= self.max_failures_in_row:
                    why = "; the search space may be exhausted" if str(error).startswith("duplicate of ") else ""
                    self.request_stop(f"{self._failures_in_row} failed or duplicate proposals in a row "
                                      f"(last: {error}){why}")
            else:
                self._failures_in_row = 0
                self.session_children += 1
                self._slot_ids.add(child.id)
                self._queue.put_nowait(child)
                handed = True
            self.engine_s += time.perf_counter() - t1
            self._check()
        finally:
            self._mutating -= 1
            if not handed:
                self._outstanding -= 1
                self._slots_used -= 1
            self._poke()

    # -- consumers: evaluations -------------------------------------------------------------------
    async def _evaluate_forever(self) -> None:
        while True:
            cand = await self._queue.get()
            if cand.id in self._slot_ids:  # a child leaves the mutation window once a worker takes it
                self._slot_ids.discard(cand.id)
                self._slots_used -= 1
                self._poke()
            if self.stop_reason is not None or self._over_candidates():  # stays pending; a resume evaluates it
                self._outstanding -= 1
                self._maybe_done()
                continue
            self._evaluating += 1
            t0 = time.perf_counter()
            try:
                result = await self.evaluator.evaluate(self._raced(), cand)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # the evaluator itself broke (service down...): a harness verdict
                result = EvalResult(candidate_id=cand.id, task=self.task.name, backend=self.backend,
                                    status=Status.INFRA_ERROR, error_kind=ErrorKind.INFRA,
                                    message=f"evaluator error: {type(e).__name__}: {e}")
            finally:
                self._evaluating -= 1
            t1 = time.perf_counter()
            self.eval_busy_s += t1 - t0
            self.archive.add(cand, result)
            self._outstanding -= 1
            self.session_evaluated += 1
            self._verdicts += 1
            self._after_verdict(cand, result)
            self.engine_s += time.perf_counter() - t1
            self._check()
            self._maybe_done()
            self._poke()

    def _raced(self) -> Task:
        """The task as the search evaluates it: with racing on, timed only until the candidate is clearly slower than
        the best speedup so far (TimingSettings.race_below; a task that sets its own mark keeps it)."""
        best = self.archive.selector.best
        speedup = best.result.speedup if best is not None and best.result is not None else None
        if not self.race or not speedup or not math.isfinite(speedup) or self.task.timing.race_below is not None:
            return self.task
        return self.task.model_copy(update={"timing": self.task.timing.model_copy(update={"race_below": speedup})})

    def _after_verdict(self, cand: Candidate, result: EvalResult) -> None:
        if result.status == Status.INFRA_ERROR:
            self._infra_in_row += 1
            if self._infra_in_row >= self.max_infra_in_row:
                self.request_stop(f"{self._infra_in_row} harness errors in a row (last: "
                                  f"{result.message.splitlines()[0] if result.message else 'no message'})")
            return
        self._infra_in_row = 0
        self.progress.update(self.snapshot())

    # -- bookkeeping ------------------------------------------------------------------------------
    def _check(self) -> None:
        if self.stop_reason is not None:
            return
        reason = exhausted(self.budgets, self.usage())
        if reason is None:
            return
        if reason.startswith("max candidates") and self._evaluating:
            return  # evaluations in flight were allowed by the budget; let them land
        self.request_stop(reason, hard=reason.startswith("max wall time"))

    def _stalled(self) -> bool:
        """A round of failed or duplicate proposals with no verdict since: wait for news before asking again
        (an instant mutator would otherwise spin on the same parents while their children are evaluated)."""
        waiting = self._queue.qsize() + self._evaluating
        return (self._failures_in_row >= self.concurrency and self._fail_verdicts == self._verdicts
                and waiting > 0)

    def _over_candidates(self) -> bool:
        cap = self.budgets.max_candidates
        return cap is not None and self.archive.selector.evaluated + self._evaluating >= cap

    def _maybe_done(self) -> None:
        if self.stop_reason is not None and (self._hard or self._evaluating == 0):
            self._done.set()

    def _poke(self) -> None:
        changed = getattr(self, "_changed", None)
        if changed is not None:
            changed.set()
        if getattr(self, "_done", None) is not None:
            self._maybe_done()

    async def _tick(self) -> None:
        """Wall-clock budget, progress refresh and the persisted run time (so a killed run keeps it)."""
        n = 0
        while True:
            await asyncio.sleep(0.5)
            n += 1
            self._check()
            self.progress.update(self.snapshot())
            if n % 4 == 0:
                self.archive.set_meta("elapsed_s", self.usage().elapsed_s)

    def snapshot(self) -> Snapshot:
        u = self.usage()
        best = self.archive.selector.best
        return Snapshot(
            task=self.task.name, backend=self.backend, mutator=self.mutator_name, evaluated=u.evaluated,
            valid=u.valid, attempts=self.archive.attempt_count, failed_attempts=self.archive.failed_attempts,
            best_speedup=u.best_speedup, best_id=best.candidate.id if best else "", elapsed_s=u.elapsed_s,
            session_s=time.monotonic() - self._t0, session_evaluated=self.session_evaluated, cost_usd=u.cost_usd,
            device_s=u.device_s, mutating=self._mutating, evaluating=self._evaluating, queued=self._queue.qsize(),
            mode=self._last_mode,
            limit=f"/{self.budgets.max_candidates}" if self.budgets.max_candidates else "",
        )
