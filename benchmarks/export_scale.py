"""Export at scale: a synthetic run of N steps (real archive schema, bulk inserts), exported to SFT and RL.

    python benchmarks/export_scale.py --steps 100000 [--small 20000] [--dir /tmp/ksdk-export-bench]

Generation and each export run in fresh subprocesses, so the driver stays small: ru_maxrss survives fork and
exec, and a child forked from a big parent would report the parent's size. Each export reports its wall time,
CPU time and peak RSS (resource.getrusage); the load average is printed too, since other work on the machine
stretches wall time but not CPU time. Exporting a --small run as well shows whether memory grows with the run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

# A Triton-like kernel of realistic length (about 2 KB) with tunables; each candidate edits a few lines.
KERNEL = '''import torch
import triton
import triton.language as tl

BLOCK_M = 64  # ksdk:tune [32, 64, 128]
BLOCK_N = 64  # ksdk:tune [32, 64, 128]
BLOCK_K = 32  # ksdk:tune [16, 32, 64]
NUM_WARPS = 4  # ksdk:tune [2, 4, 8]


@triton.jit
def matmul_kernel(a_ptr, b_ptr, c_ptr, M, N, K, stride_am, stride_ak, stride_bk, stride_bn, stride_cm, stride_cn,
                  BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_k = tl.arange(0, BLOCK_K)
    a_ptrs = a_ptr + offs_m[:, None] * stride_am + offs_k[None, :] * stride_ak
    b_ptrs = b_ptr + offs_k[:, None] * stride_bk + offs_n[None, :] * stride_bn
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k in range(0, tl.cdiv(K, BLOCK_K)):
        a = tl.load(a_ptrs, mask=offs_k[None, :] < K - k * BLOCK_K, other=0.0)
        b = tl.load(b_ptrs, mask=offs_k[:, None] < K - k * BLOCK_K, other=0.0)
        acc += tl.dot(a, b)
        a_ptrs += BLOCK_K * stride_ak
        b_ptrs += BLOCK_K * stride_bk
    c_ptrs = c_ptr + offs_m[:, None] * stride_cm + offs_n[None, :] * stride_cn
    mask = (offs_m[:, None] < M) & (offs_n[None, :] < N)
    tl.store(c_ptrs, acc.to(tl.float16), mask=mask)  # VARIANT


class ModelNew(torch.nn.Module):
    def forward(self, a, b):
        M, K = a.shape
        K, N = b.shape
        c = torch.empty((M, N), device=a.device, dtype=torch.float16)
        grid = (triton.cdiv(M, BLOCK_M), triton.cdiv(N, BLOCK_N))
        matmul_kernel[grid](a, b, c, M, N, K, a.stride(0), a.stride(1), b.stride(0), b.stride(1),
                            c.stride(0), c.stride(1), BLOCK_M=BLOCK_M, BLOCK_N=BLOCK_N, BLOCK_K=BLOCK_K,
                            num_warps=NUM_WARPS)
        return c
'''
TASK = '''import torch
class Model(torch.nn.Module):
    def forward(self, a, b):
        return a @ b
def get_inputs():
    return [torch.randn(1024, 1024, dtype=torch.float16), torch.randn(1024, 1024, dtype=torch.float16)]
def get_init_inputs():
    return []
'''


def generate(run: Path, steps: int, seed: int = 0, backend: str = "triton_nvidia") -> float:
    """Write a run directory of `steps` attempts with the real schema; returns seconds taken."""
    from ksdk.archives.sqlite import SCHEMA
    from ksdk.evolution.config import RunConfig
    from ksdk.interfaces.mutator import MutationRequest, Scored
    from ksdk.models import (Candidate, DeviceInfo, ErrorKind, EvalResult, Mutation, Stage, Status, Task,
                             TimingStats)
    from ksdk.mutators.prompts import build_messages, render

    t0 = time.perf_counter()
    rng = random.Random(seed)
    if run.exists():
        shutil.rmtree(run)
    run.mkdir(parents=True)
    device = DeviceInfo(name="NVIDIA H100 80GB HBM3", kind="gpu", driver="580", runtime="13.0")
    RunConfig(task_name=run.name, backend=backend, mutator="llm", device=device, seed_language="triton",
              finished=True).save(run)
    (run / "task.py").write_text(TASK)
    db = sqlite3.connect(run / "archive.sqlite", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    db.executescript(SCHEMA)
    timing = TimingStats(median_ms=1.0, iqr_ms=0.01, mean_ms=1.0, std_ms=0.01, min_ms=0.99, max_ms=1.1, n=100,
                         method="cuda events, L2 flushed")
    task = Task(name=run.name, source=TASK)

    def verdict(cid: str, kind: str, speedup: float | None) -> EvalResult:
        r = EvalResult(candidate_id=cid, task=run.name, backend=backend, backend_version="3.6", device=device,
                       versions={"torch": "2.11", "triton": "3.6"}, wall_s=1.2, device_s=0.4)
        if kind == "correct":
            r.stage, r.status, r.speedup, r.trials = Stage.PERFORMANCE, Status.OK, speedup, 5
            r.candidate_timing, r.baseline_timing, r.baseline = timing, timing, "torch eager"
        elif kind == "incorrect":
            r.fail(Stage.CORRECTNESS, ErrorKind.VALUE, "out[0]: max_abs_err 0.31 > atol 0.01 at [12, 7]")
        elif kind == "build":
            r.fail(Stage.COMPILE, ErrorKind.COMPILE, "triton.CompilationError: at 12:4: unsupported tensor index",
                   line=12)
        else:
            r.stage, r.status, r.error_kind, r.message = Stage.LOAD, Status.INFRA_ERROR, ErrorKind.INFRA, "lost"
        return r

    seed_c = Candidate(id="seed", source=KERNEL, language="triton", mutation=Mutation(mutator="seed"))
    seed_r = verdict("seed", "correct", 1.0)
    prompt = render(build_messages(MutationRequest(task=task, parent=Scored(candidate=seed_c, result=seed_r),
                                                   backend=backend)))
    correct: list[tuple[str, str, float]] = [("seed", KERNEL, 1.0)]  # (id, source, speedup) parents to pick
    cands = [(seed_c.id, None, seed_c.to_json(), seed_c.source_hash, 0.0)]
    results = [("seed", seed_r.to_json(), 1, 1.0, 1.0, 0.0)]
    attempts = []
    batch = 5000

    def flush():
        db.execute("BEGIN")
        db.executemany("INSERT INTO candidates VALUES (?, ?, ?, ?, ?)", cands)
        db.executemany("INSERT INTO results VALUES (?, ?, ?, ?, ?, ?)", results)
        db.executemany("INSERT INTO attempts (parent_id, candidate_id, mutation, context, error, created_at) "
                       "VALUES (?, ?, ?, ?, ?, ?)", attempts)
        db.execute("COMMIT")
        cands.clear(), results.clear(), attempts.clear()

    for i in range(steps):
        # parents mostly recent (as selection favours the current best), sometimes old
        pid, psrc, pspeed = correct[-1 - min(len(correct) - 1, int(rng.expovariate(0.05)))] \
            if rng.random() < 0.9 else rng.choice(correct)
        roll = rng.random()
        how = "params" if roll < 0.2 else ("malformed" if roll < 0.3 else rng.choice(["edits", "full"]))
        src = re.sub(r"# VARIANT.*", f"# VARIANT {i}", psrc)
        if how == "params":
            src = src.replace("NUM_WARPS = 4", "NUM_WARPS = 8") if "NUM_WARPS = 4" in src \
                else src.replace("NUM_WARPS = 8", "NUM_WARPS = 4")
            mut = Mutation(mutator="params", reply_format="params", params={"NUM_WARPS": 8})
        else:
            old, new = (next(x for x in s.splitlines() if "# VARIANT" in x) for s in (psrc, src))
            reply = (f"<<<<<<< SEARCH\n{old}\n=======\n{new}\n>>>>>>> REPLACE\n" if how == "edits"
                     else f"```python\n{src}```")
            if how == "malformed":
                reply = "I would change the block size, but here is no code."
            mut = Mutation(mutator="llm", model="openai/gpt-4o-mini", prompt=prompt.replace("seed", pid),
                           reply=reply, reply_format=how if how != "malformed" else "auto", tokens_in=1500,
                           tokens_out=300, cost_usd=0.0004, latency_s=3.1)
        context = json.dumps({"task": run.name, "parent_id": pid, "mode": "exploit", "island": 0,
                              "feedback": "verdict: ok", "inspirations": [c[0] for c in correct[-3:-1]],
                              "notes": []})
        now = 1.7e9 + i
        if how == "malformed":
            attempts.append((pid, None, mut.to_json(), context, "unusable reply: no code block", now))
        else:
            cid = f"c{i:07d}"
            c = Candidate(id=cid, source=src, language="triton", parent_ids=[pid], mutation=mut, created_at=now)
            cands.append((cid, pid, c.to_json(), c.source_hash, now))
            attempts.append((pid, cid, mut.to_json(), context, None, now))
            kind = rng.choices(["correct", "incorrect", "build", "infra"], [0.6, 0.2, 0.15, 0.05])[0]
            speed = pspeed * rng.lognormvariate(0.02, 0.08) if kind == "correct" else None
            r = verdict(cid, kind, speed)
            results.append((cid, r.to_json(), int(r.correct), r.score, r.speedup, now))
            if kind == "correct":
                correct.append((cid, src, speed))
        if len(attempts) >= batch:
            flush()
    flush()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return time.perf_counter() - t0


def _scan(run: str) -> int:
    """Baseline: the floor of any reader, one pass over every attempt with its rows joined and JSON decoded."""
    db = sqlite3.connect(f"file:{run}/archive.sqlite?mode=ro", uri=True)
    n = 0
    for row in db.execute("SELECT a.mutation, a.context, c.candidate, r.result FROM attempts a "
                          "LEFT JOIN candidates c ON c.id = a.candidate_id "
                          "LEFT JOIN results r ON r.candidate_id = a.candidate_id ORDER BY a.id"):
        for text in row:
            if text:
                json.loads(text)
        n += 1
    return n


def _child(kind: str, run: str, out: str) -> None:
    """Subprocess body: one export (or a baseline), then wall time, CPU time and peak RSS as JSON on stdout."""
    t0 = time.perf_counter()
    if kind == "scan":
        stats = argparse.Namespace(steps=_scan(run), written={})
        Path(out).write_text("")
    elif kind == "load_all":  # the in-memory archive the evolution loop uses: everything parsed and held
        from ksdk.archives.sqlite import SqliteArchive
        a = SqliteArchive(Path(run) / "archive.sqlite")
        stats = argparse.Namespace(steps=a.attempt_count, written={})
        Path(out).write_text("")
    elif kind == "sft":
        from ksdk.export.sft import export_sft
        stats = export_sft([run], out)
    else:
        from ksdk.export.rl import export_rl
        stats = export_rl([run], out)
    wall = time.perf_counter() - t0
    use = resource.getrusage(resource.RUSAGE_SELF)  # ru_maxrss in KiB on Linux
    print(json.dumps({"kind": kind, "wall_s": wall, "cpu_s": use.ru_utime + use.ru_stime,
                      "peak_rss_mib": use.ru_maxrss / 1024, "steps": stats.steps,
                      "records": sum(stats.written.values()), "bytes": Path(out).stat().st_size}))


def measure(kind: str, run: Path, out: Path) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", kind, str(run), str(out)], capture_output=True,
                          text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=100_000)
    ap.add_argument("--small", type=int, default=20_000, help="also export a run this size (0: skip)")
    ap.add_argument("--dir", type=Path, default=Path("/tmp/ksdk-export-bench"))
    ap.add_argument("--repeat", type=int, default=3, help="exports per (size, kind); the median is reported")
    ap.add_argument("--child", nargs=3, metavar=("KIND", "RUN", "OUT"), help=argparse.SUPPRESS)
    ap.add_argument("--generate", nargs=2, metavar=("RUN", "STEPS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(*args.child)
        return
    if args.generate:
        print(json.dumps({"seconds": generate(Path(args.generate[0]), int(args.generate[1]))}))
        return
    sizes = [s for s in (args.small, args.steps) if s]
    rows = []
    for n in sizes:
        run = args.dir / f"bench_{n}"
        proc = subprocess.run([sys.executable, __file__, "--generate", str(run), str(n)], capture_output=True,
                              text=True, check=True)
        gen = json.loads(proc.stdout.strip().splitlines()[-1])["seconds"]
        db_mib = (run / "archive.sqlite").stat().st_size / 2**20
        print(f"generated {n} steps in {gen:.1f}s ({db_mib:.0f} MiB archive)", flush=True)
        for kind in ("scan", "load_all", "sft", "rl"):
            out = args.dir / f"{kind}_{n}.jsonl"
            ms = [measure(kind, run, out) for _ in range(1 if kind == "load_all" else args.repeat)]
            ms.sort(key=lambda m: m["wall_s"])
            m = ms[len(ms) // 2]
            m.update(n=n, db_mib=db_mib, walls=[round(x["wall_s"], 2) for x in ms],
                     cpus=sorted(round(x["cpu_s"], 2) for x in ms), max_rss_mib=max(x["peak_rss_mib"] for x in ms),
                     load=[round(x, 2) for x in os.getloadavg()])
            rows.append(m)
            print(f"{kind} {n} steps: median wall {m['wall_s']:.1f}s (runs {m['walls']}), CPU {m['cpus']}s, "
                  f"{m['records']} records, {m['bytes'] / 2**20:.0f} MiB out, peak RSS {m['max_rss_mib']:.0f} MiB, "
                  f"load average {m['load']}", flush=True)
    print(json.dumps(rows))
    scan = {r["n"]: r["wall_s"] for r in rows if r["kind"] == "scan"}
    for r in rows:
        if r["kind"] in ("sft", "rl"):
            print(f"{r['kind']} {r['n']}: {r['wall_s'] / scan[r['n']]:.2f}x the raw scan's wall time")


if __name__ == "__main__":
    main()
