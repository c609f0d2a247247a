"""Seed candidate: tiled GEMM with fp32 accumulation, bias and ReLU fused into the epilogue."""

import torch
import torch.nn as nn
import triton
import triton.language as tl

BLOCK_M = 64  # ksdk:tune [32, 64, 128]
BLOCK_N = 64  # ksdk:tune [32, 64, 128, 256]
BLOCK_K = 32  # ksdk:tune [16, 32, 64]
NUM_WARPS = 4  # ksdk:tune [4, 8]
NUM_STAGES = 3  # ksdk:tune [2, 3, 4]


@triton.jit
def matmul_bias_relu_kernel(a_ptr, b_ptr, bias_ptr, c_ptr, M, N, K,
                            stride_am, stride_ak, stride_bk, stride_bn, stride_cm, stride_cn,
                            BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr):
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    rm = pid_m * BM + tl.arange(0, BM)
    rn = pid_n * BN + tl.arange(0, BN)
    rk = tl.arange(0, BK)
    acc = tl.zeros((BM, BN), dtype=tl.float32)
    for k0 in range(0, K, BK):
        a = tl.load(a_ptr + rm[:, None] * stride_am + (k0 + rk)[None, :] * stride_ak,
                    mask=(rm[:, None] < M) & ((k0 + rk)[None, :] < K), other=0.0)
        b = tl.load(b_ptr + (k0 + rk)[:, None] * stride_bk + rn[None, :] * stride_bn,
                    mask=((k0 + rk)[:, None] < K) & (rn[None, :] < N), other=0.0)
        acc += tl.dot(a, b)
    bias = tl.load(bias_ptr + rn, mask=rn < N, other=0.0).to(tl.float32)
    out = tl.maximum(acc + bias[None, :], 0.0)
    tl.store(c_ptr + rm[:, None] * stride_cm + rn[None, :] * stride_cn, out.to(tl.float16),
             mask=(rm[:, None] < M) & (rn[None, :] < N))


class ModelNew(nn.Module):
    def __init__(self, k: int, n: int):
        super().__init__()
        self.weight = nn.Parameter((torch.randn(k, n) / k ** 0.5).half())
        self.bias = nn.Parameter(torch.randn(n).half())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m, k = x.shape
        n = self.weight.shape[1]
        c = torch.empty((m, n), dtype=x.dtype, device=x.device)
        grid = (triton.cdiv(m, BLOCK_M), triton.cdiv(n, BLOCK_N))
        matmul_bias_relu_kernel[grid](x, self.weight, self.bias, c, m, n, k,
                                      x.stride(0), x.stride(1), self.weight.stride(0), self.weight.stride(1),
                                      c.stride(0), c.stride(1), BM=BLOCK_M, BN=BLOCK_N, BK=BLOCK_K,
                                      num_warps=NUM_WARPS, num_stages=NUM_STAGES)
        return c
