"""The correctness stage: trials on fresh inputs (each reference computed before the candidate's process sees the
inputs, the random generators seeded alike on both sides), every call's ops and kernels recorded, inputs checked
unchanged, outputs compared; then the same buffers overwritten in place with new values must give new results."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ksdk.evaluation.protocol import Call
from ksdk.evaluation.trial import merge
from ksdk.evaluation.verdict import Verdict
from ksdk.models import ErrorKind, OutputCheck, Stage

if TYPE_CHECKING:
    from ksdk.evaluation.judge import Evaluation


def run(ev: "Evaluation") -> None:
    """Every trial the task asks for, then the in-place overwrite; a Verdict at the first failure."""
    link, trials, res = ev.link, ev.trials, ev.result
    ev.enter(Stage.CORRECTNESS, ev.limits.correctness)
    worst: list[OutputCheck] = []
    seen: list[tuple] = []
    for i in range(ev.task.correctness_trials):
        what = f"trial {i}"
        trial = ev.first if i == 0 else None
        ev.first = None
        if trial is None:
            with link.span("reference"):
                raw, trial = trials.make()
                trials.write(ev.io, ev.args, raw)
                del raw
        try:
            reply = _call(ev, trial)
        except Verdict as v:  # kernels compile at their first launch: a compile error there is the compile stage's
            if i == 0 and v.kind == ErrorKind.COMPILE:
                v.stage = res.stage = Stage.COMPILE
            raise
        with link.span("checks"):
            ev.checks.outputs(Stage.CORRECTNESS, reply.report, trial.refs, what)
            if not trials.unchanged(ev.io, ev.args, trial.seed):
                raise Verdict(Stage.CORRECTNESS, ErrorKind.ALIASING, f"{what}: the candidate wrote into its input "
                              "tensors; inputs are read-only (the reference leaves them unchanged)")
            ev.checks.compute(Stage.CORRECTNESS, reply.report, what)
            found, failure = trials.compare(ev.io, ev.outs, trial.refs)
            worst = merge(worst, found)
            fp = trials.fingerprint(ev.io, ev.outs)
        if failure and fp in seen:
            raise Verdict(Stage.CORRECTNESS, ErrorKind.REWARD_HACK, f"{what}: forward returned exactly the values it "
                          "returned for other inputs earlier: results are cached (by address, shape or count)")
        seen.append(fp)
        if failure:
            res.outputs, res.trials = worst, i + 1
            raise Verdict(Stage.CORRECTNESS, failure[0], f"{what}: {failure[1]}")
        ev.stochastic = ev.stochastic or trial.stochastic
        ev.ref_ms = min(ev.ref_ms, trial.ref_s * 1e3)
        del trial
    # Cached-by-input check: the same input buffers, overwritten in place with new values, must give new results.
    with link.span("reference"):
        raw, trial = trials.make()
        trials.write(ev.io, ev.args, raw)
        del raw
    reply = _call(ev, trial)
    with link.span("checks"):
        ev.checks.outputs(Stage.CORRECTNESS, reply.report, trial.refs, "inputs overwritten in place")
        ev.checks.compute(Stage.CORRECTNESS, reply.report, "inputs overwritten in place")
        _found, failure = trials.compare(ev.io, ev.outs, trial.refs)
    if failure:
        raise Verdict(Stage.CORRECTNESS, ErrorKind.REWARD_HACK, "results are cached by input: after the input buffers "
                      "were overwritten in place with new values, forward returned values for the old inputs "
                      f"({failure[1]})")
    res.outputs, res.trials = worst, ev.task.correctness_trials
    if reply.report is not None and reply.report.peak_memory_bytes:
        ev.peaks["candidate_peak_memory"] = int(reply.report.peak_memory_bytes)


def _call(ev: "Evaluation", trial) -> object:
    """One call of the candidate on the inputs already in the shared slots: outputs poisoned, the judge's writes
    waited for (the candidate's process is another context and would otherwise read stale inputs), then the call
    with the trial's generator seed."""
    ev.trials.poison(ev.io, ev.outs)
    ev.target.synchronize()
    ev.trials.candidate_ran = True
    with ev.link.span("correctness calls"):
        reply = ev.link.request(Call(inputs=ev.args, outputs=[{"slot": s.model_dump()} for s in ev.outs],
                                     record_ops=True, rng_seed=trial.rng_seed), compile_credit=True)
    if reply.report is not None and reply.report.kernels and not ev.result.kernels:
        ev.result.kernels = list(reply.report.kernels)[:64]
    if reply.report is not None and reply.report.seed_requests and ev.jc.pool.seeder is not None:
        ev.jc.pool.seeder.ask(reply.report.seed_requests)
    return reply
