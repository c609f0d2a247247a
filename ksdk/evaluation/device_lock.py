"""One device shared by several judges (several workers on a GPU, or several `ksdk serve` processes): a lock between
their processes, so that timing on the device is exclusive while the rest of an evaluation overlaps. A judge holds it
shared for an evaluation and exclusive for its performance stage (and for a problem too large to share the device
with another); a judge waiting for it exclusively stops new evaluations from taking it shared (a turnstile), so
timing is never starved. flock(2) locks on two files: released by the kernel when a judge's process dies."""

from __future__ import annotations

import fcntl
import os
import tempfile

NONE, SHARED, EXCLUSIVE = "none", "shared", "exclusive"


def default_path(device: int) -> str:
    """The lock every judge on this machine's device `device` uses (its index among the machine's devices)."""
    return os.path.join(tempfile.gettempdir(), f"ksdk-device-{int(device)}.lock")


class DeviceLock:
    """A shared/exclusive lock on one device across processes; `held` is none, shared or exclusive."""

    def __init__(self, path: str):
        self.path = path
        self.held = NONE
        self._main = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        self._gate = os.open(path + ".gate", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)

    def shared(self) -> None:
        """Hold it shared (waits while a judge holds it, or waits for it, exclusively); nothing if held already."""
        if self.held != NONE:
            return
        fcntl.flock(self._gate, fcntl.LOCK_EX)
        try:
            fcntl.flock(self._main, fcntl.LOCK_SH)
        finally:
            fcntl.flock(self._gate, fcntl.LOCK_UN)
        self.held = SHARED

    def exclusive(self) -> None:
        """Hold it exclusively: a shared hold is given up first (never converted in place, which could deadlock
        two judges), then the turnstile stops new shared holds until this one is released."""
        if self.held == EXCLUSIVE:
            return
        if self.held == SHARED:
            fcntl.flock(self._main, fcntl.LOCK_UN)
            self.held = NONE
        fcntl.flock(self._gate, fcntl.LOCK_EX)
        fcntl.flock(self._main, fcntl.LOCK_EX)
        self.held = EXCLUSIVE

    def release(self) -> None:
        """Give it up, however held."""
        if self.held == NONE:
            return
        fcntl.flock(self._main, fcntl.LOCK_UN)
        if self.held == EXCLUSIVE:
            fcntl.flock(self._gate, fcntl.LOCK_UN)
        self.held = NONE

    def close(self) -> None:
        self.release()
        for fd in (self._main, self._gate):
            os.close(fd)
