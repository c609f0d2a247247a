"""Records the performance stage keeps beside the speedup, none of which can change it: other baselines timed by
the judge's clock over the same ring (PyTorch eager when the speedup is over the task's own kernel, torch.compile
when asked), triton.testing.do_bench of the baseline, and the candidate's process's own report of its time."""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Optional

from ksdk.evaluation import procfs
from ksdk.evaluation.baselines import ModelBatch, ring_inputs
from ksdk.evaluation.clock import Clock, before_batch, judge_floor
from ksdk.evaluation.protocol import Time
from ksdk.evaluation.verdict import Verdict
from ksdk.timing import summarize

if TYPE_CHECKING:
    from ksdk.evaluation.judge import Evaluation

EXTRA_BATCHES = 3
EVENTS_PASSES = 16  # at most this many passes in the many-pass batch the candidate's process also times
REPORT_WARN = 3.0  # a reported median this many times off the judge's (either way) is worth a warning


def record(ev: "Evaluation", rg, shipped, mode: str, refresh=None) -> None:
    """Every record the task's timing settings ask for; `mode` is how the rounds ran ('graph', 'eager', 'host');
    `refresh()` writes fresh inputs into the ring, as before a round."""
    s, res, target = ev.task.timing, ev.result, ev.target
    host = target.kind == "host"
    clock = Clock(ev, rg, ev.cand_floor, judge_floor(target))
    if shipped:
        label = "PyTorch eager (the task's Model)" + (" on the CPU, 1 thread" if host else "")
        _time(ev, clock, ModelBatch(ev.trials.ref.call, ring_inputs(rg), label, host), label, mode)
    if s.compile_baseline and not host:
        try:
            import torch

            compiled = torch.compile(ev.trials.ref.model)
            _time(ev, clock, ModelBatch(compiled, ring_inputs(rg), "torch.compile", host), "torch.compile", mode)
        except Exception as e:  # noqa: BLE001 - a record, not a verdict
            res.warnings.append(f"torch.compile baseline failed: {type(e).__name__}: {str(e)[:200]}")
    if s.cross_check_do_bench and not host:
        _do_bench(ev, rg)
    if s.cross_check_reported or s.cross_check_do_bench:  # the Runner's own do_bench rides with its own timing
        _reported(ev, rg)
    if s.cross_check_reported and not host and refresh is not None:
        _events_batch(ev, clock, refresh)


def _time(ev: "Evaluation", clock: Clock, batch: ModelBatch, label: str, mode: str) -> None:
    try:
        batch.prepare(mode)
        ms = []
        for _ in range(EXTRA_BATCHES):
            before_batch(ev)
            ms.append(clock.baseline(batch))
        how = "the device's own events" if batch.queues_only else "the judge's clock"
        ev.result.extra_baselines[label] = summarize(ms, f"{how} over {clock.ring.n} calls per batch, "
                                                         f"{batch.mode}, median of {EXTRA_BATCHES} batches")
    except Exception as e:  # noqa: BLE001 - a record, not a verdict
        ev.result.warnings.append(f"{label} baseline failed: {type(e).__name__}: {str(e)[:200]}")
    finally:
        batch.close()


def _do_bench(ev: "Evaluation", rg) -> None:
    """The baseline timed again by triton.testing.do_bench on the ring's first input set (L2 evicted by reading, as
    the judge's clock does)."""
    try:
        import torch
        import triton.testing

        from ksdk.evaluation.timers import DEFAULT_FLUSH, do_bench_eviction

        ins = ring_inputs(rg)[0]
        by = ev.task.timing.l2_flush_by or DEFAULT_FLUSH
        with torch.no_grad(), do_bench_eviction(by):
            samples = triton.testing.do_bench(lambda: ev.trials.ref.call(*ins), warmup=25, rep=100, return_mode="all")
        ev.result.cross_checks["do_bench:baseline"] = summarize(
            samples, f"triton.testing.do_bench in the judge (median of all; L2 evicted by {by})")
    except Exception as e:  # noqa: BLE001 - a record, not a verdict
        ev.result.warnings.append(f"do_bench cross-check failed: {type(e).__name__}: {str(e)[:200]}")


def _events_batch(ev: "Evaluation", clock: Clock, refresh) -> None:
    """One more batch as in a round, which the candidate's process also times by its own device events: the judge's
    clock against the device work it saw tells where a batch's time goes (a record, never the speedup)."""
    try:
        refresh()
        before_batch(ev)
        threads, judge_threads = _threads_cpu(ev), procfs.thread_cpu([os.getpid()])
        judged = clock.candidate(events=True) * clock.ring.n
        after, judge_after = _threads_cpu(ev), procfs.thread_cpu([os.getpid()])
    except Verdict as v:
        ev.result.warnings.append(f"the batch timed by the candidate's own events failed ({v.message[:200]})")
        return
    rec = ev.result.device.extra.setdefault("clock", {})
    own = clock.reported_ms
    rec["events_batch"] = {"judge_clock_ms": round(judged, 4), "candidate_events_ms":
                           round(own, 4) if isinstance(own, float) and 0 <= own < math.inf else None,
                           # which of the process's threads ran during the batch, ms (thaw to freeze)
                           "threads_cpu_ms": _ran(threads, after) if threads is not None else None,
                           "judge_threads_cpu_ms": _ran(judge_threads, judge_after),  # the judge's, e.g. a pool's
                           "candidate_notes": _notes(clock.reported_notes)}
    rounds = rec.get("passes")  # the rounds' passes (performance.clock_record)
    if isinstance(rounds, int) and rounds > 1:  # a many-pass batch too: is a call's steady state device time?
        _events_many(ev, clock, refresh, rec["events_batch"], rounds)


def _events_many(ev: "Evaluation", clock: Clock, refresh, rec: dict, rounds: int) -> None:
    """ms a call of a batch of several passes, by the judge's clock (its fixed cost included, spread over the calls)
    and by the candidate process's own events: a steady state's device time, such as the write-back of the previous
    call's outputs that do_bench, flushing before each call, leaves outside its window (a record)."""
    passes = min(rounds, EVENTS_PASSES)
    calls = passes * clock.ring.n
    try:
        refresh()
        before_batch(ev)
        judged = clock.batch(passes=passes, events=True)
    except Verdict as v:
        ev.result.warnings.append(f"the many-pass batch timed by the candidate's own events failed ({v.message[:200]})")
        return
    own = clock.reported_ms
    rec["passes"] = {"passes": passes, "judge_clock_ms_per_call": round(judged / calls, 5),
                     "candidate_events_ms_per_call": round(own / calls, 5)
                     if isinstance(own, float) and 0 <= own < math.inf else None}


def _notes(notes) -> Optional[dict]:
    """The first few finite figures of what the candidate's process said it saw in its events batch (its allocator's
    cudaMalloc calls, its queueing time): a record it could forge, kept short."""
    if not isinstance(notes, dict):
        return None
    return {str(k)[:40]: round(v, 4) for k, v in list(notes.items())[:12] if isinstance(v, float) and math.isfinite(v)}


def _ran(before: dict, after: dict) -> dict:
    """ms of CPU each thread name used between two readings of procfs.thread_cpu."""
    return {k: round((v - before.get(k, 0)) / 1e6, 4) for k, v in after.items() if v > before.get(k, 0)}


def _threads_cpu(ev: "Evaluation"):
    """The candidate's threads' CPU ns by name, or None where its process cannot say (a record)."""
    try:
        return ev.link.proc.threads_cpu_ns()
    except Exception:  # noqa: BLE001 - a record, never a verdict
        return None


def _reported(ev: "Evaluation", rg) -> None:
    """The candidate's process times itself (its Runner's own method) on the ring's first set: kept as a record and
    compared with the judge's figure; it never enters the speedup."""
    res = ev.result
    try:
        from ksdk.evaluation.timers import rounds

        s = ev.task.timing
        reply = ev.link.request(Time(inputs=rg.args[0], outputs=[{"slot": o.model_dump()} for o in rg.outs[0]],
                                     settings=s.model_dump(mode="json"), share=0.2, round=rounds(s.placements) - 1))
    except Verdict as v:
        res.warnings.append(f"the candidate's own timing failed ({v.message[:200]})")
        return
    samples = [float(x) for x in (reply.samples or []) if isinstance(x, (int, float)) and math.isfinite(x) and x > 0]
    if not samples:
        return
    mine = summarize(samples[:100_000], f"{(reply.report.method if reply.report else '') or 'not said'} (reported by "
                                        "the candidate's process: a record, never the speedup)")
    res.cross_checks["reported:candidate"] = mine
    for k, v in (reply.report.cross_checks if reply.report else {}).items():
        vals = [float(x) for x in v if isinstance(x, (int, float)) and math.isfinite(x) and x > 0][:100_000]
        if vals:
            res.cross_checks[f"{k}:candidate"] = summarize(vals, f"{k} in the candidate's process (a record)")
    judged = res.candidate_timing.median_ms if res.candidate_timing else None
    if judged and not judged / REPORT_WARN <= mine.median_ms <= judged * REPORT_WARN:
        res.warnings.append(f"the candidate's process reported {mine.median_ms:.4f} ms per call where the judge's "
                            f"clock measured {judged:.4f} ms: the figures are taken differently (the judge's is the "
                            "one the speedup uses)")
