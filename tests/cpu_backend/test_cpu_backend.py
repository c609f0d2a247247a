"""cpu_c behaviour beyond the conformance kit: crashes, line mapping, poisoned outputs, const inputs, weights."""

import asyncio
from pathlib import Path

import numpy as np
import pytest

import cpu_c_cases as cases
from ksdk.models import Candidate, ErrorKind, Stage, Status
from ksdk.tasks import load_task, task_from_source

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "examples" / "quickstart"

# Evaluated in this order by one LocalEvaluator (one worker): CRASH kills it, GOOD_AFTER_CRASH must still pass.
ORDER = ["crash", "good_after_crash", "broken_compile", "skips_output", "writes_input", "wrong_signature",
         "scale_good", "seed", "tuned"]


def _tuned_seed() -> str:
    from ksdk.mutators.tunables import apply_tunables

    return apply_tunables((QUICKSTART / "matmul_seed.c").read_text(),
                          {"LOOP_IKJ": 1, "BLOCK_I": 32, "BLOCK_J": 128, "BLOCK_K": 64, "UNROLL_J": 4})


@pytest.fixture(scope="module")
def verdicts():
    from ksdk.evaluation.local import LocalEvaluator

    add = task_from_source("vector_add", cases.ADD_TASK)
    scale = task_from_source("scale_sum", cases.SCALE_TASK)
    mm = load_task(QUICKSTART / "matmul.py", correctness_trials=1)
    mm.timing.repetitions, mm.timing.max_repetitions = 3, 3
    work = {
        "crash": (add, cases.CRASH), "good_after_crash": (add, cases.GOOD),
        "broken_compile": (add, cases.BROKEN_COMPILE), "skips_output": (add, cases.SKIPS_OUTPUT),
        "writes_input": (add, cases.WRITES_INPUT), "wrong_signature": (add, cases.WRONG_SIGNATURE),
        "scale_good": (scale, cases.SCALE_GOOD),
        "seed": (mm, (QUICKSTART / "matmul_seed.c").read_text()), "tuned": (mm, _tuned_seed()),
    }

    async def go():
        ev = LocalEvaluator("cpu_c", cache=False)
        try:
            out = {}
            for key in ORDER:
                task, src = work[key]
                out[key] = await ev.evaluate(task, Candidate(source=src, language="c"))
            return out
        finally:
            await ev.close()

    return asyncio.run(go())


def test_segfault_is_a_crash_verdict_and_the_next_candidate_is_fine(verdicts):
    r = verdicts["crash"]
    assert (r.status, r.stage, r.error_kind) == (Status.FAILED, Stage.CORRECTNESS, ErrorKind.CRASH)
    assert "SIGSEGV" in r.message
    assert verdicts["good_after_crash"].status == Status.OK


def test_compile_error_points_at_the_candidate_line(verdicts):
    r = verdicts["broken_compile"]
    assert (r.stage, r.error_kind, r.line) == (Stage.COMPILE, ErrorKind.COMPILE, 5)
    assert "candidate.c:5" in r.message and "/tmp" not in r.message


def test_an_output_element_left_unwritten_is_caught_by_the_poison(verdicts):
    r = verdicts["skips_output"]
    assert (r.stage, r.error_kind) == (Stage.CORRECTNESS, ErrorKind.NAN_INF)
    assert "4095" in r.message


def test_writing_into_a_const_input_fails(verdicts):
    r = verdicts["writes_input"]
    assert (r.stage, r.error_kind) == (Stage.CORRECTNESS, ErrorKind.ALIASING)
    assert "input" in r.message


def test_a_definition_with_other_types_is_a_compile_error_naming_the_prototype(verdicts):
    r = verdicts["wrong_signature"]
    assert (r.stage, r.error_kind) == (Stage.COMPILE, ErrorKind.COMPILE)
    assert "void kernel(const float* in0, const float* in1, float* out0, long in0_d0, long in1_d0);" in r.message


def test_weights_and_python_scalars_follow_the_convention(verdicts):
    r = verdicts["scale_good"]
    assert r.status == Status.OK, r.message
    assert r.baseline.startswith("PyTorch eager (the task's Model) on the CPU, 1 thread")  # no C_BASELINE in that task


def test_quickstart_seed_and_a_tuned_variant_are_correct_and_timed(verdicts):
    for key in ("seed", "tuned"):
        r = verdicts[key]
        assert r.status == Status.OK and r.stage == Stage.PERFORMANCE, (key, r.message)
        assert "C_BASELINE" in r.baseline and r.extra_baselines
        assert np.isfinite(r.speedup) and r.speedup > 0
        assert r.device.kind == "cpu" and r.versions["cc"]
        assert r.kernels[0].name == "matmul" and r.kernels[0].extra["object_bytes"] > 0
