"""Row softmax over the last dimension (a classic: a constant output passes allclose here, ksdk rejects it)."""

import torch
import torch.nn as nn

SHAPE = (4096, 4096)  # problem size


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(x, dim=-1)


def get_inputs():
    return [torch.randn(*SHAPE)]


def get_init_inputs():
    return []
