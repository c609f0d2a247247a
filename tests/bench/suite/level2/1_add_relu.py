import torch
from torch import nn

KSDK_TASK = {"correctness_trials": 2,
             "timing": {"warmup": 1, "warmup_ms": 0, "repetitions": 5, "min_time_ms": 0, "max_repetitions": 20}}


class Model(nn.Module):
    """Adds two tensors, then applies ReLU."""

    def __init__(self):
        super().__init__()

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.relu(a + b)


n = 300


def get_inputs():
    return [torch.randn(n), torch.randn(n)]


def get_init_inputs():
    return []
