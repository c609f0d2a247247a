import torch
from torch import nn

KSDK_TASK = {"correctness_trials": 2, "tolerances": {"float32": {"atol": 1e-3, "rtol": 1e-3}},
             "timing": {"warmup": 1, "warmup_ms": 0, "repetitions": 5, "min_time_ms": 0, "max_repetitions": 20}}


class Model(nn.Module):
    """C = relu(A @ B)."""

    def __init__(self):
        super().__init__()

    def forward(self, A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
        return torch.relu(torch.matmul(A, B))


M, K, N = 16, 32, 24


def get_inputs():
    return [torch.randn(M, K), torch.randn(K, N)]


def get_init_inputs():
    return []
