"""Seed: x * scale + 1 in one Triton kernel."""

import torch
import triton
import triton.language as tl
from torch import nn

BLOCK = 128  # ksdk:tune [64, 128, 256]


@triton.jit
def scale_shift_kernel(x_ptr, y_ptr, n, scale, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask)
    tl.store(y_ptr + offs, x * scale + 1.0, mask=mask)


class ModelNew(nn.Module):
    def __init__(self, scale: float):
        super().__init__()
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        y = torch.empty_like(x)
        scale_shift_kernel[(triton.cdiv(x.numel(), BLOCK),)](x, y, x.numel(), self.scale, BLOCK=BLOCK)
        return y
