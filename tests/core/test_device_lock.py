"""Judges sharing a device (ksdk/evaluation/device_lock.py): timing is exclusive, a judge waiting to time is not
starved by others starting evaluations, a judge that dies gives the device back, and no candidate inherits the lock."""

from __future__ import annotations

import multiprocessing as mp
import os
import threading

from ksdk.evaluation.device_lock import DeviceLock

CTX = mp.get_context("fork")
STILL = 0.3  # how long a blocked hold must stay blocked to count as waiting (a working lock blocks forever)


def _hold(path: str, how: str, held, go) -> None:
    lock = DeviceLock(path)
    getattr(lock, how)()
    held.set()
    go.wait(30)
    lock.release()


def _hold_and_die(path: str, held) -> None:
    DeviceLock(path).exclusive()
    held.set()
    os._exit(0)  # no release: the kernel drops the process's locks


def _in_thread(fn) -> tuple[threading.Thread, threading.Event]:
    done = threading.Event()
    t = threading.Thread(target=lambda: (fn(), done.set()), daemon=True)
    t.start()
    return t, done


def _other(path: str, how: str):
    held, go = CTX.Event(), CTX.Event()
    p = CTX.Process(target=_hold, args=(path, how, held, go), daemon=True)
    p.start()
    return p, held, go


def test_timing_waits_until_no_other_judge_holds_the_device(tmp_path):
    path = str(tmp_path / "dev.lock")
    p, held, go = _other(path, "shared")
    assert held.wait(10)
    mine = DeviceLock(path)
    _t, got = _in_thread(mine.exclusive)
    assert not got.wait(STILL), "the exclusive hold was granted while another judge held the device"
    go.set()
    assert got.wait(10)
    assert mine.held == "exclusive"
    mine.release()
    p.join(10)


def test_a_judge_waiting_to_time_stops_new_evaluations_from_starting():
    """Without the turnstile a stream of shared holds (evaluations starting) would starve the timing judge."""
    import tempfile

    path = os.path.join(tempfile.mkdtemp(), "dev.lock")
    first, first_held, first_go = _other(path, "shared")
    assert first_held.wait(10)
    timing = DeviceLock(path)
    _t, timing_got = _in_thread(timing.exclusive)
    assert not timing_got.wait(STILL)
    second, second_held, second_go = _other(path, "shared")  # arrives after the timing judge began to wait
    assert not second_held.wait(STILL), "a new shared hold overtook the judge waiting to time"
    first_go.set()
    assert timing_got.wait(10)
    assert not second_held.wait(STILL), "a shared hold was granted during the exclusive one"
    timing.release()
    assert second_held.wait(10)
    second_go.set()
    for p in (first, second):
        p.join(10)


def test_a_judge_that_dies_holding_the_device_gives_it_back(tmp_path):
    path = str(tmp_path / "dev.lock")
    held = CTX.Event()
    p = CTX.Process(target=_hold_and_die, args=(path, held), daemon=True)
    p.start()
    assert held.wait(10)
    p.join(10)
    mine = DeviceLock(path)
    _t, got = _in_thread(mine.shared)
    assert got.wait(10), "a dead judge's exclusive hold outlived it"


def test_holds_are_idempotent_and_an_upgrade_gives_up_the_shared_hold_first(tmp_path):
    path = str(tmp_path / "dev.lock")
    lock = DeviceLock(path)
    lock.shared()
    lock.shared()
    lock.exclusive()
    lock.exclusive()
    assert lock.held == "exclusive"
    lock.release()
    lock.release()
    assert lock.held == "none"
    lock.close()


def test_no_process_a_judge_starts_inherits_the_lock(tmp_path):
    lock = DeviceLock(str(tmp_path / "dev.lock"))
    assert not os.get_inheritable(lock._main) and not os.get_inheritable(lock._gate)


def test_judges_on_a_device_are_told_the_same_lock():
    from ksdk.evaluation.device_lock import default_path

    assert default_path(1) == default_path(1) != default_path(0)
