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

from ksdk.interfaces.backend import Backend, CallReport, CandidateError, Runner
from ksdk.models import Availability, DeviceInfo, ErrorKind, EvalResult
from ksdk.languages import Language

NAME = "toy_py"
MODULE = "ksdk_toy_py_backend"

# A small task in this backend's own format (KernelBench names, numpy inside).
TASK_SOURCE = '''
import numpy as np

KSDK_TASK = {"timing": {"warmup": 1, "warmup_ms": 0, "repetitions": 5, "min_time_ms": 0, "flush_l2": False}}

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


class ToyPyRunner(Runner):
    """Runs a numpy ModelNew in the candidate's process."""

    def load(self, source: str) -> None:
        self.ns: dict = {"DeviceFault": DeviceFault}
        try:
            exec(compile(source, "<candidate>", "exec"), self.ns)
        except SyntaxError as e:
            raise CandidateError(ErrorKind.SYNTAX, str(e), e.lineno) from None
        if "ModelNew" not in self.ns:
            raise CandidateError(ErrorKind.MISSING_ENTRY, "the candidate defines no ModelNew")

    def build(self) -> list:
        self.model = self.ns["ModelNew"]()
        return []

    def call(self, inputs: list, outputs: list, record_ops: bool = False) -> CallReport:
        import numpy as np

        try:
            out = np.asarray(self.model.forward(*inputs))
        except DeviceFault as e:
            raise CandidateError(ErrorKind.DEVICE_FAULT, str(e)) from None
        except Exception as e:  # noqa: BLE001
            raise CandidateError(ErrorKind.RUNTIME, f"{type(e).__name__}: {e}") from None
        if out.shape == outputs[0].shape:
            outputs[0][...] = out
        return CallReport(outputs=[(list(out.shape), str(out.dtype))])

    def time(self, inputs, outputs, settings, share, warmup, turn=0):
        report = self.call(inputs, outputs)
        return _time(lambda: self.model.forward(*inputs)), report

    def prepare_batch(self, inputs, outputs) -> str:
        self._batch = (inputs, outputs)
        return "host"

    def run_batch(self) -> None:
        for ins, outs in zip(*self._batch):
            outs[0][...] = self.model.forward(*ins)


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

    def runner(self, ctx) -> Runner:
        return ToyPyRunner()

    def sticky_error(self, result: EvalResult) -> bool:
        # Called by the judge's process once per finished evaluation: the ledger is written here.
        ledger = os.environ.get("KSDK_TOY_LEDGER")
        if ledger:
            with open(ledger, "a") as f:
                f.write(f"{result.candidate_id} {os.getpid()}\n")
        return result.error_kind == ErrorKind.DEVICE_FAULT


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
