"""The performance stage for backends whose candidates are device code alone (Backend.host_code False: the native
CUDA/MACA backends load a candidate's kernels through the driver's module API, so nothing of the candidate's runs on
the host of its process and the Runner's device timing is the backend's own trusted code). The Runner times the
candidate with device events and the judge times the baseline the same way, in alternating rounds; the last timed
call's outputs are checked."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ksdk.evaluation.protocol import Time
from ksdk.evaluation.shared import arg_views
from ksdk.evaluation.verdict import Verdict
from ksdk.models import ErrorKind, Stage
from ksdk.timing import median_ci, summarize

if TYPE_CHECKING:
    from ksdk.evaluation.judge import Evaluation

ROUNDS = 5


def run(ev: "Evaluation", shipped=None) -> None:
    """Rounds of the judge's baseline (the task's Model, or the task's own kernel run by the backend's Runner here)
    and the candidate's Runner timing itself, alternating; `shipped` as performance._shipped gives it."""
    import torch

    from ksdk.evaluation import timers

    res, link, trials, s = ev.result, ev.link, ev.trials, ev.task.timing
    host = ev.target.kind == "host"
    raw, trial = trials.make()
    trials.write(ev.io, ev.args, raw)
    timer = timers.timer_for(s, torch.device(ev.target.device))
    outs = [{"slot": o.model_dump()} for o in ev.outs]
    ins = arg_views(ev.io, ev.args)
    base, cand, ratios, method, base_method = [], [], [], "", timer.method
    for r in range(ROUNDS):
        warm = None if r == 0 else min(2, s.warmup)
        with link.span("baseline timing"):
            if shipped:
                b, report = shipped[0].time(ins, [ev.io.view(o) for o in ev.outs], s, 1 / ROUNDS, warm)
                base_method = report.method or base_method
            else:
                b = _model(ev, timer, raw, warm, host)
        trials.poison(ev.io, ev.outs)
        ev.target.synchronize()
        with link.span("candidate timing"):
            reply = link.request(Time(inputs=ev.args, outputs=outs, settings=s.model_dump(mode="json"),
                                      share=1 / ROUNDS, warmup=warm, round=r))
        c = list(reply.samples or [])
        if not c or not all(math.isfinite(x) and x > 0 for x in c) or len(c) > 100_000:
            raise Verdict(Stage.PERFORMANCE, ErrorKind.REWARD_HACK, "the candidate's process reported timing samples "
                          "that are not a set of positive finite numbers")
        method = (reply.report.method if reply.report else "") or method
        ev.checks.outputs(Stage.PERFORMANCE, reply.report, trial.refs, f"timing round {r}")
        ev.checks.fewer_launches(Stage.PERFORMANCE, reply.report.launches if reply.report else None,
                                 f"timing round {r}")
        _found, failure = trials.compare(ev.io, ev.outs, trial.refs)
        if failure:
            raise Verdict(Stage.PERFORMANCE, ErrorKind.REWARD_HACK, f"the output of the last timed call is wrong "
                          f"({failure[1]}): the candidate does less (or different) work when called repeatedly")
        base += b
        cand += c
        ratios.append(sorted(b)[len(b) // 2] / sorted(c)[len(c) // 2])
    res.baseline_timing = summarize(base, base_method + " (in the judge)")
    res.candidate_timing = summarize(cand, f"{method or 'not said'} (by the backend's Runner: the candidate's code is "
                                           "device code only)")
    lo, _med, hi = median_ci(ratios)
    res.speedup = res.baseline_timing.median_ms / res.candidate_timing.median_ms
    res.speedup_ci = (lo, hi)
    res.baseline = shipped[2] if shipped else "PyTorch eager (the task's Model)" + (" on the CPU, 1 thread" if host
                                                                                   else "")
    res.stage = Stage.PERFORMANCE


def _model(ev: "Evaluation", timer, raw: list, warm, host: bool) -> list[float]:
    """The task's Model timed by the judge (one thread on the CPU, as a candidate's kernel runs)."""
    import torch

    threads = torch.get_num_threads()
    if host:
        torch.set_num_threads(1)
    try:
        with torch.no_grad():
            return timer.measure(lambda: ev.trials.ref.call(*raw), share=1 / ROUNDS, warmup=warm).samples_ms
    finally:
        torch.set_num_threads(threads)
