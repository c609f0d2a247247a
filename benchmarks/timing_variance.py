"""Where does speedup variance between evaluations come from? Times one task's seed against its reference with
the evaluator's own Timer under several measurement policies, 10 independent measurements each.

Policies differ in rounds, sampled time, and whether each measurement (and each round) works on freshly
allocated tensors, as separate evaluations do. Run on a GPU machine:

    python benchmarks/timing_variance.py examples/triton_nvidia/matmul_bias_relu --json OUT.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from ksdk.models import TimingSettings
from ksdk.tasks import load_task
from ksdk.evaluation import timers as timing
from triton_eval import build_models as build


def interleaved(timer, base, cand, rounds: int = timing.ROUNDS):
    """Baseline and candidate timed in alternating rounds (as the judge alternates them): their joined samples."""
    b, c = [], []
    for r in range(rounds):
        warm = None if r == 0 else 2
        b += timer.measure(base, share=1 / rounds, warmup=warm).samples_ms
        c += timer.measure(cand, share=1 / rounds, warmup=warm).samples_ms
    return timing.Measurement(b, None, len(b)), timing.Measurement(c, None, len(c))


def _settings(**overrides) -> TimingSettings:
    """The studies' timing settings: the evaluator's when the studies ran (zeroing eviction, no timed warm-up),
    so that a re-run reproduces docs/benchmarks.md; each study overrides what it varies."""
    return TimingSettings(**{"warmup": 10, "repetitions": 100, "min_time_ms": 50, "max_repetitions": 20000,
                             "warmup_ms": 0, "l2_flush_by": "write", **overrides})


def _clone(xs):
    return [x.clone() if isinstance(x, torch.Tensor) else x for x in xs]


def measure(timer: timing.Timer, ref, new, inputs, rounds: int, fresh_rounds: bool) -> dict:
    """One measurement: per-round medians on both sides, and three speedup estimators."""
    bm, cm = [], []
    ri, ci = _clone(inputs), _clone(inputs)
    for r in range(rounds):
        if fresh_rounds and r:
            ri, ci = _clone(inputs), _clone(inputs)
        warm = None if r == 0 else min(2, timer.settings.warmup)
        b = timer.measure(lambda ri=ri: ref(*ri), share=1 / rounds, warmup=warm).samples_ms
        c = timer.measure(lambda ci=ci: new(*ci), share=1 / rounds, warmup=warm).samples_ms
        bm.append(b)
        cm.append(c)
    allb = [x for p in bm for x in p]
    allc = [x for p in cm for x in p]
    per_round = [statistics.median(b) / statistics.median(c) for b, c in zip(bm, cm)]
    return {"ratio_of_medians": statistics.median(allb) / statistics.median(allc),
            "median_of_round_ratios": statistics.median(per_round),
            "ratio_of_mins": min(allb) / min(allc),
            "base_ms": statistics.median(allb), "cand_ms": statistics.median(allc),
            "cand_sample_cv": statistics.pstdev(allc) / statistics.fmean(allc), "n": len(allc)}


def policy(task, seed_src, name, rounds, min_time_ms, rebuild, fresh_rounds, repeats) -> dict:
    s = _settings(min_time_ms=min_time_ms)
    runs = []
    t0 = time.perf_counter()
    ref = new = inputs = None
    with torch.no_grad():
        for _ in range(repeats):
            if rebuild or ref is None:
                del ref, new, inputs
                ref, new, inputs = build(task, seed_src)
            timer = timing.Timer(s, torch.device("cuda"))
            runs.append(measure(timer, ref, new, inputs, rounds, fresh_rounds))
            del timer
    out = {"policy": name, "rounds": rounds, "min_time_ms": min_time_ms, "rebuild_each": rebuild,
           "fresh_inputs_each_round": fresh_rounds, "seconds_per_measurement": (time.perf_counter() - t0) / repeats}
    for k in ("ratio_of_medians", "median_of_round_ratios", "ratio_of_mins"):
        xs = [r[k] for r in runs]
        out[k] = {"median": statistics.median(xs), "cv": statistics.pstdev(xs) / statistics.fmean(xs)}
    cand = [r["cand_ms"] for r in runs]
    base = [r["base_ms"] for r in runs]
    out["cand_ms_cv"] = statistics.pstdev(cand) / statistics.fmean(cand)
    out["base_ms_cv"] = statistics.pstdev(base) / statistics.fmean(base)
    out["cand_sample_cv"] = statistics.median(r["cand_sample_cv"] for r in runs)
    out["samples_per_side"] = runs[0]["n"]
    return out


POLICIES = [  # name, rounds, min_time_ms, rebuild models+inputs per measurement, fresh input clones per round
    ("same tensors, 5 rounds, 50 ms", 5, 50, False, False),
    ("rebuilt per measurement, 5 rounds, 50 ms (evaluator today)", 5, 50, True, False),
    ("rebuilt, 5 rounds, 50 ms, fresh inputs per round", 5, 50, True, True),
    ("rebuilt, 20 rounds, 50 ms", 20, 50, True, False),
    ("rebuilt, 5 rounds, 200 ms", 5, 200, True, False),
    ("rebuilt, 20 rounds, 200 ms, fresh inputs per round", 20, 200, True, True),
]


def baseline_study(task, seed_src, repeats: int) -> list[dict]:
    """The reference alone, measured `repeats` times per variant, with the sample spread of each measurement;
    isolates which part of the reference (and which part of the method) moves between measurements."""
    ref, new, inputs = build(task, seed_src)
    x = inputs[0]
    parts = {"reference": lambda: ref(*inputs), "candidate": lambda: new(*inputs)}
    if hasattr(ref, "weight"):
        parts["reference matmul only"] = lambda: x @ ref.weight
    out = []
    with torch.no_grad():
        for flush in (True, False):
            s = _settings(flush_l2=flush)
            for name, fn in parts.items():
                timer = timing.Timer(s, torch.device("cuda"))
                meds, spreads = [], []
                for _ in range(repeats):
                    xs = sorted(timer.measure(fn).samples_ms)
                    q = lambda f, xs=xs: xs[min(len(xs) - 1, int(f * len(xs)))]  # noqa: E731
                    meds.append(q(0.5))
                    spreads.append([round(q(f) * 1000, 2) for f in (0.0, 0.1, 0.25, 0.5, 0.75, 0.9)])
                r = {"part": name, "flush_l2": flush, "median_us_cv": statistics.pstdev(meds) / statistics.fmean(meds),
                     "quantiles_us_per_measurement(min,p10,p25,p50,p75,p90)": spreads}
                out.append(r)
                print(json.dumps(r), flush=True)
                del timer
    return out


class _ZeroThenRead(timing.Timer):
    """Zeroed, then a quarter of it read back: the lines left in L2 are mostly clean."""

    def clear_l2(self) -> None:
        if self.flush is not None:
            timing.evict(self.flush, "write")
            timing.evict(self.flush[: self.flush.numel() // 4], "read")


def flush_study(task, seed_src, repeats: int) -> list[dict]:
    """Speedup CV over `repeats` measurements (allocator state shifted between them, as separate evaluations
    see) for several ways of evicting L2, and the reference's own median CV."""
    import random

    rng = random.Random(0)
    ref, new, inputs = build(task, seed_src)
    out = []
    with torch.no_grad():
        for label, by, cls in (("zero_", "write", timing.Timer), ("read", "read", timing.Timer),
                               ("zero then read", "write", _ZeroThenRead)):
            timer = cls(_settings(l2_flush_by=by), torch.device("cuda"))
            sp, bm, cm = [], [], []
            for _ in range(repeats):
                shim = torch.empty(rng.randrange(1, 64) * 2**20, dtype=torch.uint8, device="cuda")
                b, c = interleaved(timer, lambda: ref(*inputs), lambda: new(*inputs))
                del shim
                bm.append(statistics.median(b.samples_ms))
                cm.append(statistics.median(c.samples_ms))
                sp.append(bm[-1] / cm[-1])
            r = {"flush": label, "speedup_median": statistics.median(sp),
                 "speedup_cv": statistics.pstdev(sp) / statistics.fmean(sp),
                 "base_us": [round(x * 1000, 2) for x in bm], "cand_us": [round(x * 1000, 2) for x in cm]}
            out.append(r)
            print(json.dumps(r), flush=True)
            del timer
    return out


def shift_study(task, seed_src, repeats: int) -> list[dict]:
    """Zeroing flush (as do_bench) with the allocator shifted by a random-size block before every round, so that
    one measurement samples several buffer placements; speedup CV over `repeats` measurements."""
    import random

    rng = random.Random(1)
    ref, new, inputs = build(task, seed_src)
    out = []
    with torch.no_grad():
        for label, by, rounds in (("zero_, 5 shifted rounds", "write", 5), ("zero_, 10 shifted rounds", "write", 10),
                                  ("zero_, 20 shifted rounds", "write", 20), ("read, 5 shifted rounds", "read", 5)):
            timer = timing.Timer(_settings(l2_flush_by=by), torch.device("cuda"))
            sp = []
            for _ in range(repeats):
                b, c = [], []
                for r in range(rounds):
                    shim = torch.empty(rng.randrange(1, 64) * 2**20, dtype=torch.uint8, device="cuda")
                    warm = None if r == 0 else 2
                    b += timer.measure(lambda: ref(*inputs), share=1 / rounds, warmup=warm).samples_ms
                    c += timer.measure(lambda: new(*inputs), share=1 / rounds, warmup=warm).samples_ms
                    del shim
                sp.append(statistics.median(b) / statistics.median(c))
            r = {"method": label, "speedup_median": statistics.median(sp),
                 "speedup_cv": statistics.pstdev(sp) / statistics.fmean(sp)}
            out.append(r)
            print(json.dumps(r), flush=True)
            del timer
    return out


def l2_check() -> list[dict]:
    """Does each eviction leave L2 cold? A 16 MB read timed right after the eviction (cold) and after the eviction
    followed by one untimed read of the same buffer (warm); same clocks and queue state in both."""
    buf = torch.randn(4 * 2**20, device="cuda")
    dst = torch.empty_like(buf)
    probes = {"sum 16 MB": lambda: torch.sum(buf), "copy 16 MB": lambda: dst.copy_(buf)}
    out = []
    for by in ("read", "write"):
        timer = timing.Timer(TimingSettings(l2_flush_by=by), torch.device("cuda"))
        for pname, probe in probes.items():
            row = {"eviction": by, "probe": pname}
            for state in ("cold", "warm"):
                xs = []
                for _ in range(200):
                    timer.clear_l2()
                    if state == "warm":
                        probe()
                    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                    a.record()
                    probe()
                    b.record()
                    torch.cuda.synchronize()
                    xs.append(a.elapsed_time(b))
                row[f"{state}_us"] = round(statistics.median(xs) * 1000, 2)
            out.append(row)
            print(json.dumps(row), flush=True)
    return out


def placement_study(task, seed_src, repeats: int) -> list[dict]:
    """Which buffer placement moves the candidate's time between evaluations? The candidate alone, measured
    `repeats` times while one thing is re-placed before each measurement; counts measurements off the median."""
    import random

    rng = random.Random(2)
    out = []
    s = _settings(warmup=5, min_time_ms=30, l2_flush_by="read")  # the evaluator's eviction when this ran
    with torch.no_grad():
        for label in ("nothing", "inputs", "parameters", "rebuilt models and inputs", "rebuilt + new flush buffer"):
            ref, new, inputs = build(task, seed_src)
            timer = timing.Timer(s, torch.device("cuda"))
            meds, keep = [], []
            for _ in range(repeats):
                keep.append(torch.empty(rng.randrange(1, 32) * 2**20, dtype=torch.uint8, device="cuda"))
                if len(keep) > 3:
                    keep.pop(rng.randrange(len(keep)))
                if label == "inputs":
                    inputs = _clone(inputs)
                elif label == "parameters":
                    new._apply(lambda t: t.clone())
                elif label.startswith("rebuilt"):
                    ref = new = inputs = None  # free the old models before building new ones
                    ref, new, inputs = build(task, seed_src)
                    if label.endswith("buffer"):
                        del timer
                        timer = timing.Timer(s, torch.device("cuda"))
                samples = timer.measure(lambda new=new, inputs=inputs: new(*inputs)).samples_ms
                meds.append(statistics.median(samples) * 1000)
            m = statistics.median(meds)
            r = {"re-placed": label, "median_us": round(m, 2), "cv": statistics.pstdev(meds) / statistics.fmean(meds),
                 "off_by_3pct": sum(abs(x / m - 1) > 0.03 for x in meds), "us": [round(x, 2) for x in meds]}
            out.append(r)
            print(json.dumps(r), flush=True)
            del ref, new, inputs, timer, keep
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("example", help="a directory holding task.py and seed.py")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--json")
    ap.add_argument("--baseline-study", action="store_true", help="only the per-part spread study")
    ap.add_argument("--flush-study", action="store_true", help="only the L2 eviction study")
    ap.add_argument("--shift-study", action="store_true", help="only the shifted-placement study")
    ap.add_argument("--l2-check", action="store_true", help="only the check that each eviction leaves L2 cold")
    ap.add_argument("--placement-study", action="store_true", help="only the buffer placement study")
    a = ap.parse_args()
    task = load_task(Path(a.example) / "task.py")
    seed_src = (Path(a.example) / "seed.py").read_text()
    res = {"device": torch.cuda.get_device_name(0), "task": a.example, "repeats": a.repeats,
           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "policies": []}
    if a.baseline_study:
        res["baseline_study"] = baseline_study(task, seed_src, a.repeats)
    if a.flush_study:
        res["flush_study"] = flush_study(task, seed_src, a.repeats)
    if a.shift_study:
        res["shift_study"] = shift_study(task, seed_src, a.repeats)
    if a.l2_check:
        res["l2_check"] = l2_check()
    if a.placement_study:
        res["placement_study"] = placement_study(task, seed_src, a.repeats)
    for p in [] if (a.baseline_study or a.flush_study or a.shift_study or a.l2_check or a.placement_study) \
            else POLICIES:
        r = policy(task, seed_src, *p, repeats=a.repeats)
        res["policies"].append(r)
        print(json.dumps(r), flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
