"""A candidate that tampers with its process's channel to the judge gets a `crash` verdict (never an exception out of
evaluate()); the judge keeps serving the next candidate."""

import asyncio

import pytest
from processes import running
from scripted_double import DOUBLE, TASK_SOURCE

from ksdk.evaluation.local import LocalEvaluator
from ksdk.models import Candidate, ErrorKind, StageTimeouts, Status, Task, TimingSettings

TASK = Task(name="t", source=TASK_SOURCE, timeouts=StageTimeouts(load=20, compile=30, correctness=20, performance=20),
            timing=TimingSettings(warmup=1, warmup_ms=0, repetitions=3, min_time_ms=0))


@pytest.fixture
def tamper(backend_double, tmp_path):
    backend_double("scripted", "ScriptedBackend", DOUBLE)
    return tmp_path


def run(*cmds):
    async def go():
        ev = LocalEvaluator("scripted", cache=False)
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
    async def go():
        ev = LocalEvaluator("scripted", cache=True)
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


def test_a_judge_waiting_for_its_device_is_not_killed_for_its_stage_limit(tamper, monkeypatch, tmp_path):
    """Another judge on the device holds it past this evaluation's correctness limit: the judge waits (the wait is
    in no stage's limit) and its verdict is the candidate's, not a timeout."""
    import fcntl
    import threading
    import time

    from ksdk.evaluation import device_lock, process
    from ksdk.evaluation.device_lock import DeviceLock

    path = str(tmp_path / "dev.lock")
    monkeypatch.setenv("KSDK_TEST_DEVICE_TARGET", "1")
    monkeypatch.setattr(device_lock, "default_path", lambda device: path)
    monkeypatch.setattr(process, "STAGE_MARGIN_S", 0.0)
    task = TASK.model_copy(update={"timeouts": StageTimeouts(load=20, compile=30, correctness=3, performance=20)})
    other = DeviceLock(path)
    other.shared()  # another judge's evaluation, still loading or checking

    def release_once_waited() -> None:
        gate = open(path + ".gate", "a")
        for _ in range(600):  # until this evaluation's judge waits to time (it holds the turnstile then)
            try:
                fcntl.flock(gate, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(gate, fcntl.LOCK_UN)
            except BlockingIOError:
                break
            time.sleep(0.05)
        time.sleep(4.0)  # past the correctness limit of 3 s
        other.release()

    threading.Thread(target=release_once_waited, daemon=True).start()

    async def go():
        ev = LocalEvaluator("scripted", cache=False)
        try:
            return await asyncio.wait_for(ev.evaluate(task, Candidate(source="ok", language="cmd")), 120)
        finally:
            await ev.close()

    r = asyncio.run(go())
    assert r.status == Status.OK, (r.error_kind, r.message)
    assert r.stages["device lock"] >= 3.5, r.stages
