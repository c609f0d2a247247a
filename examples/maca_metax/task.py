"""Bias + ReLU over rows: out = relu(x + bias), x of shape [ROWS, COLS], bias a learned [COLS] parameter.

A KernelBench-format task for the native backends (maca_metax, cuda_nvidia). Kernel arguments, in order:
x (input), out (output), bias (the model's parameter), then the candidate's scalars.
NATIVE_BASELINE is the naive kernel speedups are measured against (one thread per element).
"""

import torch
import torch.nn as nn

ROWS, COLS = 8192, 4096


class Model(nn.Module):
    def __init__(self, cols: int):
        super().__init__()
        self.bias = nn.Parameter(torch.randn(cols))

    def forward(self, x):
        return torch.relu(x + self.bias)


def get_inputs():
    return [torch.randn(ROWS, COLS)]


def get_init_inputs():
    return [COLS]


NATIVE_BASELINE = r'''
/* ksdk:launch
{"kernel": "bias_relu_naive", "grid": ["cdiv(rows * cols, 256)"], "block": [256],
 "scalars": [{"name": "rows", "type": "int32", "value": "in0.shape[0]"},
             {"name": "cols", "type": "int32", "value": "in0.shape[1]"}]}
*/
extern "C" __global__ void bias_relu_naive(const float* x, float* out, const float* bias, int rows, int cols) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < (long long)rows * cols) {
        float v = x[i] + bias[i % cols];
        out[i] = v > 0.f ? v : 0.f;
    }
}
'''
