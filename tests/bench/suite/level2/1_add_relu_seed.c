/* Seed: relu(a + b), UNROLL elements per step. */
#define UNROLL 1  // ksdk:tune [1, 2, 4, 8]

void kernel(const float* restrict a, const float* restrict b, float* restrict y, long na, long nb) {
    (void)nb;
    long i = 0;
    for (; i + UNROLL <= na; i += UNROLL)
        for (long u = 0; u < UNROLL; u++) {
            const float s = a[i + u] + b[i + u];
            y[i + u] = s > 0.0f ? s : 0.0f;
        }
    for (; i < na; i++) {
        const float s = a[i] + b[i];
        y[i] = s > 0.0f ? s : 0.0f;
    }
}
