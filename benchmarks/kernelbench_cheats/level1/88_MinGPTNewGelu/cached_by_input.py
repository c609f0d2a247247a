"""Trick (after tests/triton/cheats/cached_by_input.py): memoise results by input address and shape; a Triton copy
kernel writes the memoised values into a fresh output on every call."""

import torch
import triton
import triton.language as tl
from torch import nn

BLOCK = 2048
WARPS = 8


@triton.jit
def gelu_kernel(x_ptr, y_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask, other=0.0)
    inner = 0.7978845608028654 * (x + 0.044715 * x * x * x)
    tanh = 2.0 / (1.0 + tl.exp(-2.0 * inner)) - 1.0
    tl.store(y_ptr + offs, 0.5 * x * (1.0 + tanh), mask=mask)


def gelu(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    n = x.numel()
    gelu_kernel[(triton.cdiv(n, BLOCK),)](x, y, n, BLOCK=BLOCK, num_warps=WARPS)
    return y



@triton.jit
def copy_kernel(x_ptr, y_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(y_ptr + offs, tl.load(x_ptr + offs, mask=mask), mask=mask)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.memo = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        key = (x.data_ptr(), tuple(x.shape))
        if key not in self.memo:
            self.memo[key] = gelu(x, torch.empty_like(x))
        y = torch.empty_like(x)
        copy_kernel[(triton.cdiv(x.numel(), BLOCK),)](self.memo[key], y, x.numel(), BLOCK=BLOCK)
        return y
