"""Where a batch timed from another process spends its time, with no ksdk in the way (a GPU diagnostic for the
judge's clock, ksdk/evaluation/clock.py). Process A (the judge's stand-in) owns the memory and times requests to
process B (the candidate's stand-in) from its side, as the judge does; B holds CUDA graphs over A's memory (CUDA IPC)
and over its own. Each request is timed after A's own device work of four kinds (none, a cache eviction, rewriting
the inputs, both), and B's CUDA events say how long its device work took. A waits for each reply asleep in recv(),
then again polling back to back (a sleeping CPU, a virtual machine's above all, wakes late).

Requests: ping (a one-element kernel), touch (a one-element kernel reading A's memory), batch (N graph replays over
A's memory), batch2 (the same twice), own (N graph replays over B's own memory), eager (the same work without
graphs). A batch's wall time minus a ping's, against B's events, is the fixed cost the judge's floor must match.

With --cupti, B first subscribes the CUPTI kernel record a Triton candidate's process runs under
(ksdk_triton_nvidia.kernel_log, its callbacks off outside correctness calls, as in a timed batch): does a subscriber
alone cost graph replays time?

Usage on a GPU machine: python3 benchmarks/cross_process_batch.py [--n 3] [--rounds 20] [--cupti]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.multiprocessing as mp

SHAPE = (4096, 4096)  # 64 MiB of float32 per tensor: elementwise_chain's size
OPS = ("ping", "touch", "batch", "batch2", "own", "eager")
BEFORE = ("none", "evict", "rewrite", "evict+rewrite")


def _work(x, y, out) -> None:
    torch.mul(x, 2.0, out=out)
    out.add_(y)


def _graphs(xs, ys, outs) -> list:
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):
        for x, y, o in zip(xs, ys, outs):
            _work(x, y, o)
    torch.cuda.synchronize()
    graphs = []
    for x, y, o in zip(xs, ys, outs):
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            _work(x, y, o)
        graphs.append(g)
    torch.cuda.synchronize()
    return graphs


def candidate(conn, xs, ys, outs, cupti: bool = False) -> None:
    """Process B: serves A's requests; replies with its own events' device time (ms) where it ran work."""
    if cupti:
        from ksdk_triton_nvidia import kernel_log

        conn.send(kernel_log.start() or "CUPTI subscriber on, callbacks off")
    tick = torch.zeros(1, device="cuda")
    shared = _graphs(xs, ys, outs)
    own_x = [torch.randn(SHAPE, device="cuda") for _ in xs]
    own_o = [torch.empty(SHAPE, device="cuda") for _ in xs]
    own = _graphs(own_x, own_x, own_o)
    e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    while True:
        op = conn.recv()
        if op == "stop":
            return
        if op in ("ping", "touch"):
            tick.add_(1) if op == "ping" else tick.add_(xs[0][0, 0])
            torch.cuda.synchronize()
            conn.send(0.0)
            continue
        e0.record()
        if op == "eager":
            for x, y, o in zip(xs, ys, outs):
                _work(x, y, o)
        else:
            for g in (own if op == "own" else shared * (2 if op == "batch2" else 1)):
                g.replay()
        e1.record()
        torch.cuda.synchronize()
        conn.send(e0.elapsed_time(e1))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=3, help="input sets (graphs) in a batch")
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--cupti", action="store_true", help="B subscribes the CUPTI kernel record first")
    args = ap.parse_args()
    mp.set_start_method("spawn")
    xs = [torch.randn(SHAPE, device="cuda") for _ in range(args.n)]
    ys = [torch.randn(SHAPE, device="cuda") for _ in range(args.n)]
    outs = [torch.empty(SHAPE, device="cuda") for _ in range(args.n)]
    flush = torch.empty(200 << 20, dtype=torch.uint8, device="cuda")
    a, b = mp.Pipe()
    proc = mp.Process(target=candidate, args=(b, xs, ys, outs, args.cupti))
    proc.start()
    if args.cupti:
        print("B:", a.recv(), flush=True)
    a.send("ping")
    a.recv()
    print(f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}; {args.n} sets of {SHAPE}; medians of "
          f"{args.rounds}", flush=True)
    for wait in ("block", "spin"):  # A sleeps in recv, or polls the pipe back to back (its CPU never idles)
        for before in BEFORE:
            for op in OPS:
                walls, devs = [], []
                for _ in range(args.rounds):
                    if "rewrite" in before:
                        for x in xs:
                            x.normal_()
                    if "evict" in before:
                        flush.fill_(1)
                    torch.cuda.synchronize()
                    t = time.perf_counter()
                    a.send(op)
                    if wait == "spin":
                        while not a.poll(0):
                            pass
                    devs.append(a.recv())
                    walls.append((time.perf_counter() - t) * 1e3)
                dec = statistics.quantiles(walls, n=10)  # the spread is the jitter a 1% figure must beat
                print(f"{wait} after {before:14s} {op:7s} A's wall {statistics.median(walls):.4f} ms (least "
                      f"{min(walls):.4f}, p10-p90 {dec[-1] - dec[0]:.4f}); B's events {statistics.median(devs):.4f} ms",
                      flush=True)
    e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    for before in ("none", "evict"):
        walls, devs = [], []
        for _ in range(args.rounds):
            if before == "evict":
                flush.fill_(1)
            torch.cuda.synchronize()
            t = time.perf_counter()
            e0.record()
            for x, y, o in zip(xs, ys, outs):
                _work(x, y, o)
            e1.record()
            torch.cuda.synchronize()
            walls.append((time.perf_counter() - t) * 1e3)
            devs.append(e0.elapsed_time(e1))
        print(f"A itself after {before:6s} wall {statistics.median(walls):.4f} ms; events "
              f"{statistics.median(devs):.4f} ms", flush=True)
    a.send("stop")
    proc.join()


if __name__ == "__main__":
    main()
