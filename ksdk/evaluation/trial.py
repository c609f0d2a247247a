"""One trial as the judge runs it: inputs made from a seed only the judge knows, the reference outputs computed
before the candidate sees the inputs (with the random generators seeded the way the candidate's call will be), the
inputs written into shared memory, the output slots poisoned, and afterwards the comparison. Memory stays within
one trial: the judge keeps the shared slots and the reference outputs, never a second copy of the inputs (they are
made again from their seed to check that the candidate left them unchanged)."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any, Optional

from ksdk.evaluation.reference import Reference, TaskFailure, as_tensor
from ksdk.evaluation.shared import Layout, Region, Slot
from ksdk.evaluation.targets import Target
from ksdk.evaluation.verdict import DOES_NOT_FIT, Verdict, out_of_memory
from ksdk.models import ErrorKind, OutputCheck, Stage, Task
from ksdk.verify import compare_outputs

COMPARE_CHUNK = 1 << 24  # elements compared (or summed) at a time: bounds the temporaries of every check


@dataclass
class Trial:
    """One trial's seeds and reference outputs (its inputs live in shared memory once written)."""

    seed: int  # the inputs' seed (the judge's secret)
    rng_seed: int  # the random generators' seed for this call (told to the candidate's process)
    refs: list
    ref_s: float
    stochastic: bool  # the reference drew random numbers (dropout): its outputs depend on the generators' state
    scratch: int = 0  # the reference's temporaries, bytes: the most it held at once beyond its outputs (a device's)


class Trials:
    """The task's reference on the judge's Target, and the trials made from it."""

    def __init__(self, task: Task, target: Target, overrides: Optional[dict] = None):
        self.task, self.target = task, target
        self.rng = secrets.SystemRandom()
        self.stage = Stage.LOAD
        self.candidate_ran = False  # from then on, running out of device memory is the candidate's doing
        self.make_ms = float("inf")  # the least time get_inputs() took for one set (the ring's inputs are remade)
        try:
            self.ref = Reference(task, target.device, overrides)
        except TaskFailure as e:
            raise Verdict(Stage.LOAD, ErrorKind.INFRA, str(e)) from None

    def seed(self) -> int:
        return self.rng.randrange(1 << 31)

    # -- making trials -----------------------------------------------------------------------------------------
    def inputs(self, seed: int) -> list:
        """The input set of `seed` on the Target (tensors, or numbers as get_inputs() gives them)."""
        try:
            t = time.perf_counter()
            raw = self.ref.inputs(seed)
            self.target.synchronize()
            self.make_ms = min(self.make_ms, (time.perf_counter() - t) * 1e3)
        except TaskFailure as e:
            raise Verdict(self.stage, ErrorKind.INFRA, str(e)) from None
        except Exception as e:  # noqa: BLE001 - only running out of memory is judged here
            self._oom(e)
            raise
        return [as_tensor(x, self.target.device) if hasattr(x, "shape") and hasattr(x, "dtype") else x for x in raw]

    def make(self, seed: Optional[int] = None, rng_seed: Optional[int] = None) -> tuple[list, Trial]:
        """(inputs, trial): the inputs of a new seed and their reference outputs, the generators seeded with the
        trial's rng seed right before the reference's forward."""
        import torch

        seed = self.seed() if seed is None else seed
        rng_seed = self.seed() if rng_seed is None else rng_seed
        raw = self.inputs(seed)
        try:
            torch.manual_seed(rng_seed)
            before = self.target.rng_state()
            t = time.perf_counter()
            refs, scratch = self.target.scratch_bytes(lambda: self.ref.forward(raw))
            self.target.synchronize()
            ref_s = time.perf_counter() - t
            stochastic = not torch.equal(before, self.target.rng_state())
        except TaskFailure as e:
            raise Verdict(self.stage, ErrorKind.INFRA, str(e)) from None
        except Exception as e:  # noqa: BLE001
            self._oom(e)
            raise
        return raw, Trial(seed, rng_seed, refs, ref_s, stochastic, scratch)

    def _oom(self, e: BaseException) -> None:
        if not out_of_memory(e):
            return
        if self.candidate_ran:
            raise Verdict(self.stage, ErrorKind.OOM, starved(e)) from None
        raise Verdict(self.stage, ErrorKind.INFRA, f"{DOES_NOT_FIT}: the task's reference alone ran out of device "
                      f"memory ({str(e).splitlines()[0][:200]})") from None

    # -- shared memory -----------------------------------------------------------------------------------------
    def layout(self, layout: Layout, raw: list, refs: list) -> tuple[list[dict], list[Slot]]:
        """Slots for one input set and its outputs in `layout`; the input arguments as the Runner sees them."""
        args: list[dict] = []
        for k, x in enumerate(raw):
            if hasattr(x, "shape") and hasattr(x, "dtype") and not isinstance(x, (bool, int, float)):
                args.append({"slot": layout.add(list(x.shape), dtype_name(x)).model_dump()})
            elif isinstance(x, (bool, int, float)) or x is None:
                args.append({"value": x})
            else:
                raise Verdict(self.stage, ErrorKind.INFRA, f"get_inputs() item {k} is a {type(x).__name__}: only "
                              "tensors, arrays and numbers can be handed to a candidate (fix the task)")
        outs = [layout.add(list(r.shape), dtype_name(r)) for r in refs]
        return args, outs

    def write(self, region: Region, args: list[dict], raw: list) -> None:
        """Copy an input set into its slots."""
        for a, x in zip(args, raw):
            if "slot" in a:
                region.tensor(Slot.model_validate(a["slot"])).copy_(x)

    @staticmethod
    def poison(region: Region, outs: list[Slot]) -> None:
        """Fill output slots with all bits set (a NaN no arithmetic makes), so an unwritten output fails."""
        import torch

        for s in outs:
            if s.nbytes:
                t = region.tensor(s)
                t.fill_(True) if s.dtype == "bool" else t.view(-1).view(torch.uint8).fill_(0xFF)

    def unchanged(self, region: Region, args: list[dict], seed: int) -> bool:
        """True when the shared inputs still hold the input set of `seed` (made again, compared in chunks)."""
        raw = self.inputs(seed)
        try:
            for a, x in zip(args, raw):
                if "slot" in a and not same_bytes(region.tensor(Slot.model_validate(a["slot"])), x):
                    return False
            return True
        finally:
            del raw

    def compare(self, region: Region, outs: list[Slot], refs: list):
        """(checks, first failure) of the output slots against the reference outputs."""
        return compare_outputs([region.tensor(s) for s in outs], refs, self.task.tolerance, chunk=COMPARE_CHUNK)

    @staticmethod
    def fingerprint(region: Region, outs: list[Slot]) -> tuple:
        """A cheap summary of outputs (to notice the same values returned for other inputs): the bytes' sum, taken
        COMPARE_CHUNK bytes at a time (an int64 copy of a whole 6 GiB output would need 48 GiB)."""
        import torch

        fp = []
        for s in outs:
            b = region.tensor(s).reshape(-1).view(torch.uint8) if s.nbytes else None
            total = 0
            if b is not None:  # summed on the device, one wait at the end (not one a chunk: 384 for 6 GiB)
                acc = torch.zeros((), dtype=torch.int64, device=b.device)
                for i in range(0, b.numel(), COMPARE_CHUNK):
                    acc += torch.sum(b[i:i + COMPARE_CHUNK], dtype=torch.int64)
                total = int(acc)
            fp.append((total, tuple(s.shape)))
        return tuple(fp)

    def close(self) -> None:
        self.ref.close()


def starved(e: BaseException, io_bytes: Optional[int] = None) -> str:
    """The verdict's message when the judge runs out of device memory while a candidate's process holds some: the
    problem fitted when the evaluation began, so the candidate took what the judge needed."""
    io = f" for {io_bytes / 2**30:.2f} GiB of inputs and outputs" if io_bytes else ""
    return (f"the judge ran out of device memory checking this candidate ({str(e).splitlines()[0][:160]}){io}, "
            "which fitted when the evaluation began: the candidate's process holds the memory the judge needs (free "
            "what forward allocates, and allocate no more than its outputs and temporaries need)")


def same_bytes(a, b, chunk: int = 1 << 28) -> bool:
    """Bitwise equality of two tensors of one shape and dtype, compared in chunks (no full-size temporaries)."""
    import torch

    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    x, y = a.reshape(-1), b.reshape(-1)
    if x.numel() == 0:
        return True
    x, y = x.view(torch.uint8), y.view(torch.uint8)
    for i in range(0, x.numel(), chunk):
        if not torch.equal(x[i:i + chunk], y[i:i + chunk]):
            return False
    return True


def dtype_name(t: Any) -> str:
    return str(t.dtype).replace("torch.", "")


def merge(worst: list[OutputCheck], found: list[OutputCheck]) -> list[OutputCheck]:
    """Keep the largest errors seen per output across trials."""
    if not worst:
        return [o.model_copy() for o in found]
    for w, f in zip(worst, found):
        w.max_abs_error = max(w.max_abs_error, f.max_abs_error)
        w.max_rel_error = max(w.max_rel_error, f.max_rel_error)
        w.ok = w.ok and f.ok
    return worst
