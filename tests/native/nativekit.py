"""Helpers shared by the native tests: host-C candidates for the runtime test double, tasks."""

HOST_VECTOR_ADD = """\
/* ksdk:launch
{"kernel": "vector_add", "grid": ["cdiv(n, BLOCK)"], "block": ["BLOCK"],
 "scalars": [{"name": "n", "type": "int64", "value": "in0.numel"}]}
*/
#include <stdint.h>
#define BLOCK 128 // ksdk:tune [64, 128, 256]
int vector_add(void **p, const unsigned *grid, const unsigned *block) {
    const float *a = *(const float **)p[0], *b = *(const float **)p[1];
    float *out = *(float **)p[2];
    int64_t n = *(int64_t *)p[3];
    for (int64_t i = 0; i < (int64_t)grid[0] * block[0]; i++)
        if (i < n) out[i] = %(expr)s;
    return 0;
}
"""


def host_kernel(expr: str = "a[i] + b[i]") -> str:
    """A host-C candidate for the double: out = expr over i."""
    return HOST_VECTOR_ADD % {"expr": expr}


VECTOR_ADD_TASK = '''\
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, a, b):
        return a + b


N = %(n)d


def get_inputs():
    return [torch.randn(N), torch.randn(N)]


def get_init_inputs():
    return []
'''


NUMPY_VECTOR_ADD_TASK = '''\
import numpy as np


class Model:
    """The reference in plain numpy: tasks need not import torch (worker start stays fast)."""

    def __call__(self, a, b):
        return a + b


N = %(n)d


def get_inputs():
    return [np.random.randn(N).astype(np.float32), np.random.randn(N).astype(np.float32)]


def get_init_inputs():
    return []
'''

BIAS_RELU_HOST = """\
/* ksdk:launch {"kernel": "bias_relu", "grid": ["rows"], "block": [64],
  "scalars": [{"name": "rows", "type": "int32", "value": "in0.shape[0]"},
              {"name": "cols", "type": "int32", "value": "in0.shape[1]"}]} */
int bias_relu(void **p, const unsigned *grid, const unsigned *block) {
    const float *x = *(const float **)p[0], *bias = *(const float **)p[2];
    float *out = *(float **)p[1];
    int rows = *(int *)p[3], cols = *(int *)p[4];
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) { float v = x[r * cols + c] + bias[c]; out[r * cols + c] = v > 0 ? v : 0; }
    return 0;
}
"""


def vector_add_task(n: int = 5000, baseline: str | None = None, torch: bool = True) -> str:
    """The vector-add task source (torch or numpy reference); `baseline` becomes its NATIVE_BASELINE."""
    src = (VECTOR_ADD_TASK if torch else NUMPY_VECTOR_ADD_TASK) % {"n": n}
    if baseline is not None:
        src += f"\n\nNATIVE_BASELINE = {baseline!r}\n"
    return src
