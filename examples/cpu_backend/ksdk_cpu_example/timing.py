"""Host timing: perf_counter_ns around each call, warm-up first, caches flushed between repetitions.

Candidate and baselines are timed interleaved (one repetition of each in turn), so frequency drift and
noisy neighbours hit both alike.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np

from ksdk.models import TimingSettings, TimingStats
from ksdk.timing import summarize


def last_level_cache_bytes() -> int:
    """Size of the largest CPU cache (Linux sysfs), 32 MiB when unknown."""
    best = 0
    for f in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*/size"):
        try:
            text = f.read_text().strip().upper()
            mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
            best = max(best, int(text.rstrip("KMG")) * mult)
        except (OSError, ValueError):
            continue
    return best or 32 << 20


class Flusher:
    """Writes a buffer twice the last-level cache (capped at 64 MiB) so the next call starts cold."""

    def __init__(self, enabled: bool):
        self.nbytes = min(2 * last_level_cache_bytes(), 64 << 20) if enabled else 0
        self.buf = np.empty(self.nbytes // 4, dtype=np.int32) if enabled else None
        self.n = 0

    def __call__(self) -> None:
        if self.buf is not None:
            self.n += 1
            self.buf.fill(self.n)

    def describe(self) -> str:
        return f"caches flushed ({self.nbytes >> 20} MiB write) between calls" if self.buf is not None else "warm caches"


def time_interleaved(fns: dict[str, Callable[[], object]], settings: TimingSettings) -> dict[str, TimingStats]:
    """Median-robust timings of each function, measured in turns; the first key drives the time budget."""
    flush = Flusher(settings.flush_l2)
    t0 = time.perf_counter()
    for i in range(settings.max_repetitions):  # warm-up: `warmup` turns, lasting at least warmup_ms
        if i >= settings.warmup and (time.perf_counter() - t0) * 1e3 >= settings.warmup_ms:
            break
        for fn in fns.values():
            fn()
    samples: dict[str, list[float]] = {k: [] for k in fns}
    first = next(iter(fns))
    spent_ms = 0.0
    while True:
        n = len(samples[first])
        if n >= settings.max_repetitions or (n >= settings.repetitions and spent_ms >= settings.min_time_ms):
            break
        for key, fn in fns.items():
            flush()
            t0 = time.perf_counter_ns()
            fn()
            dt = (time.perf_counter_ns() - t0) / 1e6
            samples[key].append(dt)
            if key == first:
                spent_ms += dt
    method = f"time.perf_counter_ns around each call, single thread, {flush.describe()}, interleaved"
    return {k: summarize(v, method) for k, v in samples.items()}
