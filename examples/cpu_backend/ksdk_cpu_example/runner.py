"""The cpu_c Runner: the primitives ksdk's judge calls in the candidate's sandboxed process (and, for a task's
C_BASELINE, in the judge): scan the source, compile it, call the entry on shared host arrays, time calls."""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from ksdk.interfaces.backend import CallReport, CandidateError, Runner, TaskView
from ksdk.models import ErrorKind, KernelMeta, TimingSettings
from ksdk_cpu_example import compiler, signature
from ksdk_cpu_example.reference import task_spec


class CpuCRunner(Runner):
    """One C candidate: its source, its prototype (from the task's tensors) and, once built, its entry."""

    def setup(self, task: TaskView) -> None:
        self.task = task
        self.spec = task_spec(task.source)
        ins = [np.empty(a["shape"], dtype=a["dtype"]) if "shape" in a else a.get("value") for a in task.inputs]
        outs = [np.empty(o["shape"], dtype=o["dtype"]) for o in task.outputs]
        self.sig = signature.build(self.spec.entry, ins, list(task.params), outs)
        self.built: Optional[compiler.Built] = None

    def load(self, source: str) -> None:
        proto = self.sig.prototype()
        if not source.strip():
            raise CandidateError(ErrorKind.SYNTAX, f"the candidate is empty; define:\n  {proto}")
        if compiler.find_entry(source, self.spec.entry) is None:
            raise CandidateError(ErrorKind.MISSING_ENTRY, f"no definition of the entry function '{self.spec.entry}' "
                                 f"found; the candidate must define:\n  {proto[:-1]} {{ ... }}")
        self.source = source

    def build(self) -> list[KernelMeta]:
        try:
            self.built = compiler.build(self.source, self.sig.prototype(), self.spec.entry)
        except compiler.CompileError as e:
            raise CandidateError(ErrorKind.COMPILE, str(e), e.line) from None
        return [KernelMeta(name=self.spec.entry, extra={"object_bytes": self.built.size_bytes,
                                                         "cflags": " ".join(compiler.CFLAGS)})]

    def _call(self, inputs: list, outputs: list) -> Callable[[], None]:
        return make_call(self.built, self.sig, inputs, list(self.task.params), outputs)

    def call(self, inputs: list, outputs: list, record_ops: bool = False) -> CallReport:
        self._call(inputs, outputs)()
        return CallReport(outputs=[(list(o.shape), str(o.dtype)) for o in outputs])

    def time(self, inputs: list, outputs: list, settings: TimingSettings, share: float, warmup: Optional[int],
             turn: int = 0) -> tuple[list[float], CallReport]:
        from ksdk.evaluation.timers import HostTimer

        timer = HostTimer(settings)
        samples = timer.measure(self._call(inputs, outputs), share=share, warmup=warmup).samples_ms
        return samples, CallReport(outputs=[(list(o.shape), str(o.dtype)) for o in outputs],
                                   method=timer.method + ", single thread")

    def prepare_batch(self, inputs: list[list], outputs: list[list], arena=None, mode: str = "host") -> str:
        self._calls = [self._call(ins, outs) for ins, outs in zip(inputs, outputs)]
        return "host"

    def run_batch(self) -> None:
        for call in self._calls:
            call()

    def close(self) -> None:
        if self.built is not None:
            self.built.close()
            self.built = None


def make_call(built: compiler.Built, sig: signature.Signature, inputs: list, weights: list,
              outputs: list) -> Callable[[], None]:
    """A zero-argument closure calling the C entry with these host arrays (they must outlive it)."""
    ffi = built.ffi
    tensors = [x for x in inputs if isinstance(x, np.ndarray)] + list(weights)
    values: list = []
    it_in, it_w, it_out = iter(inputs), iter(weights), iter(outputs)
    it_dims = iter([int(d) for t in tensors for d in t.shape])
    for arg in sig.args:
        if arg.role == "size":
            values.append(next(it_dims))
            continue
        x = next({"input": it_in, "weight": it_w, "output": it_out}[arg.role])
        values.append(ffi.cast(arg.ctype, x.ctypes.data) if isinstance(x, np.ndarray) else x)
    fn = built.fn

    def call() -> None:
        fn(*values)

    return call
