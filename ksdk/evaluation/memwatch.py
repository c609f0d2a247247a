"""The device memory an evaluation adds at its peak: the backend's whole-device figure (every process, contexts
included, e.g. NVML's), sampled by a thread of the judge from before the candidate's process touches the device
until the evaluation ends."""

from __future__ import annotations

import os
import threading
from typing import Any, Callable, Optional

SAMPLE_S = 0.01  # a short-lived peak (a temporary freed within 10 ms) can be missed
PERIOD_ENV = "KSDK_MEMWATCH_S"  # another sampling period in seconds; 0 turns the watch off (an experiment: does the
# sampling, NVML on NVIDIA devices, slow the timed work beside it?)


class MemoryWatch:
    """Samples `used()` (bytes, or None when unknown) until stop(); the peak above the first sample. `detail()`,
    where given, says whose memory it is (e.g. bytes per process role): read at the start and at each new peak."""

    def __init__(self, used: Callable[[], Optional[int]], first: int, detail: Optional[Callable[[], Any]] = None,
                 where: Optional[Callable[[], str]] = None):
        self.used, self.first, self.peak = used, first, first
        self.period = period()  # read once: the environment is not looked up at every sample
        self.detail, self.where = detail, where
        self.first_detail = self.at_peak = self._detail()
        self.where_at_peak: Optional[str] = None  # what the evaluation was doing at the peak (`where()`), a record
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ksdk-memwatch", daemon=True)
        self._thread.start()

    @classmethod
    def start(cls, used: Callable[[], Optional[int]], detail: Optional[Callable[[], Any]] = None,
              where: Optional[Callable[[], str]] = None) -> Optional["MemoryWatch"]:
        """A running watch, or None when the backend cannot say how much device memory is in use (or $KSDK_MEMWATCH_S
        is 0)."""
        if period() <= 0:
            return None
        try:
            first = used()
        except Exception:  # noqa: BLE001 - a record, never a verdict
            return None
        return cls(used, first, detail, where) if first is not None else None

    def _detail(self) -> Any:
        try:
            return self.detail() if self.detail is not None else None
        except Exception:  # noqa: BLE001 - a record, never a verdict
            return None

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            self._sample()

    def _sample(self) -> None:
        try:
            now = self.used()
        except Exception:  # noqa: BLE001
            return
        if now is not None and now > self.peak:
            self.peak = now
            self.at_peak = self._detail()
            try:
                self.where_at_peak = self.where() if self.where is not None else None
            except Exception:  # noqa: BLE001 - a record, never a verdict
                self.where_at_peak = None

    def stop(self) -> int:
        """Stop sampling; the peak bytes in use above those in use when the watch started."""
        self._stop.set()
        self._thread.join()
        self._sample()
        return self.peak - self.first


def period() -> float:
    """Seconds between samples: $KSDK_MEMWATCH_S where set to a number, else SAMPLE_S."""
    try:
        return float(os.environ[PERIOD_ENV])
    except (KeyError, ValueError):
        return SAMPLE_S


def by_role(per_pid: Optional[dict[int, int]], candidate: set[int]) -> Optional[dict[str, int]]:
    """Device bytes per role: the judge (this process), the candidate's processes, and every other process (spares
    started ahead of need, other judges, anything else on the device)."""
    if per_pid is None:
        return None
    own = os.getpid()
    out = {"judge": 0, "candidate": 0, "other": 0}
    for pid, used in per_pid.items():
        out["judge" if pid == own else "candidate" if pid in candidate else "other"] += int(used)
    return out


def growth(first: Optional[dict[str, int]], peak: Optional[dict[str, int]]) -> Optional[dict[str, int]]:
    """Each role's bytes at the peak above its bytes at the start (what the peak is made of)."""
    if first is None or peak is None:
        return None
    return {k: v - first.get(k, 0) for k, v in peak.items()}
