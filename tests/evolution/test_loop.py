"""The loop: the seed first, every budget stops the run, duplicates are never re-evaluated, failures are data."""

import asyncio
import sqlite3

import pytest

from ksdk.evolution.api import evolve
from ksdk.interfaces.mutator import MutationOutcome, Mutator
from ksdk.models import Candidate, Mutation, Task
from toy_plugins import InProcessToyEvaluator, StepMutator

TASK = Task(name="toy", source="")


def seed(x=1, sleep=0.0):
    return Candidate(source=f"X = {x}\nSLEEP = {sleep}\n", language="toy")


def run(tmp_path, mutator=None, evaluator=None, s=None, **kw):
    evaluator = evaluator or InProcessToyEvaluator(workers=kw.pop("workers", 1))
    kw.setdefault("retime_rounds", 0)  # the loop's own calls only (tests/evolution/test_verified_best.py re-times)
    summary = evolve(TASK, backend=evaluator, mutator=mutator or StepMutator(), seed=s or seed(),
                     out=tmp_path / "run", progress=False, handle_signals=False, **kw)
    return summary, evaluator


def rows(tmp_path, sql):
    db = sqlite3.connect(tmp_path / "run" / "archive.sqlite")
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def test_max_candidates_counts_the_seed_which_is_evaluated_before_any_mutation(tmp_path):
    summary, ev = run(tmp_path, max_candidates=5)
    assert summary.evaluated == 5 and "max candidates" in summary.stop_reason and not summary.interrupted
    assert summary.best_speedup == 5.0  # X = 1..5
    (seed_done,), = rows(tmp_path, "SELECT min(evaluated_at) FROM results")
    (first_attempt,), = rows(tmp_path, "SELECT min(created_at) FROM attempts")
    assert seed_done <= first_attempt
    assert rows(tmp_path, "SELECT count(*) FROM results")[0][0] == 5
    assert len(ev.calls) == len(set(ev.calls)) == 5


def test_target_speedup_stops_the_run(tmp_path):
    summary, _ = run(tmp_path, max_candidates=50, target_speedup=4.0)
    assert "target speedup" in summary.stop_reason and summary.best_speedup >= 4.0
    assert summary.evaluated < 10


def test_max_cost_stops_the_run(tmp_path):
    summary, _ = run(tmp_path, mutator=StepMutator(cost_per_call=0.1), max_candidates=50, max_cost=0.35)
    assert "max cost" in summary.stop_reason
    assert 0.35 <= summary.cost_usd <= 0.35 + 0.1 * 2  # the calls already in flight may land
    (spent,), = rows(tmp_path, "SELECT sum(json_extract(mutation, '$.cost_usd')) FROM attempts")
    assert spent == pytest.approx(summary.cost_usd)


def test_max_gpu_seconds_stops_the_run(tmp_path):
    summary, _ = run(tmp_path, s=seed(sleep=0.05), max_candidates=50, max_gpu_seconds=0.2)
    assert "GPU-seconds" in summary.stop_reason
    # one worker, 0.05 device-s each (the toy's nominal time): the budget is reached at the 4th verdict
    assert summary.device_s == pytest.approx(0.2) and summary.evaluated == 4


def test_max_minutes_stops_the_run_and_cancels_slow_evaluations(tmp_path):
    summary, _ = run(tmp_path, s=seed(sleep=0.3), max_candidates=1000, max_minutes=0.01)
    # 1000 candidates of 0.3 s would take 300 s: stopping within 30 s proves the budget, whatever the machine's load
    assert "wall time" in summary.stop_reason and 0.6 <= summary.session_s < 30
    (pending,), = rows(tmp_path, "SELECT count(*) FROM candidates WHERE id NOT IN (SELECT candidate_id FROM results)")
    assert pending <= 1  # the evaluation cut short stays pending for a resume


class SameChild(Mutator):
    """Always proposes the same program and says one edit block did not apply."""

    name = "same"

    def __init__(self):
        self.notes_seen = []

    async def propose(self, request):
        self.notes_seen.append(list(request.notes))
        m = Mutation(mutator="same", notes=["SEARCH block 2 did not match the parent"])
        return MutationOutcome(candidate=Candidate(source="X = 2\n", language="toy"), mutation=m)


def test_duplicates_are_recorded_not_reevaluated_and_unapplied_edits_reach_the_next_prompt(tmp_path):
    mut = SameChild()
    summary, ev = run(tmp_path, mutator=mut, max_candidates=20)
    assert len(ev.calls) == 2  # the seed and X = 2, once
    assert summary.evaluated == 2 and "in a row" in summary.stop_reason
    dups = rows(tmp_path, "SELECT count(*) FROM attempts WHERE error LIKE 'duplicate of%' AND candidate_id IS NULL")
    assert dups[0][0] >= 10
    assert mut.notes_seen[0] == [] and ["SEARCH block 2 did not match the parent"] in mut.notes_seen[1:]


class Flaky(Mutator):
    """Raises, replies with garbage, or proposes X + 1, in turn."""

    name = "flaky"

    def __init__(self):
        self.n = 0

    async def propose(self, request):
        self.n += 1
        if self.n % 3 == 1:
            raise RuntimeError("provider exploded")
        if self.n % 3 == 2:
            return MutationOutcome(mutation=Mutation(mutator="flaky", reply="no code here"), error="malformed reply")
        return await StepMutator().propose(request)


def test_failed_mutations_are_recorded_attempts_and_the_run_goes_on(tmp_path):
    summary, _ = run(tmp_path, mutator=Flaky(), max_candidates=4)
    assert summary.evaluated == 4
    errors = [e for (e,) in rows(tmp_path, "SELECT error FROM attempts WHERE error IS NOT NULL")]
    assert any("provider exploded" in e for e in errors) and "malformed reply" in errors
    (ctx,), = rows(tmp_path, "SELECT context FROM attempts WHERE error = 'malformed reply' LIMIT 1")
    assert '"parent_id"' in ctx and '"feedback"' in ctx


class Slow(StepMutator):
    def __init__(self):
        super().__init__(latency_s=0.15)
        self.in_flight = self.max_in_flight = 0

    async def propose(self, request):
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await super().propose(request)
        finally:
            self.in_flight -= 1


class Spread(Slow):
    """X + k for a random k, so concurrent proposals from one parent differ."""

    async def propose(self, request):
        out = await super().propose(request)
        import random

        k = random.Random(request.parent.candidate.id + str(self.max_in_flight) + str(id(out))).randint(1, 10 ** 6)
        out.candidate.source = out.candidate.source.replace("X = ", f"Y = {k}\nX = ", 1)
        return out


def test_mutations_overlap_evaluations_up_to_the_configured_concurrency(tmp_path):
    mut = Spread()
    summary, ev = run(tmp_path, mutator=mut, s=seed(sleep=0.05), workers=2, mutation_concurrency=4,
                      max_candidates=14)
    assert summary.evaluated == 14
    assert mut.max_in_flight == 4 and ev.max_in_flight == 2


def test_new_run_refuses_a_used_folder(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "notes.txt").write_text("mine")
    from ksdk.errors import RunDirError

    with pytest.raises(RunDirError, match="not empty"):
        run(tmp_path, max_candidates=2)
    assert (tmp_path / "run" / "notes.txt").read_text() == "mine"


def test_report_files_exist_and_the_html_is_self_contained(tmp_path):
    summary, _ = run(tmp_path, max_candidates=6)
    d = tmp_path / "run"
    assert summary.files["best"].endswith("best.toy") and (d / "best.toy").read_text().startswith("X = 6")
    png = (d / "progress.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 2000
    page = (d / "report.html").read_text()
    assert "data:image/png;base64," in page and page.count("<details") == 6
    for external in ("src='http", 'src="http', "href=", "<script src", "<link", "@import", "url("):
        assert external not in page
    assert "6.000x" in page and "best path" in page


class BrokenHarness(InProcessToyEvaluator):
    async def evaluate(self, task, candidate):
        from ksdk.models import ErrorKind, EvalResult, Status

        self.calls.append(candidate.id)
        return EvalResult(status=Status.INFRA_ERROR, error_kind=ErrorKind.INFRA,
                          message="worker failed to start: no cc")


def test_a_seed_the_harness_cannot_evaluate_stops_the_run_with_the_reason_and_stays_pending(tmp_path):
    summary, ev = run(tmp_path, evaluator=BrokenHarness(), max_candidates=5)
    assert "could not evaluate the seed" in summary.stop_reason and "no cc" in summary.stop_reason
    assert len(ev.calls) == 1 and summary.evaluated == 0
    from ksdk.archives.sqlite import SqliteArchive

    a = SqliteArchive(tmp_path / "run" / "archive.sqlite")
    assert len(a.pending()) == 1  # a resume tries it again
    a.close()


def test_progress_renders_live_and_as_lines():
    import io

    from ksdk.evolution.progress import Progress, Snapshot

    snap = Snapshot(task="t", backend="b", mutator="m", evaluated=4, valid=3, best_speedup=2.5, best_id="abc",
                    session_s=10, session_evaluated=4, limit="/10")
    live_out = io.StringIO()
    p = Progress(stream=live_out, live=True)
    p.start(snap)
    p.update(snap)
    p.stop()
    assert "2.500x" in live_out.getvalue() and "1440 evaluations/hour" in live_out.getvalue()
    lines = io.StringIO()
    p = Progress(stream=lines)  # a StringIO is not a terminal: plain lines
    p.start(snap)
    p.update(snap)
    p.update(snap)  # nothing new: no second line
    p.stop()
    text = lines.getvalue()
    assert text.count("candidates 4/10 | valid 75% | best 2.500x") == 1 and "\x1b[" not in text


@pytest.mark.parametrize("bad", [dict(max_candidates=0), dict(max_minutes=-1.0), dict(max_cost=-0.5)])
def test_a_bad_budget_from_the_api_is_a_budget_error_and_creates_nothing(tmp_path, bad):
    from ksdk.errors import BudgetError

    with pytest.raises(BudgetError, match=next(iter(bad))):
        run(tmp_path, **bad)
    assert not (tmp_path / "run").exists()


class CtrlCTwice(InProcessToyEvaluator):
    """Presses Ctrl-C during the second evaluation, and again while that evaluation is being cancelled."""

    async def evaluate(self, task, candidate):
        import os
        import signal

        if not self.calls:
            return await super().evaluate(task, candidate)
        self.calls.append(candidate.id)
        os.kill(os.getpid(), signal.SIGINT)
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            os.kill(os.getpid(), signal.SIGINT)  # the second press arrives while the run winds down
            for _ in range(20):  # let the loop read its signal pipe
                await asyncio.sleep(0)
            raise


def test_a_second_ctrl_c_is_a_keyboard_interrupt_not_a_cancelled_error(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        evolve(TASK, backend=CtrlCTwice(), mutator=StepMutator(), seed=seed(), out=tmp_path / "run",
               progress=False, handle_signals=True, max_candidates=10)
    assert rows(tmp_path, "SELECT count(*) FROM results")[0][0] == 1  # the seed's verdict is stored


class FromSeed(Mutator):
    """Like a tuner editing the best known program: each child names the seed as its parent, whatever was sampled."""

    name = "from_seed"

    def __init__(self):
        self.seed_id, self.n, self.sampled = None, 1, []

    async def propose(self, request):
        self.seed_id = self.seed_id or request.parent.candidate.id
        self.sampled.append(request.parent.candidate.id)
        self.n += 1
        return MutationOutcome(candidate=Candidate(source=f"X = {self.n}\n", language="toy", parent_ids=[self.seed_id]),
                               mutation=Mutation(mutator="from_seed"))


def test_a_child_generation_follows_the_parent_it_names_not_the_sampled_one(tmp_path):
    from ksdk.archives.sqlite import SqliteArchive

    mut = FromSeed()
    run(tmp_path, mutator=mut, max_candidates=8)
    assert any(p != mut.seed_id for p in mut.sampled)  # the loop did sample other parents
    archive = SqliteArchive(tmp_path / "run" / "archive.sqlite")
    try:
        children = [e.candidate for e in archive.all() if e.candidate.parent_ids]
        assert children and all(c.parent_ids == [mut.seed_id] and c.generation == 1 for c in children)
    finally:
        archive.close()


@pytest.mark.parametrize("bad", [dict(mutation_concurrency=0), dict(workers=-1)])
def test_a_bad_run_setting_from_the_api_is_a_ksdk_error_and_creates_nothing(tmp_path, bad):
    from ksdk.errors import KsdkError

    with pytest.raises(KsdkError, match=next(iter(bad))):
        evolve(TASK, backend=InProcessToyEvaluator(), mutator=StepMutator(), seed=seed(), out=tmp_path / "run",
               progress=False, handle_signals=False, max_candidates=3, **bad)
    assert not (tmp_path / "run").exists()


class Held(InProcessToyEvaluator):
    """Holds the second evaluation until released (so a run stays in progress while the test acts)."""

    def __init__(self):
        super().__init__()
        self.started, self.release = asyncio.Event(), asyncio.Event()

    async def evaluate(self, task, candidate):
        if self.calls:
            self.started.set()
            await self.release.wait()
        return await super().evaluate(task, candidate)


def test_a_run_in_progress_cannot_be_driven_by_a_second_session(tmp_path, toy_site):
    from ksdk.errors import RunDirError
    from ksdk.evolution.api import evolve_async, resume_async

    task = Task(name="toy", source="class Model:\n    pass\ndef get_inputs():\n    return []\n"
                                   "def get_init_inputs():\n    return []\n")

    out = tmp_path / "run"
    before = {}

    async def scenario():
        ev = Held()
        first = asyncio.create_task(evolve_async(task, backend=ev, mutator=StepMutator(), seed=seed(), out=out,
                                                 progress=False, handle_signals=False, max_candidates=3))
        await ev.started.wait()
        before["run.json"] = (out / "run.json").read_text()
        with pytest.raises(RunDirError, match="in use"):
            await resume_async(out, progress=False, handle_signals=False)
        assert (out / "run.json").read_text() == before["run.json"]  # the second session changed nothing
        ev.release.set()
        return await first

    summary = asyncio.run(scenario())
    assert summary.evaluated == 3 and "max candidates" in summary.stop_reason
    assert len({r[0] for r in rows(tmp_path, "SELECT candidate_id FROM results")}) == 3


def test_a_cancelled_session_records_that_it_was_interrupted(tmp_path):
    """Several sub-runs under one Ctrl-C are cancelled, not asked to stop: each run directory still says why."""
    from ksdk.evolution.api import RunConfig, evolve_async

    async def go():
        session = asyncio.ensure_future(evolve_async(
            TASK, backend=InProcessToyEvaluator(workers=1), mutator=StepMutator(), seed=seed(sleep=0.05),
            out=tmp_path / "run", max_candidates=1000, progress=False, handle_signals=False))
        while not (tmp_path / "run" / "archive.sqlite").exists() or not rows(tmp_path, "SELECT 1 FROM results"):
            await asyncio.sleep(0.02)
        session.cancel()
        with pytest.raises(asyncio.CancelledError):
            await session

    asyncio.run(go())
    config = RunConfig.load(tmp_path / "run")
    assert config.stop_reason == "interrupted" and config.finished is False


class FailsForGood(Mutator):
    """One good child (slow to evaluate), then an error no retry can mend, as a rejected API key is."""

    name = "fails_for_good"

    def __init__(self):
        self.calls = 0

    async def propose(self, request):
        self.calls += 1
        if self.calls == 1:
            return MutationOutcome(candidate=Candidate(source="X = 2\nSLEEP = 0.3\n"), mutation=Mutation(mutator="f"))
        return MutationOutcome(mutation=Mutation(mutator="f"), fatal=True,
                               error="llm mutator: the key was rejected: pass --api-key")


def test_a_fatal_mutator_error_ends_the_run_with_it_and_lets_evaluations_under_way_finish(tmp_path):
    mutator = FailsForGood()
    # one mutation at a time: the second starts once a worker took the first one's child
    summary, ev = run(tmp_path, mutator=mutator, max_candidates=50, mutation_concurrency=1)
    assert mutator.calls == 2 and summary.error == "llm mutator: the key was rejected: pass --api-key"
    assert summary.stop_reason == "mutator error: llm mutator: the key was rejected: pass --api-key"
    assert summary.evaluated == 2 and summary.best_speedup == 2.0  # the child in flight was still judged


def test_a_run_in_which_no_mutation_succeeded_has_an_error(tmp_path):
    class Prose(Mutator):
        async def propose(self, request):
            return MutationOutcome(mutation=Mutation(mutator="prose"), error="the reply holds no program")

    summary, _ = run(tmp_path, mutator=Prose(), max_candidates=5)
    assert summary.evaluated == 1 and summary.attempts == 50
    assert summary.error == "no mutation succeeded in 50 attempt(s) (last: the reply holds no program)"
