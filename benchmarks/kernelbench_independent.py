"""An independent check of ksdk's KernelBench speedups: no ksdk code, only torch and the problem files.

For each problem it builds the reference Model and the candidate's ModelNew from the same init inputs, makes the
inputs on the GPU from a fixed seed, checks one trial with KernelBench's tolerance (atol = rtol = 1e-2), and
times both sides on the same inputs with CUDA events (warm-up, then the median of REPS calls, each timed alone).
With --ksdk SUMMARY (a `ksdk bench --candidates` summary.json of the same problems) it prints the ratio of ksdk's
speedup to this one per problem: the check asks for 0.99-1.01.

  python benchmarks/kernelbench_independent.py LEVEL_DIR CANDIDATE_DIR STEM [STEM ...] [--ksdk SUMMARY] [--out F]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
from pathlib import Path

import torch

ATOL = RTOL = 1e-2  # KernelBench's tolerance for fp32
WARMUP, REPS = 3, 20


def _module(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _median_ms(fn, inputs) -> float:
    for _ in range(WARMUP):
        fn(*inputs)
    torch.cuda.synchronize()
    times = []
    for _ in range(REPS):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn(*inputs)
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def check(problem: Path, candidate: Path) -> dict:
    """Correctness of one trial and both sides' median times on the same device inputs."""
    ref = _module(problem, f"ref_{problem.stem}")
    cand = _module(candidate, f"cand_{candidate.stem}")
    torch.manual_seed(0)
    init = ref.get_init_inputs()
    model, new = ref.Model(*init).cuda(), cand.ModelNew(*init).cuda()
    with torch.device("cuda"):
        torch.manual_seed(1)
        inputs = [x.cuda() if isinstance(x, torch.Tensor) else x for x in ref.get_inputs()]
    with torch.no_grad():
        want, got = model(*inputs), new(*inputs)
        torch.cuda.synchronize()
        correct = bool(got.shape == want.shape and torch.allclose(got, want, atol=ATOL, rtol=RTOL))
        del want, got
        torch.cuda.empty_cache()
        ref_ms = _median_ms(model, inputs)
        cand_ms = _median_ms(new, inputs)
    out = {"correct": correct, "reference_ms": ref_ms, "candidate_ms": cand_ms, "speedup": ref_ms / cand_ms,
           "device": torch.cuda.get_device_name(0)}
    del inputs, model, new
    torch.cuda.empty_cache()
    return out


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("level_dir", type=Path)
    ap.add_argument("candidate_dir", type=Path)
    ap.add_argument("stems", nargs="+")
    ap.add_argument("--ksdk", type=Path, help="a ksdk bench summary.json of the same problems")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args(argv)
    results = {}
    for stem in a.stems:
        results[stem] = check(a.level_dir / f"{stem}.py", a.candidate_dir / f"{stem}.py")
        r = results[stem]
        print(f"independent {stem}: correct={r['correct']} reference {r['reference_ms']:.4f} ms, candidate "
              f"{r['candidate_ms']:.4f} ms, speedup {r['speedup']:.4f}x", flush=True)
    if a.ksdk:
        records = {r["name"]: r for r in json.loads(a.ksdk.read_text())["records"]}
        for stem, r in results.items():
            k = records.get(stem, {})
            ratio = k["speedup"] / r["speedup"] if k.get("speedup") else None
            r["ksdk_speedup"], r["ratio"] = k.get("speedup"), ratio
            print(f"agreement {stem}: ksdk {k.get('speedup') or 0:.4f}x ({k.get('verdict')}), independent "
                  f"{r['speedup']:.4f}x, ratio {ratio if ratio is None else round(ratio, 4)}", flush=True)
    if a.out:
        a.out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
