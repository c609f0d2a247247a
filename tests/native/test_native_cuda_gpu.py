"""On an NVIDIA GPU: the cuda_nvidia backend passes the conformance kit and gives the right verdicts."""

from __future__ import annotations

import asyncio

import pytest

from ksdk.models import Candidate, ErrorKind, Stage, Status
from ksdk.tasks import task_from_source
from ksdk.testing.conformance import BackendConformance, Case
from nativekit import vector_add_task

pytestmark = pytest.mark.gpu

CUDA_VECTOR_ADD = r"""
/* ksdk:launch
{"kernel": "vector_add", "grid": ["cdiv(n, BLOCK)"], "block": ["BLOCK"],
 "scalars": [{"name": "n", "type": "int64", "value": "in0.numel"}]}
*/
#define BLOCK 256 // ksdk:tune [128, 256, 512, 1024]
extern "C" __global__ void vector_add(const float* __restrict__ a, const float* __restrict__ b,
                                      float* __restrict__ out, long long n) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = %(body)s;
}
"""


def cuda(body: str = "a[i] + b[i]") -> str:
    return CUDA_VECTOR_ADD % {"body": body}


# The naive baseline: one thread per element, no __restrict__ (speedups are measured against it).
BASELINE = cuda().replace("vector_add", "vector_add_naive").replace(" __restrict__", "")
# Correct but slow: every thread re-reads its inputs 64 times through a volatile pointer.
SLOW = cuda("a[i] + b[i]").replace(
    "if (i < n) out[i] = a[i] + b[i];",
    "if (i < n) { float s = 0.f; for (int k = 0; k < 64; k++) s += ((volatile const float*)a)[i] + b[i];"
    " out[i] = s / 64.f; }")
OUT_OF_BOUNDS = cuda("a[i + (1LL << 40)] + b[i]")
HANG = cuda("a[i] + b[i]").replace(
    "if (i < n)", "if (i == 0) { long long t0 = clock64(); while (clock64() - t0 < 40000000000LL) {} }\n    if (i < n)")
N = 1 << 22


class TestCudaNvidiaConformance(BackendConformance):
    backend = "cuda_nvidia"

    def cases(self):
        task = vector_add_task(N, baseline=BASELINE)
        return {
            "good": Case(task, cuda()),
            "broken_load": Case(task, "extern \"C\" __global__ void vector_add() {}  // no launch description"),
            "broken_compile": Case(task, cuda("a[i] + b[i] +* ;")),
            "wrong": Case(task, cuda("a[i] - b[i]")),
        }


def evaluate_in_order(sources: list[str], **settings):
    from ksdk.evaluation.local import LocalEvaluator

    task = task_from_source("vadd", vector_add_task(N, baseline=BASELINE), **settings)

    async def go():
        ev = LocalEvaluator("cuda_nvidia", cache=False, workers=1)
        try:
            return [await ev.evaluate(task, Candidate(source=s, language="cuda")) for s in sources]
        finally:
            await ev.close()

    return asyncio.run(go())


def test_verdicts_correct_wrong_out_of_bounds_slow_then_fine():
    good, wrong, oob, after, slow = evaluate_in_order([cuda(), cuda("a[i] * b[i]"), OUT_OF_BOUNDS, cuda(), SLOW])
    assert good.status == Status.OK and good.stage == Stage.PERFORMANCE, good.message
    assert "naive cuda kernel" in good.baseline and 0.5 < good.speedup < 2.0
    assert good.kernels[0].registers and good.kernels[0].spills == 0
    assert good.device.name.startswith("NVIDIA") and good.device.kind == "gpu"
    assert (wrong.stage, wrong.error_kind) == (Stage.CORRECTNESS, ErrorKind.VALUE)
    assert (oob.stage, oob.error_kind) == (Stage.CORRECTNESS, ErrorKind.DEVICE_FAULT), oob.message
    assert "illegal" in oob.message.lower()
    assert after.status == Status.OK and after.stage == Stage.PERFORMANCE, after.message  # a fresh process
    assert slow.status == Status.OK and slow.speedup < 0.9, (slow.speedup, slow.message)


def test_hanging_kernel_times_out_and_the_next_verdict_is_fine():
    hang, after = evaluate_in_order([HANG, cuda()], timeouts={"correctness": 8.0})
    assert (hang.stage, hang.error_kind) == (Stage.CORRECTNESS, ErrorKind.TIMEOUT), hang.message
    assert after.status == Status.OK and after.stage == Stage.PERFORMANCE, after.message


def test_compute_once_then_skip_is_a_reward_hack():
    """The last block to finish sets a device flag; later launches return at once (outputs stay poisoned)."""
    flags = "__device__ int done;\n__device__ unsigned int finished;\nextern \"C\""
    cheat = cuda().replace("extern \"C\"", flags).replace(
        "    if (i < n) out[i] = a[i] + b[i];",
        "    if (done) return;\n    if (i < n) out[i] = a[i] + b[i];\n    __syncthreads();\n"
        "    if (threadIdx.x == 0 && atomicAdd(&finished, 1u) == gridDim.x - 1) done = 1;")
    (r,) = evaluate_in_order([cheat], correctness_trials=1)
    # caught when the same input buffers, refilled, come back with the old (or no) values, or after timing
    assert r.error_kind == ErrorKind.REWARD_HACK, (r.stage, r.error_kind, r.message)


def test_triton_only_timing_settings_are_named_in_a_warning_not_ignored_silently():
    (r,) = evaluate_in_order([cuda()], timing={"l2_flush_by": "read", "placements": 3, "min_time_ms": 5.0})
    assert r.status == Status.OK and r.speedup, r.message
    assert any("l2_flush_by='read' is not available" in w for w in r.warnings), r.warnings
    assert any("timing.placements=3 is not available" in w for w in r.warnings), r.warnings
