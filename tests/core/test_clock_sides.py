"""The candidate process's own clock stamps on the floor's pings and the timed batches (`at`: request read, work
done): a record that splits a round trip into judge-to-process, the work, and back, so that a GPU run shows where a
batch's time beyond its device work goes. Stamps that cannot be true are dropped; none ever changes the figure."""

import math
from types import SimpleNamespace

import pytest

from test_clock_baseline import RING, FakeLink, IdleDevice

from ksdk.evaluation import clock as clockmod
from ksdk.evaluation.clock import Clock, Floor, sides
from ksdk.evaluation.link import Span


def test_true_stamps_split_the_round_trip_into_three_parts_that_add_up():
    span = Span(10.0, 10.004, 10.005, 0)
    parts = sides(SimpleNamespace(at=[10.001, 10.003]), span)
    assert parts == (1.0, 2.0, 1.0)
    assert math.isclose(sum(parts), (span.reply - span.start) * 1e3)


def test_stamps_that_cannot_be_true_are_dropped():
    span = Span(10.0, 10.004, 10.005, 0)
    for at in (None, [], [10.001], [10.001, 10.002, 10.003], [float("nan"), 10.002], [9.0, 10.002],
               [10.001, 99.0], [10.003, 10.001 - 5.0]):
        assert sides(SimpleNamespace(at=at), span) is None, at


def test_a_batch_whose_stamps_claim_no_work_is_still_timed_by_the_judges_clock(monkeypatch):
    """The attacker: a 20 ms batch whose stamps say the work took no time at all. The figure is the judge's clock's;
    the stamps are kept as a record only."""
    link = FakeLink(0.02, at=lambda t0, t1, w: [t1 - 1e-6, t1 - 1e-6])
    monkeypatch.setattr(clockmod, "unwritten", lambda ring, device: None)
    c = Clock(SimpleNamespace(target=IdleDevice(), link=link), RING, Floor(), Floor())
    assert c.candidate() >= 20.0 / 4
    assert c.sides and c.sides[0][1] == 0.0 and c.sides[0][0] >= 19.0


def test_the_floor_keeps_the_stamps_of_its_least_round_trip():
    link = FakeLink(iter([0.04, 0.002, 0.03, 0.02, 0.05, 0.03, 0.04]), at=lambda t0, t1, w: [t0, t0 + w / 2])
    floor = clockmod.candidate_floor(link, IdleDevice(), lambda: None)
    assert floor.side_ms is not None and floor.side_ms[1] == 1.0, floor  # the 2 ms ping's: half its wait


def test_the_events_batch_records_the_threads_that_ran_beside_the_judges_clock():
    """The extra batch timed by the candidate's own events (a GPU path) keeps, as records, its events, the judge's
    clock over it and the CPU each thread used, the candidate's and the judge's, by thread name."""
    from ksdk.evaluation import extras

    readings = iter([{"python": 1_000_000, "cuda-EvtHandlr": 0}, {"python": 1_500_000, "cuda-EvtHandlr": 250_000}])
    proc = SimpleNamespace(threads_cpu_ns=lambda: next(readings))
    timing = SimpleNamespace(flush_l2=False, l2_flush_by=None)
    res = SimpleNamespace(device=SimpleNamespace(extra={}), warnings=[])
    ev = SimpleNamespace(task=SimpleNamespace(timing=timing), target=IdleDevice(), link=SimpleNamespace(proc=proc),
                         result=res)
    notes = {"num_device_alloc": 1.0, "queue_ms": 0.05, "bad": float("nan"), "text": "x",
             **{f"k{i}": 1.0 for i in range(100)}}  # a process could say anything: kept short and finite
    clock = SimpleNamespace(ring=SimpleNamespace(n=3), reported_ms=0.14, candidate=lambda events: 0.1,
                            reported_notes=notes)
    extras._events_batch(ev, clock, refresh=lambda: None)
    rec = res.device.extra["clock"]["events_batch"]
    assert rec["candidate_events_ms"] == 0.14 and math.isclose(rec["judge_clock_ms"], 0.3), rec
    assert rec["threads_cpu_ms"] == {"python": 0.5, "cuda-EvtHandlr": 0.25}, rec
    assert isinstance(rec["judge_threads_cpu_ms"], dict), rec
    kept = rec["candidate_notes"]
    assert kept["num_device_alloc"] == 1.0 and kept["queue_ms"] == 0.05 and len(kept) <= 12, kept
    assert "bad" not in kept and "text" not in kept, kept


@pytest.mark.parametrize("passes, expected", [(40, 16), (1, None)])
def test_a_many_pass_batch_is_timed_by_the_candidates_events_too_where_the_rounds_took_passes(passes, expected):
    """Where the rounds' figure came from passes, one more batch of several passes is timed by the judge's clock and
    by the candidate's own events (a record of a call's steady-state device time); none where they took one pass."""
    from ksdk.evaluation import extras

    res = SimpleNamespace(device=SimpleNamespace(extra={"clock": {"passes": passes}}), warnings=[])
    ev = SimpleNamespace(task=SimpleNamespace(timing=SimpleNamespace(flush_l2=False, l2_flush_by=None)),
                         target=IdleDevice(), link=SimpleNamespace(proc=SimpleNamespace(threads_cpu_ns=lambda: {})),
                         result=res)
    asked = []
    clock = SimpleNamespace(ring=SimpleNamespace(n=3), reported_ms=0.13, candidate=lambda events: 0.044,
                            reported_notes=None)

    def batch(passes=1, events=False):
        asked.append((passes, events))
        clock.reported_ms = 0.048 * 3 * passes  # its own events: 48 us a call
        return 0.05 * 3 * passes  # the judge's clock: 50 us a call

    clock.batch = batch
    extras._events_batch(ev, clock, refresh=lambda: None)
    rec = res.device.extra["clock"]["events_batch"]
    if expected is None:
        assert "passes" not in rec and not asked
        return
    assert asked == [(expected, True)]
    assert rec["passes"] == {"passes": expected, "judge_clock_ms_per_call": 0.05,
                             "candidate_events_ms_per_call": 0.048}, rec
