"""Quickstart task: C = A @ B for square float32 matrices, KernelBench format, for the `cpu_c` backend.

The C entry point a candidate defines (the cpu_c convention: inputs, then outputs, then every input dim):

    void matmul(const float* in0, const float* in1, float* out0,
                long in0_d0, long in0_d1, long in1_d0, long in1_d1);

    in0 = A (M x K), in1 = B (K x N), out0 = C (M x N), row-major; M = in0_d0, K = in0_d1, N = in1_d1.

Speedups are measured against C_BASELINE below, the textbook i-j-k triple loop compiled with the same
compiler and flags and timed in the same process, interleaved with the candidate. Eager torch (one thread,
which calls an optimised BLAS) is timed too and reported beside it, so nobody mistakes the figure for
"faster than BLAS".
"""

import torch
import torch.nn as nn

N = 320

KSDK_TASK = {
    # float32 sums over K=320 in another order than BLAS: allow for the rounding, not for wrong values.
    "tolerances": {"float32": {"atol": 1e-3, "rtol": 1e-3}},
    "correctness_trials": 2,
    # A candidate takes a few ms to tens of ms; this keeps one evaluation well under a second.
    "timing": {"warmup": 1, "repetitions": 7, "min_time_ms": 0, "max_repetitions": 50, "flush_l2": True},
}

C_ENTRY = "matmul"

C_BASELINE = r"""
void matmul(const float* A, const float* B, float* C,
            long M, long K, long K2, long N) {
    (void)K2;
    for (long i = 0; i < M; i++)
        for (long j = 0; j < N; j++) {
            float s = 0.0f;
            for (long k = 0; k < K; k++)
                s += A[i * K + k] * B[k * N + j];
            C[i * N + j] = s;
        }
}
"""


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
        return torch.matmul(A, B)


def get_inputs():
    return [torch.randn(N, N), torch.randn(N, N)]


def get_init_inputs():
    return []
