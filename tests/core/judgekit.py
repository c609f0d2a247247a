"""The judge run in-process against a candidate played by the real harness (ksdk/evaluation/candidate.py's Harness)
and a PyTorch-on-the-CPU Runner, with no worker, sandbox or subprocess: the stages' unit tests (fast, no bubblewrap).
A `Behaviour` decides what the candidate does in each call, so tests can play honest and hostile candidates."""

from __future__ import annotations

import contextlib
import os
import socket
import types
from typing import Callable, Optional

from ksdk.evaluation import candidate as harness_mod
from ksdk.evaluation.judge import Evaluation, JudgeContext
from ksdk.evaluation.shared import HostMemory
from ksdk.evaluation.targets import Target
from ksdk.interfaces.backend import Backend, CallReport, RunContext, Runner
from ksdk.models import Availability, Candidate, EvalResult, Task
from ksdk.tasks import task_from_source

TASK = '''
import torch
import torch.nn as nn

class Model(nn.Module):
    def forward(self, a, b):
        return torch.tanh(a) * b + 1.0

def get_inputs():
    return [torch.randn(256, 256), torch.randn(256, 256)]

def get_init_inputs():
    return []
'''


class TorchRunner(Runner):
    """Runs `behaviour(call_index, inputs) -> outputs` (torch tensors) and writes them into the judge's slots."""

    def __init__(self, behaviour: Callable):
        self.behaviour, self.calls, self.batch = behaviour, 0, None

    def load(self, source: str) -> None:
        self.source = source

    def build(self):
        return []

    def call(self, inputs, outputs, record_ops=False) -> CallReport:
        self.calls += 1
        outs = self.behaviour(self.calls, inputs)
        for o, slot in zip(outs, outputs):
            if o is not None:
                slot.copy_(o)
        return CallReport(outputs=[(list(s.shape), str(s.dtype).replace("torch.", "")) for s in outputs])

    def time(self, inputs, outputs, settings, share, warmup, turn=0):
        import time

        t = time.perf_counter()
        self.call(inputs, outputs)
        return [(time.perf_counter() - t) * 1e3] * 3, CallReport()

    def prepare_batch(self, inputs, outputs, arena=None, mode="graph") -> str:
        self.batch = (inputs, outputs)
        return "host"

    def run_batch(self) -> None:
        for ins, outs in zip(*self.batch):
            self.call(ins, outs)


class TorchBackend(Backend):
    name, language = "judgekit", "python"

    def __init__(self, behaviour: Callable):
        self.behaviour = behaviour

    @classmethod
    def probe(cls) -> Availability:
        return Availability(name=cls.name, available=True)

    def runner(self, ctx: RunContext) -> Runner:
        return TorchRunner(self.behaviour)

    def memory(self, ctx: RunContext):
        return HostMemory(view="torch")


class FakeProcess:
    """A CandidateProcess stand-in: the real Harness, in this process; records thaw/freeze around requests."""

    def __init__(self, backend: TorchBackend):
        mine, self._theirs = socket.socketpair()
        self.harness = harness_mod.Harness(mine, backend, RunContext())
        self.events: list[str] = []
        self.scratch, self.ready_s, self.killed = "/tmp/judgekit", 0.0, False

    def request(self, msg: dict, deadline: float, credit=None, fds=(), spin=False) -> dict:
        self.events.append(msg["op"])
        try:
            reply = self.harness.handle(msg["op"], msg, [os.dup(f) for f in fds])
            reply.update(op="reply", ok=True)
        except Exception as e:  # noqa: BLE001 - as Harness.serve does
            reply = harness_mod.failure(e)
        return reply

    def thaw(self) -> None:
        self.events.append("thaw")

    def freeze(self) -> None:
        self.events.append("freeze")

    def cpu_ns(self) -> int:
        return 0

    def kill(self) -> None:
        self.killed = True

    def close(self) -> None:
        self._theirs.close()


def honest(n: int, inputs: list) -> list:
    import torch

    a, b = inputs
    return [torch.tanh(a) * b + 1.0]


def judge(behaviour: Callable = honest, task: Optional[Task] = None, **settings) -> tuple[EvalResult, FakeProcess]:
    """The verdict of the judge on a candidate behaving like `behaviour`, and the fake process it talked to."""
    backend = TorchBackend(behaviour)
    proc = FakeProcess(backend)
    pool = types.SimpleNamespace(take=lambda: proc, seeder=None, wait_spares=lambda: None,
                                 held=contextlib.nullcontext)
    settings = {"correctness_trials": 2, "timing": {"flush_l2": False}, **settings}
    task = task or task_from_source("kit", TASK, **settings)
    jc = JudgeContext(backend=backend, run=RunContext(), pool=pool, sandboxed=False, target=Target())
    return Evaluation(task, Candidate(source="# played by the behaviour"), jc).run(), proc
