"""Where a Runner put a batch's outputs in the judge's arena, taken anew from every batch's reply and checked each
time. A Runner that had to change places between batches (the arena ran short, its outputs now copied into the
proposed slots) was checked at the old places: poison there, and a reward_hack verdict for an honest kernel. A
candidate gains nothing from the freedom: the whole arena is poisoned before every batch, and places that overlap or
leave the arena are a reward_hack."""

from types import SimpleNamespace

import pytest

from ksdk.evaluation import clock as clockmod
from ksdk.evaluation.clock import Clock, Floor
from ksdk.evaluation.ring import Ring
from ksdk.evaluation.shared import Slot
from ksdk.evaluation.verdict import Verdict
from ksdk.models import ErrorKind
from test_clock_baseline import FakeLink, IdleDevice

OUT = 1024  # bytes a call's one output takes (256 float32)


def ring(calls: int = 3) -> Ring:
    proposed = [[Slot(region="ring", offset=4096 + j * OUT, shape=[256], dtype="float32")] for j in range(calls)]
    arena = Slot(region="ring", offset=4096, shape=[calls * OUT + 8192], dtype="uint8")
    return Ring(region=None, args=[[] for _ in range(calls)], outs=proposed, arena=arena)


def test_places_reported_by_each_batch_are_where_the_judge_looks_and_none_means_the_proposed_slots():
    rg = ring()
    rg.place([[2 * OUT], [0], [4 * OUT]])
    assert [o[0].offset for o in rg.outs] == [4096 + 2 * OUT, 4096, 4096 + 4 * OUT]
    first = rg.outs
    rg.place([[2 * OUT], [0], [4 * OUT]])  # the same places again: the slots already checked
    assert rg.outs is first
    rg.place(None)  # the Runner gave up its arena: outputs copied into the slots the judge proposed
    assert [o[0].offset for o in rg.outs] == [4096 + j * OUT for j in range(3)]


@pytest.mark.parametrize("offsets, why", [
    ([[0], [OUT // 2], [4 * OUT]], "over each other"),
    ([[0], [OUT], [3 * OUT + 8192]], "past the arena's end"),
    ([[0], [OUT]], "placements for 2 calls"),
    ([[0], [OUT + 2], [4 * OUT]], "aligned"),
])
def test_places_that_break_the_rules_are_a_reward_hack_in_any_batch(offsets, why):
    with pytest.raises(Verdict) as v:
        clockmod.place(ring(), offsets)
    assert v.value.kind == ErrorKind.REWARD_HACK and why in v.value.message, v.value.message


def test_the_clock_looks_for_unwritten_outputs_where_this_batch_put_them(monkeypatch):
    looked = []
    rg = ring()
    link = FakeLink(placed=[[4 * OUT], [2 * OUT], [0]])
    monkeypatch.setattr(clockmod, "unwritten", lambda r, device: looked.append([o[0].offset for o in r.outs]))
    Clock(SimpleNamespace(target=IdleDevice(), link=link), rg, Floor(), Floor()).candidate()
    assert looked == [[4096 + 4 * OUT, 4096 + 2 * OUT, 4096]]
