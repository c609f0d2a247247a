/* Seed: relu(A @ B), i-k-j order when LOOP_IKJ is 1 (unit-stride inner loop). */
#define LOOP_IKJ 0  // ksdk:tune [0, 1]

void kernel(const float* restrict A, const float* restrict B, float* restrict C,
            long M, long K, long K2, long N) {
    (void)K2;
    for (long x = 0; x < M * N; x++)
        C[x] = 0.0f;
#if LOOP_IKJ
    for (long i = 0; i < M; i++)
        for (long k = 0; k < K; k++)
            for (long j = 0; j < N; j++)
                C[i * N + j] += A[i * K + k] * B[k * N + j];
#else
    for (long i = 0; i < M; i++)
        for (long j = 0; j < N; j++)
            for (long k = 0; k < K; k++)
                C[i * N + j] += A[i * K + k] * B[k * N + j];
#endif
    for (long x = 0; x < M * N; x++)
        C[x] = C[x] > 0.0f ? C[x] : 0.0f;
}
