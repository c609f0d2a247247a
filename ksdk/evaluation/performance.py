"""The performance stage: the speedup is the judge's own measurement. The baseline and the candidate are timed by
the judge's clock (ksdk/evaluation/clock.py) as batches of back-to-back calls over the same ring of fresh input sets,
in alternating order, round after round, until the median of the paired ratios is known to about 1% (or a round or
time limit is reached). Every round's candidate outputs are checked (all written; the last call and others drawn
afterwards compared with the reference). What the candidate's process reports about time is a record at most.
Backends whose candidates are device code alone (no host code in the candidate's process) are timed by their
Runner instead (ksdk/evaluation/runner_timed.py)."""

from __future__ import annotations

import math
import statistics
import time
from typing import TYPE_CHECKING

from ksdk.evaluation import race
from ksdk.evaluation import ring as ringmod
from ksdk.evaluation.baselines import BaselineBatch, ModelBatch, ShippedBatch, ring_inputs, shipped_runner
from ksdk.evaluation.clock import Clock, before_batch, judge_floor, place
from ksdk.evaluation.protocol import PrepareBatch, Release
from ksdk.evaluation.shared import Layout, Slot, arg_views
from ksdk.evaluation.verdict import Verdict
from ksdk.models import ErrorKind, Stage
from ksdk.timing import median_ci, summarize

if TYPE_CHECKING:
    from ksdk.evaluation.judge import Evaluation

MIN_ROUNDS, MAX_ROUNDS = 5, 25
CI_HALF_WIDTH = 0.01  # stop once the median ratio's 95% interval is within +-1%
TIME_BUDGET_S = {"device": 2.0, "host": 1.0}  # of rounds, whatever the interval
BATCH_TARGET_MS = {"device": 8.0, "host": 20.0}  # a batch lasts about this long at the baseline's speed
MAX_CALLS = {"graph": 256, "eager": 256, "host": 2048}  # a batch of microsecond calls must outlast its fixed cost
MAKE_SHARE = 4.0  # remaking the ring's inputs each round may take this many batch times
REPEAT_MIN_BYTES = 128 << 20  # a ring at least this large leaves the caches cold for the next pass over it
MAX_PASSES = 1024
PASSES_TARGET_MS = {"graph": 40.0, "eager": 100.0}  # the many-pass batch lasts about this long: a process can tell it
# from the one-pass batch (the request says how many passes), and one that slows its one-pass batches gains at most
# the bound's allowance over this length (_repeated; ~2.5% for graphs on an H100, where 8 ms let it gain 10%)
ONE_PASS_MS = {"graph": BATCH_TARGET_MS["device"], "eager": 100.0}  # a one-pass batch this long is timed alone: its
# fixed cost beyond its calls (an eager forward's: 0.6-1.6 ms on an H100) is then at most about 1% of it
GUARD_FLOORS = 2.0  # a batch costs at most this many floors beyond its calls and the floor taken off (H100: <= 1.2),
# and the baseline's own batches' cost beyond their device work (its forward's launch: the same allowance)
WRITE_SPEEDUP = 1.5  # no kernel writes its outputs faster than this many times the judge's own zeroing of memory
GRAPH_BELOW_MS = 2.0  # calls shorter than this are replayed as device graphs (no launch overhead)
CHECK_SHARE = 1.0  # per round, outputs are compared beyond the last call's for at most this share of the batch's time


def run(ev: "Evaluation") -> None:
    res = ev.result
    if ev.jc.run.interpret:
        res.performance_skipped = (f"{ev.jc.fallback or 'an interpreter on the CPU'}, no device here: the kernels ran "
                                   "for correctness only; interpreter timings say nothing about device speed, so no "
                                   "speedup is reported")
        return
    if ev.jc.skip_performance:
        res.performance_skipped = "performance stage skipped on request (skip_performance)"
        return
    ev.exclusive()  # timing never overlaps another judge's work on the device (a wait outside the stage's limit)
    ev.enter(Stage.PERFORMANCE, ev.limits.performance)
    if ev.target.kind == "host":  # a spare's start-up (a new process importing the toolchain, no device context)
        ev.jc.pool.wait_spares()  # must not overlap a CPU timing
        return _timed(ev)
    with ev.jc.pool.held():  # on a device it is stopped meanwhile, not waited for (waiting stands between every
        # candidate's correctness and its timing); running beside it, suspected of slower one-pass batches on an H100
        return _timed(ev)


def _timed(ev: "Evaluation") -> None:
    """The stage's work once nothing else of this judge's runs: baseline and candidate batches, rounds, records."""
    link = ev.link
    with link.span("baseline setup"):
        shipped = _shipped(ev)
    if not ev.backend.host_code:
        from ksdk.evaluation import runner_timed

        return runner_timed.run(ev, shipped)
    est = max(ev.ref_ms, shipped[1] if shipped else 0.0)
    # The trial's shared memory goes before the ring is made (memory scales with one trial).
    link.request(Release(name="io"))
    ev.drop_io()
    mode, n = plan(ev, est)
    specs = [Slot.model_validate(a["slot"]) if "slot" in a else None for a in ev.args]
    lay, args, outs, arena = ringmod.layout(
        n, lambda lay: [{"slot": lay.add(s.shape, s.dtype).model_dump()} if s is not None else dict(a)
                        for s, a in zip(specs, ev.args)], ev.outs, arena=ev.backend.places_outputs,
        scratch=_scratch(ev))
    rg = ringmod.Ring(ev.region("ring", lay.size), args, outs, arena)
    link.send_region(rg.region)
    base = _baseline(ev, rg, shipped)
    try:
        with link.span("prepare"):
            _write(ev, rg)
            cmode = _prepare(ev, rg, mode)
            bmode = base.prepare(cmode)
            if bmode != cmode:  # the same mode on both sides: graphs for both or for neither
                cmode = _prepare(ev, rg, bmode)
        _rounds(ev, rg, base, cmode)
        _extras(ev, rg, shipped, cmode)
    finally:
        base.close()


def _scratch(ev: "Evaluation") -> int:
    """Room in the arena for a forward's temporaries: the reference's (its first trial's), at most a quarter of the
    free device memory (the rest of a larger forward's temporaries go to the candidate's own memory)."""
    free = ev.memory.free_bytes()
    return ev.ref_scratch if free is None else min(ev.ref_scratch, free // 4)


def plan(ev: "Evaluation", est: float) -> tuple[str, int]:
    """How the calls of a batch run ('graph', 'eager', 'host') and how many there are: as many as last a batch's
    target time at `est` ms a call (the baseline's), but no more input sets than the judge can make anew in a few
    times that each round, nor than the ring's memory holds."""
    kind = ev.target.kind
    mode = "host" if kind == "host" else ("graph" if est < GRAPH_BELOW_MS and ev.task.timing.graphs else "eager")
    # a graph ring spans the bytes passes need where the memory allows (a slow first call or input make sized
    # matmul_bias_relu's ring at 7 sets, 112 MiB: no passes, 0.28x for do_bench's 0.78x)
    return mode, ringmod.calls(sum(ev.io_bytes), max(est, ev.trials.make_ms / MAKE_SHARE), BATCH_TARGET_MS[kind],
                               MAX_CALLS[mode], ev.memory.free_bytes(),
                               min_bytes=REPEAT_MIN_BYTES if mode == "graph" else 0)


def _shipped(ev: "Evaluation"):
    """(runner, ms a call, label) of a baseline kernel the task ships for this backend, built, checked and timed once
    on a trial's inputs; None when the task ships none or it is unusable (a warning says why)."""
    shipped = ev.backend.baseline_source(ev.task.source)
    if not shipped:
        return None
    label, source = shipped
    try:
        runner = shipped_runner(ev.backend, ev.jc.run, ev.task, ev.trials.ref, source, ev.specs(ev.args),
                                [{"shape": o.shape, "dtype": o.dtype} for o in ev.outs], ev.param_views())
        raw, trial = ev.trials.make()
        ev.trials.write(ev.io, ev.args, raw)
        del raw
        ins = arg_views(ev.io, ev.args)
        outs = [ev.io.view(o) for o in ev.outs]
        runner.call(ins, outs)
        t = time.perf_counter()
        runner.call(ins, outs)
        ms = (time.perf_counter() - t) * 1e3
        _f, failure = ev.trials.compare(ev.io, ev.outs, trial.refs)
        if failure:
            raise RuntimeError(f"it computes wrong values ({failure[1]})")
        return runner, ms, label
    except Exception as e:  # noqa: BLE001 - the task's baseline is a convenience: fall back, say why
        ev.result.warnings.append(f"the task's baseline ({label}) is unusable ({str(e)[:300]}); timing the task's "
                                  "Model instead")
        return None


def _baseline(ev: "Evaluation", rg, shipped) -> BaselineBatch:
    host = ev.target.kind == "host"
    if shipped:
        runner, _ms, label = shipped
        views = [arg_views(rg.region, args) for args in rg.args]
        lay = Layout("bouts")  # the baseline's outputs: its own memory (the candidate's are checked in the ring)
        slots = [[lay.add(o.shape, o.dtype) for o in ev.outs] for _ in range(rg.n)]
        own = ev.region("bouts", lay.size)
        return ShippedBatch(runner, views, [[own.view(s) for s in row] for row in slots], label)
    label = "PyTorch eager (the task's Model)" + (" on the CPU, 1 thread" if host else "")
    return ModelBatch(ev.trials.ref.call, ring_inputs(rg), label, host)


def _write(ev: "Evaluation", rg) -> None:
    """Fresh inputs for every set of the ring (seeds only the judge knows), outputs poisoned (the whole arena: any
    place a Runner reports must have been written during the batch)."""
    trials = ev.trials
    rg.seeds = [trials.seed() for _ in range(rg.n)]
    for seed, args in zip(rg.seeds, rg.args):
        trials.write(rg.region, args, trials.inputs(seed))
    if rg.arena is not None:
        rg.region.tensor(rg.arena).fill_(0xFF)
    else:
        trials.poison(rg.region, rg.all_outputs())


def _prepare(ev: "Evaluation", rg, mode: str) -> str:
    """The candidate's process prepares its calls in `mode` ('graph', 'eager', 'host'); the mode it chose."""
    reply = ev.link.request(PrepareBatch(inputs=rg.args, outputs=[[{"slot": s.model_dump()} for s in outs]
                                                                  for outs in rg.proposed],
                                         arena=rg.arena.model_dump() if rg.arena else None, mode=mode),
                            compile_credit=True)
    place(rg, reply.placed)
    got = reply.mode if reply.mode in ("graph", "eager", "host") else "eager"
    return "host" if ev.target.kind == "host" else got


def _telemetry(ev: "Evaluation") -> dict:
    try:
        return dict(ev.backend.telemetry(ev.jc.run))
    except Exception:  # noqa: BLE001 - a record, not a verdict
        return {}


def _rounds(ev: "Evaluation", rg, base: BaselineBatch, mode: str) -> None:
    res, target, link = ev.result, ev.target, ev.link
    before = _telemetry(ev)
    clock = Clock(ev, rg, ev.cand_floor, judge_floor(target))
    flush = (ev.task.timing.l2_flush_by or "read") if ev.task.timing.flush_l2 else None
    cand, basel, ratios = [], [], []
    passes = clock.passes = repeats(ev, rg, mode, _baseline_ms(ev, clock, base, rg, mode))
    started = time.monotonic()
    for r in range(MAX_ROUNDS):
        if r:
            with link.span("inputs"):
                _write(ev, rg)
        sides = ("candidate", "baseline") if r % 2 == 0 else ("baseline", "candidate")
        got = {}
        for side in sides:
            before_batch(ev)
            with link.span(f"{side} timing"):
                got[side] = clock.candidate() if side == "candidate" else clock.baseline(base)
            if side == "candidate":
                with link.span("checks"):
                    _check(ev, rg, r, CHECK_SHARE * got[side] * rg.n)
                if passes > 1:
                    got[side] = _repeated(ev, rg, clock, r, passes, got[side] * rg.n)
            elif passes > 1:
                got[side] = _baseline_repeated(ev, clock, base, passes, got[side])
        cand.append(got["candidate"])
        if passes > 1:  # sized again by the candidate's own speed so far (a fast one's batches were short)
            passes = max(2, repeats(ev, rg, mode, statistics.median(cand)))
            clock.passes = max(clock.passes, passes)
        basel.append(got["baseline"])
        ratios.append(got["baseline"] / got["candidate"])
        if r + 1 >= MIN_ROUNDS:
            lo, med, hi = median_ci(ratios)
            if (race.out(hi, ev.task.timing.race_below)  # a clear loser in a search's race stops here
                    or (hi - lo) / 2 <= CI_HALF_WIDTH * med or time.monotonic() - started > TIME_BUDGET_S[target.kind]):
                break
    lo, med, hi = median_ci(ratios)
    how = {"graph": "replayed device graphs", "eager": "calls launched back to back", "host": "calls back to back"}
    evicted = {"read": "caches evicted by reading before each batch", "write": "caches evicted by zeroing before "
               "each batch", None: "caches not evicted"}[flush]
    common = (f"{rg.n} {how[mode]} over fresh input sets ({evicted}), timed until every output was written"
              f"{' and the device idle' if target.kind != 'host' else ''}")
    cpu = "; the CPU time of {} where that is less (a busy machine)" if target.kind == "host" else "{}"
    less = ("less the least round trip measured before any candidate code loaded" if passes == 1 else
            f"the difference of a one-pass batch and a {passes}-pass batch over fresh inputs, each pass over the same "
            "sets (what every batch costs beyond its calls cancels), never faster than the one-pass batch allows")
    res.candidate_timing = summarize(cand, f"the judge's clock over batches of {common} in the candidate's process, "
                                           + less + cpu.format("its processes" if target.kind == "host" else "")
                                           + f"; {len(cand)} rounds" + race.note(hi, ev.task.timing.race_below))
    own = ("the device's own events around" if base.queues_only and target.kind != "host" else
           "the judge's clock over")
    res.baseline_timing = summarize(basel, f"{own} batches of {common} in the judge's process"
                                           + ("" if base.queues_only and target.kind != "host" else
                                              ", less its own wait for an idle device")
                                           + ("" if passes == 1 else f", the difference of a one-pass batch and a "
                                              f"{passes}-pass batch as on the candidate's side")
                                           + cpu.format("the judge's thread" if target.kind == "host" else "")
                                           + f"; {len(basel)} rounds, interleaved with the candidate's")
    res.speedup = med
    res.speedup_ci = (lo, hi)
    res.baseline = base.label
    res.stage = Stage.PERFORMANCE
    res.device.extra["clock"] = clock_record(clock, ev.cand_floor)
    if target.kind != "host":  # a record only (candidate code is loaded now): does the floor still hold?
        from ksdk.evaluation.clock import candidate_floor

        try:
            again = candidate_floor(link, target, lambda: before_batch(ev))
            res.device.extra["clock"]["floor_after_load_ms"] = round(again.wall_ms, 4)
        except Verdict:
            res.device.extra["clock"]["floor_after_load_ms"] = None
    if before:  # clocks, temperature and throttling around the rounds (NVML on NVIDIA devices)
        res.device.extra["clocks_during_timing"] = {"before": before, "after": _telemetry(ev)}
    if clock.late_ms:
        res.warnings.append(f"outputs or device work of a timed batch landed up to {clock.late_ms:.2f} ms after its "
                            "reply; that time is counted as the candidate's")
    if ev.stochastic:
        res.warnings.append("the task draws random numbers (e.g. dropout): the timed calls' outputs were checked for "
                            "being written, their values only in the correctness trials (same generator state)")


def _can_repeat(ev: "Evaluation", rg, mode: str) -> bool:
    """Passes over the same sets are timed on a device, for replayed graphs or eager calls, where each pass finds
    the caches cold again: a ring of REPEAT_MIN_BYTES or more, or eager calls of GRAPH_BELOW_MS or more (work that
    long is not its <= 128 MiB of inputs read from memory: at most ~2% on an H100)."""
    if ev.target.kind == "host" or mode not in PASSES_TARGET_MS:
        return False
    return rg.n * sum(ev.io_bytes) >= REPEAT_MIN_BYTES or (mode == "eager" and ev.ref_ms >= GRAPH_BELOW_MS)


def _baseline_ms(ev: "Evaluation", clock: Clock, base: BaselineBatch, rg, mode: str) -> float:
    """The baseline's ms a call from one untimed batch (where passes may be timed: it sizes them), else the
    reference's first call."""
    if not _can_repeat(ev, rg, mode):
        return ev.ref_ms
    before_batch(ev)
    return clock.baseline(base)


def repeats(ev: "Evaluation", rg, mode: str, est: float) -> int:
    """How many passes over the ring the longer of a round's two candidate batches makes: 1 (one batch a round) unless
    passes can be timed (_can_repeat) and the ring's calls together last less than ONE_PASS_MS for their mode at
    `est` ms a call (its memory is bounded): then enough for PASSES_TARGET_MS."""
    if not _can_repeat(ev, rg, mode):
        return 1
    if rg.n * est >= ONE_PASS_MS[mode]:  # one pass already lasts as long as a batch should
        return 1
    return max(1, min(MAX_PASSES, math.ceil(PASSES_TARGET_MS[mode] / (rg.n * max(est, 1e-4)))))


def _repeated(ev: "Evaluation", rg, clock: Clock, r: int, passes: int, one_ms: float) -> float:
    """The candidate's ms a call from two batches over fresh inputs, of one pass (`one_ms`, just timed and checked)
    and of `passes` passes over the ring: their difference cancels what every batch costs beyond its calls. Bounded
    below by the one-pass batch less GUARD_FLOORS more floors and what the baseline's batches cost beyond their
    device work: passes after the first faster than that are work skipped on inputs seen before, and never make a
    call faster than its first pass allows, nor than writing its outputs takes (`written_ms`)."""
    with ev.link.span("inputs"):
        _write(ev, rg)
    before_batch(ev)
    with ev.link.span("candidate timing"):
        many = clock.batch(passes=passes)
    with ev.link.span("checks"):
        _check(ev, rg, r, CHECK_SHARE * many / passes)
    per = (many - one_ms) / ((passes - 1) * rg.n)
    guard = GUARD_FLOORS * ev.cand_floor.wall_ms + clock.baseline_fixed_ms()
    bound = max((one_ms - guard) / rg.n, written_ms(ev, rg.n))
    clock.repeats.append((per, bound))
    return max(per, bound, 1e-6 / rg.n)


def _baseline_repeated(ev: "Evaluation", clock: Clock, base: BaselineBatch, passes: int, one: float) -> float:
    """The baseline's ms a call the candidate's way: the difference of its one-pass batch (`one` ms a set, just
    timed) and a `passes`-pass batch over the same sets, which cancels what its batches cost beyond their calls (on an
    H100 its one-pass batches read 6-7 us a call more than do_bench over a 3-call ring of graphs, and up to 12% more
    for KernelBench's eager forwards of 0.1-9 ms). The judge's process is trusted: no bound."""
    before_batch(ev)
    with ev.link.span("baseline timing"):
        many = clock.baseline(base, passes)
    per = (many - one) / (passes - 1)
    clock.base_repeats.append((per, one))
    return max(per, 1e-6)


def written_ms(ev: "Evaluation", n: int) -> float:
    """The least time a call of a pass over n sets can take that writes its outputs: what the pass writes beyond the
    device's last-level cache, at WRITE_SPEEDUP times the speed the judge itself zeroes device memory (a pass that
    skips its work writes nothing); 0 where the target cannot say."""
    speed = ev.target.write_bytes_per_ms()
    if not speed:
        return 0.0
    return max(0, n * ev.io_bytes[1] - ev.target.cache_bytes()) / (n * WRITE_SPEEDUP * speed)


def clock_record(clock: Clock, floor) -> dict:
    """How the judge's clock saw the candidate's batches (medians, ms): a record for whoever checks the timing."""
    cols = list(zip(*clock.spans)) or [[0.0]] * 4
    med = [round(statistics.median(c), 4) for c in cols]
    rep = [round(statistics.median(c), 5) for c in zip(*clock.repeats)] if clock.repeats else None
    base_rep = [round(statistics.median(c), 5) for c in zip(*clock.base_repeats)] if clock.base_repeats else None
    return {"batch_calls": clock.ring.n, "floor_ms": round(floor.wall_ms, 4), "idle_probe_ms": round(floor.probe_ms, 4),
            "passes": clock.passes, "repeat_ms_per_call": rep and rep[0], "first_pass_bound_ms": rep and rep[1],
            "baseline_fixed_ms": round(clock.baseline_fixed_ms(), 4),
            "baseline_queue_ms_per_pass": (round(statistics.median(clock.base_queued), 4) if clock.base_queued
                                           else None),
            "baseline_repeat_ms_per_call": base_rep and base_rep[0],
            "baseline_one_pass_ms_per_call": base_rep and base_rep[1],
            "floor_to_reply_ms": round(floor.to_reply_ms, 4),
            "floor_reply_to_frozen_ms": round(floor.reply_to_frozen_ms, 4),
            "to_reply_ms": med[0],
            "reply_to_frozen_ms": med[1], "settle_ms": med[2], "cpu_after_reply_ms": med[3],
            "late_ms": round(clock.late_ms, 4),
            # the candidate process's own stamps (records): judge to process, its work, back to the judge's reply
            "floor_sides_ms": list(floor.side_ms) if floor.side_ms else None,
            "batch_sides_ms": [round(statistics.median(c), 4) for c in zip(*clock.sides)] if clock.sides else None}


def _check(ev: "Evaluation", rg, r: int, budget_ms: float) -> None:
    """The last call's outputs, then others in an order drawn now, as many as fit in `budget_ms` (at least 3 in the
    first round), compared with references made again from their seeds: a candidate that skips or changes the work
    of a share s of its calls passes a round with probability at most (1 - s)."""
    if ev.stochastic:
        return
    trials = ev.trials
    order = [rg.n - 1] + trials.rng.sample(range(rg.n - 1), rg.n - 1)
    t = time.perf_counter()
    least = 3 if r == 0 else 1
    for k, j in enumerate(order):
        if k >= least and (time.perf_counter() - t) * 1e3 > budget_ms:
            break
        raw, trial = trials.make(seed=rg.seeds[j])
        del raw
        _found, failure = trials.compare(rg.region, rg.outs[j], trial.refs)
        if failure:
            raise Verdict(Stage.PERFORMANCE, ErrorKind.REWARD_HACK, f"call {j + 1} of {rg.n} back-to-back calls "
                          f"timed by the judge returned a wrong output ({failure[1]}): the candidate skips or changes "
                          "work when called repeatedly")


def _extras(ev: "Evaluation", rg, shipped, mode: str) -> None:
    """Records beside the speedup, each timed the same way: PyTorch eager when the baseline is the task's own
    kernel, torch.compile when asked, and the candidate's own report of its time when asked (never the speedup)."""
    from ksdk.evaluation import extras

    extras.record(ev, rg, shipped, mode, refresh=lambda: _write(ev, rg))
