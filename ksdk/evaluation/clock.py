"""The judge's own clock: the figures a speedup is computed from. A batch of back-to-back calls in the candidate's
process is timed from the judge's side (request sent to reply received, then on until every output is written and
the device is idle again), and the baseline's batch over the same ring in the judge's process the same way; on the
host, the smaller of wall time and the CPU time the kernel accounted to the processes (a busy machine inflates wall
time, not CPU time). The only amounts taken off are floors measured while no candidate code existed: the round trip
of a request to the candidate's freshly set-up process, and the judge's own wait for an idle device; where batches
of several passes over the ring are timed, the difference of two batches of different lengths cancels every cost a
batch has beyond its calls."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Optional

from ksdk.evaluation.protocol import Batch, Ping
from ksdk.evaluation.targets import IDLE_PROBE_MS
from ksdk.evaluation.verdict import Verdict
from ksdk.models import ErrorKind, Stage

if TYPE_CHECKING:
    from ksdk.evaluation.baselines import BaselineBatch
    from ksdk.evaluation.ring import Ring

SETTLE_MS = 100.0  # after a batch's reply: how long its outputs may take to appear and its device work to end
PINGS = 7  # round trips measured for the candidate's floor (the least counts)
LATE_NOTE_MS = 0.05  # device work found after a batch's freeze is counted always, and named in a warning above this
LATE_CHARGE_MS = 0.1  # above this (beyond the probe's usual wait), the batch replied early: charged the reply path


@dataclass
class Floor:
    """A batch's fixed cost that is not the calls': wall ms, and CPU ms where the host's CPU time is the clock."""

    wall_ms: float = 0.0
    cpu_ms: float = 0.0
    probe_ms: float = 0.0  # the judge's idle-device probe right after the candidate's process used the device
    to_reply_ms: float = 0.0  # the least round trip's parts: to its reply, and from the reply to the freeze (records)
    reply_to_frozen_ms: float = 0.0
    side_ms: Optional[tuple[float, float, float]] = None  # the least round trip as its process saw it (`sides`)

    def reply_path_ms(self) -> float:
        """From a process's end of work to its freeze (the least round trip's): what a batch that replied before its
        work ended skipped."""
        return self.reply_to_frozen_ms + (self.side_ms[2] if self.side_ms else 0.0)


def sides(reply, span) -> Optional[tuple[float, float, float]]:
    """A record, never a figure: a request's round trip split by the candidate process's own clock stamps (`at`:
    request read, work done; the host's monotonic clock, shared by both processes): judge to process, the work, the
    process back to the judge's reply, in ms. None where the stamps are missing or cannot be true."""
    at = reply.at
    if not at or len(at) != 2:
        return None
    parts = ((at[0] - span.start) * 1e3, (at[1] - at[0]) * 1e3, (span.reply - at[1]) * 1e3)
    if not all(-1.0 < p <= (span.reply - span.start) * 1e3 + 1.0 for p in parts):  # NaN fails too
        return None
    return tuple(round(p, 4) for p in parts)


def candidate_floor(link, target, before: Callable[[], None]) -> Floor:
    """The least round trip of a request to the candidate's process (thawed, it runs a one-element kernel on its
    device and waits for it, replies, and is frozen again), each after `before`: the judge's own work that precedes
    every timed batch (`before_batch`: caches evicted as the task asks, which leaves the process's own code and data
    cold too, then the device idle). Measured after setup and before the candidate's code is loaded: no candidate can
    make it shorter, so taking it off never favours one."""
    host = target.kind == "host"
    walls, cpus, probes, parts, seen = [], [], [], [], []
    for _ in range(PINGS):
        before()  # as before every batch (on a GPU the device then switches contexts; on the host, caches are cold)
        cpu0 = link.proc.cpu_ns() if host else 0
        reply, span = link.timed(Ping(), spin=True)
        probes.append(target.busy_ms())  # and back: what the settle's first probe costs on an idle device
        walls.append((time.perf_counter() - span.start) * 1e3)  # to the end of that probe, as a batch is timed
        seen.append(sides(reply, span))
        parts.append(((span.reply - span.start) * 1e3, (span.frozen - span.reply) * 1e3))
        if host:
            cpus.append((link.proc.cpu_ns() - cpu0) / 1e6)
    i = walls.index(min(walls))
    return Floor(min(walls), min(cpus) if cpus else 0.0, min(probes), parts[i][0], parts[i][1], seen[i])


def before_batch(ev) -> None:
    """What precedes every timed batch, either side's: the caches evicted as the task's timing asks, the device idle."""
    timing = ev.task.timing
    if timing.flush_l2:
        ev.target.evict(timing.l2_flush_by or "read")
    ev.target.synchronize()


def judge_floor(target) -> Floor:
    """The judge's own wait for an idle device (and its CPU time for it), the least of a few."""
    walls, cpus = [], []
    for _ in range(5):
        c0 = target.thread_cpu_ns()
        t0 = time.perf_counter()
        target.synchronize()
        walls.append((time.perf_counter() - t0) * 1e3)
        if c0 is not None:
            cpus.append((target.thread_cpu_ns() - c0) / 1e6)
    return Floor(min(walls), min(cpus) if cpus else 0.0)


class Clock:
    """Times batches over one ring; `ev` is the evaluation (link, target, trials)."""

    def __init__(self, ev, ring: "Ring", cand_floor: Floor, base_floor: Floor):
        self.ev, self.ring = ev, ring
        self.cand_floor, self.base_floor = cand_floor, base_floor
        self.host = ev.target.kind == "host"
        self.late_ms = 0.0  # the most a batch's outputs or device work outlasted its reply
        self.reported_ms: Optional[float] = None  # the candidate process's own events over its last batch, if asked
        self.reported_notes: Optional[dict[str, float]] = None  # and what else it saw then (records)
        self.spans: list[tuple[float, float, float, float]] = []  # per batch: to reply, reply to frozen, frozen to
        # settled (ms), CPU ms after replying
        self.sides: list[tuple[float, float, float]] = []  # per batch, as the candidate's process saw it (records)
        self.passes = 1  # passes over the ring of the longer batch of a round (performance.repeats)
        self.repeats: list[tuple[float, float]] = []  # per round with passes: ms a call from the difference, the
        # bound from the one-pass batch (records)
        self.base_repeats: list[tuple[float, float]] = []  # per round with passes: the baseline's ms a call from the
        # difference, and from its one-pass batch (records)
        self.base_queued: list[float] = []  # per baseline batch timed by device events: ms its process took to queue
        # a pass (a record: a launch-bound forward queues about as long as its device events run)
        self.base_fixed: list[float] = []  # per baseline batch timed by device events: the ms its wall clock read
        # beyond them and the judge's floor (its forward's launch before the first kernel, the wake-up after the last)

    def candidate(self, events: bool = False) -> float:
        """One batch in the candidate's process: ms per call by the judge's clock, less the floor. The ring's inputs
        are written, its outputs poisoned and the caches evicted by the caller. With `events`, the process also times
        the batch by its own device events (`self.reported_ms`: a record, never a figure)."""
        return max(self.batch(events=events), 1e-6) / self.ring.n

    def batch(self, passes: int = 1, events: bool = False) -> float:
        """One batch of `passes` passes over the ring in the candidate's process: its ms by the judge's clock, less
        the floor (a figure for the difference of two batches of different lengths, or per call of a one-pass batch).
        A batch that replied before its work ended is charged the floor's way back it skipped."""
        ev = self.ev
        cpu0 = ev.link.proc.cpu_ns() if self.host else 0
        reply, span = ev.link.timed(Batch(events=events, passes=passes), spin=True)
        busy = ev.target.busy_ms()  # first, as after the floor's pings: has the device finished the batch's work?
        probed = time.perf_counter()
        self.reported_ms = reply.device_ms if events else None
        self.reported_notes = getattr(reply, "notes", None) if events else None
        place(self.ring, reply.placed)  # where this batch's outputs are (checked), before they are looked for
        seen = sides(reply, span)
        if seen is not None:
            self.sides.append(seen)
        # The batch lasted until its processes were frozen again (work they did after replying counts) and the judge's
        # first probe found the device idle, or until its outputs were written and the device idle; the floor was
        # measured the same way, to the end of the same probe. A batch that replied before its work ended is timed as
        # if it had replied when it ended: the floor holds that reply's way back to the judge.
        end, late = self._settled(span.frozen, busy, probed)
        wall = (end - span.start) * 1e3 - self.cand_floor.wall_ms + (self.cand_floor.reply_path_ms() if late else 0.0)
        self.spans.append(((span.reply - span.start) * 1e3, (span.frozen - span.reply) * 1e3,
                           (end - span.frozen) * 1e3, span.cpu_after_ns / 1e6))
        if self.host:
            cpu = (ev.link.proc.cpu_ns() - cpu0) / 1e6 - self.cand_floor.cpu_ms
            wall = min(wall, cpu) if cpu > 0 else wall
        return wall

    def baseline(self, batch: "BaselineBatch", passes: int = 1) -> float:
        """One batch of the baseline in the judge's process over the same ring, `passes` passes over it: ms per set
        (the batch's ms / ring.n). A batch that only queues device work is timed by the device's own clock (the
        judge's process is trusted; a wall clock would add the launch latency its floor does not hold); otherwise by
        wall time (and CPU time on the host)."""
        target = self.ev.target
        c0 = target.thread_cpu_ns()
        t0 = time.perf_counter()
        if batch.queues_only:
            queued: list[float] = []

            def run() -> None:
                t = time.perf_counter()
                batch.run(passes)
                queued.append((time.perf_counter() - t) * 1e3 / passes)

            dev = target.device_ms(run)  # runs it; None where the target has no device clock
            if dev is not None:
                wall = (time.perf_counter() - t0) * 1e3 - self.base_floor.wall_ms
                self.base_fixed.append(max(0.0, wall - dev))
                self.base_queued.extend(queued)
                return max(dev, 1e-6) / self.ring.n
        else:
            batch.run(passes)
        target.synchronize()
        wall = (time.perf_counter() - t0) * 1e3 - self.base_floor.wall_ms
        if c0 is not None:
            cpu = (target.thread_cpu_ns() - c0) / 1e6 - self.base_floor.cpu_ms
            wall = min(wall, cpu) if cpu > 0 else wall
        return max(wall, 1e-6) / self.ring.n

    def baseline_fixed_ms(self) -> float:
        """What the baseline's batches cost beyond their device work (the median; 0 before any): the allowance for
        the same cost in the candidate's batches where passes are timed (performance._repeated)."""
        return statistics.median(self.base_fixed) if self.base_fixed else 0.0

    def _settled(self, t_reply: float, busy: float, probed: float) -> tuple[float, bool]:
        """When the batch's work was done: when the judge's first probe after the freeze (`busy` ms, ended at
        `probed`) returned, which waits for device work the batch left queued, or later if outputs were still
        unwritten or the device still busy then (frozen threads do nothing more, but device work they queued may
        still land). On the host, outputs unwritten once frozen stay so; past SETTLE_MS the candidate's process is
        ended: work left running after a call returns is a verdict, never a faster time. Also whether the batch's
        work outlasted its reply by more than LATE_CHARGE_MS."""
        ev = self.ev
        first = True
        probe = self.cand_floor.probe_ms
        while True:
            if not first:
                busy = ev.target.busy_ms()  # a probe that had to wait means the device was still at work
            j = unwritten(self.ring, ev.target.device) if busy < probe + IDLE_PROBE_MS else -1
            now = time.perf_counter()
            if j is None:
                end = probed if first else now
                late = busy - probe if first else (end - t_reply) * 1e3
                self.late_ms = max(self.late_ms, late if late > LATE_NOTE_MS else 0.0)
                return end, late > LATE_CHARGE_MS
            j = None if j == -1 else j
            if (now - t_reply) * 1e3 > SETTLE_MS or (self.host and j is not None):
                ev.link.proc.kill()
                what = (f"call {j + 1} of {self.ring.n} back-to-back calls timed by the judge left outputs unwritten "
                        "(still the judge's poison" if j is not None else
                        "back-to-back calls timed by the judge left the device busy with their work (")
                raise Verdict(Stage.PERFORMANCE, ErrorKind.REWARD_HACK, f"{what} once its processes were stopped "
                              f"after the batch returned, and {SETTLE_MS:g} ms later): the candidate skips work when "
                              "called repeatedly, or leaves it running after a call returns, where no clock sees it")
            first = False
            time.sleep(0.0005)


def place(ring: "Ring", offsets) -> None:
    """Take the output places a Runner reported (ring.Ring.place); places that break the rules (outputs over each
    other or outside the judge's memory) are a reward_hack."""
    try:
        ring.place(offsets)
    except ValueError as e:
        raise Verdict(Stage.PERFORMANCE, ErrorKind.REWARD_HACK, f"the candidate's process placed its outputs "
                      f"where the judge cannot check them: {e}") from None


def unwritten(ring: "Ring", device: str) -> Optional[int]:
    """The first call of the batch with a floating-point output still holding the judge's poison (all bits set, a
    NaN no arithmetic produces), or None."""
    import torch

    from ksdk.evaluation.trial import COMPARE_CHUNK

    ints = {"float32": torch.int32, "float16": torch.int16, "bfloat16": torch.int16, "float64": torch.int64}
    flags = []
    for outs in ring.outs:
        found = [torch.zeros((), dtype=torch.bool, device=device)]
        for s in outs:
            if s.dtype in ints and s.nbytes:
                flat = ring.region.tensor(s).reshape(-1).view(ints[s.dtype])
                found += [flat[i:i + COMPARE_CHUNK].eq(-1).any() for i in range(0, flat.numel(), COMPARE_CHUNK)]
        flags.append(torch.stack(found).any())
    hit = torch.nonzero(torch.stack(flags)).flatten()
    return int(hit[0]) if hit.numel() else None
