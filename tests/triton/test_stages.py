"""Each stage's verdict and feedback on the CPU (Triton interpreter), through the real LocalEvaluator."""

from __future__ import annotations

import pytest

from ksdk.models import ErrorKind, Stage, Status
from ksdk_triton_nvidia.conformance import GOOD

from tritonkit import evaluate_all, evaluate_in_order, small_task

# KernelBench's old loose tolerance: a constant 1/n output passes allclose here (the known hole).
SOFTMAX_TASK = '''
import torch
import torch.nn as nn

KSDK_TASK = {"tolerances": {"float32": {"atol": 1e-2, "rtol": 1e-2}}}


class Model(nn.Module):
    def forward(self, x):
        return torch.softmax(x, dim=-1)


def get_inputs():  # small logits: every probability stays far below atol, whatever the seed
    return [torch.randn(16, 4096) * 0.1]


def get_init_inputs():
    return []
'''

CONSTANT_SOFTMAX = '''
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def fill_kernel(y_ptr, n, value, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(y_ptr + offs, tl.zeros((BLOCK,), dtype=tl.float32) + value, mask=offs < n)


class ModelNew(nn.Module):
    def forward(self, x):
        y = torch.empty_like(x)
        fill_kernel[(triton.cdiv(x.numel(), 1024),)](y, x.numel(), 1.0 / x.shape[-1], BLOCK=1024)
        return y
'''

SKIPS_TAIL = GOOD.replace("mask = offs < n", "mask = offs < n - 7")  # never writes the last 7 elements

CASES = {
    "good": GOOD,
    "syntax": GOOD.replace("def forward(self, x, y):", "def forward(self, x, y)"),
    "import": "import torch\nimport not_a_real_module_xyz\n" + GOOD,
    "import_raises": GOOD.replace("BLOCK_SIZE = 256", "BLOCK_SIZE = 256\nraise ValueError('boom at import')"),
    "missing_entry": GOOD.replace("class ModelNew", "class ModelOld"),
    "compile": GOOD.replace("tl.maximum(x * scale + y, 0.0)", "tl.maximum(x * scale + y, undefined_name)"),
    "runtime": GOOD.replace("out = torch.empty_like(x)", "out = torch.empty_like(x)\n        x = x.view(7, -1)"),
    "wrong": GOOD.replace("x * scale + y", "x * scale + y * 1.01"),
    "shape": GOOD.replace("return out", "return out[:-1]"),
    "dtype": GOOD.replace("return out", "return out.double()"),
    "nan": GOOD.replace("tl.maximum(x * scale + y, 0.0)", "tl.maximum(x * scale + y, 0.0) / (x - x)"),
    "unwritten_tail": SKIPS_TAIL,
    "writes_input": GOOD.replace("return out", "y.add_(0.5)\n        return out"),
    "cuda_device": GOOD.replace("out = torch.empty_like(x)", "out = torch.empty(x.shape, device='cuda')"),
}


@pytest.fixture(scope="module")
def verdicts():
    task = small_task()
    pairs = {k: (task, src) for k, src in CASES.items()}
    pairs["constant_softmax"] = (small_task(SOFTMAX_TASK, "softmax"), CONSTANT_SOFTMAX)
    return evaluate_all(pairs, interpret=True)  # the CPU path, also on a GPU machine


def test_good_passes_correctness_and_skips_timing_in_the_interpreter(verdicts):
    r = verdicts["good"]
    assert r.status == Status.OK and r.stage == Stage.CORRECTNESS, r.message
    assert r.trials == 5 and r.outputs[0].ok and r.outputs[0].max_abs_error <= 1e-4
    assert r.speedup is None and r.candidate_timing is None
    assert "interpreter" in r.performance_skipped
    assert r.device.kind == "interpreter"
    assert {"torch", "triton", "python"} <= set(r.versions)
    assert [k.name for k in r.kernels] == ["fused_kernel"]


@pytest.mark.parametrize("module", ["torch._dynamo", "torch._inductor"])
def test_a_candidate_importing_torch_compile_is_not_taken_for_a_cheat(module):
    # Importing torch._dynamo (torch.compile's front end) wraps torch.manual_seed: PyTorch's doing, not tampering.
    # Its own worker: the import reshapes the CPU heap that the other cases' poisoning relies on.
    source = GOOD.replace("import torch\n", f"import torch\nimport {module}\n", 1)
    assert f"import {module}" in source
    (r,) = evaluate_in_order([(small_task(), source)], interpret=True)
    assert r.status == Status.OK and r.stage == Stage.CORRECTNESS, (r.error_kind, r.message)


def line_of(key: str, text: str) -> int:
    """1-based line of the first line of CASES[key] containing `text`."""
    return next(i + 1 for i, t in enumerate(CASES[key].split("\n")) if text in t)


@pytest.mark.parametrize("key,kind,marker", [
    ("syntax", ErrorKind.SYNTAX, "def forward(self, x, y)"),
    ("import", ErrorKind.IMPORT, "not_a_real_module_xyz"),
    ("import_raises", ErrorKind.IMPORT, "boom at import"),
])
def test_load_errors_point_at_the_candidate_line(verdicts, key, kind, marker):
    r = verdicts[key]
    line = line_of(key, marker)
    assert (r.stage, r.error_kind, r.line) == (Stage.LOAD, kind, line), r.message
    assert "candidate.py" in r.message or key != "syntax"
    assert "/tmp" not in r.message, "temp paths must be mapped back to candidate.py"


def test_missing_entry(verdicts):
    r = verdicts["missing_entry"]
    assert (r.stage, r.error_kind) == (Stage.LOAD, ErrorKind.MISSING_ENTRY)
    assert "ModelNew" in r.message


def test_compile_error_names_kernel_and_line(verdicts):
    r = verdicts["compile"]
    assert (r.stage, r.error_kind) == (Stage.COMPILE, ErrorKind.COMPILE), r.message
    assert "fused_kernel" in r.message and "undefined_name" in r.message
    line = line_of("compile", "undefined_name")
    assert r.line == line
    assert f"candidate.py:{line}" in r.message


def test_runtime_error_in_forward(verdicts):
    r = verdicts["runtime"]
    assert r.error_kind == ErrorKind.RUNTIME and r.status == Status.FAILED
    assert r.line == line_of("runtime", "x.view(7, -1)"), r.message


@pytest.mark.parametrize("key,kind", [
    ("wrong", ErrorKind.VALUE), ("shape", ErrorKind.SHAPE), ("dtype", ErrorKind.DTYPE), ("nan", ErrorKind.NAN_INF),
    ("unwritten_tail", (ErrorKind.NAN_INF, ErrorKind.VALUE)), ("writes_input", ErrorKind.ALIASING),
])
def test_correctness_failures(verdicts, key, kind):
    r = verdicts[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    assert r.stage == Stage.CORRECTNESS and r.error_kind in kinds, (r.error_kind, r.message)
    assert "correctness" in r.feedback()


def test_unwritten_output_is_visible_through_poisoned_memory(verdicts):
    # The last 7 elements were never written: the candidate's process poisons the blocks its next allocations are
    # likely to get (NaN), and since every trial's inputs are new, even an unpoisoned leftover is no lucky match.
    m = verdicts["unwritten_tail"].message
    assert "NaN" in m or "worst at (63, " in m, m


def test_constant_output_on_softmax_rejected_despite_allclose(verdicts):
    r = verdicts["constant_softmax"]
    assert (r.stage, r.error_kind) == (Stage.CORRECTNESS, ErrorKind.VALUE), r.message
    assert "tiny" in r.message or "constant" in r.message, r.message


def test_device_cuda_in_interpreter_gets_a_hint(verdicts):
    import torch

    if torch.cuda.is_available():
        pytest.skip("with CUDA present, device='cuda' tensors work even in the interpreter")
    r = verdicts["cuda_device"]
    assert r.status == Status.FAILED
    assert "empty_like" in r.message


HUGE_TASK = '''
import torch
import torch.nn as nn


class Model(nn.Module):
    def forward(self, x):
        return torch.relu(x)


def get_inputs():  # 2**40 elements: making them would fail (4 TiB), so the size must be read without making them
    return [torch.rand(1 << 20, 1 << 20)]


def get_init_inputs():
    return []
'''


def test_a_problem_too_large_for_the_interpreter_is_told_so_in_one_line_before_its_inputs_are_made():
    (r,) = evaluate_in_order([(small_task(HUGE_TASK, "huge"), GOOD)], interpret=True)
    assert r.status == Status.INFRA_ERROR and r.stage == Stage.LOAD, (r.status, r.message)
    assert "too large for the interpreter (1,099,511,627,776 input elements" in r.message
    assert "KSDK_TASK" in r.message and "\n" not in r.message.strip()
