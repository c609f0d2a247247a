"""A third-party backend in a language ksdk has never seen: `numpy` programs (a Python file defining
`kernel(*inputs)` with numpy), run and timed on the CPU. It declares its language as data and nothing else;
the tests register it through a throwaway distribution (ksdk.testing.plugins), like any plugin."""

import time

import numpy as np

from ksdk.interfaces.backend import Backend
from ksdk.languages import Language
from ksdk.models import Availability, DeviceInfo, ErrorKind, EvalResult, Stage, Status
from ksdk.timing import speedup, summarize
from ksdk.verify import compare_outputs

NUMPY = Language(name="numpy", extensions=(".np.py",), fence_tags=("numpy",), line_comments=("#",),
                 program_patterns=(r"^def kernel\(",))


def _timed(fn, args, reps: int = 5):
    samples = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn(*args)
        samples.append((time.perf_counter() - t0) * 1000)
    return summarize(samples, method="perf_counter")


class NumpyCpuBackend(Backend):
    """Candidates define kernel(*inputs) over numpy arrays; the reference is the task's torch Model."""

    name = "numpy_cpu"
    language = NUMPY

    @classmethod
    def probe(cls) -> Availability:
        return Availability(name=cls.name, available=True, devices=[DeviceInfo(name="cpu", kind="cpu")])

    def hints(self) -> str:
        return "Define kernel(*inputs) returning one numpy array; numpy is imported as np."

    def evaluate(self, task, candidate, ctx) -> EvalResult:
        import torch

        result = EvalResult(backend=self.name, device=DeviceInfo(name="cpu", kind="cpu"))
        ctx.stage(Stage.LOAD)
        scope: dict = {"np": np}
        try:
            exec(compile(candidate.source, "candidate.np.py", "exec"), scope)
        except SyntaxError as e:
            return result.fail(Stage.LOAD, ErrorKind.SYNTAX, str(e), line=e.lineno)
        kernel = scope.get("kernel")
        if not callable(kernel):
            return result.fail(Stage.LOAD, ErrorKind.MISSING_ENTRY, "define kernel(*inputs)")
        reference: dict = {}
        exec(compile(task.source, "task.py", "exec"), reference)
        model = reference["Model"](*reference["get_init_inputs"]())
        ctx.stage(Stage.CORRECTNESS)
        torch.manual_seed(task.seed)
        inputs = reference["get_inputs"]()
        arrays = [x.numpy() for x in inputs]
        try:
            out = np.asarray(kernel(*arrays))
        except Exception as e:
            return result.fail(Stage.CORRECTNESS, ErrorKind.RUNTIME, f"{type(e).__name__}: {e}")
        with torch.no_grad():
            ref = model(*inputs).numpy()
        result.outputs, failure = compare_outputs([out], [ref], task.tolerance)
        if failure is not None:
            return result.fail(Stage.CORRECTNESS, *failure)
        ctx.stage(Stage.PERFORMANCE)
        with torch.no_grad():
            result.baseline_timing = _timed(model, inputs)
        result.candidate_timing = _timed(kernel, arrays)
        result.baseline, result.speedup = "torch eager", speedup(result.baseline_timing, result.candidate_timing)
        result.stage, result.status = Stage.PERFORMANCE, Status.OK
        return result
