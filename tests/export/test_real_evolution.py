"""A real short evolution on the cpu_c example backend (parameter and scripted-LLM mutators), then exported."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from ksdk.export.rl import export_rl
from ksdk.export.sft import SftOptions, export_sft
from ksdk.models import TimingSettings
from ksdk.mutators.edits import apply_edits, parse_edit_blocks

from .test_export import expected_sft, raw_steps, read_jsonl

pytest.importorskip("ksdk_cpu_example")
QUICKSTART = Path(__file__).resolve().parents[2] / "examples" / "quickstart"

EDIT = ("<<<<<<< SEARCH\n#define LOOP_IKJ 0   // ksdk:tune [0, 1]\n=======\n"
        "#define LOOP_IKJ 1   // ksdk:tune [0, 1]\n>>>>>>> REPLACE\n")


@pytest.fixture(scope="module")
def evolved(tmp_path_factory):
    from ksdk.evolution.api import evolve_async, make_evaluator
    from ksdk.tasks import load_task
    from ksdk.testing.scripted_llm import ScriptedLLM

    root = tmp_path_factory.mktemp("evolved")
    task = load_task(QUICKSTART / "matmul.py", correctness_trials=1,
                     timing=TimingSettings(warmup=1, repetitions=3, min_time_ms=0, max_repetitions=3))
    seed = (QUICKSTART / "matmul_seed.c").read_text()
    changed = seed.replace("x < M * N; x++)", "x < M * N; x += 1)").replace("#define LOOP_IKJ 0", "#define LOOP_IKJ 1")
    full = "```c\n" + changed + "```"
    replies = [EDIT, "I cannot help with that.", full, "```c\nint broken(\n```"]

    async def go():
        ev = make_evaluator("cpu_c", None, 1)
        try:
            # the search's figures only: gains from re-timed runs are tests/evolution/test_verified_best.py's
            common = dict(backend=ev, max_candidates=5, progress=False, handle_signals=False, mutation_concurrency=1,
                          retime_rounds=0)
            await evolve_async(task, mutator="params", out=root / "params", **{**common, "max_candidates": 4})
            with ScriptedLLM(replies) as llm:
                await evolve_async(task, mutator="llm", model="openai/scripted", api_base=llm.url,
                                   api_key="test", mutator_options={"reply_format": "auto"},
                                   out=root / "llm", **common)
        finally:
            await ev.close()

    asyncio.run(go())
    return [root / "params", root / "llm"]


@pytest.mark.slow  # two real (short) evolutions: about 15 s on an idle 2-core machine
def test_export_of_a_real_run_recreates_the_kept_steps(evolved, tmp_path):
    out = tmp_path / "sft.jsonl"
    export_sft(evolved, out, options=SftOptions(min_gain=1.0, val_fraction=0))
    recs = read_jsonl(out)
    assert [(r["run"], r["step"]) for r in recs] == expected_sft(evolved, 1.0)
    sources = {(run.name, aid): (p, c) for run in evolved for aid, p, _, c, _, _, _ in raw_steps(run)}
    for r in recs:  # every revision, applied to its parent by the mutator's own code, gives the child
        parent, child = sources[(r["run"], r["step"])]
        answer = r["messages"][-1]["content"]
        if r["reply_format"] == "edits":
            assert apply_edits(parent["source"], parse_edit_blocks(answer)).source == child["source"]
        assert r["backend"] == "cpu_c" and r["device"] != "unknown"

    rl = tmp_path / "rl.jsonl"
    export_rl(evolved, rl)
    recs = read_jsonl(rl)
    llm = [r for r in recs if r["run"] == "llm"]
    assert {r["outcome"] for r in llm} >= {"malformed", "build_failed", "correct"}
    bad = next(r for r in llm if r["outcome"] == "malformed")
    assert bad["completion"][0]["content"] == "I cannot help with that." and "unusable reply" in bad["error"]
    assert len([r for r in recs if r["run"] == "params"]) == len(raw_steps(evolved[0]))
    assert all(isinstance(r["reward"], float) for r in recs)
    assert json.loads(json.dumps(recs[0]["parent_result"]))["status"] == "ok"
