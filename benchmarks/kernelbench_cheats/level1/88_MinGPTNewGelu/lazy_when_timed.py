"""Trick (GPU, after tests/triton/cheats/lazy_when_timed.py): correct for the first 12 calls (the correctness
checks), then the kernel writes one element only, so every later (timed) call is almost free."""

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



class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        x = x.contiguous()
        y = torch.empty_like(x)
        if self.calls <= 12:
            return gelu(x, y)
        gelu_kernel[(1,)](x, y, 1, BLOCK=BLOCK, num_warps=WARPS)
        return y
