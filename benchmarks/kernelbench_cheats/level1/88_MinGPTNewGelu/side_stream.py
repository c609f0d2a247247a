"""Trick (GPU, after tests/triton/cheats/hidden_side_stream.py): the kernel runs on a private stream that forward
never joins, so a timer recording events on the caller's stream sees almost no work; the output is complete only
after a device-wide synchronize."""

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



_side = None


class ModelNew(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        global _side
        if _side is None:
            _side = torch.cuda.Stream(device=x.device)
        x = x.contiguous()
        y = torch.empty_like(x)
        _side.wait_stream(torch.cuda.current_stream(x.device))  # the input is ready before the side stream reads it
        with torch.cuda.stream(_side):
            gelu(x, y)
        return y
