"""A candidate that tampers with its process's channel to the judge gets a `crash` verdict (never an exception out of
evaluate()); the judge keeps serving the next candidate."""

import asyncio
import textwrap

import pytest

from ksdk.evaluation.local import LocalEvaluator
from ksdk.models import Candidate, ErrorKind, StageTimeouts, Status, Task, TimingSettings

# A test-only backend: its "candidates" are commands that tamper with the channel the way native code in the
# candidate's process could (it shares the process with the harness, so it can reach the socket).
DOUBLE = textwrap.dedent('''
    import gc, json, os, socket, struct, subprocess, time
    from ksdk.interfaces.backend import Backend, CallReport, Runner
    from ksdk.models import Availability, DeviceInfo

    def _sock():
        return next(o for o in gc.get_objects() if type(o).__name__ == "Harness").sock

    def _frame(body):
        return struct.pack(">I", len(body)) + body

    class TamperRunner(Runner):
        def load(self, source):
            self.cmd = source.strip()

        def build(self):
            cmd = self.cmd
            if cmd == "garbage":
                _sock().sendall(_frame(b"not json"))
            elif cmd == "not-a-dict":
                _sock().sendall(_frame(b"[1]"))
            elif cmd == "huge":
                _sock().sendall(struct.pack(">I", 1 << 31) + b"x" * 1024)
            elif cmd == "deep":
                _sock().sendall(_frame(b"[" * 200000 + b"]" * 200000))
            elif cmd == "extra-field":
                _sock().sendall(_frame(json.dumps({"op": "reply", "ok": True, "speedup": 1000}).encode()))
            elif cmd == "close-and-hang":
                _sock().close()
            elif cmd == "slow-once":
                subprocess.run(["sleep", "3.0017"])
                return []
            else:
                return []
            time.sleep(3600)

        def call(self, inputs, outputs, record_ops=False):
            outputs[0][...] = inputs[0] * 2
            return CallReport(outputs=[(list(outputs[0].shape), str(outputs[0].dtype))])

        def time(self, inputs, outputs, settings, share, warmup, turn=0):
            return [1.0], self.call(inputs, outputs)

    class TamperBackend(Backend):
        name = "tamper"
        language = "cmd"

        @classmethod
        def probe(cls):
            return Availability(name="tamper", available=True, devices=[DeviceInfo(index=0, name="host")])

        def runner(self, ctx):
            return TamperRunner()
''')

TASK = Task(name="t", timeouts=StageTimeouts(load=20, compile=30, correctness=20, performance=20),
            timing=TimingSettings(warmup=1, warmup_ms=0, repetitions=3, min_time_ms=0), source="""
import torch
class Model(torch.nn.Module):
    def forward(self, x):
        return x * 2
def get_inputs():
    return [torch.randn(8)]
def get_init_inputs():
    return []
""")


@pytest.fixture
def tamper(backend_double, tmp_path):
    backend_double("tamper", "TamperBackend", DOUBLE)
    return tmp_path


def run(*cmds):
    async def go():
        ev = LocalEvaluator("tamper", cache=False)
        try:
            # a lost judge would make the second evaluation wait forever: bound it
            return [await asyncio.wait_for(ev.evaluate(TASK, Candidate(source=c, language="cmd")), 40) for c in cmds]
        finally:
            await ev.close()

    return asyncio.run(go())


@pytest.mark.parametrize("cmd", ["garbage", "not-a-dict", "huge", "deep", "extra-field"])
def test_malformed_message_is_a_crash_verdict(tamper, cmd):
    bad, ok = run(cmd, "ok")
    assert bad.status == Status.FAILED and bad.error_kind == ErrorKind.CRASH, (bad.error_kind, bad.message)
    assert "malformed" in bad.message and bad.speedup is None
    assert ok.status == Status.OK


def test_closed_channel_with_live_process_is_a_verdict(tamper):
    bad, ok = run("close-and-hang", "ok")
    assert bad.status == Status.FAILED and bad.error_kind == ErrorKind.CRASH
    assert ok.status == Status.OK


def test_cancelling_one_caller_does_not_cancel_another_waiting_on_the_same_program(tamper):
    """Two callers evaluate one program; the first is cancelled: the second still gets a verdict."""
    from test_local_evaluator import running

    async def go():
        ev = LocalEvaluator("tamper", cache=True)
        try:
            first = asyncio.ensure_future(ev.evaluate(TASK, Candidate(source="slow-once", language="cmd")))
            for _ in range(400):  # bounded poll until a candidate process is inside the first evaluation
                if running("sleep 3.0017"):
                    break
                await asyncio.sleep(0.05)
            assert running("sleep 3.0017")
            second = asyncio.ensure_future(ev.evaluate(TASK, Candidate(source="slow-once", language="cmd")))
            await asyncio.sleep(0)  # the second caller now waits on the first's in-flight evaluation
            first.cancel()
            return await asyncio.wait_for(second, 40)
        finally:
            await ev.close()

    r = asyncio.run(go())
    assert r.status == Status.OK
