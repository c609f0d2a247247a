"""The ring of input sets the judge's clock times over: n sets of fresh inputs (written anew each round, after the
candidate's process has prepared its calls) and, for each call, where its outputs go: slots the judge proposes, or
places the Runner chose in the ring's arena (judge-visible memory its allocator hands out, so that outputs are
written where the judge reads them, with no copy in the timed calls). The ring's size is bounded so that the
judge's and the candidate's memory together stay near three times one trial's inputs and outputs."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

from ksdk.evaluation.shared import Layout, Region, Slot, itemsize

RING_EXTRA_BYTES = 256 << 20  # what input sets beyond the first may take (the 3x(I+O) + 1 GiB memory bound)
ARENA_SLACK_BYTES = 64 << 20  # room in the arena beyond the calls' outputs (the allocator's rounding, small
# temporaries; larger ones go to the candidate's own memory)


@dataclass
class Ring:
    """The shared region, each call's input arguments and output slots, the arena (a uint8 slot), and the seeds
    of the inputs written last."""

    region: Region
    args: list[list[dict]]
    outs: list[list[Slot]]
    arena: Optional[Slot] = None
    seeds: list[int] = field(default_factory=list)
    proposed: list[list[Slot]] = field(default_factory=list)  # the judge's slots, where a Runner places none
    offsets: Optional[list[list[int]]] = None  # the places `outs` was last made from (checked)

    def __post_init__(self) -> None:
        self.proposed = self.proposed or self.outs

    def place(self, offsets: Optional[list[list[int]]]) -> None:
        """Where the Runner says its last calls put their outputs in the arena (None: the proposed slots), checked
        by `placed`; a Runner's places may change from batch to batch (the whole arena is poisoned before each)."""
        if self.arena is not None and offsets != self.offsets:  # the same places as last time were checked then
            self.outs = self.proposed if offsets is None else placed(self.arena, offsets, self.proposed)
            self.offsets = offsets

    @property
    def n(self) -> int:
        return len(self.args)

    def all_outputs(self) -> list[Slot]:
        return [s for outs in self.outs for s in outs]


def calls(set_bytes: int, est_ms: float, target_ms: float, max_calls: int, free: Optional[int],
          min_bytes: int = 0) -> int:
    """How many calls a batch makes: enough to last `target_ms` at `est_ms` a call and to span `min_bytes`, at most
    `max_calls`, and beyond the first input set only as many as RING_EXTRA_BYTES (and a quarter of free device
    memory) hold."""
    n = max(math.ceil(target_ms / max(est_ms, 1e-3)), math.ceil(min_bytes / max(set_bytes, 1)))
    n = max(1, min(max_calls, n))
    extra = RING_EXTRA_BYTES if free is None else min(RING_EXTRA_BYTES, free // 4)
    return max(1, min(n, 1 + extra // max(set_bytes, 1)))


def layout(n: int, one_set, specs: list[Slot], arena: bool, scratch: int = 0) -> tuple[
        Layout, list[list[dict]], list[list[Slot]], Optional[Slot]]:
    """Slots for n input sets, then the outputs: with `arena`, one uint8 slot holding the proposed output slots of
    every call, `scratch` bytes for a forward's temporaries (the reference's, measured: an eager forward allocates
    them from the same pool before its outputs, and outputs pushed past the arena's end would be copied in the timed
    calls) and ARENA_SLACK_BYTES for the allocator's rounding.
    `one_set(layout) -> args` lays out one input set; `specs` are one call's output slots (shapes and dtypes)."""
    lay = Layout("ring")
    args = [one_set(lay) for _ in range(n)]
    if not arena:
        outs = [[lay.add(list(s.shape), s.dtype) for s in specs] for _ in range(n)]
        return lay, args, outs, None
    start = lay.size
    outs = [[lay.add(list(s.shape), s.dtype) for s in specs] for _ in range(n)]
    size = lay.size - start + max(0, int(scratch)) + ARENA_SLACK_BYTES
    lay.size = start + size
    return lay, args, outs, Slot(region="ring", offset=start, shape=[size], dtype="uint8")


def placed(arena: Slot, offsets: list[list[int]], proposed: list[list[Slot]]) -> list[list[Slot]]:
    """The output slots a Runner reports it used in the arena (byte offsets), checked: one per output of every
    call, each aligned to its dtype, inside the arena, none overlapping another. ValueError names what is wrong."""
    if len(offsets) != len(proposed) or any(len(o) != len(p) for o, p in zip(offsets, proposed)):
        raise ValueError(f"placements for {len(offsets)} calls where the batch has {len(proposed)} with "
                         f"{len(proposed[0]) if proposed else 0} outputs each")
    out: list[list[Slot]] = []
    spans: list[tuple[int, int]] = []
    for offs, slots in zip(offsets, proposed):
        row = []
        for off, s in zip(offs, slots):
            if not isinstance(off, int) or isinstance(off, bool) or off < 0 or off % itemsize(s.dtype):
                raise ValueError(f"an output placed at {off!r}: not a byte offset aligned to its dtype {s.dtype}")
            if off + s.nbytes > arena.shape[0]:
                raise ValueError(f"an output of {s.nbytes} bytes placed at {off}, past the arena's end "
                                 f"({arena.shape[0]} bytes)")
            row.append(Slot(region=arena.region, offset=arena.offset + off, shape=list(s.shape), dtype=s.dtype))
            if s.nbytes:
                spans.append((off, off + s.nbytes))
        out.append(row)
    spans.sort()
    for (a0, a1), (b0, _b1) in zip(spans, spans[1:]):
        if b0 < a1:
            raise ValueError(f"two outputs placed over each other (bytes {a0}-{a1} and from {b0})")
    return out
