/* Seed: the sum of each row, ACCS partial sums at a time. */
#define ACCS 1  // ksdk:tune [1, 2, 4, 8]

void kernel(const float* restrict x, float* restrict y, long rows, long cols) {
    for (long r = 0; r < rows; r++) {
        const float* row = x + r * cols;
        float part[ACCS] = {0};
        long j = 0;
        for (; j + ACCS <= cols; j += ACCS)
            for (long a = 0; a < ACCS; a++)
                part[a] += row[j + a];
        float acc = 0.0f;
        for (; j < cols; j++)
            acc += row[j];
        for (long a = 0; a < ACCS; a++)
            acc += part[a];
        y[r] = acc;
    }
}
