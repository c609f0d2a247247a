"""KernelBench level1/36_RMSNorm_ (112 x 64 x 512 x 512 fp32, RMS over the 64 features): a program per batch
entry and BLOCK spatial positions, a pass summing squares over the features, then a pass writing x / rms."""

import torch
import triton
import triton.language as tl
from torch import nn

BLOCK = 512  # ksdk:tune [256, 512, 1024, 2048]
WARPS = 4  # ksdk:tune [2, 4, 8]


@triton.jit
def rmsnorm_kernel(x_ptr, y_ptr, n_features, n_spatial, eps, BLOCK: tl.constexpr):
    batch = tl.program_id(1).to(tl.int64)
    pos = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = pos < n_spatial
    base = batch * n_features * n_spatial + pos
    acc = tl.zeros([BLOCK], tl.float32)
    for f in range(0, n_features):
        x = tl.load(x_ptr + base + f * n_spatial, mask=mask, other=0.0)
        acc += x * x
    rms = tl.sqrt(acc / n_features + eps)
    for f in range(0, n_features):
        x = tl.load(x_ptr + base + f * n_spatial, mask=mask, other=0.0)
        tl.store(y_ptr + base + f * n_spatial, x / rms, mask=mask)


class ModelNew(nn.Module):
    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__()
        self.num_features, self.eps = num_features, eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        y = torch.empty_like(x)
        spatial = x[0, 0].numel()
        grid = (triton.cdiv(spatial, BLOCK), x.shape[0])
        rmsnorm_kernel[grid](x, y, x.shape[1], spatial, self.eps, BLOCK=BLOCK, num_warps=WARPS)
        return y
