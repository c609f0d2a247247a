"""What the judge times in its own process to compare a candidate with: the task's Model (PyTorch eager, or
torch.compile of it as a second record), or a baseline kernel the task ships for the backend (run by the backend's
Runner here: the code is the task's, not a candidate's). Each runs as a batch over the ring's input sets, in the
same mode as the candidate's batch: replayed device graphs, or calls back to back."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Callable, Optional

from ksdk.evaluation.shared import arg_views
from ksdk.interfaces.backend import run_passes


class BaselineBatch(ABC):
    """A batch of baseline calls over the ring's input sets; `label` names it in results."""

    label: str = ""
    mode: str = "eager"
    queues_only: bool = False  # run() only queues device work (no host wait inside): the device's clock can time it

    @abstractmethod
    def prepare(self, mode: str) -> str:
        """Get ready to run in `mode` ('graph', 'eager' or 'host'); returns the mode it will run in."""

    @abstractmethod
    def run(self, passes: int = 1) -> None:
        """The calls, back to back, `passes` times over the ring (the caller waits for the device)."""

    def close(self) -> None:
        """Release graphs and buffers."""


def ring_inputs(ring, region=None) -> list[list[Any]]:
    """The ring's input sets as torch tensors (views of the shared memory) and plain values."""
    return [arg_views(region or ring.region, args, tensors=True) for args in ring.args]


class ModelBatch(BaselineBatch):
    """A callable (the task's Model, or a compiled version of it) over the ring's inputs; its outputs are not kept.
    On the host it runs single-threaded (so is the candidate's C kernel)."""

    def __init__(self, fn: Callable, inputs: list[list[Any]], label: str, host: bool):
        self.fn, self.inputs, self.label, self.host = fn, inputs, label, host
        self.graphs: list = []
        self.mode = "host" if host else "eager"
        self.queues_only = not host

    def prepare(self, mode: str) -> str:
        import torch

        self.graphs = []
        if self.host or mode != "graph":
            self.mode = "host" if self.host else "eager"
            return self.mode
        try:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side), torch.no_grad():
                for _ in range(2):
                    self.fn(*self.inputs[0])
            torch.cuda.current_stream().wait_stream(side)
            pool = torch.cuda.graph_pool_handle()
            for ins in self.inputs:  # one graph per set, as the candidate's Runner captures them
                g = torch.cuda.CUDAGraph()
                with torch.cuda.graph(g, pool=pool), torch.no_grad():
                    self.fn(*ins)
                self.graphs.append(g)
            torch.cuda.synchronize()
            self.mode = "graph"
        except Exception:  # noqa: BLE001 - not capturable (host syncs, data-dependent shapes): run eagerly
            self.graphs = []
            torch.cuda.synchronize()
            self.mode = "eager"
        return self.mode

    def run(self, passes: int = 1) -> None:
        import torch

        if self.graphs:
            for _ in range(passes):
                for g in self.graphs:
                    g.replay()
            return
        threads = torch.get_num_threads()
        if self.host:
            torch.set_num_threads(1)
        try:
            with torch.no_grad():
                for _ in range(passes):
                    for ins in self.inputs:
                        self.fn(*ins)
        finally:
            if self.host:
                torch.set_num_threads(threads)

    def close(self) -> None:
        self.graphs = []


class ShippedBatch(BaselineBatch):
    """The task's own baseline kernel for this backend, run by the backend's Runner in the judge's process, its
    outputs written into a region of the judge's own (the candidate's are checked in the ring)."""

    def __init__(self, runner, inputs: list[list[Any]], outputs: list[list[Any]], label: str):
        self.runner, self.inputs, self.outputs, self.label = runner, inputs, outputs, label

    def prepare(self, mode: str) -> str:
        self.mode = str(self.runner.prepare_batch(self.inputs, self.outputs) or "host")
        return self.mode

    def run(self, passes: int = 1) -> None:
        run_passes(self.runner.run_batch, passes)

    def close(self) -> None:
        try:
            self.runner.close()
        except Exception:  # noqa: BLE001 - releasing a trusted runner's resources
            pass


def shipped_runner(backend, run, task, ref, source: str, specs: list[dict], outs: list[dict],
                   params: Optional[list] = None):
    """The backend's Runner set up for the task's own baseline source (trusted: the task's code), built."""
    from ksdk.interfaces.backend import TaskView

    runner = backend.runner(run)
    runner.setup(TaskView(task.name, task.source, task.seed, ref.json_init_inputs(), list(params or []), specs, outs))
    runner.load(source)
    runner.build()
    return runner
