/* Seed for examples/quickstart/matmul.py: C = A @ B, blocked, with tunable tiles and loop order.
 * As shipped (i-j-k order, one block spanning the whole matrix) it is the naive triple loop;
 * the parameter mutator searches the `ksdk:tune` constants below. */
#define BLOCK_I 320  // ksdk:tune [8, 16, 32, 64, 320]
#define BLOCK_J 320  // ksdk:tune [16, 32, 64, 128, 320]
#define BLOCK_K 320  // ksdk:tune [16, 32, 64, 128, 320]
#define LOOP_IKJ 0   // ksdk:tune [0, 1]
#define UNROLL_J 1   // ksdk:tune [1, 2, 4]

#define MIN(a, b) ((a) < (b) ? (a) : (b))

void matmul(const float* restrict A, const float* restrict B, float* restrict C,
            long M, long K, long K2, long N) {
    (void)K2;
    for (long x = 0; x < M * N; x++)
        C[x] = 0.0f;
    for (long i0 = 0; i0 < M; i0 += BLOCK_I)
        for (long k0 = 0; k0 < K; k0 += BLOCK_K)
            for (long j0 = 0; j0 < N; j0 += BLOCK_J) {
                const long i1 = MIN(i0 + BLOCK_I, M), k1 = MIN(k0 + BLOCK_K, K), j1 = MIN(j0 + BLOCK_J, N);
#if LOOP_IKJ
                /* i-k-j: the inner loop walks rows of B and C with unit stride, so it vectorises. */
                for (long i = i0; i < i1; i++)
                    for (long k = k0; k < k1; k++) {
                        const float a = A[i * K + k];
                        float* restrict c = C + i * N;
                        const float* restrict b = B + k * N;
                        long j = j0;
                        for (; j + UNROLL_J <= j1; j += UNROLL_J)
                            for (long u = 0; u < UNROLL_J; u++)
                                c[j + u] += a * b[j + u];
                        for (; j < j1; j++)
                            c[j] += a * b[j];
                    }
#else
                /* i-j-k: a dot product per element; B is read with stride N. */
                for (long i = i0; i < i1; i++)
                    for (long j = j0; j < j1; j++) {
                        float s = C[i * N + j];
                        for (long k = k0; k < k1; k++)
                            s += A[i * K + k] * B[k * N + j];
                        C[i * N + j] = s;
                    }
#endif
            }
}
