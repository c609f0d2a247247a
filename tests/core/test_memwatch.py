"""The judge's device-memory watch reports the peak an evaluation added, and a backend that cannot say is no watch."""

import threading

from ksdk.evaluation import memwatch
from ksdk.evaluation.memwatch import MemoryWatch


def test_the_peak_above_the_first_sample_survives_a_later_release(monkeypatch):
    monkeypatch.setattr(memwatch, "SAMPLE_S", 0.001)
    readings = iter([100, 100, 400, 900, 250])
    sampled = threading.Event()

    def used():
        try:
            return next(readings)
        except StopIteration:
            sampled.set()
            return 120

    watch = MemoryWatch.start(used)
    assert sampled.wait(5)
    assert watch.stop() == 800


def test_no_watch_where_the_backend_cannot_say_and_a_failing_reading_is_not_an_error():
    assert MemoryWatch.start(lambda: None) is None

    def broken():
        raise OSError("NVML went away")

    assert MemoryWatch.start(broken) is None
