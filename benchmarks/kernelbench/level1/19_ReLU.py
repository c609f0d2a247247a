"""KernelBench level1/19_ReLU (4096 x 393216 fp32): one elementwise pass, BLOCK elements per program."""

import torch
import triton
import triton.language as tl
from torch import nn

BLOCK = 4096  # ksdk:tune [1024, 2048, 4096, 8192]
WARPS = 8  # ksdk:tune [4, 8, 16]


@triton.jit
def relu_kernel(x_ptr, y_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask, other=0.0)
    tl.store(y_ptr + offs, tl.maximum(x, 0.0), mask=mask)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        y = torch.empty_like(x)
        n = x.numel()
        relu_kernel[(triton.cdiv(n, BLOCK),)](x, y, n, BLOCK=BLOCK, num_warps=WARPS)
        return y
