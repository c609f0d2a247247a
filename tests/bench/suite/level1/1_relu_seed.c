/* Seed: ReLU, UNROLL elements per step. */
#define UNROLL 1  // ksdk:tune [1, 2, 4, 8]

void kernel(const float* restrict x, float* restrict y, long d0, long d1) {
    const long n = d0 * d1;
    long i = 0;
    for (; i + UNROLL <= n; i += UNROLL)
        for (long u = 0; u < UNROLL; u++)
            y[i + u] = x[i + u] > 0.0f ? x[i + u] : 0.0f;
    for (; i < n; i++)
        y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}
