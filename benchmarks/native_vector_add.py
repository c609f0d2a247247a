"""64M-float vector add through ksdk's CUDA dialect (cffi: nvcc cubin, cuModuleLoadData, cuLaunchKernel).

Measures, in one process on one GPU:
  1. torch's device-to-device copy bandwidth (y.copy_(x), 256 MiB each way; bytes read + written),
  2. the vector add timed by ksdk (timed_samples: cudaEvent pairs on ksdk's own stream, L2 flushed by a
     256 MiB cudaMemsetAsync before each repetition) -> bandwidth as 3 x 256 MiB moved per run,
  3. the SAME prepared launch (same cubin, function handle, buffers and argument block) issued on torch's
     current stream between torch.cuda.Event records, L2 flushed by zeroing a 256 MiB torch tensor on that
     stream: an independent clock for the same work, so the two medians should agree.
Rounds interleave the three so that clock drift hits them alike. Run on a GPU:
    python benchmarks/native_vector_add.py [--json out.json]
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics

import numpy as np

N = 64 * 2**20
FLUSH = 256 << 20
KERNELS = {
    "scalar": r"""
extern "C" __global__ void vadd(const float* __restrict__ a, const float* __restrict__ b,
                                float* __restrict__ out, long long n) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = a[i] + b[i];
}""",
    "float4": r"""
extern "C" __global__ void vadd(const float4* __restrict__ a, const float4* __restrict__ b,
                                float4* __restrict__ out, long long n4) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n4) { float4 x = a[i], y = b[i]; out[i] = make_float4(x.x + y.x, x.y + y.y, x.z + y.z, x.w + y.w); }
}""",
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", help="write the figures here as JSON")
    args = ap.parse_args()

    import torch

    from ksdk_native.binding import Binding, timed_samples
    from ksdk_native.compiler import compile_source
    from ksdk_native.dialect import CUDA, locate

    torch.cuda.init()
    torch.zeros(1, device="cuda")  # torch's runtime context = the device's primary context
    toolchain = locate(CUDA)
    b = Binding(CUDA, toolchain)
    b.open(torch.cuda.current_device())  # retains the same primary context for the module calls
    major, minor = b.device_attribute("cc_major"), b.device_attribute("cc_minor")
    arch = f"sm_{major}{minor}"

    rng = np.random.default_rng(0)
    a, c = rng.standard_normal(N, dtype=np.float32), rng.standard_normal(N, dtype=np.float32)
    pa, pc, po = b.malloc(a.nbytes), b.malloc(c.nbytes), b.malloc(a.nbytes)
    b.copy_to_device(pa, a)
    b.copy_to_device(pc, c)
    flush = (b.malloc(FLUSH), FLUSH)
    stream = b.stream_create()

    x = torch.randn(N, device="cuda")
    y = torch.empty_like(x)
    torch_flush = torch.empty(FLUSH // 4, device="cuda")

    def torch_timed(work, reps):
        s = torch.cuda.current_stream()
        evs = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(reps)]
        for st, en in evs:
            torch_flush.zero_()
            st.record(s)
            work(s)
            en.record(s)
        torch.cuda.synchronize()
        return [st.elapsed_time(en) for st, en in evs]

    results = {}
    for variant, src in KERNELS.items():
        compiled = compile_source(CUDA, toolchain.compiler, src, arch)
        fn = b.get_function(b.load_module(compiled.image), "vadd")
        n = N if variant == "scalar" else N // 4
        launch = b.prepare(fn, [(n + 255) // 256], [256], 0, [("ptr", pa), ("ptr", pc), ("ptr", po), ("int64", n)])
        b.memset(po, 0xFF, a.nbytes)
        launch(stream)
        b.synchronize(stream)
        out = np.empty_like(a)
        b.copy_to_host(out, po)
        np.testing.assert_allclose(out, a + c, rtol=1e-6)
        attrs = b.function_attributes(fn)
        ksdk_ms, torch_ev_ms, copy_ms = [], [], []
        torch_timed(lambda s: y.copy_(x), 10)  # warm-up of torch's path
        for _ in range(args.rounds):
            copy_ms += torch_timed(lambda s: y.copy_(x), args.reps)
            ksdk_ms += timed_samples(b, stream, launch, warmup=10, repetitions=args.reps, min_time_ms=0.0,
                                     max_repetitions=args.reps, flush=flush)
            torch_ev_ms += torch_timed(lambda s, launch=launch: launch(s.cuda_stream), args.reps)
        med = {k: statistics.median(v) for k, v in
               (("ksdk_events", ksdk_ms), ("torch_events", torch_ev_ms), ("torch_copy", copy_ms))}
        copy_bw = 2 * a.nbytes / (med["torch_copy"] * 1e-3) / 1e9
        vadd_bw = 3 * a.nbytes / (med["ksdk_events"] * 1e-3) / 1e9
        results[variant] = {
            "median_ms": med, "samples": len(ksdk_ms),
            "copy_bw_GBps": round(copy_bw, 1), "vadd_bw_GBps": round(vadd_bw, 1),
            "fraction_of_copy_bw": round(vadd_bw / copy_bw, 4),
            "ksdk_vs_torch_events": round(med["ksdk_events"] / med["torch_events"] - 1, 4),
            "registers": attrs.get("num_regs"), "local_bytes": attrs.get("local_size_bytes"),
        }
    report = {
        "device": torch.cuda.get_device_name(), "arch": arch, "date": datetime.date.today().isoformat(),
        "torch": torch.__version__, "versions": b.versions(), "n_floats": N, "reps_per_round": args.reps,
        "rounds": args.rounds, "results": results,
    }
    print(json.dumps(report, indent=2))
    for v, r in results.items():
        print(f"{v}: vadd {r['vadd_bw_GBps']} GB/s = {r['fraction_of_copy_bw']:.1%} of torch copy "
              f"{r['copy_bw_GBps']} GB/s; ksdk events vs torch events {r['ksdk_vs_torch_events']:+.2%}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
