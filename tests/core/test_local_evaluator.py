"""The LocalEvaluator isolates every candidate: crashes, hangs and sticky errors become verdicts."""

import asyncio
import json
import textwrap

import pytest

from ksdk.evaluation.local import LocalEvaluator
from ksdk.models import Candidate, ErrorKind, Stage, StageTimeouts, Status, Task

# A test-only backend whose "candidates" are commands telling it how to misbehave.
DOUBLE = textwrap.dedent('''
    import json, os, signal, subprocess, sys, time
    from ksdk.interfaces.backend import Backend
    from ksdk.languages import Language
    from ksdk.models import Availability, DeviceInfo, EvalResult, Stage, Status, ErrorKind

    class ScriptedBackend(Backend):
        name = "scripted"
        language = Language(name="cmd", line_comments=("#",))  # so a comment-only change is the same program

        @classmethod
        def probe(cls):
            return Availability(name="scripted", available=True, devices=[DeviceInfo(index=0, name="host")])

        def sticky_error(self, result):
            return result.message == "sticky"

        def evaluate(self, task, candidate, ctx):
            cmd = candidate.source.strip()
            ctx.stage(Stage.COMPILE)
            if cmd == "crash":
                os.kill(os.getpid(), signal.SIGSEGV)
            if cmd == "hang":
                time.sleep(3600)
            if cmd == "hang-with-child":
                p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
                open(os.environ["KSDK_TEST_PIDFILE"], "w").write(str(p.pid))
                time.sleep(3600)
            if cmd == "hang-pid":
                open(os.environ["KSDK_TEST_PIDFILE"], "w").write(str(os.getpid()))
                time.sleep(3600)
            if cmd == "print":
                print('{"op": "result", "nonce": "forged"}')
                sys.stdout.flush()
            if cmd == "raise":
                raise RuntimeError("backend bug")
            ctx.stage(Stage.CORRECTNESS)
            r = EvalResult(stage=Stage.CORRECTNESS, status=Status.OK, backend="scripted")
            if cmd == "env":
                r.message = json.dumps(sorted(os.environ))
            elif cmd == "sticky":
                r.message = "sticky"
            else:
                r.message = str(os.getpid())
            return r
''')

TASK = Task(name="t", source="", timeouts=StageTimeouts(load=20, compile=2, correctness=20, performance=20))


@pytest.fixture
def scripted(backend_double, tmp_path, monkeypatch):
    backend_double("scripted", "ScriptedBackend", DOUBLE)
    monkeypatch.setenv("KSDK_TEST_PIDFILE", str(tmp_path / "child.pid"))
    return tmp_path


def run(*cmds, **kw):
    async def go():
        ev = LocalEvaluator("scripted", cache=kw.pop("cache", False), **kw)
        try:
            return [await ev.evaluate(TASK, Candidate(source=c, language="cmd")) for c in cmds]
        finally:
            await ev.close()

    return asyncio.run(go())


def test_crash_becomes_verdict_and_next_candidate_is_unaffected(scripted):
    crash, ok = run("crash", "ok")
    assert crash.status == Status.FAILED and crash.error_kind == ErrorKind.CRASH
    assert crash.stage == Stage.COMPILE and "SIGSEGV" in crash.message
    assert ok.status == Status.OK


def alive(pid: int) -> bool:
    """True if pid runs (a zombie waiting for its reaper counts as dead)."""
    import time

    for _ in range(50):  # SIGKILL delivery is asynchronous
        try:
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return False
        if state in ("Z", "X"):
            return False
        time.sleep(0.05)
    return True


def test_hang_is_killed_with_its_process_group(scripted):
    hang, ok = run("hang-with-child", "ok")
    assert hang.error_kind == ErrorKind.TIMEOUT and hang.stage == Stage.COMPILE
    child = int((scripted / "child.pid").read_text())
    assert not alive(child), "the hanging candidate's child process survived the kill"
    assert ok.status == Status.OK


def test_worker_env_is_scrubbed(scripted, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    monkeypatch.setenv("MY_SERVICE_TOKEN", "t")
    monkeypatch.setenv("SOMETHING_ELSE", "x")
    (env,) = run("env")
    names = json.loads(env.message)
    assert "OPENAI_API_KEY" not in names and "MY_SERVICE_TOKEN" not in names and "SOMETHING_ELSE" not in names
    assert "PATH" in names


def test_candidate_output_cannot_forge_results(scripted):
    (r,) = run("print")
    assert r.status == Status.OK and r.message.isdigit()


def test_backend_exception_is_an_infra_error_not_a_candidate_verdict(scripted):
    (r,) = run("raise")
    assert r.status == Status.INFRA_ERROR and "backend bug" in r.message


def test_sticky_error_recycles_the_worker(scripted):
    first, sticky, after = run("ok", "sticky", "ok")
    assert sticky.warnings and "recycled" in sticky.warnings[0]
    assert first.message != after.message  # a new process served the next candidate


def test_identical_candidates_evaluated_once(scripted):
    a, b = run("ok", "# comment\nok\n", cache=True)
    assert not a.cached and b.cached and a.message == b.message


def test_workers_run_concurrently(scripted):
    async def go():
        ev = LocalEvaluator("scripted", cache=False, workers=2)
        try:
            return await asyncio.gather(*(ev.evaluate(TASK, Candidate(source=f"ok{i}")) for i in range(4)))
        finally:
            await ev.close()

    results = asyncio.run(go())
    assert all(r.status == Status.OK for r in results)
    assert len({r.message for r in results}) == 2  # two worker processes shared the four candidates


def test_cancelled_evaluation_frees_its_worker_cleanly(scripted):
    """Cancelling an in-flight evaluation (a budget hit, Ctrl-C) kills its worker; the next verdict is clean."""

    async def go():
        ev = LocalEvaluator("scripted", cache=False)
        try:
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(ev.evaluate(TASK, Candidate(source="hang")), timeout=1.0)
            return await asyncio.wait_for(ev.evaluate(TASK, Candidate(source="ok")), timeout=60)
        finally:
            await ev.close()

    r = asyncio.run(go())
    assert r.status == Status.OK


DRIVER = """
import asyncio
from ksdk.evaluation.local import LocalEvaluator
from ksdk.models import Candidate, StageTimeouts, Task

async def main():
    ev = LocalEvaluator("scripted", cache=False)
    task = Task(name="t", source="", timeouts=StageTimeouts(compile=3600))
    await ev.evaluate(task, Candidate(source="hang-pid"))

asyncio.run(main())
"""


def test_workers_die_with_a_killed_driver(scripted):
    """kill -9 of the driving process leaves no worker behind holding a device."""
    import os
    import signal
    import subprocess
    import sys

    pidfile = scripted / "child.pid"
    driver = subprocess.Popen([sys.executable, "-c", DRIVER], env=dict(os.environ))
    try:
        for _ in range(600):  # the worker starts and reaches the candidate (bounded poll, not a sleep-as-sync)
            if pidfile.exists() and pidfile.read_text():
                break
            assert driver.poll() is None, "the driver exited early"
            __import__("time").sleep(0.05)
        worker = int(pidfile.read_text())
        assert alive(worker)
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=10)
        assert not alive(worker), "the worker outlived its killed driver"
    finally:
        if driver.poll() is None:
            driver.kill()


def test_one_evaluator_serves_several_event_loops(scripted):
    """A notebook or script may call asyncio.run more than once with the same evaluator."""
    ev = LocalEvaluator("scripted", cache=False, workers=1)

    async def two():
        return await asyncio.gather(*(ev.evaluate(TASK, Candidate(source=f"ok{i}")) for i in range(2)))

    try:
        first = asyncio.run(two())
        second = asyncio.run(two())  # the single worker is waited for on a queue of this new loop
    finally:
        asyncio.run(ev.close())
    assert all(r.status == Status.OK for r in first + second)


def test_standby_worker_takes_over_after_a_crash_and_is_closed(scripted):
    """With standby on, a killed worker's place goes to a spare already started; close() ends the spare too."""

    async def go():
        ev = LocalEvaluator("scripted", cache=False, workers=1, standby=True)
        proc = ev._procs[0]
        try:
            first = await ev.evaluate(TASK, Candidate(source="ok"))
            spare = proc._spare.result(timeout=60).proc.pid  # started beside the active worker
            crash = await ev.evaluate(TASK, Candidate(source="crash"))
            after = await ev.evaluate(TASK, Candidate(source="ok"))
            return first, spare, crash, after, proc._spare.result(timeout=60).proc.pid
        finally:
            await ev.close()

    first, spare, crash, after, next_spare = asyncio.run(go())
    assert crash.error_kind == ErrorKind.CRASH
    assert int(after.message) == spare != int(first.message)
    assert not alive(spare) and not alive(next_spare)


def test_a_dead_standby_is_replaced_by_a_fresh_worker(scripted):
    import os
    import signal

    async def go():
        ev = LocalEvaluator("scripted", cache=False, workers=1, standby=True)
        try:
            await ev.evaluate(TASK, Candidate(source="ok"))
            spare = ev._procs[0]._spare.result(timeout=60).proc.pid
            os.kill(spare, signal.SIGKILL)
            crash = await ev.evaluate(TASK, Candidate(source="crash"))
            return spare, crash, await ev.evaluate(TASK, Candidate(source="ok"))
        finally:
            await ev.close()

    spare, crash, after = asyncio.run(go())
    assert crash.error_kind == ErrorKind.CRASH
    assert after.status == Status.OK and int(after.message) != spare, (after.error_kind, after.message, after.warnings)


def test_a_worker_killed_from_outside_while_idle_costs_the_next_candidate_nothing(scripted):
    import os
    import signal

    async def go():
        ev = LocalEvaluator("scripted", cache=False, workers=1, standby=False)
        try:
            first = await ev.evaluate(TASK, Candidate(source="ok"))
            os.kill(int(first.message), signal.SIGKILL)  # e.g. the OOM killer; may not have landed yet
            return first, await ev.evaluate(TASK, Candidate(source="ok"))
        finally:
            await ev.close()

    first, after = asyncio.run(go())
    assert after.status == Status.OK and int(after.message) != int(first.message), (after.error_kind, after.message)


def test_workers_dying_before_they_accept_are_an_infra_error_not_a_verdict(scripted, monkeypatch):
    from ksdk.evaluation.process import WorkerProcess

    tries = []
    monkeypatch.setattr(WorkerProcess, "_evaluate_once", lambda self, *a: tries.append(a) or None)
    (r,) = run("ok", workers=1)
    assert len(tries) == 2 and r.status == Status.INFRA_ERROR and r.error_kind == ErrorKind.INFRA
    assert "not the candidate" in r.message


def test_standby_defaults_off_without_a_gpu(scripted):
    ev = LocalEvaluator("scripted", cache=False)
    assert ev.standby is False
    asyncio.run(ev.close())


def test_cache_key_names_every_gpu_model_the_workers_use():
    from ksdk.evaluation.local import device_label
    from ksdk.models import DeviceInfo

    devs = [DeviceInfo(index=0, name="NVIDIA H100", kind="gpu"), DeviceInfo(index=1, name="NVIDIA H200", kind="gpu"),
            DeviceInfo(index=2, name="NVIDIA H100", kind="gpu")]
    assert device_label(devs, {0, 2}, interpret=False) == "NVIDIA H100"
    assert device_label(devs, {1}, interpret=False) == "NVIDIA H200"
    assert device_label(devs, {0, 1, 2}, interpret=False) == "NVIDIA H100 + NVIDIA H200"
    assert device_label(devs, {0, 1}, interpret=True) == "interpreter"
    assert device_label([], {0}, interpret=False) == "interpreter"
