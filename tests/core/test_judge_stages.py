"""The judge's stages with the candidate played in-process (tests/core/judgekit.py): what each stage decides, fast."""

import torch
from judgekit import honest, judge

from ksdk.models import ErrorKind, Stage, Status


def test_an_honest_candidate_is_correct_and_timed_by_the_judges_clock():
    r, proc = judge()
    assert r.status == Status.OK and r.stage == Stage.PERFORMANCE, (r.error_kind, r.message)
    assert "judge's clock" in r.candidate_timing.method and r.speedup_ci[0] <= r.speedup <= r.speedup_ci[1]
    assert {"correctness", "performance", "candidate timing", "baseline timing", "checks"} <= set(r.stages)


def test_the_candidate_runs_only_while_it_serves_a_request():
    """Every request is preceded by a thaw and followed by a freeze (the judge writes inputs, compares and times the
    baseline with the candidate's processes stopped)."""
    _r, proc = judge()
    ops = proc.events
    for i, op in enumerate(ops):
        if op not in ("thaw", "freeze"):
            assert ops[i - 1] == "thaw" and ops[i + 1] == "freeze", ops[max(0, i - 3):i + 3]


def test_wrong_values_fail_correctness():
    r, _ = judge(lambda n, x: [honest(n, x)[0] + 0.5])
    assert r.status == Status.FAILED and r.stage == Stage.CORRECTNESS and r.error_kind == ErrorKind.VALUE


def test_writing_into_the_inputs_is_output_aliasing():
    def scribble(n, x):
        out = honest(n, x)
        x[0].zero_()
        return out

    r, _ = judge(scribble)
    assert r.error_kind == ErrorKind.ALIASING, (r.error_kind, r.message)


def test_returning_the_previous_call_s_values_is_caught_as_a_cache():
    seen = {}

    def cached(n, x):
        if "out" not in seen:
            seen["out"] = honest(n, x)[0].clone()
        return [seen["out"]]

    r, _ = judge(cached)
    assert r.error_kind == ErrorKind.REWARD_HACK and "cached" in r.message, (r.error_kind, r.message)


def test_skipping_work_in_the_timed_batch_is_caught():
    def lazy(n, x):
        return [None] if n > 8 and n % 2 else honest(n, x)  # after correctness, every other call writes nothing

    r, _ = judge(lazy)
    assert r.error_kind == ErrorKind.REWARD_HACK and "left outputs unwritten" in r.message, (r.error_kind, r.message)


def test_wrong_work_in_the_timed_batch_is_caught():
    def wrong_later(n, x):
        return [torch.zeros_like(x[0])] if n > 8 else honest(n, x)

    r, _ = judge(wrong_later)
    assert r.error_kind == ErrorKind.REWARD_HACK and "returned a wrong output" in r.message, (r.error_kind, r.message)


def test_the_stage_breakdown_adds_up_to_about_the_evaluation():
    r, _ = judge()
    total = sum(r.stages[s] for s in ("load", "compile", "correctness", "performance") if s in r.stages)
    assert total > 0 and all(v >= 0 for v in r.stages.values())
