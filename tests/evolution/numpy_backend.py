"""A third-party backend in a language ksdk has never seen: `numpy` programs (a Python file defining
`kernel(*inputs)` with numpy), run and timed on the CPU. It declares its language as data and nothing else;
the tests register it through a throwaway distribution (ksdk.testing.plugins), like any plugin."""

import time

import numpy as np

from ksdk.interfaces.backend import Backend, CallReport, CandidateError, Runner
from ksdk.languages import Language
from ksdk.models import Availability, DeviceInfo, ErrorKind

NUMPY = Language(name="numpy", extensions=(".np.py",), fence_tags=("numpy",), line_comments=("#",),
                 program_patterns=(r"^def kernel\(",))


class NumpyRunner(Runner):
    """Runs a candidate's kernel(*inputs) on the judge's shared arrays."""

    def load(self, source: str) -> None:
        self.scope: dict = {"np": np}
        try:
            exec(compile(source, "candidate.np.py", "exec"), self.scope)
        except SyntaxError as e:
            raise CandidateError(ErrorKind.SYNTAX, str(e), e.lineno) from None
        if not callable(self.scope.get("kernel")):
            raise CandidateError(ErrorKind.MISSING_ENTRY, "define kernel(*inputs)")

    def build(self) -> list:
        return []

    def call(self, inputs, outputs, record_ops=False) -> CallReport:
        try:
            out = np.asarray(self.scope["kernel"](*inputs))
        except Exception as e:  # noqa: BLE001 - the candidate's code
            raise CandidateError(ErrorKind.RUNTIME, f"{type(e).__name__}: {e}") from None
        if out.shape == outputs[0].shape and out.dtype == outputs[0].dtype:
            outputs[0][...] = out
        return CallReport(outputs=[(list(out.shape), str(out.dtype))])

    def time(self, inputs, outputs, settings, share, warmup, turn=0):
        samples = []
        for _ in range(max(3, int(settings.repetitions * share))):
            t0 = time.perf_counter()
            self.scope["kernel"](*inputs)
            samples.append((time.perf_counter() - t0) * 1000)
        report = self.call(inputs, outputs)
        report.method = "perf_counter around each call"
        return samples, report


class NumpyCpuBackend(Backend):
    """Candidates define kernel(*inputs) over numpy arrays; the reference is the task's torch Model."""

    name = "numpy_cpu"
    language = NUMPY

    @classmethod
    def probe(cls) -> Availability:
        return Availability(name=cls.name, available=True, devices=[DeviceInfo(name="cpu", kind="cpu")])

    def hints(self) -> str:
        return "Define kernel(*inputs) returning one numpy array; numpy is imported as np."

    def runner(self, ctx) -> Runner:
        return NumpyRunner()
