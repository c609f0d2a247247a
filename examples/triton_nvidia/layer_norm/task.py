"""Layer norm over the last dimension with a learned weight and bias."""

import torch
import torch.nn as nn
import torch.nn.functional as F

SHAPE = (4096, 4096)  # problem size

# Triton's interpreter (no GPU) checks candidates on a smaller problem of the same kind
KSDK_TASK = {"interpreter": {"SHAPE": [128, 256]}}


class Model(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.randn(dim))
        self.bias = nn.Parameter(torch.randn(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, (x.shape[-1],), self.weight, self.bias, self.eps)


def get_inputs():
    return [torch.randn(*SHAPE) * 2.0 + 0.5]


def get_init_inputs():
    return [SHAPE[-1], 1e-5]
