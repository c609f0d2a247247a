"""The judge's baseline batch: timed by the device's own clock where the batch only queues device work (a wall clock
adds launch latency the judge's floor does not hold: 5-20 us a batch on an H100, 9-12% of a 3-call batch of 60 us
kernels), by wall time otherwise; the batch runs once either way."""

import time
from types import SimpleNamespace

from ksdk.evaluation import clock as clockmod
from ksdk.evaluation.baselines import BaselineBatch
from ksdk.evaluation.clock import Clock, Floor
from ksdk.evaluation.link import Span
from ksdk.evaluation.targets import Target


class Counted(BaselineBatch):
    def __init__(self, queues_only: bool):
        self.queues_only, self.runs = queues_only, 0

    def prepare(self, mode: str) -> str:
        return mode

    def run(self, passes: int = 1) -> None:
        self.runs += passes


class TimedDevice(Target):
    """A target whose device clock reads a known time (the host's Target has none)."""

    kind = "device"

    def device_ms(self, run):
        run()
        return 3.0

    def thread_cpu_ns(self):
        return None


class IdleDevice(TimedDevice):
    """A device that is idle whenever probed and has no caches to evict."""

    def busy_ms(self):
        return 0.0

    def evict(self, how="read"):
        pass


class PendingDevice(IdleDevice):
    """`ms` of the candidate's work still on the device when the judge first probes it; idle after that."""

    def __init__(self, ms: float):
        super().__init__()
        self.pending = ms

    def busy_ms(self):
        t = time.perf_counter()
        time.sleep(self.pending / 1e3)
        self.pending = 0.0
        return (time.perf_counter() - t) * 1e3


RING = SimpleNamespace(n=4, place=lambda offsets: None)  # four calls; outputs where the judge proposed


class FakeLink:
    """The candidate's link as the judge's clock uses it: each timed request takes `waits` seconds (a number, or an
    iterator of them), is answered with `reply`'s fields (`at(t0, t1, wait)` for the process's stamps, if given)
    and noted in `asked` as (request name, spin)."""

    proc = SimpleNamespace(cpu_ns=lambda: 0)

    def __init__(self, waits=0.0, at=None, **reply):
        self.waits, self.at, self.asked = waits, at, []
        self.reply = {"device_ms": None, "placed": None, "at": None, **reply}

    def timed(self, req, spin=False):
        self.asked.append((type(req).__name__, spin))
        w = self.waits if isinstance(self.waits, float) else next(self.waits)
        t0 = time.perf_counter()
        if w:
            time.sleep(w)
        t1 = time.perf_counter()
        at = self.at(t0, t1, w) if self.at else self.reply["at"]
        return SimpleNamespace(**{**self.reply, "at": at}), Span(t0, t1, t1, 0)


def clock(target: Target) -> Clock:
    ev = SimpleNamespace(target=target)
    return Clock(ev, SimpleNamespace(n=4), Floor(), Floor(wall_ms=1000.0))


def test_a_batch_that_only_queues_device_work_is_timed_by_the_device_clock():
    batch = Counted(queues_only=True)
    c = clock(TimedDevice())
    assert c.baseline(batch) == 3.0 / 4
    assert batch.runs == 1
    assert c.baseline(batch, passes=5) == 3.0 / 4 and batch.runs == 6  # the device's clock over all five passes
    assert len(c.base_queued) == 2 and all(q >= 0 for q in c.base_queued)  # how long a pass took to queue: a record


def test_a_batch_that_waits_inside_is_timed_by_the_wall_clock_less_the_floor():
    batch = Counted(queues_only=False)
    assert clock(TimedDevice()).baseline(batch) == 1e-6 / 4  # wall time minus a 1 s floor: the floor's effect shows
    assert batch.runs == 1


def test_where_there_is_no_device_clock_the_wall_clock_times_the_batch_once():
    batch = Counted(queues_only=True)
    ms = clock(Target()).baseline(batch)
    assert batch.runs == 1
    assert ms == 1e-6 / 4  # wall (and CPU) time less the 1 s floor


def test_a_forged_device_time_in_the_candidates_reply_is_a_record_never_the_figure(monkeypatch):
    """The attacker: a batch that takes 20 ms by the judge's clock, whose reply claims its own device events saw
    1e-6 ms. The judge's figure is its own clock's; the claim is kept only as `reported_ms`."""
    monkeypatch.setattr(clockmod, "unwritten", lambda ring, device: None)  # every output written
    ev = SimpleNamespace(target=IdleDevice(), link=FakeLink(0.02, device_ms=1e-6))
    c = Clock(ev, RING, Floor(), Floor())
    ms = c.candidate(events=True)
    assert c.reported_ms == 1e-6
    assert ms >= 20.0 / 4, ms


def test_the_clocks_requests_are_polled_for_not_slept_on(monkeypatch):
    """docs/architecture.md: the judge polls for a timed request's reply (a CPU left idle for a batch's length wakes
    late, which the floor's short round trips do not pay). Both the candidate's batch and the floor's pings ask so."""
    monkeypatch.setattr(clockmod, "unwritten", lambda ring, device: None)
    ev = SimpleNamespace(target=IdleDevice(), link=FakeLink())
    clockmod.candidate_floor(ev.link, ev.target, lambda: None)
    Clock(ev, RING, Floor(), Floor()).candidate()
    asked = ev.link.asked
    assert {name for name, _ in asked} == {"Ping", "Batch"}
    assert all(spin for _, spin in asked), asked


def test_every_ping_of_the_floor_follows_the_judges_work_that_precedes_a_batch():
    """The floor is taken off every batch, so each of its pings comes after what comes before a batch (the caches
    evicted as the task asks, which on the host leaves the process's own code cold too): a floor of warm pings
    under-subtracts, and the candidate pays the difference."""
    order = []

    class Link(FakeLink):
        def timed(self, req, spin=False):
            order.append("ping")
            return super().timed(req, spin)

    clockmod.candidate_floor(Link(), IdleDevice(), lambda: order.append("before"))
    assert order == ["before", "ping"] * clockmod.PINGS


def test_device_work_still_running_after_the_reply_is_counted_even_when_the_first_probe_waits_only_briefly(
        monkeypatch):
    """The attacker (on an H100: 3.71x against the honest kernel's 1.44x): the process replies as soon as its calls
    are queued. The judge's first probe after the freeze waits for that work, but under IDLE_PROBE_MS it was taken for
    an idle device and the batch ended at the freeze: up to 0.5 ms of device work a batch went untimed. The batch
    ends when the judge saw the device idle: the end of its probe, on the batches and the floor alike."""

    monkeypatch.setattr(clockmod, "unwritten", lambda ring, device: None)
    c = Clock(SimpleNamespace(target=PendingDevice(0.4), link=FakeLink()), RING, Floor(), Floor())
    assert c.candidate() * RING.n >= 0.4


def test_a_batch_that_replies_before_its_work_ends_is_charged_the_reply_path_it_skipped(monkeypatch):
    """The attacker (on an H100: 25.8x against the honest kernel's 11.5x): its process replies as soon as its calls
    are queued, so its way back to the judge overlaps its device work, where the honest process waits for the device
    and then replies. The judge's probe finds the work still running: the batch is charged the floor's reply path."""

    monkeypatch.setattr(clockmod, "unwritten", lambda ring, device: None)
    floor = Floor(probe_ms=0.5, reply_to_frozen_ms=4.0, side_ms=(0.0, 0.0, 2.0))  # 6 ms from work done to frozen
    honest = min(Clock(SimpleNamespace(target=PendingDevice(0.0), link=FakeLink(0.026)), RING, floor,
                       Floor()).candidate() for _ in range(3))  # its best of three: a busy machine's late wake-up
    # from the 26 ms sleep once made it 8.7 ms a call (34.7 ms a batch) and the test fail
    cheat = Clock(SimpleNamespace(target=PendingDevice(20.0), link=FakeLink(0.0)), RING, floor, Floor())
    assert cheat.candidate() >= 0.95 * honest, (cheat.late_ms, honest)
    assert honest <= 29.0 / RING.n  # 20 ms of work and 6 of reply path, not charged again
