"""Where does the fp16 GEMM's process-to-process speed come from? Stock triton.testing.do_bench (median) of the
matmul_bias_relu seed and its cuBLAS reference, in fresh processes and, within one process, with the operands
re-placed at different offsets. Needs only torch, triton and ksdk_triton_nvidia (for the eviction swap).

Run on a GPU:  [EVICT=read] python benchmarks/gemm_placement_probe.py [N_PROCESSES]
               [EVICT=read] [MOVE=input|weights] python benchmarks/gemm_placement_probe.py placements
EVICT: 'write' (do_bench's own zeroing, the default here) or 'read' (the evaluator's default eviction).
"""

from __future__ import annotations

import importlib.util
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import torch
import triton.testing

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "triton_nvidia" / "matmul_bias_relu"
BY = os.environ.get("EVICT", "write")


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def models():
    """Reference, seed candidate and input on the GPU, seeded as the evaluator seeds them."""
    task, seed = _load(EXAMPLE / "task.py", "probe_task"), _load(EXAMPLE / "seed.py", "probe_seed")
    init = task.get_init_inputs()
    torch.manual_seed(0)
    ref = task.Model(*init).cuda()
    torch.manual_seed(0)
    new = seed.ModelNew(*init).cuda()
    torch.manual_seed(1)
    return ref, new, task.get_inputs()[0].cuda()


def bench_us(fn) -> float:
    from ksdk.evaluation.timers import do_bench_eviction

    with do_bench_eviction(BY):
        return triton.testing.do_bench(fn, warmup=25, rep=200, return_mode="median") * 1e3


def spread(rows: list[dict]) -> str:
    s = [r["ref_us"] / r["cand_us"] for r in rows]
    c = [r["cand_us"] for r in rows]
    return (f"{BY}: candidate {min(c):.2f}-{max(c):.2f} us (median {statistics.median(c):.2f}); speedup "
            f"{min(s):.4f}-{max(s):.4f}, spread {100 * (max(s) / min(s) - 1):.2f}%")


def one() -> None:
    """This process: one measurement of each side at the allocator's first placement."""
    ref, new, x = models()
    with torch.no_grad():
        print(json.dumps({"ref_us": bench_us(lambda: ref(x)), "cand_us": bench_us(lambda: new(x)),
                          "x_mb": x.data_ptr() / 2**20 % 1024, "w_mb": new.weight.data_ptr() / 2**20 % 1024}))


def placements(n: int = 10) -> None:
    """This process: the candidate's input, weight and bias (MOVE=input or MOVE=weights: only those) copied past a
    growing, odd-sized pad, n times."""
    ref, new, x = models()
    move = os.environ.get("MOVE", "all")
    keep, rows = [], []
    with torch.no_grad():
        for i in range(n):
            keep.append(torch.empty((i * 37 % 11) * 2**20 + i * 4096, dtype=torch.uint8, device="cuda"))
            xi = x.clone() if move in ("all", "input") else x
            if move in ("all", "weights"):
                new.weight.data = new.weight.detach().clone()
                new.bias.data = new.bias.detach().clone()
            keep += [xi, new.weight.data, new.bias.data]
            rows.append({"i": i, "cand_us": round(bench_us(lambda xi=xi: new(xi)), 2),
                         "ref_us": round(bench_us(lambda xi=xi: ref(xi)), 2),
                         "x_mb": xi.data_ptr() / 2**20 % 1024, "w_mb": new.weight.data_ptr() / 2**20 % 1024,
                         "out_mb": new(xi).data_ptr() / 2**20 % 1024})
            print(json.dumps(rows[-1]), flush=True)
    print("placements", move, spread(rows))


def processes(n: int) -> None:
    """n fresh processes, one measurement each."""
    rows = []
    for _ in range(n):
        done = subprocess.run([sys.executable, __file__, "one"], capture_output=True, text=True, check=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    print("processes", spread(rows))


if __name__ == "__main__":
    arg = sys.argv[1] if len(sys.argv) > 1 else "8"
    {"one": one, "placements": placements}.get(arg, lambda: processes(int(arg)))()
