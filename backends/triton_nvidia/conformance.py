"""Small task/candidate pairs for the conformance kit (sizes that run in seconds in the interpreter)."""

from __future__ import annotations

TASK = '''
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, scale):
        super().__init__()
        self.scale = scale

    def forward(self, x, y):
        return torch.relu(x * self.scale + y)


def get_inputs():
    return [torch.randn(64, 96), torch.randn(64, 96)]


def get_init_inputs():
    return [1.5]
'''

GOOD = '''
import torch
import torch.nn as nn
import triton
import triton.language as tl

BLOCK_SIZE = 256  # ksdk:tune [128, 256, 512, 1024]


@triton.jit
def fused_kernel(x_ptr, y_ptr, out_ptr, n, scale, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask)
    y = tl.load(y_ptr + offs, mask=mask)
    tl.store(out_ptr + offs, tl.maximum(x * scale + y, 0.0), mask=mask)


class ModelNew(nn.Module):
    def __init__(self, scale):
        super().__init__()
        self.scale = scale

    def forward(self, x, y):
        out = torch.empty_like(x)
        n = x.numel()
        fused_kernel[(triton.cdiv(n, BLOCK_SIZE),)](x, y, out, n, self.scale, BLOCK=BLOCK_SIZE)
        return out
'''

# Correct, but every program recomputes its block thousands of times (a loop bound the compiler cannot see):
# clearly slower on a GPU. (The kit times it only where a device is available.)
SLOW = GOOD.replace("def fused_kernel(x_ptr, y_ptr, out_ptr, n, scale, BLOCK: tl.constexpr):",
                    "def fused_kernel(x_ptr, y_ptr, out_ptr, n, scale, reps, BLOCK: tl.constexpr):").replace(
    "    tl.store(out_ptr + offs, tl.maximum(x * scale + y, 0.0), mask=mask)",
    """    acc = tl.zeros_like(x)
    for _ in range(reps):
        acc = tl.maximum(x * scale + y, 0.0) + acc * 0.0
        x = x + acc * 0.0
    tl.store(out_ptr + offs, acc, mask=mask)""").replace(
    "(x, y, out, n, self.scale, BLOCK=BLOCK_SIZE)", "(x, y, out, n, self.scale, 4096, BLOCK=BLOCK_SIZE)")
assert SLOW.count("reps") == 2 and "4096, BLOCK" in SLOW
BROKEN_LOAD = GOOD.replace("class ModelNew(nn.Module):", "class ModelNew(nn.Module)")
BROKEN_COMPILE = GOOD.replace("tl.maximum(x * scale + y, 0.0)", "tl.maximum(x * scale + y, zero)")
WRONG = GOOD.replace("x * scale + y", "x * scale - y")


def cases() -> dict[str, tuple[str, str]]:
    """{'good'|'slow'|'broken_load'|'broken_compile'|'wrong': (task source, candidate source)}."""
    return {"good": (TASK, GOOD), "slow": (TASK, SLOW), "broken_load": (TASK, BROKEN_LOAD),
            "broken_compile": (TASK, BROKEN_COMPILE), "wrong": (TASK, WRONG)}
