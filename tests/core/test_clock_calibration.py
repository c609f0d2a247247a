"""The clock's calibration on a device: what a batch costs beyond its calls' device work is measured before any
candidate code loads, with round trips that did no device work and about a batch's worth of it (on an H100 a batch
cost 0.15-0.3 ms more than the least bare round trip, which alone left honest kernels judged 2x slower than
do_bench). A batch that replies before its work ends is charged the reply's way back it skipped."""

import time
from types import SimpleNamespace

import pytest
from test_clock_baseline import RING, FakeLink, IdleDevice

from ksdk.evaluation import clock as clockmod
from ksdk.evaluation.clock import Calibration, Clock, Floor


class WorkDevice(IdleDevice):
    """The judge's own events over the calibration's work read 0.1 ms a pass; `pending` ms of a candidate's work is
    still running when the judge first probes."""

    def __init__(self, pending: float = 0.0):
        super().__init__()
        self.pending = pending

    def work_ms(self, passes, nbytes):
        return 0.1 * passes

    def busy_ms(self):
        t = time.perf_counter()
        time.sleep(self.pending / 1e3)
        self.pending = 0.0
        return (time.perf_counter() - t) * 1e3


class PingLink(FakeLink):
    """A process whose round trip costs 1 ms with no device work, and its work plus 2 ms with some."""

    def timed(self, req, spin=False):
        passes = getattr(req, "passes", 0)
        self.waits = (0.1 * passes + 2.0) / 1e3 if passes else 1e-3
        return super().timed(req, spin)


def test_calibration_measures_the_fixed_cost_with_and_without_device_work():
    link, order = PingLink(), []
    cal = clockmod.calibrate(link, WorkDevice(), lambda: order.append("before"), work_ms=3.0)
    assert cal.passes == 30 and cal.work_ms == pytest.approx(3.0)
    assert 0.9 <= cal.idle_ms <= 3.0, cal  # 1 ms (sleep overshoots on a busy machine, never undershoots)
    assert 1.9 <= cal.worked_ms <= 4.0, cal  # 2 ms beyond the 3 ms of work
    asked = [name for name, _ in link.asked]
    assert asked == ["Ping"] * (1 + 2 * clockmod.CAL_PINGS)  # one untimed (the process allocates), then alternating
    assert order.count("before") == 2 * clockmod.CAL_PINGS + 3  # every timed round trip and the judge's own work


def test_no_calibration_where_the_target_cannot_do_the_work():
    assert clockmod.calibrate(PingLink(), IdleDevice(), lambda: None, work_ms=3.0) is None


def test_a_longer_batch_never_gains_from_the_calibrated_fixed_cost():
    """The attacker pads its batch to reach a larger fixed cost: the fixed cost grows by at most MAX_SLOPE of the
    added length, so what is left after it never shrinks."""
    cal = Calibration(idle_ms=0.5, work_ms=2.0, worked_ms=9.0, reply_ms=0.1, probe_ms=0.1, passes=20)
    left = [t / 10 - cal.fixed_ms(t / 10) for t in range(0, 100)]
    assert all(b >= a for a, b in zip(left, left[1:]))
    assert cal.fixed_ms(0.5) == 0.5 and cal.fixed_ms(100.0) == 0.5 + clockmod.MAX_SLOPE * 2.0


def test_a_batch_that_replies_before_its_work_ends_gains_nothing(monkeypatch):
    """The attacker (on an H100: 25.8x against the honest kernel's 11.5x): its process replies as soon as its calls
    are queued, so the way back to the judge overlaps its device work, where the honest process waits for the device
    and then replies. The judge's probe finds the work still running and charges the reply path the floor holds."""
    monkeypatch.setattr(clockmod, "unwritten", lambda ring, device: None)
    floor = Floor(cal=Calibration(idle_ms=0.0, work_ms=20.0, worked_ms=6.0, reply_ms=6.0, probe_ms=0.5, passes=1))
    honest = Clock(SimpleNamespace(target=WorkDevice(), link=FakeLink(0.026)), RING, floor, Floor()).candidate()
    cheat = Clock(SimpleNamespace(target=WorkDevice(pending=20.0), link=FakeLink(0.0)), RING, floor, Floor())
    assert cheat.candidate() >= 0.95 * honest, (cheat, honest)
    assert cheat.late_ms >= 19.0
    assert honest <= (26.0 - 6.0 + 3.0) / RING.n  # the honest batch is not charged: 20 ms of work
