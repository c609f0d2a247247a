"""Benchmarks of the triton_nvidia evaluator on one GPU: fidelity, throughput of a mixed batch, overhead.

Run on a machine with an NVIDIA GPU:  python benchmarks/triton_eval.py --out OUT_DIR
Writes OUT_DIR/triton_eval.json and prints a summary (the figures go to docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path

from ksdk.evaluation.local import LocalEvaluator
from ksdk.models import Candidate, ErrorKind, Status, Task
from ksdk.mutators.tunables import apply_tunables
from ksdk.tasks import load_task, task_from_source

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "triton_nvidia"
CHEATS = ROOT / "tests" / "triton" / "cheats"
from ksdk_triton_nvidia.conformance import GOOD, TASK  # noqa: E402  (the small conformance task is the 5th task)
from ksdk.evaluation.timers import DEFAULT_FLUSH  # noqa: E402

NAMES = ["elementwise_chain", "row_softmax", "layer_norm", "matmul_bias_relu"]
SHORT = {"load": 60, "compile": 60, "correctness": 6, "performance": 60}


def examples() -> dict[str, tuple[Task, str]]:
    out = {}
    for n in NAMES:
        t = load_task(EXAMPLES / n / "task.py")
        out[n] = (t, (EXAMPLES / n / "seed.py").read_text())
    return out


async def fidelity(tasks, repeats: int, flush_by: str | None = None, placements: int = 1) -> dict:
    """Evaluate each seed `repeats` times; speedup CV; agreement with triton.testing.do_bench. `flush_by` sets
    the tasks' timing.l2_flush_by ('read' or 'write'; None keeps the evaluator's default), `placements` their
    timing.placements."""
    res = {}
    # Every evaluation also times both sides with do_bench inside the worker (same buffers and eviction).
    update = {"cross_check_do_bench": True, "placements": placements, **({"l2_flush_by": flush_by} if flush_by else {})}
    tasks = {n: (t.model_copy(update={"timing": t.timing.model_copy(update=update)}), s) for n, (t, s) in tasks.items()}
    ev = LocalEvaluator("triton_nvidia", cache=False, workers=1)
    try:
        await _fidelity(ev, tasks, repeats, res)
    finally:
        await ev.close()
    return res


async def _fidelity(ev, tasks, repeats, res) -> None:
    for n, (task, seed) in tasks.items():
        speedups, cand_ms, base_ms, clocks, in_worker, placed, warned = [], [], [], [], [], [], []
        for _ in range(repeats):
            r = await _one(ev, task, seed)
            if r.speedup is None:
                res[n] = {"error": f"{r.error_kind} {r.message[:300]}"}
                break
            speedups.append(r.speedup)
            cand_ms.append(r.candidate_timing.median_ms)
            base_ms.append(r.baseline_timing.median_ms)
            clocks.append(r.device.extra.get("clocks_during_timing") if r.device else None)
            warned.append(r.warnings)
            placed.append({k.split(":")[0]: round(v.median_ms * 1e3, 2) for k, v in r.cross_checks.items()
                           if k.startswith("placement") and k.endswith(":candidate")})
            cc = r.cross_checks
            if "do_bench:baseline" in cc and "do_bench:candidate" in cc:
                in_worker.append(cc["do_bench:baseline"].median_ms / cc["do_bench:candidate"].median_ms)
        else:
            mean = statistics.fmean(speedups)
            db = do_bench_speedup(task, seed)
            by = task.timing.l2_flush_by or DEFAULT_FLUSH
            res[n] = {"speedup_median": statistics.median(speedups), "speedup_cv": statistics.pstdev(speedups) / mean,
                      "candidate_ms": statistics.median(cand_ms), "baseline_ms": statistics.median(base_ms),
                      "l2_flush_by": by, "do_bench": db,
                      # like for like: do_bench with the evaluator's eviction; and do_bench exactly as shipped
                      "do_bench_agreement": statistics.median(speedups) / db[by]["speedup"] - 1.0,
                      "stock_do_bench_agreement": statistics.median(speedups) / db["write"]["speedup"] - 1.0,
                      # do_bench inside the same worker and evaluation: same process, buffers and eviction
                      "in_worker_do_bench_speedups": in_worker,
                      "in_worker_do_bench_agreement": (statistics.median(speedups) / statistics.median(in_worker) - 1.0
                                                       if in_worker else None),
                      "speedups": speedups, "candidate_ms_each": cand_ms, "baseline_ms_each": base_ms,
                      "clocks_each": clocks, "placement_candidate_us_each": placed, "warnings_each": warned}
        print("fidelity", n, res[n].get("l2_flush_by", ""), json.dumps(res[n]), flush=True)


async def _one(ev, task, source):
    return await ev.evaluate(task, Candidate(source=source))


def build_models(task: Task, seed: str):
    """Reference model, candidate model and inputs on the GPU, built in this process as the runner builds them
    (same seeds)."""
    import importlib.util
    import tempfile

    import torch

    mods = []
    for label, src in (("task", task.source), ("cand", seed)):
        path = Path(tempfile.mkdtemp()) / f"{label}.py"
        path.write_text(src)
        spec = importlib.util.spec_from_file_location(f"bench_{label}_{id(path)}", path)
        m = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(m)
        mods.append(m)
    tm, cm = mods
    init = [x.cuda() if isinstance(x, torch.Tensor) else x for x in tm.get_init_inputs()]
    torch.manual_seed(task.seed)
    ref = tm.Model(*init).cuda()
    torch.manual_seed(task.seed)
    new = cm.ModelNew(*init).cuda()
    torch.manual_seed(task.seed + 1)
    inputs = [x.cuda() if isinstance(x, torch.Tensor) else x for x in tm.get_inputs()]
    return ref, new, inputs


def do_bench_speedup(task: Task, seed: str) -> dict:
    """The same models and inputs timed by triton.testing.do_bench (median), in this process, with do_bench's own
    eviction ('write') and with the evaluator's default ('read')."""
    import torch
    import triton.testing

    from ksdk.evaluation.timers import do_bench_eviction

    ref, new, inputs = build_models(task, seed)
    out = {}
    with torch.no_grad():
        for flush in ("write", "read"):
            with do_bench_eviction(flush):
                b = triton.testing.do_bench(lambda: ref(*inputs), warmup=50, rep=300, return_mode="median")
                c = triton.testing.do_bench(lambda: new(*inputs), warmup=50, rep=300, return_mode="median")
            out[flush] = {"baseline_ms": b, "candidate_ms": c, "speedup": b / c}
    return out


def mixed_batch(tasks) -> list[tuple[str, Task, str, set]]:
    """(label, task, source, accepted verdicts) for >= 40 candidates over 5 tasks."""
    ok = {"ok"}
    batch = []
    variants = {
        "elementwise_chain": [{"BLOCK_SIZE": b, "NUM_WARPS": w} for b, w in ((512, 4), (2048, 8), (4096, 8), (256, 2))],
        "row_softmax": [{"NUM_WARPS": w} for w in (4, 16)],
        "layer_norm": [{"NUM_WARPS": w} for w in (4, 16)],
        "matmul_bias_relu": [{"BLOCK_M": 128, "BLOCK_N": 128, "BLOCK_K": 32, "NUM_WARPS": 8, "NUM_STAGES": 3},
                             {"BLOCK_M": 64, "BLOCK_N": 128, "BLOCK_K": 64, "NUM_WARPS": 4, "NUM_STAGES": 4},
                             {"BLOCK_M": 128, "BLOCK_N": 64, "BLOCK_K": 64, "NUM_WARPS": 4, "NUM_STAGES": 3}],
    }
    for n, (task, seed) in tasks.items():
        batch.append((f"{n}/seed", task, seed, ok))
        for v in variants[n]:
            batch.append((f"{n}/tuned{v}", task, apply_tunables(seed, v), ok))
    ew_task, ew = tasks["elementwise_chain"]
    sm_task, sm = tasks["row_softmax"]
    ln_task, ln = tasks["layer_norm"]
    mm_task, mm = tasks["matmul_bias_relu"]
    batch += [
        ("elementwise_chain/wrong", ew_task, ew.replace("th * 0.5", "th * 0.55"), {ErrorKind.VALUE.value}),
        ("row_softmax/wrong_norm", sm_task,
         sm.replace("num / tl.sum(num, axis=0)", "num / (tl.sum(num, axis=0) * 1.1)"),
         {ErrorKind.VALUE.value, ErrorKind.NAN_INF.value}),
        ("layer_norm/wrong_eps", ln_task, ln.replace("var + eps", "var + 0.1"), {ErrorKind.VALUE.value}),
        ("matmul/wrong_no_relu", mm_task, mm.replace("tl.maximum(acc + bias[None, :], 0.0)", "acc + bias[None, :]"),
         {ErrorKind.VALUE.value}),
        ("elementwise_chain/syntax", ew_task, ew.replace("def forward(self, x", "def forward(self x"),
         {ErrorKind.SYNTAX.value}),
        ("row_softmax/compile", sm_task, sm.replace("tl.sum(num, axis=0)", "tl.sum(num, axis=0, bogus=1)"),
         {ErrorKind.COMPILE.value}),
        ("layer_norm/compile", ln_task, ln.replace("tl.sqrt(var + eps)", "tl.sqrt(var + undefined_eps)"),
         {ErrorKind.COMPILE.value}),
        ("matmul/compile_shape", mm_task, mm.replace("acc += tl.dot(a, b)", "acc += tl.dot(a, a)"),
         {ErrorKind.COMPILE.value}),
        ("elementwise_chain/missing", ew_task, ew.replace("class ModelNew", "class ModelOld"),
         {ErrorKind.MISSING_ENTRY.value}),
    ]
    small = task_from_source("conformance", TASK, timeouts=SHORT)
    batch.append(("conformance/good", small, GOOD, ok))
    batch += [
        ("conformance/crash_exit", small, GOOD.replace("out = torch.empty_like(x)", "import os\n        os._exit(3)"),
         {ErrorKind.CRASH.value}),
        ("conformance/crash_segv", small, GOOD.replace("out = torch.empty_like(x)",
                                                       "import ctypes\n        ctypes.string_at(0)"),
         {ErrorKind.CRASH.value}),
        ("conformance/illegal_address", small, GOOD.replace("tl.store(out_ptr + offs,",
                                                            "tl.store(out_ptr + offs * 1000000007,"),
         {ErrorKind.DEVICE_FAULT.value}),
        ("conformance/hang_python", small, GOOD.replace("class ModelNew", "_c = [0]\n\n\nclass ModelNew").replace(
            "out = torch.empty_like(x)", "_c[0] += 1\n        while _c[0] > 1:\n            pass\n"
            "        out = torch.empty_like(x)"), {ErrorKind.TIMEOUT.value}),
        ("conformance/hang_gpu_kernel", small, HANG_GPU, {ErrorKind.TIMEOUT.value}),
    ]
    for p in sorted(CHEATS.glob("*.py")):
        accepted = {ErrorKind.REWARD_HACK.value}
        if p.stem == "patch_reference_weights":  # the reference lives in the judge: the trick cannot reach it
            accepted.add(ErrorKind.VALUE.value)
        if p.stem == "hidden_side_stream":
            # When the events already count the side stream's work, the cheat gains nothing: an honest 'ok'
            # with a speedup far below 1 is as right as a reward_hack verdict (see SLOW_OK below).
            accepted.add("ok<1")
        batch.append((f"cheat/{p.stem}", small, p.read_text(), accepted))
    return batch


# Spins on the device from the second call on (the flag it polls stays 0): only the stage timeout ends it.
HANG_GPU = GOOD.replace("def fused_kernel(x_ptr, y_ptr, out_ptr, n, scale, BLOCK: tl.constexpr):",
                        "def fused_kernel(x_ptr, y_ptr, out_ptr, n, scale, flag_ptr, BLOCK: tl.constexpr):\n"
                        "    while tl.load(flag_ptr, volatile=True) == 0:\n        n += 0").replace(
    "class ModelNew", "_calls = [0]\n\n\nclass ModelNew").replace(
    "fused_kernel[(triton.cdiv(n, BLOCK_SIZE),)](x, y, out, n, self.scale, BLOCK=BLOCK_SIZE)",
    "_calls[0] += 1\n        flag = torch.full((1,), 1 if _calls[0] == 1 else 0, dtype=torch.int32, device=x.device)\n"
    "        fused_kernel[(triton.cdiv(n, BLOCK_SIZE),)](x, y, out, n, self.scale, flag, BLOCK=BLOCK_SIZE)")
assert HANG_GPU.count("flag") >= 3


def throughput(batch, sandbox: bool = True, workers: int = 1) -> dict:
    """The mixed batch through one evaluator on GPU 0 with `workers` judges (several share the device: they take
    turns to time), `workers` candidates in flight at once."""
    async def go():
        ev = LocalEvaluator("triton_nvidia", devices=[0], cache=False, workers=workers, sandbox=sandbox)
        gate = asyncio.Semaphore(workers)

        async def one(label, task, src, accepted) -> dict:
            async with gate:
                r = await ev.evaluate(task, Candidate(source=src))
            verdict = "ok" if r.status == Status.OK else (r.error_kind.value if r.error_kind else r.status.value)
            right = verdict in accepted or (verdict == "ok" and "ok<1" in accepted  # SLOW_OK
                                             and r.speedup is not None and r.speedup < 1)
            timed_s = sum(r.stages.get(k, 0.0) for k in ("candidate timing", "baseline timing"))
            print(f"{'OK ' if right else 'BAD'} {label:45s} {verdict:16s} {r.wall_s:6.2f}s "
                  f"{'' if r.speedup is None else f'{r.speedup:.2f}x'} {'' if right else r.message[:200]}",
                  flush=True)
            return {"candidate": label, "task": task.name, "verdict": verdict, "expected": sorted(accepted),
                    "right": right, "wall_s": round(r.wall_s, 3), "timed_kernel_s": round(timed_s, 3),
                    "speedup": r.speedup, "message": r.message[:160], "stages": r.stages}

        t0 = time.perf_counter()
        try:
            rows = list(await asyncio.gather(*(one(*item) for item in batch)))
        finally:
            await ev.close()
        total = time.perf_counter() - t0
        return rows, total

    rows, total = asyncio.run(go())
    correct = [r for r in rows if r["verdict"] == "ok"]
    overhead = [r["wall_s"] - r["timed_kernel_s"] for r in correct]
    tasks = {r["candidate"].split("/")[0].replace("matmul", "matmul_bias_relu") for r in rows
             if not r["candidate"].startswith("cheat/")} | {"conformance"}
    return {"candidates": len(rows), "tasks": len(tasks),
            "wall_s": total, "per_minute": 60 * len(rows) / total, "stages_median_correct": breakdown(correct),
            "wrong_verdicts": [r for r in rows if not r["right"]],
            "overhead_s_median": statistics.median(overhead) if overhead else None,
            "wall_s_median_correct": statistics.median([r["wall_s"] for r in correct]) if correct else None,
            "rows": rows}


def breakdown(rows: list[dict]) -> dict[str, float]:
    """Median seconds per stage (and part within them) over the given rows' EvalResult.stages."""
    keys = sorted({k for r in rows for k in r.get("stages", {})})
    return {k: round(statistics.median([r["stages"].get(k, 0.0) for r in rows]), 4) for k in keys}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=".")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--also-write-flush", action="store_true",
                    help="repeat fidelity with timing.l2_flush_by='write' (do_bench's eviction)")
    ap.add_argument("--sandbox-cost", action="store_true",
                    help="also run the mixed batch unsandboxed (--no-sandbox): the sandbox's cost per candidate")
    ap.add_argument("--no-fidelity", action="store_true", help="throughput only")
    ap.add_argument("--workers", type=int, default=1, help="judges sharing GPU 0 for the mixed batch")
    args = ap.parse_args()
    import torch
    import triton

    info = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "triton": triton.__version__,
            "cuda": torch.version.cuda, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    print(json.dumps(info), flush=True)
    tasks = examples()
    batch = mixed_batch(tasks)
    out = {"info": info}
    out["throughput"] = throughput(batch, workers=args.workers)
    tp = out["throughput"]
    print(f"throughput: {tp['candidates']} candidates / {tp['tasks']} tasks in {tp['wall_s']:.1f}s = "
          f"{tp['per_minute']:.1f}/min; wrong verdicts: {len(tp['wrong_verdicts'])}; "
          f"overhead per correct candidate {tp['overhead_s_median']}", flush=True)
    parts = ", ".join(f"{k} {v:.3f}" for k, v in tp["stages_median_correct"].items())
    print("breakdown (median s per correct candidate): " + parts, flush=True)
    Path(args.out, "triton_eval.json").write_text(json.dumps(out, indent=1, default=str))
    if args.sandbox_cost:
        out["throughput_unsandboxed"] = bare = throughput(batch, sandbox=False)
        per = (tp["wall_s"] - bare["wall_s"]) / max(1, tp["candidates"])
        print(f"unsandboxed: {bare['per_minute']:.1f}/min, wrong verdicts {len(bare['wrong_verdicts'])}; the sandbox "
              f"costs {per * 1e3:.0f} ms per candidate", flush=True)
        Path(args.out, "triton_eval.json").write_text(json.dumps(out, indent=1, default=str))
    if args.no_fidelity:
        return
    out["fidelity"] = asyncio.run(fidelity(tasks, args.repeats))
    Path(args.out, "triton_eval.json").write_text(json.dumps(out, indent=1, default=str))
    if args.also_write_flush:
        out["fidelity_write_flush"] = asyncio.run(fidelity(tasks, args.repeats, "write"))
        Path(args.out, "triton_eval.json").write_text(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
