"""relu(x @ W + b) in fp16 (tensor cores): a GEMM with its epilogue."""

import torch
import torch.nn as nn

SHAPE = (2048, 2048, 2048)  # problem size: M, K, N

# Triton's interpreter (no GPU) checks candidates on a smaller problem of the same kind
KSDK_TASK = {"interpreter": {"SHAPE": [64, 64, 64]}}


class Model(nn.Module):
    def __init__(self, k: int, n: int):
        super().__init__()
        self.weight = nn.Parameter((torch.randn(k, n) / k ** 0.5).half())
        self.bias = nn.Parameter(torch.randn(n).half())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x @ self.weight + self.bias)


def get_inputs():
    m, k, _ = SHAPE
    return [torch.randn(m, k).half()]


def get_init_inputs():
    return [SHAPE[1], SHAPE[2]]
