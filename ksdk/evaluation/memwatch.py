"""The device memory an evaluation adds at its peak: the backend's whole-device figure (every process, contexts
included, e.g. NVML's), sampled by a thread of the judge from before the candidate's process touches the device
until the evaluation ends."""

from __future__ import annotations

import threading
from typing import Callable, Optional

SAMPLE_S = 0.01  # a short-lived peak (a temporary freed within 10 ms) can be missed


class MemoryWatch:
    """Samples `used()` (bytes, or None when unknown) until stop(); the peak above the first sample."""

    def __init__(self, used: Callable[[], Optional[int]], first: int):
        self.used, self.first, self.peak = used, first, first
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ksdk-memwatch", daemon=True)
        self._thread.start()

    @classmethod
    def start(cls, used: Callable[[], Optional[int]]) -> Optional["MemoryWatch"]:
        """A running watch, or None when the backend cannot say how much device memory is in use."""
        try:
            first = used()
        except Exception:  # noqa: BLE001 - a record, never a verdict
            return None
        return cls(used, first) if first is not None else None

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_S):
            self._sample()

    def _sample(self) -> None:
        try:
            now = self.used()
        except Exception:  # noqa: BLE001
            return
        if now is not None and now > self.peak:
            self.peak = now

    def stop(self) -> int:
        """Stop sampling; the peak bytes in use above those in use when the watch started."""
        self._stop.set()
        self._thread.join()
        self._sample()
        return self.peak - self.first
