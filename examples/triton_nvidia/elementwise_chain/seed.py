"""Seed candidate: the whole chain in one Triton kernel (one read, one write per element)."""

import torch
import torch.nn as nn
import triton
import triton.language as tl

BLOCK_SIZE = 1024  # ksdk:tune [256, 512, 1024, 2048, 4096]
NUM_WARPS = 4  # ksdk:tune [2, 4, 8]


@triton.jit
def chain_kernel(x_ptr, y_ptr, n, scale, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask)
    sig = 1.0 / (1.0 + tl.exp(-x))
    e2 = tl.exp(-2.0 * tl.abs(x))
    th = (1.0 - e2) / (1.0 + e2)
    th = tl.where(x < 0, -th, th)
    tl.store(y_ptr + offs, sig * x * scale + th * 0.5, mask=mask)


class ModelNew(nn.Module):
    def __init__(self, scale: float):
        super().__init__()
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        y = torch.empty_like(x)
        n = x.numel()
        chain_kernel[(triton.cdiv(n, BLOCK_SIZE),)](x, y, n, self.scale, BLOCK=BLOCK_SIZE, num_warps=NUM_WARPS)
        return y
