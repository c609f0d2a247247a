"""Small tasks and candidates shared by the cpu_c tests (quick to compile, run and time)."""

ADD_TASK = '''
import torch
import torch.nn as nn

KSDK_TASK = {"correctness_trials": 2, "timing": {"warmup": 1, "repetitions": 3, "min_time_ms": 0, "flush_l2": False}}

C_BASELINE = """
void kernel(const float* in0, const float* in1, float* out0, long in0_d0, long in1_d0) {
    (void)in1_d0;
    for (long i = 0; i < in0_d0; i++) out0[i] = in0[i] + in1[i];
}
"""


class Model(nn.Module):
    def forward(self, a, b):
        return a + b


def get_inputs():
    return [torch.randn(4096), torch.randn(4096)]


def get_init_inputs():
    return []
'''

GOOD = """
void kernel(const float* restrict a, const float* restrict b, float* restrict out, long n, long n2) {
    (void)n2;
    for (long i = 0; i < n; i++)
        out[i] = a[i] + b[i];
}
"""

WRONG = GOOD.replace("a[i] + b[i]", "a[i] - b[i]")

# Correct, but it computes the sum 64 times over (a compiler barrier keeps every pass): clearly slower than GOOD.
SLOW = """
void kernel(const float* restrict a, const float* restrict b, float* restrict out, long n, long n2) {
    (void)n2;
    for (int rep = 0; rep < 64; rep++) {
        for (long i = 0; i < n; i++)
            out[i] = a[i] + b[i];
        __asm__ volatile("" ::: "memory");
    }
}
"""

BROKEN_LOAD = """
/* the entry is misspelt: no function named `kernel` is defined */
void kernal(const float* a, const float* b, float* out, long n, long n2) {
    for (long i = 0; i < n; i++) out[i] = a[i] + b[i];
}
"""

BROKEN_COMPILE = """
void kernel(const float* a, const float* b, float* out, long n, long n2) {
    (void)n2;
    for (long i = 0; i < n; i++)
        out[i] = a[i] + b[i]
}
"""  # missing ';' on line 5

CRASH = """
void kernel(const float* a, const float* b, float* out, long n, long n2) {
    (void)a; (void)b; (void)n; (void)n2; (void)out;
    volatile float* p = (float*)0;
    *p = 1.0f;
}
"""

SKIPS_OUTPUT = """
void kernel(const float* a, const float* b, float* out, long n, long n2) {
    (void)n2;
    for (long i = 0; i < n - 1; i++) out[i] = a[i] + b[i];  /* last element never written */
}
"""

WRITES_INPUT = """
void kernel(const float* a, const float* b, float* out, long n, long n2) {
    (void)n2;
    for (long i = 0; i < n; i++) { out[i] = a[i] + b[i]; ((float*)a)[i] = 0.0f; }
}
"""

WRONG_SIGNATURE = """
void kernel(const double* a, const double* b, double* out, long n, long n2) {
    (void)n2;
    for (long i = 0; i < n; i++) out[i] = a[i] + b[i];
}
"""

# A model with a weight: the weight is passed after the inputs, its dims after the inputs' dims.
SCALE_TASK = '''
import torch
import torch.nn as nn

KSDK_TASK = {"correctness_trials": 2, "timing": {"warmup": 1, "repetitions": 3, "min_time_ms": 0, "flush_l2": False}}


class Model(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.w = nn.Parameter(torch.randn(n))

    def forward(self, x, alpha):
        return (x * self.w * alpha).sum(dim=1)


def get_inputs():
    return [torch.randn(8, 64), 3]


def get_init_inputs():
    return [64]
'''

SCALE_GOOD = """
void kernel(const float* x, long alpha, const float* w, float* out, long x_d0, long x_d1, long w_d0) {
    (void)w_d0;
    for (long i = 0; i < x_d0; i++) {
        float s = 0.0f;
        for (long j = 0; j < x_d1; j++) s += x[i * x_d1 + j] * w[j] * (float)alpha;
        out[i] = s;
    }
}
"""
