/* ksdk:launch
{"kernel": "bias_relu", "grid": ["rows"], "block": ["THREADS"],
 "scalars": [{"name": "rows", "type": "int32", "value": "in0.shape[0]"},
             {"name": "cols", "type": "int32", "value": "in0.shape[1]"}]}
*/
// The same seed through the CUDA dialect (NVIDIA): identical source, warp size 32.
#define THREADS 256 // ksdk:tune [64, 128, 256, 512, 1024]

extern "C" __global__ void bias_relu(const float* __restrict__ x, float* __restrict__ out,
                                     const float* __restrict__ bias, int rows, int cols) {
    const float* xr = x + (long long)blockIdx.x * cols;
    float* outr = out + (long long)blockIdx.x * cols;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) {
        float v = xr[c] + bias[c];
        outr[c] = v > 0.f ? v : 0.f;
    }
}
