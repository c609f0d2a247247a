"""Device timing with CUDA events: warm-up, L2 flush between repetitions, side-stream work joined in.

Every timing primitive is a private reference taken when this module is imported, which happens before
any candidate is loaded; so a candidate that monkeypatches torch.cuda.Event, synchronize or streams
cannot change what is measured (it is also caught by checks.Integrity and rejected).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any, Callable, Optional

import torch

from ksdk.models import TimingSettings

_EventBase = torch._C._CudaEventBase
_new_event = torch.cuda.Event
_record = _EventBase.record
_elapsed = _EventBase.elapsed_time
_sync = torch.cuda.synchronize
_current_stream = torch.cuda.current_stream
_external_stream = torch.cuda.ExternalStream
_event_wait = _EventBase.wait

L2_FLUSH_BYTES = 256 * 1024 * 1024  # well above the 50 MB L2 of an H100/H200
ROUNDS = 5  # baseline and candidate alternate this many times within one performance stage
PLACEMENT_STEP = 28 << 10  # with timing.placements > 1, copy k of the inputs starts k * 28 KB past a 2 MB boundary
# Eviction by reading is the default: zeroing (do_bench's way) leaves ~50 MB of dirty lines whose write-back lands
# in the timed call, costs memory-bound kernels up to 13% and moves with buffer placement (1.7% speedup CV on a
# 60 us GEMM against 0.2% by reading; docs/benchmarks.md, "L2 eviction").
DEFAULT_FLUSH = "read"
_tensor_zero = torch.Tensor.zero_
_tensor_sum = torch.Tensor.sum


def evict(buffer, by: str) -> None:
    """Push everything else out of L2 by reading `buffer` (leaves clean lines) or zeroing it (dirty lines)."""
    if by == "read":
        _tensor_sum(buffer, dtype=torch.int64)
    else:
        _tensor_zero(buffer)


@contextlib.contextmanager
def do_bench_eviction(by: str):
    """Within the block, triton.testing.do_bench evicts L2 `by` 'read' or 'write' (its own zeroing)."""
    import triton

    driver = type(triton.runtime.driver.active)
    stock = driver.clear_cache
    if by == "read":
        driver.clear_cache = lambda _driver, cache: evict(cache, "read")
    try:
        yield
    finally:
        driver.clear_cache = stock


def method(settings: TimingSettings) -> str:
    """One line naming how a timing was taken, recorded with every TimingStats."""
    by = settings.l2_flush_by or DEFAULT_FLUSH
    flush = (f"L2 evicted before every repetition by {'reading' if by == 'read' else 'zeroing'} "
             f"{L2_FLUSH_BYTES >> 20} MB" if settings.flush_l2 else "L2 not flushed")
    n = settings.placements
    where = f" over {n} input placements (+{PLACEMENT_STEP >> 10} KB steps)" if n > 1 else ""
    return (f"cuda events, {flush}, side streams joined, baseline and candidate interleaved in "
            f"{rounds(n)} rounds{where}")


def rounds(placements: int) -> int:
    """Alternating rounds in one performance stage: at least ROUNDS, and as many for every input placement."""
    return placements * math.ceil(ROUNDS / placements)


def placement_offset(k: int) -> int:
    """Where copy k of the inputs starts, in bytes past a 2 MB boundary."""
    return k * PLACEMENT_STEP


def _event():
    return _new_event(enable_timing=True)


@dataclass
class Measurement:
    """Per-repetition times in ms and the output of the last timed call."""

    samples_ms: list[float]
    last_output: Any
    calls: int


class Timer:
    """Times callables on the current CUDA device; one instance per evaluation (holds the flush buffer)."""

    def __init__(self, settings: TimingSettings, device: torch.device):
        self.settings = settings
        self.device = device
        self.flush = torch.empty(L2_FLUSH_BYTES // 4, dtype=torch.int32, device=device) if settings.flush_l2 else None
        self.flush_by = settings.l2_flush_by or DEFAULT_FLUSH
        self.method = method(settings)
        self._joins: dict[int, Any] = {}

    def clear_l2(self) -> None:
        """Evict the L2 cache (queued on the current stream, before the start event), unless the task opts out."""
        if self.flush is not None:
            evict(self.flush, self.flush_by)

    def _join(self, streams: set[int]) -> None:
        """Make the timing stream wait for work the candidate launched on other streams (seen by the launch hook)."""
        cur = _current_stream()
        for handle in streams:
            if handle == cur.cuda_stream:
                continue
            ext = self._joins.get(handle)
            if ext is None:
                ext = self._joins[handle] = _external_stream(handle)
            ev = _new_event()
            _record(ev, ext)
            _event_wait(ev, cur)

    def measure(self, fn: Callable[[], Any], side_streams: Callable[[], set[int]] = set, share: float = 1.0,
                warmup: Optional[int] = None) -> Measurement:
        """Warm up, pick the repetition count from min_time_ms (times `share`), then time each repetition."""
        s = self.settings
        cur = _current_stream()
        out = None
        _sync()
        a, b = _event(), _event()
        warm = max(1, s.warmup if warmup is None else warmup)
        _record(a, cur)
        for _ in range(warm):
            out = fn()
            self._join(side_streams())
        _record(b, cur)
        _sync()
        spent = _elapsed(a, b)
        est = max(spent / warm, 1e-4)
        if warmup is None and spent < s.warmup_ms:  # the first warm-up also lasts warmup_ms
            extra = min(math.ceil((s.warmup_ms - spent) / est), s.max_repetitions)
            for _ in range(extra):
                out = fn()
                self._join(side_streams())
            warm += extra
        n = max(s.repetitions, math.ceil(s.min_time_ms / est)) if s.min_time_ms > 0 else s.repetitions
        n = max(3, math.ceil(min(n, s.max_repetitions) * share))
        starts = [_event() for _ in range(n)]
        ends = [_event() for _ in range(n)]
        for i in range(n):
            self.clear_l2()
            _record(starts[i], cur)
            out = fn()
            self._join(side_streams())
            _record(ends[i], cur)
        _sync()
        return Measurement([_elapsed(x, y) for x, y in zip(starts, ends)], out, warm + n)

    def measure_interleaved(self, base_fns: list[Callable[[], Any]], cand_fns: list[Callable[[], Any]],
                            side_streams: Callable[[], set[int]] = set) -> Interleaved:
        """Baseline and candidate timed in alternating rounds, so that clock and thermal drift during the
        measurement reach both alike and the speedup (a ratio) stays steady across evaluations. Round r calls
        base_fns[r % n] and cand_fns[r % n] (n input placements, each timed in as many rounds)."""
        n = len(base_fns)
        total = rounds(n)
        parts: list[tuple[int, Measurement, Measurement]] = []
        for r in range(total):
            warm = None if r == 0 else min(2, self.settings.warmup)
            b = self.measure(base_fns[r % n], share=1 / total, warmup=warm)
            c = self.measure(cand_fns[r % n], side_streams, share=1 / total, warmup=warm)
            parts.append((r % n, b, c))
        return Interleaved(_joined([b for _, b, _ in parts]), _joined([c for _, _, c in parts]), parts)

    def hidden_work_ms(self, fn: Callable[[], Any], reps: int = 15) -> float:
        """Median time of fn when the device is fully synchronized before the end event, minus that of an
        empty call: counts work on any stream, including PyTorch side streams the launch hook cannot see."""

        def bracketed(f) -> float:
            times = []
            for _ in range(reps):
                self.clear_l2()
                a, b = _event(), _event()
                cur = _current_stream()
                _record(a, cur)
                f()
                _sync()
                _record(b, cur)
                _sync()
                times.append(_elapsed(a, b))
            times.sort()
            return times[len(times) // 2]

        return bracketed(fn) - bracketed(lambda: None)


@dataclass
class Interleaved:
    """Both sides' samples over all rounds, and each round's (placement, baseline, candidate)."""

    base: Measurement
    cand: Measurement
    rounds: list[tuple[int, Measurement, Measurement]]

    def by_placement(self) -> dict[int, tuple[list[float], list[float]]]:
        """Placement -> (baseline samples, candidate samples) over its rounds."""
        out: dict[int, tuple[list[float], list[float]]] = {}
        for k, b, c in self.rounds:
            base, cand = out.setdefault(k, ([], []))
            base.extend(b.samples_ms)
            cand.extend(c.samples_ms)
        return out


def _joined(parts: list[Measurement]) -> Measurement:
    return Measurement([x for p in parts for x in p.samples_ms], parts[-1].last_output, sum(p.calls for p in parts))


def synchronize() -> None:
    _sync()


def optional_compile(model: torch.nn.Module) -> Optional[Callable]:
    """torch.compile of the reference, or None where it cannot be built here."""
    try:
        return torch.compile(model)
    except Exception:
        return None
