"""The judge's clock runs until a batch's processes are frozen, so the freeze is checked back to back at first
(cgroups._poll): sleeping between checks added 0.05-0.2 ms that depended on the freeze, not on the batch. Past its
deadline a freeze that never comes is still a FreezeTimeout."""

import time

import pytest

from ksdk.evaluation import cgroups


def test_a_freeze_that_lands_within_the_first_checks_is_seen_without_sleeping(monkeypatch):
    def no_sleep(_s):
        raise AssertionError("slept while the freeze was being polled back to back")

    monkeypatch.setattr(cgroups, "SPIN_S", 5.0)  # a busy machine must not push the checks past the spin window
    monkeypatch.setattr(cgroups.time, "sleep", no_sleep)
    checks = iter([False] * 10 + [True])
    cgroups._poll(lambda: next(checks), time.monotonic() + 10, 0.001)


def test_a_freeze_that_never_comes_is_a_timeout_at_the_deadline():
    t = time.monotonic()
    with pytest.raises(cgroups.FreezeTimeout):
        cgroups._poll(lambda: False, t + 0.05, 0.001)
    assert time.monotonic() - t < 5
