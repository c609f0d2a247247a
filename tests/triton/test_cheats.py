"""Every reward-hacking trick under tests/triton/cheats/ is rejected with ErrorKind.REWARD_HACK (CPU, interpreter)."""

from __future__ import annotations

import pytest

from ksdk.models import ErrorKind, Status

from tritonkit import HERE, evaluate_all, small_task

CHEATS = HERE / "cheats"
GPU_ONLY = {"lazy_when_timed", "hidden_side_stream"}  # need the performance stage, i.e. a GPU
CPU_CHEATS = sorted(p.stem for p in CHEATS.glob("*.py") if p.stem not in GPU_ONLY)


@pytest.fixture(scope="module")
def verdicts():
    task = small_task()
    return evaluate_all({name: (task, (CHEATS / f"{name}.py").read_text()) for name in CPU_CHEATS}, interpret=True)


# Tricks aimed at the reference, which lives only in the judge's process: they cannot reach it, so the candidate
# simply computes wrong values (or is caught patching torch on the way).
AIMED_AT_THE_REFERENCE = {"patch_reference_weights"}


@pytest.mark.parametrize("name", CPU_CHEATS)
def test_cheat_rejected_as_reward_hack(verdicts, name):
    r = verdicts[name]
    assert r.status == Status.FAILED, f"{name} passed: {r.message}"
    allowed = {ErrorKind.REWARD_HACK, ErrorKind.VALUE} if name in AIMED_AT_THE_REFERENCE else {ErrorKind.REWARD_HACK}
    assert r.error_kind in allowed, (name, r.stage, r.error_kind, r.message)
    assert r.message and r.speedup is None


def test_each_trick_is_documented_in_its_file():
    for path in CHEATS.glob("*.py"):
        assert path.read_text().startswith('"""Trick'), f"{path.name} must start with a docstring naming its trick"
