"""A candidate that tampers with the worker's result channel gets a verdict; the evaluator keeps its worker."""

import asyncio
import textwrap

import pytest

from ksdk.evaluation.local import LocalEvaluator
from ksdk.models import Candidate, ErrorKind, StageTimeouts, Status, Task

# A test-only backend: its "candidates" are commands that tamper with the worker's protocol channel the way
# native code running in the worker process could (it shares the process, so it can reach the fds).
DOUBLE = textwrap.dedent('''
    import gc, os, time
    from ksdk.interfaces.backend import Backend
    from ksdk.models import Availability, DeviceInfo, EvalResult, Stage, Status

    def _channel():
        return next(o for o in gc.get_objects() if type(o).__name__ == "_Channel")

    class TamperBackend(Backend):
        name = "tamper"
        language = "cmd"

        @classmethod
        def probe(cls):
            return Availability(name="tamper", available=True, devices=[DeviceInfo(index=0, name="host")])

        def evaluate(self, task, candidate, ctx):
            cmd = candidate.source.strip()
            ctx.stage(Stage.COMPILE)
            if cmd == "garbage":
                os.write(_channel().wfd, b"not json\\n")
                time.sleep(3600)
            if cmd == "not-a-dict":
                os.write(_channel().wfd, b"[1]\\n")
                time.sleep(3600)
            if cmd == "hang-once":  # hangs the first time (leaving a mark), answers every later time
                mark = os.environ["KSDK_TEST_MARK"]
                if not os.path.exists(mark):
                    open(mark, "w").close()
                    time.sleep(3600)
            if cmd == "close-and-hang":
                os.close(_channel().wfd)
                time.sleep(3600)
            return EvalResult(stage=Stage.CORRECTNESS, status=Status.OK, backend="tamper", message=str(os.getpid()))
''')

TASK = Task(name="t", source="", timeouts=StageTimeouts(load=20, compile=30, correctness=20, performance=20))


@pytest.fixture
def tamper(backend_double, tmp_path, monkeypatch):
    backend_double("tamper", "TamperBackend", DOUBLE)
    monkeypatch.setenv("KSDK_TEST_MARK", str(tmp_path / "mark"))
    return tmp_path


def run(*cmds):
    async def go():
        ev = LocalEvaluator("tamper", cache=False)
        try:
            # a lost worker would make the second evaluation wait forever: bound it
            return [await asyncio.wait_for(ev.evaluate(TASK, Candidate(source=c, language="cmd")), 25) for c in cmds]
        finally:
            await ev.close()

    return asyncio.run(go())


@pytest.mark.parametrize("cmd", ["garbage", "not-a-dict"])
def test_malformed_protocol_message_is_a_verdict(tamper, cmd):
    bad, ok = run(cmd, "ok")
    assert bad.status == Status.FAILED and bad.error_kind == ErrorKind.CRASH
    assert "protocol" in bad.message
    assert ok.status == Status.OK


def test_closed_channel_with_live_worker_is_a_verdict(tamper):
    bad, ok = run("close-and-hang", "ok")
    assert bad.status == Status.FAILED and bad.error_kind == ErrorKind.CRASH
    assert ok.status == Status.OK


def test_cancelling_one_caller_does_not_cancel_another_waiting_on_the_same_program(tamper):
    """Two callers evaluate one program; the first is cancelled: the second still gets a verdict."""
    mark = tamper / "mark"

    async def go():
        ev = LocalEvaluator("tamper", cache=True)
        try:
            first = asyncio.ensure_future(ev.evaluate(TASK, Candidate(source="hang-once", language="cmd")))
            for _ in range(400):  # bounded poll until the worker is inside the first evaluation
                if mark.exists():
                    break
                await asyncio.sleep(0.05)
            assert mark.exists()
            second = asyncio.ensure_future(ev.evaluate(TASK, Candidate(source="hang-once", language="cmd")))
            await asyncio.sleep(0)  # the second caller now waits on the first's in-flight evaluation
            first.cancel()
            return await asyncio.wait_for(second, 25)
        finally:
            await ev.close()

    r = asyncio.run(go())
    assert r.status == Status.OK
