"""The judge's device-memory watch reports the peak an evaluation added, and a backend that cannot say is no watch."""

import threading

from ksdk.evaluation import memwatch
from ksdk.evaluation.memwatch import MemoryWatch


def readings(values: list, then: int):
    """used(): `values` in turn, then `then` for ever; and an event set once the values ran out."""
    it, done = iter(values), threading.Event()

    def used():
        try:
            return next(it)
        except StopIteration:
            done.set()
            return then

    return used, done


def test_the_peak_above_the_first_sample_survives_a_later_release(monkeypatch):
    monkeypatch.setattr(memwatch, "SAMPLE_S", 0.001)
    used, sampled = readings([100, 100, 400, 900, 250], 120)
    watch = MemoryWatch.start(used)
    assert sampled.wait(5)
    assert watch.stop() == 800


def test_no_watch_where_the_backend_cannot_say_and_a_failing_reading_is_not_an_error():
    assert MemoryWatch.start(lambda: None) is None

    def broken():
        raise OSError("NVML went away")

    assert MemoryWatch.start(broken) is None


def test_whose_memory_the_peak_was_is_read_at_the_peak_not_after_it(monkeypatch):
    """The per-role detail is taken when the total peaks: a candidate that frees its memory before the evaluation
    ends still shows as the peak's owner."""
    monkeypatch.setattr(memwatch, "SAMPLE_S", 0.001)
    used, sampled = readings([100, 900, 200], 150)
    owners = iter([{"judge": 100, "candidate": 0}, {"judge": 100, "candidate": 800}, {"judge": 100, "candidate": 0}])

    def detail():
        return next(owners, {"judge": 150, "candidate": 0})

    watch = MemoryWatch.start(used, detail)
    assert sampled.wait(5)
    assert watch.stop() == 800
    assert memwatch.growth(watch.first_detail, watch.at_peak) == {"judge": 0, "candidate": 800}


def test_roles_are_this_process_the_candidates_processes_and_everyone_else():
    import os

    per_pid = {os.getpid(): 1000, 4242: 500, 4243: 70, 9999: 300}
    assert memwatch.by_role(per_pid, {4242, 4243}) == {"judge": 1000, "candidate": 570, "other": 300}
    assert memwatch.by_role(None, {1}) is None
    assert memwatch.growth(None, {"judge": 1}) is None


def test_what_the_evaluation_was_doing_is_read_at_the_peak_and_a_failing_reading_is_only_a_missing_record(monkeypatch):
    monkeypatch.setattr(memwatch, "SAMPLE_S", 0.001)
    steps = iter([(100, "load"), (400, "correctness"), (900, "performance: prepare"), (200, "performance: rounds")])
    now = ["teardown"]
    done = threading.Event()

    def used():
        value, now[0] = next(steps, (150, "teardown"))
        if now[0] == "teardown":
            done.set()
        return value

    watch = MemoryWatch.start(used, None, lambda: now[0])
    assert done.wait(5)
    assert watch.stop() == 800 and watch.where_at_peak == "performance: prepare"

    def broken():
        raise RuntimeError("no stage yet")

    used, sampled = readings([100, 900], 150)
    watch = MemoryWatch.start(used, None, broken)
    assert sampled.wait(5)
    assert watch.stop() == 800 and watch.where_at_peak is None


def test_the_watch_can_be_turned_off_or_slowed_for_an_experiment(monkeypatch):
    monkeypatch.setenv(memwatch.PERIOD_ENV, "0")
    assert MemoryWatch.start(lambda: 100) is None
    monkeypatch.setenv(memwatch.PERIOD_ENV, "0.5")
    assert memwatch.period() == 0.5
    monkeypatch.setenv(memwatch.PERIOD_ENV, "soon")  # not a number: the default
    assert memwatch.period() == memwatch.SAMPLE_S
