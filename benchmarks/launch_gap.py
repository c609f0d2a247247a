"""Why a launch-bound forward (level 3's ResNet101, DenseNet121) takes longer a call in the candidate's process than
the same forward in the judge's: the same model and inputs timed in a child process, plain and in the candidate
sandbox (bubblewrap, limits, containment box), adding one at a time what the candidate's process has and the judge's
has not (torch._dynamo imported, the CUPTI subscriber, the arena's memory pool), and with the judge's NVML sampling
and CUDA context beside it. Per step: device ms a call (CUDA events over 10 calls, median of 7) and the host's queue
ms a call.

    python benchmarks/launch_gap.py KB_LEVEL3_DIR OUT_JSON [problem ...]
    (GAP_ARENA_MIB=N: an arena of N MiB, 8192 by default; any KernelBench level's folder works)
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

GPU_NODES = ["/dev/nvidia*", "/dev/nvidia-caps/*"]
ROOT = Path(__file__).resolve().parent.parent
STEPS = ("dynamo", "cupti", "arena")
CALLS, REPS = 10, 7
ARENA_MIB = int(os.environ.get("GAP_ARENA_MIB", "8192"))  # the arena's size: the judge's holds one call's outputs and
# the reference's first-trial temporaries (at most a quarter of the free memory); beyond it, the candidate's own memory


def child(problem: str) -> None:
    """Runs in the measured process; prints one JSON line: {step: {dev_ms, queue_ms}} after each added step."""
    import contextlib
    import importlib.util

    import torch

    spec = importlib.util.spec_from_file_location("problem", problem)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    torch.manual_seed(0)
    model = mod.Model(*mod.get_init_inputs()).cuda()
    inputs = [x.cuda() if isinstance(x, torch.Tensor) else x for x in mod.get_inputs()]
    out: dict = {}
    pool = None
    kept: list = []

    def call():
        nonlocal kept
        with pool() if pool else contextlib.nullcontext():
            kept = [model(*inputs)]  # as the Runner's eager batch keeps a call's outputs

    def measure(label: str) -> None:
        with torch.no_grad():
            for _ in range(3):
                call()
            torch.cuda.synchronize()
            dev, queue = [], []
            for _ in range(REPS):
                e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                t = time.perf_counter()
                e0.record()
                for _ in range(CALLS):
                    call()
                e1.record()
                q = time.perf_counter() - t
                torch.cuda.synchronize()
                dev.append(e0.elapsed_time(e1) / CALLS)
                queue.append(q * 1e3 / CALLS)
        out[label] = {"dev_ms": round(statistics.median(dev), 4), "queue_ms": round(statistics.median(queue), 4)}

    measure("plain")
    for step in STEPS:
        if step == "dynamo":
            import torch._dynamo  # noqa: F401
        elif step == "cupti":
            from ksdk_triton_nvidia import kernel_log

            out["cupti_error"] = kernel_log.start()
        elif step == "arena":
            from ksdk_triton_nvidia.arena import Arena

            arena = Arena(torch.empty(ARENA_MIB << 20, dtype=torch.uint8, device="cuda"))
            pool = lambda a=arena: torch.cuda.use_mem_pool(a.pool)  # noqa: E731
        measure(step)
    print("GAP " + json.dumps(out), flush=True)


def run(problem: str, sandboxed: bool, judge_beside: bool) -> dict:
    from ksdk.evaluation import containment
    from ksdk.evaluation import sandbox as sb

    scratch = sb.make_scratch()
    limits = sb.Limits()
    box = containment.make_box(scratch.name, limits.data_bytes)
    cmd = [sys.executable, __file__, "--child", problem]
    if sandboxed:
        cmd = sb.command(cmd, sb.Spec(scratch=scratch, devices=GPU_NODES, limits=limits,
                                      readonly=[str(ROOT), str(Path(problem).parent)]))
    stop = threading.Event()
    polls = [0]
    if judge_beside:  # the judge's memory watch: NVML read every 10 ms, per process at each new peak
        import torch
        from ksdk_triton_nvidia import clocks

        torch.cuda.init()
        held = torch.empty(1 << 30, dtype=torch.uint8, device="cuda")  # noqa: F841 - the judge's own context
        h = clocks.handle(str(getattr(torch.cuda.get_device_properties(0), "uuid", "") or ""))

        def poll() -> None:
            while not stop.wait(0.01):
                clocks.memory_used(h)
                clocks.memory_by_process(h)
                polls[0] += 1

        threading.Thread(target=poll, daemon=True).start()
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=str(scratch),
                       preexec_fn=lambda: (limits.apply(), box.enter()))
    stop.set()
    box.close()
    sb.remove_scratch(scratch)
    line = next((x for x in p.stdout.splitlines() if x.startswith("GAP ")), None)
    res = json.loads(line[4:]) if line else {"error": (p.stderr or p.stdout)[-1500:], "rc": p.returncode}
    res.update(wall_s=round(time.perf_counter() - t, 1), polls=polls[0])
    return res


def main(level3: str, out_path: str, names: list[str]) -> None:
    report = {}
    for name in names or ["10_ResNet101", "15_DenseNet121"]:
        problem = str((Path(level3) / f"{name}.py").resolve())
        for label, sandboxed, beside in (("plain", False, False), ("sandbox", True, False),
                                         ("sandbox+judge", True, True)):
            res = run(problem, sandboxed, beside)
            report[f"{name} {label}"] = res
            print(name, label, json.dumps(res), flush=True)
    Path(out_path).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    if sys.argv[1] == "--child":
        child(sys.argv[2])
    else:
        main(sys.argv[1], sys.argv[2], sys.argv[3:])
