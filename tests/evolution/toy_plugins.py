"""Test doubles for the evolution tests, registered through entry points like any plugin.

ToySpeedBackend: a "program" is a few `NAME = value` lines; its speedup is a known function of them, and
it sleeps SLEEP seconds to stand in for device work. StepMutator: proposes X + 1 (no LLM), optionally
charging a fixed cost and waiting a fixed latency per call.
"""

import asyncio
import re
import time

from ksdk.interfaces.backend import Backend, CallReport, CandidateError, Runner
from ksdk.interfaces.evaluator import Evaluator
from ksdk.interfaces.mutator import MutationOutcome, Mutator
from ksdk.languages import Language
from ksdk.models import (Availability, Candidate, DeviceInfo, ErrorKind, EvalResult, EvaluatorInfo, Mutation, Stage,
                         Status, TimingStats)

_VAL = re.compile(r"^(\w+)\s*=\s*([-\d.]+)", re.M)


def values(source):
    return {k: float(v) for k, v in _VAL.findall(source)}


def _stats(ms):
    return TimingStats(median_ms=ms, iqr_ms=0.0, mean_ms=ms, std_ms=0.0, min_ms=ms, max_ms=ms, n=3, method="toy")


BASE_MS = 10.0


def toy_result(candidate):
    """The verdict the toy backend's programs get: BROKEN fails to compile, negative X computes wrong values,
    otherwise the speedup is min(X, CAP) (at least 1)."""
    v = values(candidate.source)
    time.sleep(v.get("SLEEP", 0.0))
    r = EvalResult(backend="toy_speed", stage=Stage.COMPILE)
    if "BROKEN" in candidate.source:
        return r.fail(Stage.COMPILE, ErrorKind.COMPILE, "BROKEN is not a valid statement", line=1)
    if v.get("X", 0) < 0:
        return r.fail(Stage.CORRECTNESS, ErrorKind.VALUE, "negative X computes the wrong values")
    cand = _ms(v)
    r.stage, r.status = Stage.PERFORMANCE, Status.OK
    r.candidate_timing, r.baseline_timing, r.baseline = _stats(cand), _stats(BASE_MS), "toy reference"
    r.speedup = BASE_MS / cand
    return r


def _ms(v):
    return BASE_MS / max(1.0, min(v.get("X", 1.0), v.get("CAP", 1e9)))


class ToySpeedRunner(Runner):
    """The toy task is the identity; a program's claimed time is BASE_MS / min(X, CAP), its baseline's BASE_MS."""

    def load(self, source):
        self.v = values(source)
        self.broken = "BROKEN" in source

    def build(self):
        time.sleep(self.v.get("SLEEP", 0.0))
        if self.broken:
            raise CandidateError(ErrorKind.COMPILE, "BROKEN is not a valid statement", 1)
        return []

    def call(self, inputs, outputs, record_ops=False):
        outputs[0][...] = inputs[0] if self.v.get("X", 0) >= 0 else inputs[0] + 5
        return CallReport(outputs=[(list(outputs[0].shape), str(outputs[0].dtype))])

    def time(self, inputs, outputs, settings, share, warmup, turn=0):
        return [_ms(self.v)] * 3, self.call(inputs, outputs)


class ToySpeedBackend(Backend):
    name = "toy_speed"
    host_code = False  # its Runner stands for a device whose timing is the backend's own (claimed times, exact)
    language = Language(name="toy", extensions=(".toy",), line_comments=("#",))

    @classmethod
    def probe(cls):
        return Availability(name="toy_speed", available=True, devices=[DeviceInfo(index=0, name="toy-device")])

    def hints(self):
        return "toy programs: raise X, keep BROKEN out"

    def runner(self, ctx):
        return ToySpeedRunner()

    def baseline_source(self, task_source):
        return "toy reference", "X = 1\n"


class StepMutator(Mutator):
    name = "toy_step"

    def __init__(self, cost_per_call=0.0, latency_s=0.0, seed=0):
        self._cost, self._latency, self._spent = float(cost_per_call), float(latency_s), 0.0

    @property
    def cost_usd(self):
        return self._spent

    async def propose(self, request):
        if self._latency:
            await asyncio.sleep(self._latency)
        self._spent += self._cost
        src = request.parent.candidate.source
        x = values(src).get("X", 1.0)
        new = re.sub(r"^X\s*=.*$", f"X = {int(x) + 1}", src, flags=re.M)
        m = Mutation(mutator="toy_step", params={"X": int(x) + 1}, cost_usd=self._cost)
        return MutationOutcome(candidate=Candidate(source=new, language=request.language), mutation=m)



class InProcessToyEvaluator(Evaluator):
    """Runs ToySpeedBackend in this process (no worker processes), for fast loop tests; counts concurrency."""

    def __init__(self, workers=1):
        self._workers, self.calls, self.in_flight, self.max_in_flight = workers, [], 0, 0
        self.backend = ToySpeedBackend()

    @property
    def workers(self):
        return self._workers

    async def evaluate(self, task, candidate):
        self.calls.append(candidate.id)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            r = await asyncio.to_thread(toy_result, candidate)
        finally:
            self.in_flight -= 1
        # the device time is the work the program stands for (its SLEEP), never the thread's wall time: a busy
        # machine must not change how many evaluations a device-seconds budget allows
        r.candidate_id, r.device_s = candidate.id, values(candidate.source).get("SLEEP", 0.0)
        return r

    def info(self):
        return EvaluatorInfo(backend="toy_speed", workers=self._workers, availability=ToySpeedBackend.probe(),
                             language=ToySpeedBackend.language)

    def hints(self):
        return self.backend.hints()
