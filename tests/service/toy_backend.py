"""Test-only backend 'toy_py' (a plain test double): candidates are Python `ModelNew` classes over numpy.

It runs in real worker processes like any backend. Extra behaviour for service and cluster tests:
- every finished evaluation appends "<candidate id> <pid>" to $KSDK_TOY_LEDGER (ground truth for exactly-once);
- a candidate raising `DeviceFault` yields a device_fault verdict that the backend calls sticky (worker recycled);
- `make_site(dir)` installs this module with a throwaway .dist-info so entry points find it through PYTHONPATH.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from ksdk.interfaces.backend import Backend, EvalContext
from ksdk.languages import Language
from ksdk.models import Availability, Candidate, DeviceInfo, ErrorKind, EvalResult, Stage, Status, Task

NAME = "toy_py"
MODULE = "ksdk_toy_py_backend"

# A small task in this backend's own format (KernelBench names, numpy inside).
TASK_SOURCE = '''
import numpy as np

class Model:
    def forward(self, x):
        return x * 2.0 + 1.0

def get_inputs():
    return [np.arange(64, dtype=np.float32)]

def get_init_inputs():
    return []
'''

GOOD = "class ModelNew:\n    def forward(self, x):\n        return x * 2.0 + 1.0  # variant {n}\n"
WRONG = "class ModelNew:\n    def forward(self, x):\n        return x * 3.0\n"
SLOW = ("import time\ncalls = []\nclass ModelNew:\n    def forward(self, x):\n"
        "        if not calls:  # slow once (the correctness run), not again in every timing repetition\n"
        "            time.sleep({s})\n        calls.append(1)\n        return x * 2.0 + 1.0\n")
STICKY = "class ModelNew:\n    def forward(self, x):\n        raise DeviceFault('illegal memory access')\n"
CRASH = "import os\nclass ModelNew:\n    def forward(self, x):\n        os._exit(7)\n"


class DeviceFault(RuntimeError):
    """Stands in for a sticky device error (the process must not be trusted afterwards)."""


class ToyPyBackend(Backend):
    name = NAME
    language = Language(name="toy_py", extensions=(".py",), fence_tags=("python",), line_comments=("#",))
    version = "0.0.1"

    @classmethod
    def probe(cls) -> Availability:
        return Availability(name=NAME, available=True, devices=[DeviceInfo(index=0, name="toy-cpu", kind="cpu")])

    def versions(self) -> dict[str, str]:
        return {"toy_py": self.version}


    def hints(self) -> str:
        return "toy hints: numpy only"

    def sticky_error(self, result: EvalResult) -> bool:
        return result.error_kind == ErrorKind.DEVICE_FAULT

    def evaluate(self, task: Task, candidate: Candidate, ctx: EvalContext) -> EvalResult:
        import numpy as np

        from ksdk.timing import speedup, summarize
        from ksdk.verify import compare_outputs

        res = EvalResult(device=DeviceInfo(name="toy-cpu", kind="cpu"), backend=self.name, backend_version=self.version)
        try:
            ctx.stage(Stage.LOAD)
            ref_ns: dict = {}
            exec(compile(task.source, "<task>", "exec"), ref_ns)
            ns: dict = {"DeviceFault": DeviceFault}
            try:
                exec(compile(candidate.source, "<candidate>", "exec"), ns)
            except SyntaxError as e:
                return res.fail(Stage.LOAD, ErrorKind.SYNTAX, str(e), e.lineno)
            if "ModelNew" not in ns:
                return res.fail(Stage.LOAD, ErrorKind.MISSING_ENTRY, "the candidate defines no ModelNew")
            ctx.stage(Stage.CORRECTNESS)
            inputs = ref_ns["get_inputs"]()
            ref, model = ref_ns["Model"](), ns["ModelNew"]()
            try:
                out = model.forward(*inputs)
            except DeviceFault as e:
                return res.fail(Stage.CORRECTNESS, ErrorKind.DEVICE_FAULT, str(e))
            except Exception as e:
                return res.fail(Stage.CORRECTNESS, ErrorKind.RUNTIME, f"{type(e).__name__}: {e}")
            checks, failure = compare_outputs([np.asarray(out)], [np.asarray(ref.forward(*inputs))], task.tolerance)
            res.outputs, res.trials = checks, 1
            if failure:
                return res.fail(Stage.CORRECTNESS, *failure)
            res.stage, res.status = Stage.CORRECTNESS, Status.OK
            if ctx.interpret or ctx.skip_performance:
                res.performance_skipped = "interpreter" if ctx.interpret else "skipped on request"
                return res
            ctx.stage(Stage.PERFORMANCE)
            res.candidate_timing = summarize(_time(lambda: model.forward(*inputs)), "perf_counter")
            res.baseline_timing = summarize(_time(lambda: ref.forward(*inputs)), "perf_counter")
            res.baseline, res.stage = "toy reference", Stage.PERFORMANCE
            res.speedup = speedup(res.baseline_timing, res.candidate_timing)
            return res
        finally:
            ledger = os.environ.get("KSDK_TOY_LEDGER")
            if ledger:
                with open(ledger, "a") as f:
                    f.write(f"{candidate.id} {os.getpid()}\n")



class ToyPyOtherBackend(ToyPyBackend):
    """The same toy under a second backend name: lets tests run services of two different backends."""

    name = NAME + "_other"

    @classmethod
    def probe(cls) -> Availability:
        return Availability(name=cls.name, available=True, devices=[DeviceInfo(index=0, name="toy-cpu-2", kind="cpu")])


def _time(fn, n: int = 5) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def make_site(root: Path) -> Path:
    """A directory to put on PYTHONPATH: this module plus a .dist-info registering it as backend 'toy_py'."""
    from ksdk.testing.plugins import plugin_site

    return plugin_site(Path(root) / "toy_site", "ksdk-toy-py", "0.0.1", {MODULE: Path(__file__).read_text()},
                       {"ksdk.backends": {NAME: f"{MODULE}:ToyPyBackend",
                                          f"{NAME}_other": f"{MODULE}:ToyPyOtherBackend"}})


def env_with(site: Path, **extra: str) -> dict[str, str]:
    """os.environ plus `site` on PYTHONPATH (and extra variables): for subprocesses only, never this process."""
    env = dict(os.environ, **extra)
    env["PYTHONPATH"] = f"{site}{os.pathsep}{os.environ.get('PYTHONPATH', '')}".rstrip(os.pathsep)
    return env


def read_ledger(path: Path) -> list[str]:
    """Candidate ids in the order the backend finished evaluating them."""
    if not Path(path).exists():
        return []
    return [line.split()[0] for line in Path(path).read_text().splitlines() if line.strip()]
