"""Does memory the judge shares (cuMemCreate + cuMemMap, ksdk_triton_nvidia.devshare) read or write at the speed of
PyTorch's own (cudaMalloc) memory? One process; CUDA events around torch.relu / x * sigmoid(x) / copy over SIZE_GIB
of float32, with the input and the output in either kind of memory. Median of 9 calls each; L2 evicted between.
Run on a GPU machine:  python3 benchmarks/region_write_probe.py [SIZE_GIB]"""

from __future__ import annotations

import statistics
import sys

import torch

from ksdk_triton_nvidia import devshare


def timed(fn, flush) -> float:
    out = []
    for _ in range(9):
        flush.zero_()
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        torch.cuda.synchronize()
        out.append(a.elapsed_time(b))
    return statistics.median(out)


def main() -> None:
    gib = float(sys.argv[1]) if len(sys.argv) > 1 else 2.0
    n = int(gib * 2**30) // 4
    torch.cuda.init()
    shared = devshare.allocate(2 * n * 4, 0)
    shared_in = devshare.tensor(shared, 0, (n,), torch.float32)
    shared_out = devshare.tensor(shared, n * 4, (n,), torch.float32)
    aligned = devshare.allocate(n * 4, 0, align=1 << 30)  # its address on a 1 GiB boundary (larger pages, if any)
    aligned_out = devshare.tensor(aligned, 0, (n,), torch.float32)
    own_in, own_out = torch.empty(n, device="cuda"), torch.empty(n, device="cuda")
    shared_in.normal_()
    own_in.copy_(shared_in)
    flush = torch.empty(256 << 20, dtype=torch.uint8, device="cuda")
    print(f"{torch.cuda.get_device_name(0)}, {gib:g} GiB each way; ms, median of 9")
    for op, fn in (("relu", lambda x, o: torch.clamp_min(x, 0, out=o)),
                   ("copy", lambda x, o: o.copy_(x)),
                   ("swish", lambda x, o: torch.mul(x, torch.sigmoid(x), out=o))):
        row = []
        for src, dst, label in ((own_in, own_out, "own->own"), (shared_in, shared_out, "shared->shared"),
                                (shared_in, own_out, "shared->own"), (own_in, shared_out, "own->shared"),
                                (own_in, aligned_out, "own->shared(1G-aligned)")):
            row.append(f"{label} {timed(lambda f=fn, x=src, o=dst: f(x, o), flush):.3f}")
        print(f"{op:<6} " + "  ".join(row), flush=True)
    del shared_in, shared_out, aligned_out
    shared.close()
    aligned.close()


if __name__ == "__main__":
    main()
