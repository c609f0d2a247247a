import torch
from torch import nn

# Small sizes and short timing so the CPU tests stay fast (ksdk's optional settings; KernelBench ignores them).
KSDK_TASK = {"correctness_trials": 2,
             "timing": {"warmup": 1, "warmup_ms": 0, "repetitions": 5, "min_time_ms": 0, "max_repetitions": 20}}


class Model(nn.Module):
    """Simple model that applies ReLU."""

    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x)


batch_size = 8
dim = 96


def get_inputs():
    return [torch.randn(batch_size, dim)]


def get_init_inputs():
    return []
