"""KernelBench at its real size on one GPU: the reference judged as its own candidate passes at about 1.00x, with
the judge's and the candidate's device memory together within 3x one trial's inputs and outputs plus 1 GiB. On
8ab2c7c every problem of 4 GiB or more failed (an 8x fingerprint copy, an unsynchronised hand-over of the inputs to
the candidate's process, memory one problem left to the next)."""

from __future__ import annotations

import pytest
from tritonkit import evaluate_in_order, small_task

from ksdk.models import ErrorKind, Status
from ksdk_triton_nvidia.conformance import GOOD

pytestmark = pytest.mark.gpu
SELF = "\n\nModelNew = Model\n"
GiB = 1 << 30


def problem(forward: str, shape: tuple, extra: str = "") -> str:
    return (f"import torch\nimport torch.nn as nn\n\nclass Model(nn.Module):\n    def forward(self, x):\n"
            f"        return {forward}\n\ndef get_inputs():\n    return [torch.randn{shape}{extra}]\n\n"
            "def get_init_inputs():\n    return []\n")


def self_check(*sources: str, hog_first: bool = False):
    pairs = [(small_task(s, f"p{i}", allow_torch_ops=["*"]), s + SELF) for i, s in enumerate(sources)]
    if hog_first:
        pairs.insert(0, (small_task(), HOG))
    return evaluate_in_order(pairs)


def within_memory(r) -> None:
    io = r.device.extra["inputs_outputs_bytes"]
    peak = r.device.extra.get("device_peak_memory_bytes")
    roles = r.device.extra.get("device_peak_by_role")
    assert roles is not None and roles["candidate"] > 0, roles  # NVML per process: whose the peak was
    assert peak is not None and peak <= 3 * io + GiB, (f"peak {peak / GiB:.2f} GiB for {io / GiB:.2f} GiB of I/O; "
                                                       f"by role {roles}")


def good(r, lo: float = 0.97, hi: float = 1.03) -> None:
    assert r.status == Status.OK, (r.task, r.error_kind, r.message)
    assert lo <= r.speedup <= hi, (r.task, r.speedup, r.speedup_ci)


def test_large_reductions_see_the_inputs_the_judge_wrote():
    """Sums and argmaxes over 2-4 GiB: a candidate's process reading the inputs before the judge's copy of them
    landed got 'argmax 3, expected 4091' in trial 1 on 8ab2c7c."""
    results = self_check(problem("torch.sum(x, dim=1)", (4096, 262144)),
                         problem("torch.argmax(x, dim=1)", (8192, 65536)))
    for r in results:
        good(r, 0.9, 1.1)
        within_memory(r)


@pytest.mark.slow
def test_two_problems_of_6_gib_of_inputs_and_outputs_are_judged_end_to_end():
    n = 3 * GiB // 4
    results = self_check(problem("torch.relu(x)", (n,)), problem("torch.softmax(x, dim=1)", (n // 49152, 49152)))
    for r in results:
        assert r.device.extra["inputs_outputs_bytes"] >= 6 * GiB - (1 << 20)
        good(r)
        within_memory(r)


TRITON_RELU = """
import torch
import triton
import triton.language as tl
from torch import nn


@triton.jit
def relu_kernel(x_ptr, y_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(y_ptr + offs, tl.maximum(tl.load(x_ptr + offs, mask=mask, other=0.0), 0.0), mask=mask)


class ModelNew(nn.Module):
    def forward(self, x):
        y = torch.empty_like(x)
        relu_kernel[(triton.cdiv(x.numel(), 4096),)](x, y, x.numel(), BLOCK=4096, num_warps=8)
        return y
"""


@pytest.mark.slow
def test_an_honest_triton_kernel_at_6_gib_is_timed_within_memory():
    """A Triton kernel that allocates its output each call (the twelfth session's peer run: 19_ReLU's and
    23_Softmax's honest kernels ran out of memory while timed, the launch recorder holding every call's 6 GiB
    output)."""
    src = problem("torch.relu(x)", (3 * GiB // 4,))
    (r,) = evaluate_in_order([(small_task(src, "relu6", allow_torch_ops=["*"]), TRITON_RELU)])
    good(r, 0.9, 1.1)
    within_memory(r)


HOG = ("import torch\n_hog, _calls = [], [0]\n"
       "def _grab():\n    for chunk in (1 << 30, 1 << 26, 1 << 21):\n        while True:\n"
       "            try:\n                _hog.append(torch.empty(chunk, dtype=torch.uint8, device='cuda'))\n"
       "            except torch.cuda.OutOfMemoryError:\n                break\n"
       + GOOD.replace("        out = torch.empty_like(x)", "        out = torch.empty_like(x)\n"
                      "        _calls[0] += 1\n        if _calls[0] == 2:\n            _grab()"))


def test_memory_a_candidate_held_does_not_reach_the_next_problem():
    """The candidate before takes every free byte and is ended with an out_of_memory verdict: the next problem (6
    GiB of I/O) still finds the device's memory free."""
    hog, r = self_check(problem("torch.relu(x)", (3 * GiB // 4,)), hog_first=True)
    assert hog.error_kind == ErrorKind.OOM, (hog.error_kind, hog.message)
    good(r)
    within_memory(r)
