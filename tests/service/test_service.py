"""The evaluation service over real HTTP: verdicts, auth, limits, back-pressure, jobs, idempotency, restarts."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time

import httpx
import pytest

import toy_backend as toy
from ksdk.models import Candidate, ErrorKind, Status, StageTimeouts
from ksdk.service.client import ServiceError, ServiceEvaluator
from ksdk.service.jobs import job_id_for
from ksdk.service.models import EvaluateRequest, idempotency_key
from ksdk.service.store import VerdictStore
from ksdk.tasks import task_from_source


def task(**settings):
    return task_from_source("toy", toy.TASK_SOURCE, **settings)


def cand(source: str, **kw) -> Candidate:
    return Candidate(source=source, language="toy_py", **kw)


def run(coro):
    return asyncio.run(coro)


async def evaluate_all(ev: ServiceEvaluator, t, cands):
    try:
        return await asyncio.gather(*(ev.evaluate(t, c) for c in cands))
    finally:
        await ev.close()


def wait_state(svc, jid: str, states: set[str], timeout: float = 30.0) -> dict:
    """Long-poll the job until it reaches one of `states`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = httpx.get(f"{svc.url}/jobs/{jid}", params={"wait": 0.2}, headers=auth(svc), timeout=10)
        if r.status_code == 200 or r.status_code == 202:
            body = r.json()
            if body["state"] in states:
                return body
    raise AssertionError(f"job {jid} never reached {states}")


def auth(svc) -> dict:
    h = {"content-type": "application/json"}
    return h | ({"authorization": f"Bearer {svc.token}"} if svc.token else {})


def test_health_is_open_and_info_needs_the_token(shared_service):
    svc = shared_service
    assert httpx.get(f"{svc.url}/health").json()["status"] == "ok"
    r = httpx.get(f"{svc.url}/info")
    assert r.status_code == 401 and "bearer token" in r.json()["detail"]
    info = httpx.get(f"{svc.url}/info", headers=auth(svc)).json()
    assert info["backend"] == "toy_py" and info["workers"] == 2 and info["auth"] is True
    assert info["language"]["name"] == "toy_py" and info["hints"] == "toy hints: numpy only"
    assert info["availability"]["devices"][0]["name"] == "toy-cpu"


def test_verdicts_through_the_service_evaluator(shared_service):
    svc = shared_service
    ev = ServiceEvaluator(svc.url, token=svc.token, backend="toy_py")
    assert ev.workers == 2 and ev.info().backend == "toy_py" and ev.info().language.name == "toy_py"
    good, wrong = cand(toy.GOOD.format(n=1)), cand(toy.WRONG)
    r_good, r_wrong = run(evaluate_all(ev, task(), [good, wrong]))
    assert r_good.correct and r_good.candidate_id == good.id and r_good.speedup is not None
    assert r_good.versions.get("toy_py") == "0.0.1"
    assert not r_wrong.correct and r_wrong.error_kind == ErrorKind.VALUE and r_wrong.candidate_id == wrong.id


def test_token_errors_say_what_to_do(shared_service, monkeypatch):
    svc = shared_service
    monkeypatch.delenv("KSDK_SERVICE_TOKEN", raising=False)
    monkeypatch.delenv("KSDK_SERVICE_TOKEN_FILE", raising=False)
    with pytest.raises(ServiceError, match="needs a token and none was given: set KSDK_SERVICE_TOKEN"):
        ServiceEvaluator(svc.url).info()
    with pytest.raises(ServiceError, match=r"rejected the token \(wrong token"):
        run(evaluate_all(ServiceEvaluator(svc.url, token="nope"), task(), [cand(toy.GOOD.format(n=2))]))
    monkeypatch.setenv("KSDK_SERVICE_TOKEN_FILE", str(svc.state_dir / "token"))
    assert ServiceEvaluator(svc.url).workers == 2
    with pytest.raises(ServiceError, match="runs backend 'toy_py', not 'cpu_c': ask for --backend toy_py"):
        ServiceEvaluator(svc.url, backend="cpu_c").info()
    with pytest.raises(ServiceError, match="must start with http"):
        ServiceEvaluator("127.0.0.1:1")


def test_request_size_limit(start_service):
    svc = start_service("--max-request-bytes", "2048")
    body = EvaluateRequest(task=task(), candidate=cand("# " + "x" * 4000 + "\n" + toy.GOOD.format(n=3)))
    r = httpx.post(f"{svc.url}/evaluate", content=body.model_dump_json(), headers=auth(svc))
    assert r.status_code == 413 and "--max-request-bytes" in r.json()["detail"]
    data = body.model_dump_json().encode()
    chunked = httpx.post(f"{svc.url}/evaluate", content=iter([data[:1000], data[1000:]]), headers=auth(svc))
    assert chunked.status_code == 413  # no Content-Length: counted while read
    res = run(evaluate_all(ServiceEvaluator(svc.url, token=svc.token), task(), [body.candidate]))[0]
    assert res.status == Status.INFRA_ERROR and "over this service's limit of 2048 bytes" in res.message


def test_full_queue_answers_429_with_retry_after_and_the_client_waits(start_service):
    svc = start_service("--workers", "1", "--queue-size", "0")
    slow = EvaluateRequest(task=task(), candidate=cand(toy.SLOW.format(s=1.5)), idempotency_key="slow-1")
    r = httpx.post(f"{svc.url}/jobs", content=slow.model_dump_json(), headers=auth(svc))
    assert r.status_code == 202 and r.headers["location"] == f"/jobs/{job_id_for('slow-1')}"
    other = EvaluateRequest(task=task(), candidate=cand(toy.GOOD.format(n=4)), idempotency_key="other")
    r = httpx.post(f"{svc.url}/evaluate", content=other.model_dump_json(), headers=auth(svc))
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1 and "queue is full" in r.json()["detail"]
    t0 = time.monotonic()
    res = run(evaluate_all(ServiceEvaluator(svc.url, token=svc.token), task(), [other.candidate]))[0]
    assert res.correct and time.monotonic() - t0 < 30
    assert wait_state(svc, job_id_for("slow-1"), {"done"})["result"]["status"] == "ok"


def test_long_evaluations_become_jobs_the_client_polls(shared_service):
    svc = shared_service
    req = EvaluateRequest(task=task(), candidate=cand(toy.SLOW.format(s=0.5)), idempotency_key="poll-me", wait_s=0)
    r = httpx.post(f"{svc.url}/evaluate", content=req.model_dump_json(), headers=auth(svc))
    assert r.status_code == 202 and r.json()["state"] in ("queued", "running")
    done = httpx.get(f"{svc.url}/jobs/{r.json()['id']}", params={"wait": 30}, headers=auth(svc)).json()
    assert done["state"] == "done" and done["result"]["status"] == "ok"
    assert httpx.get(f"{svc.url}/jobs/nope", headers=auth(svc)).status_code == 404
    # The client, told to hold requests only briefly, goes through a job and polls it.
    ev = ServiceEvaluator(svc.url, token=svc.token, wait_s=0.05)
    assert run(evaluate_all(ev, task(), [cand(toy.SLOW.format(s=0.4))]))[0].correct


def test_same_key_is_evaluated_once_and_a_reused_key_is_refused(shared_service):
    svc = shared_service
    c = cand(toy.GOOD.format(n=5))
    before = toy.read_ledger(svc.ledger).count(c.id)
    req = EvaluateRequest(task=task(), candidate=c, idempotency_key="once")
    answers = [httpx.post(f"{svc.url}/evaluate", content=req.model_dump_json(), headers=auth(svc), timeout=30)
               for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert {a.json()["candidate_id"] for a in answers} == {c.id}
    assert toy.read_ledger(svc.ledger).count(c.id) - before == 1
    other = EvaluateRequest(task=task(), candidate=cand(toy.WRONG), idempotency_key="once")
    r = httpx.post(f"{svc.url}/evaluate", content=other.model_dump_json(), headers=auth(svc))
    assert r.status_code == 409 and "already used" in r.json()["detail"]


def test_stage_timeouts_are_capped_by_the_service(start_service):
    svc = start_service("--max-stage-timeout", "1", "--no-auth")
    t = task(timeouts=StageTimeouts(correctness=300))
    res = run(evaluate_all(ServiceEvaluator(svc.url), t, [cand(toy.SLOW.format(s=30))]))[0]
    assert res.error_kind == ErrorKind.TIMEOUT and "1 s limit" in res.message


def test_a_restarted_service_replays_stored_verdicts(start_service, tmp_path):
    svc = start_service("--no-auth")
    c = cand(toy.GOOD.format(n=6))
    first = run(evaluate_all(ServiceEvaluator(svc.url), task(), [c]))[0]
    svc.kill()  # SIGKILL: no clean shutdown
    svc.start()
    again = run(evaluate_all(ServiceEvaluator(svc.url), task(), [c]))[0]
    assert again.model_dump() == first.model_dump()
    assert toy.read_ledger(svc.ledger).count(c.id) == 1
    key = idempotency_key(task(), c, "toy_py")
    job = httpx.get(f"{svc.url}/jobs/{job_id_for(key)}").json()  # found by id in the store after the restart
    assert job["state"] == "done" and job["replayed"] is True
    assert httpx.get(f"{svc.url}/info").json()["replayed"] >= 1


def test_kill_mid_evaluation_the_driver_retries_and_gets_one_verdict(start_service):
    svc = start_service("--no-auth", "--workers", "1")
    c = cand(toy.SLOW.format(s=1.0))
    key = idempotency_key(task(), c, "toy_py")

    async def scenario():
        ev = ServiceEvaluator(svc.url, backoff_s=0.1)
        pending = asyncio.create_task(ev.evaluate(task(), c))
        await asyncio.to_thread(wait_state, svc, job_id_for(key), {"running"})
        await asyncio.to_thread(svc.kill)  # killed while the candidate runs
        await asyncio.to_thread(svc.start)
        try:
            return await pending
        finally:
            await ev.close()

    res = run(scenario())
    assert res.correct and res.candidate_id == c.id
    store = VerdictStore(svc.state_dir / "verdicts.sqlite")
    assert store.evaluation_counts() == {key: 1}  # one verdict recorded, though the first run was cut short
    store.close()


def test_cli_eval_through_the_service_and_serve_flags(start_service, tmp_path, toy_site):
    svc = start_service()
    (tmp_path / "task.py").write_text(toy.TASK_SOURCE)
    (tmp_path / "cand.py").write_text(toy.GOOD.format(n=7))
    env = toy.env_with(toy_site, KSDK_SERVICE_TOKEN_FILE=str(svc.state_dir / "token"))
    out = subprocess.run([sys.executable, "-m", "ksdk", "eval", str(tmp_path / "task.py"), str(tmp_path / "cand.py"),
                          "--backend", "toy_py", "--evaluator", svc.url, "--json"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert '"status": "ok"' in out.stdout
    bad = subprocess.run([sys.executable, "-m", "ksdk", "serve", "--backend", "toy_py", "--no-auth",
                          "--token-file", str(tmp_path / "t")], capture_output=True, text=True, timeout=60,
                         env=toy.env_with(toy_site))
    assert bad.returncode == 2 and "contradict" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def test_binding_beyond_loopback_without_auth_warns_loudly(start_service):
    svc = start_service("--no-auth", "--host", "0.0.0.0")
    text = "".join(svc.lines)
    assert "WARNING: serving on 0.0.0.0 WITHOUT AUTHENTICATION" in text and "auth OFF" in text


def test_cli_evolve_through_two_services(start_service, tmp_path, toy_site):
    """`ksdk evolve --evaluator URL1,URL2`: the params mutator tunes a constant, every verdict from the services."""
    a = start_service("--no-auth", state_dir=tmp_path / "a")
    b = start_service("--no-auth", state_dir=tmp_path / "b")
    (tmp_path / "task.py").write_text(toy.TASK_SOURCE)
    seed = tmp_path / "seed.py"
    seed.write_text("SCALE = 1.5  # ksdk:tune [1.0, 1.5, 2.0, 2.5]\n"
                    "class ModelNew:\n    def forward(self, x):\n        return x * SCALE + 1.0\n")
    out = subprocess.run([sys.executable, "-m", "ksdk", "evolve", str(tmp_path / "task.py"), "--backend", "toy_py",
                          "--mutator", "params", "--seed", str(seed), "--max-candidates", "4", "--quiet",
                          "--retime-rounds", "0",  # the search's verdicts only: each program evaluated once
                          "--evaluator", f"{a.url},{b.url}", "--out", str(tmp_path / "run")],
                         capture_output=True, text=True, timeout=240, env=toy.env_with(toy_site))
    assert out.returncode == 0, out.stderr
    best = (tmp_path / "run" / "best.py").read_text()
    assert "SCALE = 2.0" in best  # the only correct value, found through the services
    evaluated = [line.split()[0] for line in (tmp_path / "ledger").read_text().splitlines()]
    assert len(evaluated) >= 2 and len(evaluated) == len(set(evaluated))


def test_cli_evolve_one_task_on_two_backends(start_service, tmp_path, toy_site):
    """Two services of two backends named in one `ksdk evolve`: the task evolves on each, into RUN_DIR/<backend>."""
    a = start_service("--no-auth", state_dir=tmp_path / "a")
    b = start_service("--no-auth", state_dir=tmp_path / "b", backend="toy_py_other")
    (tmp_path / "task.py").write_text(toy.TASK_SOURCE)
    seed = tmp_path / "seed.py"
    seed.write_text("SCALE = 1.5  # ksdk:tune [1.0, 1.5, 2.0, 2.5]\n"
                    "class ModelNew:\n    def forward(self, x):\n        return x * SCALE + 1.0\n")
    out = subprocess.run([sys.executable, "-m", "ksdk", "evolve", str(tmp_path / "task.py"), "--mutator", "params",
                          "--seed", str(seed), "--max-candidates", "4", "--quiet", "--evaluator", a.url,
                          "--retime-rounds", "0", "--evaluator", b.url, "--out", str(tmp_path / "run")],
                         capture_output=True, text=True, timeout=240, env=toy.env_with(toy_site))
    assert out.returncode == 0, out.stderr
    for backend in ("toy_py", "toy_py_other"):
        run = tmp_path / "run" / backend
        assert "SCALE = 2.0" in (run / "best.py").read_text()
        assert json.loads((run / "run.json").read_text())["backend"] == backend
        assert backend + ":" in out.stdout
    again = subprocess.run([sys.executable, "-m", "ksdk", "evolve", str(tmp_path / "task.py"), "--mutator", "params",
                            "--seed", str(seed), "--evaluator", a.url, "--evaluator", a.url, "--out",
                            str(tmp_path / "run2")], capture_output=True, text=True, timeout=120,
                           env=toy.env_with(toy_site))
    assert again.returncode == 2 and "one comma-separated pool" in again.stderr
