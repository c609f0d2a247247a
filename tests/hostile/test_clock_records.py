"""The judge's clock records, end to end through the sandboxed candidate process (cpu_c): the process's own stamps
split the floor's least ping and the median batch; the CPU each of its threads used is readable by name."""

import ctypes
import os
import threading
import time

from hostilekit import C_GOOD, c_task, evaluate

from ksdk.evaluation import procfs
from ksdk.models import Status


def test_the_floor_and_the_batches_are_split_by_the_candidate_process_own_stamps():
    (r,) = evaluate("cpu_c", c_task(), C_GOOD)
    assert r.status == Status.OK, r.message
    rec = r.device.extra["clock"]
    for key in ("floor_sides_ms", "batch_sides_ms"):
        parts = rec[key]
        assert parts is not None and len(parts) == 3 and all(p > -1.0 for p in parts), rec
    assert sum(rec["batch_sides_ms"]) <= rec["to_reply_ms"] * 1.5 + 0.05, rec  # medians of parts, near the whole


def test_thread_cpu_names_the_thread_that_ran():
    named, stop = threading.Event(), threading.Event()

    def spin():
        ctypes.CDLL(None).prctl(15, b"ksdk-spinner", 0, 0, 0)  # PR_SET_NAME
        named.set()
        while not stop.is_set():
            pass

    t = threading.Thread(target=spin)
    t.start()
    named.wait(5)
    end = time.perf_counter() + 0.2
    seen = {}
    while time.perf_counter() < end and seen.get("ksdk-spinner", 0) <= 1e6:
        time.sleep(0.005)
        seen = procfs.thread_cpu([os.getpid()])
    stop.set()
    t.join()
    assert seen.get("ksdk-spinner", 0) > 1e6, seen  # it ran, and is named apart from the main thread
