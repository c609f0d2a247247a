"""Row softmax over the last dimension (a classic: a constant output passes allclose here, ksdk rejects it)."""

import torch
import torch.nn as nn

SHAPE = (4096, 4096)  # problem size

# Triton's interpreter (no GPU) checks candidates on a smaller problem of the same kind
KSDK_TASK = {"interpreter": {"SHAPE": [128, 256]}}


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(x, dim=-1)


def get_inputs():
    return [torch.randn(*SHAPE)]


def get_init_inputs():
    return []
