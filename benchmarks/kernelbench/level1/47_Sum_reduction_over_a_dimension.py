"""KernelBench level1/47_Sum_reduction_over_a_dimension (128 x 4096 x 4095 fp32, sum over dim 1, keepdim): a
program per batch entry and BLOCK_J output columns, accumulating ROWS rows at a time."""

import torch
import triton
import triton.language as tl
from torch import nn

BLOCK_J = 128  # ksdk:tune [64, 128, 256]
ROWS = 32  # ksdk:tune [8, 16, 32, 64]
WARPS = 4  # ksdk:tune [2, 4, 8]


@triton.jit
def colsum_kernel(x_ptr, y_ptr, n_rows, n_cols, BLOCK_J: tl.constexpr, ROWS: tl.constexpr):
    batch = tl.program_id(1).to(tl.int64)
    cols = tl.program_id(0) * BLOCK_J + tl.arange(0, BLOCK_J)
    col_mask = cols < n_cols
    base = x_ptr + batch * n_rows * n_cols
    acc = tl.zeros([ROWS, BLOCK_J], tl.float32)
    for start in range(0, n_rows, ROWS):
        rows = start + tl.arange(0, ROWS)
        mask = (rows[:, None] < n_rows) & col_mask[None, :]
        acc += tl.load(base + rows[:, None].to(tl.int64) * n_cols + cols[None, :], mask=mask, other=0.0)
    tl.store(y_ptr + batch * n_cols + cols, tl.sum(acc, axis=0), mask=col_mask)


class ModelNew(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.dim != 1 or x.dim() != 3:
            raise ValueError("this kernel reduces dim 1 of a 3-d tensor, as the task does")
        x = x.contiguous()
        b, rows, cols = x.shape
        y = torch.empty((b, 1, cols), dtype=x.dtype, device=x.device)
        colsum_kernel[(triton.cdiv(cols, BLOCK_J), b)](x, y, rows, cols, BLOCK_J=BLOCK_J, ROWS=ROWS, num_warps=WARPS)
        return y
