"""The judge-clocked batch of the Triton Runner: prepared calls (CUDA graphs where the forward can be captured),
their outputs placed in the judge's arena through a PyTorch memory pool (ksdk_triton_nvidia.arena) so that timed
calls write them where the judge reads them, with no copy; run back to back when the judge asks."""

from __future__ import annotations

import contextlib
from typing import Any, Optional


# the device allocator's counters a timed batch reports the change of (a record: cudaMalloc/cudaFree in a batch)
ALLOCATOR_COUNTS = ("num_device_alloc", "num_device_free", "num_alloc_retries", "num_sync_all_streams")


class BatchMixin:
    """prepare_batch / run_batch / placed_outputs / synchronize for TritonRunner (which provides `new`, `ctx`,
    `rec`, `device` and the batch's state attributes)."""

    copies = 0  # outputs copied (not written in place) since the count was last reset (a record)

    def prepare_batch(self, inputs: list[list], outputs: list[list], arena: Any = None, mode: str = "graph") -> str:
        """Get ready for the judge's timed batch. Outputs go to `arena` (judge-visible memory, as a PyTorch memory
        pool: ksdk_triton_nvidia.arena) where possible, else they are copied into `outputs` inside the calls (and
        the copies are timed with them). On a GPU with `mode` 'graph', one CUDA graph per input set is captured, so
        that replaying them costs no Python launch overhead; 'eager' where capture fails or is not asked for."""
        from ksdk_triton_nvidia.arena import Arena

        self._batch = (inputs, outputs)
        self._graphs, self._kept, self._placed = [], [], None
        self.keep = []  # the last correctness call's outputs (kept to catch reuse between calls) go: on a 6 GiB
        # problem they were 6 GiB of this process's memory all through the timing; so do its launches' arguments
        self.rec.window()
        if self.ctx.interpret:
            return "eager"
        import torch

        torch.cuda.empty_cache()

        self._arena = None
        if arena is not None:
            try:
                self._arena = Arena(arena)
            except Exception:  # noqa: BLE001 - no custom pools in this PyTorch: outputs are copied (and timed)
                self._arena = None
        with self._unrecorded():
            if mode == "graph":
                side = torch.cuda.Stream()
                side.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(side), torch.no_grad():  # compiles, in this process's own memory: blocks
                    for _ in range(2):  # cached for this side stream could never serve the captures in the arena
                        self.new(*inputs[0])
                torch.cuda.current_stream().wait_stream(side)
                torch.cuda.synchronize()
                torch.cuda.empty_cache()  # that memory goes back: the arena holds the outputs and temporaries
                if self._capture(inputs, outputs):
                    return "graph"
            if self._arena is not None:
                try:  # a forward that needs more than the arena holds runs without it (its outputs copied); twice,
                    for _ in range(2):  # as the timed batches will: the second reuses what the first left cached
                        self._eager()
                except Exception:  # noqa: BLE001
                    self._arena, self._kept, self._placed = None, [], None
                torch.cuda.synchronize()
            return "eager"

    def _capture(self, inputs: list[list], outputs: list[list]) -> bool:
        """One graph per input set (in the arena's pool when there is one); False when the forward cannot be
        captured (host synchronisation, data-dependent shapes) or needs more than the arena holds."""
        import torch

        for placed in (True, False) if self._arena is not None else (False,):
            self._graphs, self._kept = [], []
            try:
                pool = self._arena.pool.id if placed else torch.cuda.graph_pool_handle()
                offsets = []
                for ins, outs in zip(inputs, outputs):
                    g = torch.cuda.CUDAGraph()
                    with torch.cuda.graph(g, pool=pool), torch.no_grad():
                        flat = self._place(self.new(*ins), outs if not placed else None)
                    self._graphs.append(g)
                    self._kept.append(flat)
                    offsets.append([self._arena.offset(t) for t in flat] if placed else None)
                torch.cuda.synchronize()
                self._placed = offsets if placed else None
                return True
            except Exception:  # noqa: BLE001 - try without the arena, then eagerly
                self._graphs, self._kept = [], []
                torch.cuda.synchronize()
        return False

    def _place(self, out: Any, slots: Optional[list]) -> list:
        """A call's outputs where the judge reads them: kept as they are when they lie in the arena, else copied
        (into `slots`, or into new memory of the arena's pool, which is in use while this runs)."""
        import torch

        from ksdk_triton_nvidia import tensors

        flat = [o if isinstance(o, torch.Tensor) else torch.as_tensor(o, device=self.device)
                for o in tensors.flatten(out)]
        if slots is not None:
            for o, slot in zip(flat, slots):
                slot.copy_(o)
            self.copies += len(flat)
            return []
        offsets = [self._arena.offset(o) for o in flat]
        self.copies += offsets.count(None)
        placed = [o if off is not None else o.contiguous().clone() for o, off in zip(flat, offsets)]
        if any(self._arena.offset(o) is None for o in placed):  # the arena is full: copy into `slots` instead
            raise MemoryError("the batch's outputs do not fit the judge's arena")
        return placed

    def run_batch(self, passes: int = 1) -> None:
        from ksdk.evaluation import timers

        with self._unrecorded():
            for _ in range(passes):
                self._calls()
        if not self.ctx.interpret:
            timers.synchronize()

    @contextlib.contextmanager
    def _unrecorded(self):
        """Timed calls keep no launch record: held arguments would keep every call's outputs alive (19_ReLU's eager
        batch held 8 x 6 GiB and ran out of memory), and the records would grow with every batch."""
        self.rec.window()
        try:
            with self.rec.unheld():
                yield
        finally:
            self.rec.window()

    def _calls(self) -> None:
        """The prepared calls, queued: graph replays, or the forward eagerly."""
        if self._graphs:
            for g in self._graphs:
                g.replay()
            return
        try:
            self._eager()
        except Exception as e:  # the arena ran short after all: this batch and the next copy their outputs instead
            import torch

            if self._arena is None or not isinstance(e, (MemoryError, torch.OutOfMemoryError)):
                raise
            self._arena, self._kept, self._placed = None, [], None
            self._eager()

    def run_batch_timed(self, passes: int = 1) -> Optional[float]:
        """run_batch, timed by this process's own CUDA events around it (a record for the judge: does the batch's
        device work itself take the time the judge's clock sees?); None in the interpreter."""
        if self.ctx.interpret:
            self.run_batch(passes)
            return None
        import time

        import torch

        before, self.copies = torch.cuda.memory_stats(), 0
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        t0 = time.perf_counter()
        with self._unrecorded():
            e0.record()
            for _ in range(passes):
                self._calls()
            e1.record()
        queued = time.perf_counter()
        torch.cuda.synchronize()
        after = torch.cuda.memory_stats()
        self.batch_notes = {k: float(after.get(k, 0) - before.get(k, 0)) for k in ALLOCATOR_COUNTS}
        self.batch_notes.update(queue_ms=(queued - t0) * 1e3, graphs=float(len(self._graphs)),
                                outputs_copied=float(self.copies),  # in the batch's eager calls (graphs: captured)
                                placed=float(self._placed is not None))  # the outputs written in the judge's arena
        return float(e0.elapsed_time(e1))

    def _eager(self) -> None:
        import torch

        inputs, outputs = self._batch
        self._kept = []
        pool = (torch.cuda.use_mem_pool(self._arena.pool) if getattr(self, "_arena", None) is not None
                else contextlib.nullcontext())
        offsets = []
        with torch.no_grad(), pool:
            for ins, outs in zip(inputs, outputs):
                placed = getattr(self, "_arena", None) is not None
                flat = self._place(self.new(*ins), None if placed else outs)
                self._kept.append(flat)
                offsets.append([self._arena.offset(t) for t in flat] if placed else None)
        self._placed = offsets if offsets and offsets[0] is not None else None

    def placed_outputs(self) -> Optional[list[list[int]]]:
        return self._placed

    def synchronize(self) -> None:
        """A one-element kernel on the device, waited for (the judge's floor for its clock: what a batch costs
        beyond its calls, the device's switch from the judge's work to this process's included)."""
        if not self.ctx.interpret:
            import torch

            if getattr(self, "_tick", None) is None:
                self._tick = torch.zeros(1, dtype=torch.int32, device=self.device)
            self._tick.add_(1)
            torch.cuda.synchronize()

