"""The tests every Backend must pass, run through the real LocalEvaluator (worker processes and all)."""

from __future__ import annotations

import asyncio
import json
import math
import time
from dataclasses import dataclass, field

import pytest

from ksdk.models import Availability, Candidate, ErrorKind, EvalResult, Stage, Status, Task
from ksdk.tasks import task_from_source

REPORTED_BAND = 10.0  # a Runner's own timing within this factor of the judge's clock


@dataclass
class Case:
    """A task and a candidate for it; `settings` override Task fields (tolerances, trials, timing...)."""

    task_source: str
    candidate_source: str
    settings: dict = field(default_factory=dict)
    name: str = "conformance"

    def task(self) -> Task:
        return task_from_source(self.name, self.task_source, **self.settings)


class BackendConformance:
    """Mixin of pytest tests. Set `backend` and implement `cases()`; keys used:

    - "good": correct candidate (must pass correctness; timed where the device allows)
    - "slow": correct too, but clearly slower than "good" (at least 1.5x): the kit checks that timing orders them
    - "broken_load": fails at the load stage (syntax error, missing entry point)
    - "broken_compile": fails at the compile stage (optional: omit if the language has no separate compile)
    - "wrong": compiles and runs but computes the wrong values
    """

    backend: str = ""
    evaluator_kwargs: dict = {}

    def cases(self) -> dict[str, Case]:
        raise NotImplementedError("return the conformance cases for your backend (see BackendConformance)")

    # -- helpers ---------------------------------------------------------------------------------
    _results: dict = {}

    def _evaluate(self, key: str) -> EvalResult:
        cache = type(self)._results.setdefault(type(self).__name__, {})
        if key not in cache:
            case = self.cases().get(key)
            if case is None:
                pytest.skip(f"{type(self).__name__} defines no '{key}' case")
            cache[key] = self._run(case.task(), case.candidate_source)
        return cache[key]

    def _run(self, task: Task, source: str) -> EvalResult:
        from ksdk.evaluation.local import LocalEvaluator

        async def go():
            ev = LocalEvaluator(self.backend, cache=False, **self.evaluator_kwargs)
            try:
                return await ev.evaluate(task, Candidate(source=source, language=ev.language))
            finally:
                await ev.close()

        return asyncio.run(go())

    def _availability(self) -> Availability:
        from ksdk.registry import load_backend

        return load_backend(self.backend).probe()

    # -- the contract ----------------------------------------------------------------------------
    def test_registered_through_entry_point(self):
        from ksdk.interfaces.backend import Backend
        from ksdk.registry import load_backend

        cls = load_backend(self.backend)
        assert issubclass(cls, Backend)
        assert cls.name == self.backend, f"{cls.__name__}.name is {cls.name!r}, its entry point {self.backend!r}"
        assert cls.language, f"{cls.__name__}.language must name the candidate language"

    def test_probe_is_cheap_and_explains_itself(self):
        t0 = time.perf_counter()
        a = self._availability()
        elapsed = time.perf_counter() - t0
        assert isinstance(a, Availability)
        assert elapsed < 5.0, f"probe() took {elapsed:.1f} s: it must stay cheap (no heavy imports)"
        if not a.available:
            assert a.reason, "an unavailable backend must say why"
            assert a.fix, "an unavailable backend must say how to fix it"
        else:
            assert a.devices, "an available backend must list its devices"
        Availability.model_validate_json(a.model_dump_json())

    def _require_usable(self):
        a = self._availability()
        if not a.usable:
            pytest.skip(f"{self.backend} unavailable here: {a.reason}")
        return a

    def test_good_candidate_is_correct(self):
        self._require_usable()
        r = self._evaluate("good")
        assert r.status == Status.OK, f"good candidate failed: {r.error_kind} {r.message}"
        assert r.correct
        assert r.outputs and all(o.ok for o in r.outputs)
        assert r.backend == self.backend
        assert r.device.name

    def test_good_candidate_timed_or_says_why_not(self):
        a = self._require_usable()
        r = self._evaluate("good")
        if a.available:  # on a device, timing is not optional: no excuse is accepted
            assert r.status == Status.OK, f"the good candidate failed: {r.error_kind} {r.message}"
            assert r.performance_skipped is None, f"an available backend skipped timing: {r.performance_skipped}"
            assert r.stage == Stage.PERFORMANCE, (r.stage, r.error_kind, r.message)
            for t in (r.candidate_timing, r.baseline_timing):
                assert t is not None
                assert t.median_ms > 0 and math.isfinite(t.median_ms) and t.n >= 3
            assert r.speedup is not None and r.speedup > 0 and math.isfinite(r.speedup)
            assert r.baseline, "a timed result must say what its baseline is"
        else:
            assert r.performance_skipped, "an untimed result must say why timing was skipped"
            assert r.speedup is None, "no speedup may be reported without device timing"

    def _timed(self, key: str, reported: bool = False) -> EvalResult:
        a = self._require_usable()
        if not a.available:
            pytest.skip(f"{self.backend} has no device here: timing is not checked")
        if reported:  # the same case, with the Runner asked to time itself as well (a record beside the judge's)
            cache = type(self)._results.setdefault(type(self).__name__, {})
            if "reported:" + key not in cache:
                case = self.cases().get(key)
                if case is None:
                    pytest.skip(f"{type(self).__name__} defines no '{key}' case")
                task = case.task()
                task = task.model_copy(update={"timing": task.timing.model_copy(update={"cross_check_reported": True})})
                cache["reported:" + key] = self._run(task, case.candidate_source)
            r = cache["reported:" + key]
        else:
            r = self._evaluate(key)
        assert r.status == Status.OK and r.stage == Stage.PERFORMANCE, (key, r.stage, r.error_kind, r.message)
        return r

    def test_reported_times_agree_with_the_judges_clock(self):
        """The speedup is the judge's own measurement (or, for backends whose candidates are device code only, the
        Runner's device timing); a Runner's own timing (Runner.time) must be of the same order as the judge's clock:
        a timer that reports a constant, or nothing real, is off by orders of magnitude. The band is 10x: the judge
        times cold caches over a ring of input sets, a Runner usually one warm set (a 1.4 us C kernel: 2.2x apart on
        a quiet 2-core machine, 3.5x on a busy one, 5.1x once in a CI run)."""
        r = self._timed("good", reported=True)
        failed = [w for w in r.warnings if "own timing failed" in w]
        assert not failed, f"the backend does not time: {failed[0]}"
        mine = r.cross_checks.get("reported:candidate")
        if mine is None and "Runner" in (r.candidate_timing.method or ""):
            return  # device code only: the Runner's timing is the measurement (the slower-candidate test checks it)
        assert mine is not None, "the backend's Runner reported no timing"
        judge = r.candidate_timing.median_ms
        assert judge / REPORTED_BAND <= mine.median_ms <= REPORTED_BAND * judge, (
            f"the backend's timer is off: its Runner reported {mine.median_ms:.4g} ms per call where the judge's "
            f"clock measured {judge:.4g} ms")

    def test_a_slower_candidate_is_timed_slower(self):
        """Timing must order candidates by speed: 'slow' must come out clearly slower than 'good'."""
        good, slow = self._timed("good"), self._timed("slow")
        assert good.candidate_timing.median_ms > 0 and slow.candidate_timing.median_ms > 0
        assert slow.candidate_timing.median_ms > 1.2 * good.candidate_timing.median_ms, (
            f"'good' timed at {good.candidate_timing.median_ms:.4g} ms, 'slow' at "
            f"{slow.candidate_timing.median_ms:.4g} ms: the backend's timing does not tell them apart")

    def test_broken_load_rejected_at_load(self):
        self._require_usable()
        r = self._evaluate("broken_load")
        assert r.status == Status.FAILED and r.stage == Stage.LOAD, (r.stage, r.error_kind, r.message)
        assert r.error_kind in {ErrorKind.SYNTAX, ErrorKind.IMPORT, ErrorKind.MISSING_ENTRY}
        assert r.message

    def test_broken_compile_rejected_at_compile(self):
        self._require_usable()
        r = self._evaluate("broken_compile")
        assert r.status == Status.FAILED and r.stage == Stage.COMPILE, (r.stage, r.error_kind, r.message)
        assert r.error_kind == ErrorKind.COMPILE
        assert r.message

    def test_wrong_candidate_fails_correctness(self):
        self._require_usable()
        r = self._evaluate("wrong")
        assert r.status == Status.FAILED and r.stage == Stage.CORRECTNESS, (r.stage, r.error_kind, r.message)
        assert r.error_kind in {ErrorKind.VALUE, ErrorKind.SHAPE, ErrorKind.DTYPE, ErrorKind.NAN_INF}
        assert any(not o.ok for o in r.outputs)
        assert "correctness" in r.feedback()

    def test_results_round_trip_json(self):
        self._require_usable()
        r = self._evaluate("good")
        again = EvalResult.model_validate_json(r.model_dump_json())
        assert again == r
        json.loads(r.model_dump_json())
