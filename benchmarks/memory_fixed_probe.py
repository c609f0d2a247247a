"""What a process's device memory costs before any problem's data: NVML's figure for this process after each step
(a CUDA context, Triton's first kernel, cuBLAS's first matmul, cuDNN's first convolution, a CUDA graph), so the
fixed part of the judge's and the candidate's peak (issue: peak <= 3 x (inputs + outputs) + 1 GiB) can be told from
what scales with the problem. Run on a GPU machine:  python3 benchmarks/memory_fixed_probe.py
Prints one line per step: MiB this process holds by NVML, and by PyTorch's allocator (reserved)."""

from __future__ import annotations

import os

import torch


def nvml_mib() -> float:
    from ksdk_triton_nvidia import clocks

    h = clocks.handle(str(getattr(torch.cuda.get_device_properties(0), "uuid", "") or ""))
    return (clocks.memory_by_process(h) or {}).get(os.getpid(), 0) / 2**20


def step(name: str) -> None:
    torch.cuda.synchronize()
    print(f"{name:<34} nvml {nvml_mib():8.1f} MiB  torch reserved {torch.cuda.memory_reserved() / 2**20:8.1f} MiB",
          flush=True)


def main() -> None:
    print("CUDA_MODULE_LOADING =", os.environ.get("CUDA_MODULE_LOADING", "(unset: torch sets LAZY)"))
    torch.zeros(1, device="cuda")
    step("context + one tensor")
    import triton
    import triton.language as tl

    @triton.jit
    def add_one(x_ptr, n, BLOCK: tl.constexpr):
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        tl.store(x_ptr + offs, tl.load(x_ptr + offs, mask=offs < n) + 1, mask=offs < n)

    x = torch.zeros(4096, device="cuda")
    add_one[(4,)](x, 4096, BLOCK=1024)
    step("+ a Triton kernel")
    a = torch.randn(512, 512, device="cuda")
    (a @ a).sum()
    step("+ cuBLAS matmul")
    conv = torch.nn.Conv2d(16, 32, 3).cuda()
    conv(torch.randn(8, 16, 64, 64, device="cuda"))
    step("+ cuDNN conv2d")
    conv3 = torch.nn.Conv3d(4, 8, 3).cuda()
    conv3(torch.randn(2, 4, 16, 16, 16, device="cuda"))
    step("+ cuDNN conv3d")
    g = torch.cuda.CUDAGraph()
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        a.relu()
    torch.cuda.current_stream().wait_stream(s)
    with torch.cuda.graph(g):
        a.relu()
    g.replay()
    step("+ a captured CUDA graph")
    torch.cuda.empty_cache()
    step("after empty_cache")


if __name__ == "__main__":
    main()
