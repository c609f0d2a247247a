"""Where the judge runs the reference and keeps what it shares with a candidate's process: a Target is declared by the
backend (Backend.target) and is all the judge knows of a device: the torch device it computes on, how to wait for
work there, how to push a candidate's data out of the caches before timing, and whether other work is still
running there. No stage of the judge names a device type."""

from __future__ import annotations

import time
from typing import Optional

EVICT_BYTES = 256 << 20  # read before a timed batch on a GPU: well above the 50-60 MB L2 of an H100/H200
IDLE_PROBE_MS = 0.5  # a probe kernel slower than this waited for another context's work on the device


class Target:
    """The host CPU: the reference runs here and shared memory is a memfd."""

    kind = "host"  # "host" or "device": which slack, clock and eviction apply
    device = "cpu"  # torch device string for inputs, the reference and comparisons

    def __init__(self) -> None:
        self._evict_buf = None

    def synchronize(self) -> None:
        """Wait until work the judge queued here is done (nothing to wait for on the host)."""

    def evict(self, by: str = "read") -> None:
        """Push everything out of the caches that a timed batch's inputs could sit in: writes a buffer twice the
        last-level cache (at most 64 MiB), as ksdk.evaluation.timers.HostTimer does between repetitions. On one
        thread (numpy): a parallel torch op leaves its pool's threads spinning for milliseconds afterwards, and on a
        machine of few cores they delayed the candidate's next reply (a floor ping's by 1.5-3.6 ms on 2 vCPUs)."""
        import numpy as np

        if self._evict_buf is None:
            from ksdk.evaluation.timers import last_level_cache_bytes

            n = min(2 * last_level_cache_bytes(), 64 << 20)
            self._evict_buf = np.zeros(n // 4, dtype=np.int32)
        np.add(self._evict_buf, 1, out=self._evict_buf)

    def busy_ms(self) -> float:
        """How long a minimal probe waited for other work on the device (0 on the host: frozen processes do none)."""
        return 0.0

    def device_ms(self, run) -> Optional[float]:
        """Run `run()` (work queued on this device by the judge) and wait for it; the ms it took by the device's own
        clock, or None where there is none (the host)."""
        run()
        return None

    def prepare(self) -> None:
        """Allocate what the judge keeps for its whole life (before the first evaluation's memory is watched)."""

    def write_bytes_per_ms(self) -> Optional[float]:
        """How fast the judge writes device memory (bytes a ms, its own events over zeroing its eviction buffer, the
        best of a few, kept); None on the host."""
        return None

    def cache_bytes(self) -> int:
        """The device's last-level cache, which can take writes faster than its memory (0 on the host)."""
        return 0

    def thread_cpu_ns(self) -> Optional[int]:
        """CPU time of the judge's calling thread (the baseline's clock on the host), or None on a device."""
        return time.thread_time_ns()

    def scratch_bytes(self, run) -> tuple[object, int]:
        """(run(), the most device memory it held at once beyond what it returned): a forward's temporaries, which a
        Runner's pool must hold beside its outputs; 0 on the host, where nothing needs sizing."""
        return run(), 0

    def release_cached(self) -> None:
        """Give the judge's cached memory on this device back (between evaluations); nothing on the host."""

    def info(self, index: int):
        """A DeviceInfo for results when the backend's probe named none."""
        from ksdk.models import DeviceInfo

        return DeviceInfo.host_cpu(index)

    def rng_state(self):
        """The generator state a reference draws random numbers from (to tell whether a forward drew any)."""
        import torch

        return torch.get_rng_state()


class DeviceTarget(Target):
    """A torch accelerator device (CUDA and devices that speak its API through torch.cuda): the reference runs there,
    shared memory is device memory the backend shares."""

    kind = "device"

    def __init__(self, device: str = "cuda") -> None:
        super().__init__()
        self.device = device
        self._write_bw: Optional[float] = None  # write_bytes_per_ms, measured once

    def synchronize(self) -> None:
        import torch

        torch.cuda.synchronize()

    def prepare(self) -> None:
        import torch

        torch.cuda.init()
        if self._evict_buf is None:
            self._evict_buf = torch.empty(EVICT_BYTES // 4, dtype=torch.int32, device=self.device)
            self._probe = torch.zeros(1, dtype=torch.int32, device=self.device)

    def evict(self, by: str = "read") -> None:
        """Read a 256 MiB buffer (clean lines: no write-back lands in the next timed call), or zero it (`by`
        'write', as triton.testing.do_bench does); queued, not waited for."""
        import torch

        self.prepare()
        if by == "write":
            self._evict_buf.zero_()
        else:
            torch.sum(self._evict_buf, dtype=torch.int64)

    def cache_bytes(self) -> int:
        import torch

        return int(getattr(torch.cuda.get_device_properties(self.device), "L2_cache_size", 0) or 0)

    def write_bytes_per_ms(self) -> Optional[float]:
        if self._write_bw is None:
            self.prepare()
            ms = min(self.device_ms(self._evict_buf.zero_) for _ in range(3))
            self._write_bw = EVICT_BYTES / max(ms, 1e-6)
        return self._write_bw

    def busy_ms(self) -> float:
        """Launch a one-element kernel and wait for it: with the device idle this takes tens of microseconds; while
        another process's kernels run, it waits for the device's time slice."""
        import torch

        self.prepare()
        t = time.perf_counter()
        self._probe.add_(1)
        torch.cuda.synchronize()
        return (time.perf_counter() - t) * 1e3

    def device_ms(self, run) -> Optional[float]:
        """By CUDA events on the judge's current stream around the queued work: the first kernel's start to the
        last's end, without the launch latency and the wake-up that a wall clock adds to a short batch."""
        import torch

        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        e0.record()
        run()
        e1.record()
        torch.cuda.synchronize()  # and any other stream's work (the events time the current stream's)
        return e0.elapsed_time(e1)

    def thread_cpu_ns(self) -> Optional[int]:
        return None

    def scratch_bytes(self, run) -> tuple[object, int]:
        import torch

        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        out = run()
        torch.cuda.synchronize()
        kept = torch.cuda.memory_allocated() - before  # what run() returned (and anything it cached)
        return out, max(0, torch.cuda.max_memory_allocated() - before - kept)

    def release_cached(self) -> None:
        import gc

        import torch

        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()

    def info(self, index: int):
        import torch

        from ksdk.models import DeviceInfo

        props = torch.cuda.get_device_properties(0)
        extra = {"sm": f"{props.major}.{props.minor}", "memory_gb": round(props.total_memory / 2**30, 1),
                 "multiprocessors": props.multi_processor_count}
        return DeviceInfo(index=index, name=props.name, kind="gpu", runtime=f"cuda {torch.version.cuda}", extra=extra)

    def rng_state(self):
        import torch

        return torch.cuda.get_rng_state()


def for_device(device: str) -> Target:
    """The Target for a torch device string ('cpu', 'cuda', 'cuda:0')."""
    return Target() if device.split(":")[0] == "cpu" else DeviceTarget(device)
