"""SFT and RL exports re-create exactly the steps an independent reading of the archives says they should."""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path

import pytest

from ksdk.export.rl import RewardConfig, export_rl, load_reward_config
from ksdk.export.sft import SftOptions, export_sft, split_tasks
from ksdk.models import source_hash
from ksdk.mutators.edits import apply_edits, parse_edit_blocks
from ksdk.mutators.prompts import render

from .runs import standard_run


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def raw_steps(run: Path):
    """Every attempt of a run straight from SQLite + JSON (no ksdk reader): (attempt id, parent, child, result)."""
    con = sqlite3.connect(run / "archive.sqlite")
    cands = {i: json.loads(c) for i, c in con.execute("SELECT id, candidate FROM candidates")}
    results = {i: json.loads(r) for i, r in con.execute("SELECT candidate_id, result FROM results")}
    out = []
    for aid, pid, cid, mut, err in con.execute(
            "SELECT id, parent_id, candidate_id, mutation, error FROM attempts ORDER BY id"):
        child = cands.get(cid) if cid else None
        if child and child["parent_ids"]:
            pid = child["parent_ids"][0]
        out.append((aid, cands.get(pid), results.get(pid), child, results.get(cid), json.loads(mut), err))
    con.close()
    return out


def ok(result) -> bool:
    return bool(result) and result["status"] == "ok" and result["stage"] in ("correctness", "performance")


def expected_sft(runs: list[Path], min_gain: float = 1.05) -> list[tuple[str, int]]:
    seen, keep = set(), []
    for run in runs:
        for aid, _parent, presult, child, cresult, _, _ in raw_steps(run):
            if not (child and ok(presult) and ok(cresult)):
                continue
            if not presult.get("speedup") or cresult.get("speedup") is None:
                continue
            if cresult["speedup"] / presult["speedup"] < min_gain:
                continue
            h = source_hash(child["source"])
            if h in seen:
                continue
            seen.add(h)
            keep.append((run.name, aid))
    return keep


@pytest.fixture
def three_runs(tmp_path) -> list[Path]:
    return [standard_run(tmp_path / "r1", "task_a", "cpu_c", "cpu0"),
            standard_run(tmp_path / "r2", "task_a", "triton_nvidia", "NVIDIA H100"),  # same programs again
            standard_run(tmp_path / "r3", "task_b", "triton_nvidia", "NVIDIA H100")]


def test_sft_recreates_exactly_the_kept_steps(three_runs, tmp_path):
    out = tmp_path / "out" / "data.jsonl"
    out.parent.mkdir()
    stats = export_sft(three_runs, out, options=SftOptions(val_fraction=0))
    recs = read_jsonl(out)
    assert [(r["run"], r["step"]) for r in recs] == expected_sft(three_runs)
    assert len(recs) == 8 and stats.dropped["duplicate program"] == 4  # r2 repeats r1's programs
    by_id = {}
    for run in three_runs:
        for aid, parent, _, child, _, mut, _ in raw_steps(run):
            by_id[(run.name, aid)] = (parent, child, mut)
    for r in recs:
        roles = [m["role"] for m in r["messages"]]
        assert roles == ["system", "user", "assistant"]
        parent, child, mut = by_id[(r["run"], r["step"])]
        answer = r["messages"][2]["content"]
        if mut.get("reply"):  # the LLM's own reply and prompt, verbatim
            assert answer == mut["reply"] and render(r["messages"][:2]) == mut["prompt"]
        else:  # a parameter step: edit blocks (applied by the LLM mutator's own code) that make the child
            assert r["reply_format"] == "edits"
            assert apply_edits(parent["source"], parse_edit_blocks(answer)).source == child["source"]
            assert parent["source"].rstrip() in r["messages"][1]["content"] and "SEARCH" in r["messages"][1]["content"]
        assert r["gain"] >= 1.05 and r["backend"] in ("cpu_c", "triton_nvidia") and r["device"]
    assert {(r["backend"], r["device"]) for r in recs} == {("cpu_c", "cpu0"), ("triton_nvidia", "NVIDIA H100")}
    card = (tmp_path / "out" / "data.card.md").read_text()
    assert "steps read: 42" in card and "records (train): 8" in card and "task_b" in card
    assert sorted(p.name for p in out.parent.iterdir()) == ["data.card.md", "data.jsonl"]


def test_min_gain_and_cap_per_task(three_runs, tmp_path):
    out = tmp_path / "d.jsonl"
    export_sft(three_runs, out, options=SftOptions(min_gain=1.4, val_fraction=0))
    assert [(r["run"], r["step"]) for r in read_jsonl(out)] == expected_sft(three_runs, 1.4)
    export_sft(three_runs, out, options=SftOptions(max_per_task=1, val_fraction=0))
    recs = read_jsonl(out)
    assert sorted(r["task"] for r in recs) == ["task_a", "task_b"]


def test_split_by_task_is_disjoint_and_seeded(tmp_path):
    runs = [standard_run(tmp_path / f"r{i}", f"task_{i}") for i in range(5)]
    out = tmp_path / "s.jsonl"
    stats = export_sft(runs, out, options=SftOptions(val_fraction=0.4, seed=7))
    train, val = read_jsonl(out), read_jsonl(tmp_path / "s.val.jsonl")
    train_tasks, val_tasks = {r["task"] for r in train}, {r["task"] for r in val}
    assert len(val_tasks) == 2 and len(train_tasks) == 3 and not train_tasks & val_tasks
    assert val_tasks == split_tasks([f"task_{i}" for i in range(5)], 0.4, 7)
    assert stats.written == {"train": len(train), "val": len(val)}
    first = out.read_bytes(), (tmp_path / "s.val.jsonl").read_bytes()
    export_sft(runs, out, options=SftOptions(val_fraction=0.4, seed=7))
    assert (out.read_bytes(), (tmp_path / "s.val.jsonl").read_bytes()) == first
    splits = {frozenset(split_tasks([f"t{i}" for i in range(10)], 0.3, s)) for s in range(6)}
    assert len(splits) > 1  # the seed matters


def test_rl_every_step_with_documented_reward(three_runs, tmp_path):
    out = tmp_path / "rl.jsonl"
    stats = export_rl(three_runs, out)
    recs = read_jsonl(out)
    # every attempt except: never evaluated (1 per run) and harness failure (1 per run, skipped by default)
    assert len(recs) == 42 - 3 - 3 and stats.dropped == {"no reward (pending)": 3, "no reward (infra)": 3}
    one = {r["step"]: r for r in recs if r["run"] == "r1"}
    cfg = RewardConfig()
    assert one[6]["outcome"] == "malformed" and one[6]["reward"] == cfg.malformed
    assert one[6]["completion"] == [{"role": "assistant", "content": "no code here"}]
    assert one[6]["error"] == "reply had no code block"
    assert one[6]["child_result"] is None and one[6]["parent_result"]["status"] == "ok"
    assert one[5]["outcome"] == "build_failed" and one[5]["reward"] == cfg.base
    assert one[4]["outcome"] == "incorrect" and one[4]["reward"] == cfg.base + cfg.compiled
    assert one[1]["reward"] == pytest.approx(cfg.base + cfg.compiled + cfg.correct + math.log2(1.5))
    assert one[12]["reward"] == pytest.approx(cfg.base + cfg.compiled + cfg.correct + cfg.repair)  # fixed a bug
    assert one[14]["outcome"] == "duplicate" and one[14]["reward"] == cfg.duplicate
    assert "## Current program" in one[1]["prompt"][1]["content"] and one[1]["child_result"]["speedup"] == 1.5


def test_reward_config_file(three_runs, tmp_path):
    f = tmp_path / "reward.toml"
    f.write_text("malformed = -3.0\ngain = 0.0\ninfra = 0.0\n")
    cfg = load_reward_config(f)
    recs = read_jsonl(tmp_path / "x.jsonl") if export_rl(three_runs, tmp_path / "x.jsonl", reward_config=cfg) else []
    assert {r["reward"] for r in recs if r["outcome"] == "malformed"} == {-3.0}
    assert sum(r["outcome"] == "infra" for r in recs) == 3
    bad = tmp_path / "bad.json"
    bad.write_text('{"malformd": 1}')
    with pytest.raises(Exception, match="malformd"):
        load_reward_config(bad)


def test_parquet_matches_jsonl(three_runs, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    export_sft(three_runs, tmp_path / "a.jsonl", options=SftOptions(val_fraction=0))
    export_sft(three_runs, tmp_path / "a.parquet", fmt="parquet", options=SftOptions(val_fraction=0))
    assert pq.read_table(tmp_path / "a.parquet").to_pylist() == read_jsonl(tmp_path / "a.jsonl")
    export_rl(three_runs, tmp_path / "b.parquet", fmt="parquet")
    rows = pq.read_table(tmp_path / "b.parquet").to_pylist()
    assert len(rows) == 36 and json.loads(rows[0]["child_result"])["status"] == "ok"
