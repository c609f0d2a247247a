"""The LocalEvaluator isolates every candidate: crashes, hangs and sticky errors become verdicts."""

import asyncio
import json

import pytest
from processes import running, state
from scripted_double import DOUBLE, TASK_SOURCE

from ksdk.evaluation.local import LocalEvaluator
from ksdk.models import Candidate, ErrorKind, Stage, StageTimeouts, Status, Task, TimingSettings

TASK = Task(name="t", source=TASK_SOURCE, timeouts=StageTimeouts(load=20, compile=2, correctness=20, performance=20),
            timing=TimingSettings(warmup=1, warmup_ms=0, repetitions=3, min_time_ms=0))


@pytest.fixture
def scripted(backend_double, tmp_path, monkeypatch):
    backend_double("scripted", "ScriptedBackend", DOUBLE)
    monkeypatch.setenv("KSDK_TEST_PIDFILE", str(tmp_path / "judge.pid"))
    return tmp_path


def run(*cmds, **kw):
    async def go():
        ev = LocalEvaluator("scripted", cache=kw.pop("cache", False), **kw)
        try:
            return [await ev.evaluate(TASK, Candidate(source=c, language="cmd")) for c in cmds]
        finally:
            await ev.close()

    return asyncio.run(go())


def judge_pid(r) -> int:
    return int(r.versions["judge_pid"])


def test_crash_becomes_verdict_and_next_candidate_is_unaffected(scripted):
    crash, ok = run("crash", "ok")
    assert crash.status == Status.FAILED and crash.error_kind == ErrorKind.CRASH
    assert crash.stage == Stage.COMPILE and "SIGSEGV" in crash.message
    assert ok.status == Status.OK


def alive(pid: int) -> bool:
    """True if pid runs (a zombie waiting for its reaper counts as dead)."""
    import time

    for _ in range(50):  # SIGKILL delivery is asynchronous
        if state(pid) in ("Z", "X", None):
            return False
        time.sleep(0.05)
    return True


def test_hang_is_killed_with_every_process_it_started(scripted):
    hang, ok = run("hang-with-child", "ok")
    assert hang.error_kind == ErrorKind.TIMEOUT and hang.stage == Stage.COMPILE
    assert not running("sleep 3601"), "the hanging candidate's child process survived the kill"
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
    (r,) = run("print")  # prints a well-formed reply: it goes to the log, never to the judge
    assert r.status == Status.OK and r.stage == Stage.PERFORMANCE


def test_a_backend_that_cannot_set_up_is_an_infra_error_not_a_candidate_verdict(scripted, monkeypatch):
    monkeypatch.setenv("KSDK_TEST_BROKEN_RUNNER", "1")
    (r,) = run("ok")
    assert r.status == Status.INFRA_ERROR and "backend bug" in r.message


def test_sticky_error_recycles_the_judge(scripted):
    first, sticky, after = run("ok", "sticky", "ok")
    assert sticky.warnings and "recycled" in sticky.warnings[-1]
    assert judge_pid(first) != judge_pid(after)  # a new judge process served the next candidate


def test_each_candidate_starts_with_its_own_copy_of_the_judges_seed_cache(scripted):
    before, tampered, after = run("read-seed", "tamper-seed", "read-seed")
    assert before.message.strip() == "seeded by the judge"
    assert tampered.message.strip() == "tampered by a candidate"
    assert after.message.strip() == "seeded by the judge", "a candidate's change to its seed reached the next one"


def test_what_a_candidate_asks_the_judge_to_build_reaches_later_candidates_once_and_only_as_validated(scripted):
    asked, alpha, escaped, log = run("ask-seed", "read-seed-alpha", "read-seed-escape", "read-seed-calls")
    assert asked.status == Status.OK  # a request is not a verdict
    assert alpha.message.strip() == "built alpha on request"
    assert escaped.message.strip() == "absent"
    calls = [json.loads(line) for line in log.message.strip().splitlines()]
    assert calls[0] == []  # the judge's own first build
    asked_for = [r for c in calls[1:] for r in c]
    assert asked_for.count("alpha") == 1 and len(asked_for) == 15  # once each; 16 per report (one duplicate)


def test_identical_candidates_evaluated_once(scripted):
    a, b = run("ok", "# comment\nok\n", cache=True)
    assert not a.cached and b.cached and a.speedup == b.speedup


def test_workers_run_concurrently(scripted):
    async def go():
        ev = LocalEvaluator("scripted", cache=False, workers=2)
        try:
            return await asyncio.gather(*(ev.evaluate(TASK, Candidate(source=f"ok{i}")) for i in range(4)))
        finally:
            await ev.close()

    results = asyncio.run(go())
    assert all(r.status == Status.OK for r in results)
    assert len({judge_pid(r) for r in results}) == 2  # two judge processes shared the four candidates


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
    task = Task(name="t", source=SOURCE, timeouts=StageTimeouts(compile=3600))
    await ev.evaluate(task, Candidate(source="hang"))

asyncio.run(main())
"""


def test_judges_and_candidates_die_with_a_killed_driver(scripted):
    """kill -9 of the driving process leaves no judge and no candidate process behind holding a device."""
    import os
    import signal
    import subprocess
    import sys

    pidfile = scripted / "judge.pid"
    driver = subprocess.Popen([sys.executable, "-c", f"SOURCE = {TASK_SOURCE!r}\n" + DRIVER], env=dict(os.environ))
    try:
        for _ in range(1200):  # the judge starts and its candidate hangs (bounded poll, not a sleep-as-sync)
            if pidfile.exists() and pidfile.read_text() and running("ksdk.evaluation.candidate scripted"):
                break
            assert driver.poll() is None, "the driver exited early"
            __import__("time").sleep(0.05)
        judge = int(pidfile.read_text())
        assert alive(judge) and running("ksdk.evaluation.candidate scripted")
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=10)
        assert not alive(judge), "the judge outlived its killed driver"
        for _ in range(100):  # death propagates by signals (parent-death, the PID namespace): bounded poll
            if not running("ksdk.evaluation.candidate scripted"):
                break
            __import__("time").sleep(0.05)
        assert not running("ksdk.evaluation.candidate scripted"), "a candidate process outlived its killed driver"
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


def test_standby_judge_takes_over_after_a_recycle_and_is_closed(scripted):
    """With standby on, a recycled judge's place goes to a spare already started; close() ends the spare too."""

    async def go():
        ev = LocalEvaluator("scripted", cache=False, workers=1, standby=True)
        proc = ev._procs[0]
        try:
            first = await ev.evaluate(TASK, Candidate(source="ok"))
            spare = proc._spare.result(timeout=60).proc.pid  # started beside the active judge
            sticky = await ev.evaluate(TASK, Candidate(source="sticky"))
            after = await ev.evaluate(TASK, Candidate(source="ok"))
            return first, spare, sticky, after, proc._spare.result(timeout=60).proc.pid
        finally:
            await ev.close()

    first, spare, sticky, after, next_spare = asyncio.run(go())
    assert "recycled" in sticky.warnings[-1]
    assert judge_pid(after) == spare != judge_pid(first)
    assert not alive(spare) and not alive(next_spare)


def test_a_dead_standby_is_replaced_by_a_fresh_judge(scripted):
    import os
    import signal

    async def go():
        ev = LocalEvaluator("scripted", cache=False, workers=1, standby=True)
        try:
            await ev.evaluate(TASK, Candidate(source="ok"))
            spare = ev._procs[0]._spare.result(timeout=60).proc.pid
            os.kill(spare, signal.SIGKILL)
            await ev.evaluate(TASK, Candidate(source="sticky"))
            return spare, await ev.evaluate(TASK, Candidate(source="ok"))
        finally:
            await ev.close()

    spare, after = asyncio.run(go())
    assert after.status == Status.OK and judge_pid(after) != spare, (after.error_kind, after.message, after.warnings)


def test_a_judge_killed_from_outside_while_idle_costs_the_next_candidate_nothing(scripted):
    import os
    import signal

    async def go():
        ev = LocalEvaluator("scripted", cache=False, workers=1, standby=False)
        try:
            first = await ev.evaluate(TASK, Candidate(source="ok"))
            os.kill(judge_pid(first), signal.SIGKILL)  # e.g. the OOM killer; may not have landed yet
            return first, await ev.evaluate(TASK, Candidate(source="ok"))
        finally:
            await ev.close()

    first, after = asyncio.run(go())
    assert after.status == Status.OK and judge_pid(after) != judge_pid(first), (after.error_kind, after.message)


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
