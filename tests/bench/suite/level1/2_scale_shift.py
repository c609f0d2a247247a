import torch
from torch import nn

KSDK_TASK = {"correctness_trials": 2,
             "timing": {"warmup": 1, "warmup_ms": 0, "repetitions": 5, "min_time_ms": 0, "max_repetitions": 20}}


class Model(nn.Module):
    """y = x * scale + 1, with the scale given at construction."""

    def __init__(self, scale: float):
        super().__init__()
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + 1.0


rows = 6
cols = 50


def get_inputs():
    return [torch.randn(rows, cols)]


def get_init_inputs():
    return [2.5]
