"""Trick (after tests/triton/cheats/torch_output.py): launch the Triton kernel on one row only, and return
PyTorch's own tanh GELU (one fused ATen kernel) as the output."""

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
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        gelu(x[:1], torch.empty_like(x[:1]))
        return torch.nn.functional.gelu(x, approximate="tanh")
