"""RayEvaluator on a local CPU Ray instance: verdicts, custom resources, actor recycling, friendly errors."""

from __future__ import annotations

import asyncio
import json
import sys

import pytest

import toy_backend as toy
from ray_toy_env import toy_environment
from ksdk.errors import KsdkError, PluginError
from ksdk.models import Candidate, ErrorKind
from ksdk.registry import load
from ksdk.tasks import task_from_source

ray = pytest.importorskip("ray")
from ksdk.cluster.ray import RayEvaluator  # noqa: E402


def cand(source: str) -> Candidate:
    return Candidate(source=source, language="toy_py")


TASK = task_from_source("toy", toy.TASK_SOURCE)


@pytest.fixture(scope="module")
def local_ray(ray_toy_site, tmp_path_factory):
    ledger = tmp_path_factory.mktemp("ledger") / "ledger"
    with toy_environment(ray_toy_site, ledger):
        ray.init(address="local", num_cpus=2, resources={"toy": 2}, include_dashboard=False, log_to_driver=False)
    yield ledger
    ray.shutdown()


@pytest.fixture
def evaluator(local_ray):
    ev = RayEvaluator("toy_py", resources={"toy": 1})
    yield ev
    asyncio.run(ev.close())


def run_all(ev, cands):
    async def go():
        return await asyncio.gather(*(ev.evaluate(TASK, c) for c in cands))

    return asyncio.run(go())


def test_actors_fill_the_custom_resource_and_return_verdicts(evaluator, local_ray):
    assert evaluator.workers == 2  # the cluster has toy=2 and each actor asks for toy=1
    info = evaluator.info()
    assert info.backend == "toy_py" and info.workers == 2 and info.versions == {"toy_py": "0.0.1"}
    assert evaluator.hints() == "toy hints: numpy only" and evaluator.info().language.name == "toy_py"
    cands = [cand(toy.GOOD.format(n=i) + f"tag = {i}\n") for i in range(3)] + [cand(toy.WRONG)]
    results = run_all(evaluator, cands)
    assert [r.candidate_id for r in results] == [c.id for c in cands]
    assert [r.correct for r in results] == [True, True, True, False]
    assert results[-1].error_kind == ErrorKind.VALUE
    assert {c.id for c in cands} <= set(toy.read_ledger(local_ray))  # really evaluated by the backend
    assert len({p["pid"] for p in evaluator.placement()}) == 2


def test_sticky_device_error_replaces_the_actor(evaluator):
    _ = evaluator.workers  # starts the actors
    before = {p["pid"] for p in evaluator.placement()}
    sticky, crash = run_all(evaluator, [cand(toy.STICKY), cand(toy.CRASH)])
    assert sticky.error_kind == ErrorKind.DEVICE_FAULT
    assert any("Ray actor replaced" in w for w in sticky.warnings)
    assert crash.error_kind == ErrorKind.CRASH  # a crash is the worker's problem: the actor stays
    assert evaluator.recycled == 1
    after = {p["pid"] for p in evaluator.placement()}
    assert len(after - before) == 1
    assert all(r.correct for r in run_all(evaluator, [cand(toy.GOOD.format(n=20)), cand(toy.GOOD.format(n=21))]))


def test_a_dead_actor_is_replaced_and_the_candidate_retried_once(evaluator):
    _ = evaluator.workers  # starts the actors
    for h in evaluator._handles:
        ray.kill(h, no_restart=True)
    r = run_all(evaluator, [cand(toy.GOOD.format(n=30))])[0]
    assert r.correct and any("fresh Ray actor" in w for w in r.warnings)
    assert evaluator.recycled == 1


def test_missing_resources_are_named(local_ray):
    ev = RayEvaluator("toy_py", num_gpus=1)
    with pytest.raises(KsdkError, match=r"offers no \{'GPU': 1.0\}.*ray start --num-gpus=1"):
        _ = ev.workers


def test_registered_under_evaluators_and_friendly_without_ray(monkeypatch):
    assert load("evaluators", "ray") is RayEvaluator
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(PluginError, match=r'pip install "ksdk\[ray\]"'):
        RayEvaluator("toy_py")


def test_a_bench_runs_its_problems_on_ray_actors_asking_for_the_resources_given(local_ray, tmp_path):
    from ksdk.cli.main import main

    suite, cands = tmp_path / "suite" / "level1", tmp_path / "cands"
    suite.mkdir(parents=True)
    cands.mkdir()
    for i in (1, 2, 3):
        (suite / f"{i}_toy.py").write_text(toy.TASK_SOURCE)
    (cands / "1_toy.py").write_text(toy.GOOD.format(n=1))
    (cands / "2_toy.py").write_text(toy.WRONG)  # 3_toy has no candidate
    out = tmp_path / "out"
    args = ["bench", str(suite.parent), "--candidates", str(cands), "-b", "toy_py", "--ray", "--out", str(out), "-q"]
    assert main(args + ["--ray-resource", "toy"]) == 2  # no amount: refused before anything starts
    assert not out.exists()
    assert main(args + ["--ray-resource", "toy=1"]) == 0
    records = {r["id"]: r for r in json.loads((out / "summary.json").read_text())["records"]}
    assert {k: r["verdict"] for k, r in records.items()} == {
        "level1/1_toy": "correct", "level1/2_toy": "incorrect", "level1/3_toy": "no candidate"}
    assert records["level1/1_toy"]["where"] == records["level1/2_toy"]["where"] == "ray local"
    assert records["level1/1_toy"]["speedup"] > 0
