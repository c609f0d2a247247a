"""SqliteArchive keeps everything across reopen; the selection policy balances the top, diversity and FIX mode."""

import random
import sqlite3

import pytest

from ksdk.archives.selection import SelectionConfig, Selector, closeness, describe
from ksdk.archives.sqlite import SqliteArchive
from ksdk.errors import RunDirError
from ksdk.interfaces.mutator import Scored
from ksdk.languages import Language
from ksdk_cuda_nvidia.backend import CudaNvidiaBackend
from ksdk_triton_nvidia.backend import TRITON
from ksdk.models import (Candidate, ErrorKind, EvalResult, KernelMeta, Mutation, OutputCheck, Stage, Status)


def ok(speedup, kernels=()):
    return EvalResult(stage=Stage.PERFORMANCE, status=Status.OK, speedup=speedup, kernels=list(kernels))


def bad(stage, kind, rel_error=None):
    r = EvalResult().fail(stage, kind, "x")
    if rel_error is not None:
        r.outputs = [OutputCheck(index=0, max_rel_error=rel_error, ok=False)]
    return r


def cand(src, parent=None, island=0):
    return Candidate(source=src, language="c", parent_ids=[parent] if parent else [], island=island)


def test_everything_survives_reopen_and_pending_is_what_has_no_verdict(tmp_path):
    path = tmp_path / "archive.sqlite"
    a = SqliteArchive(path)
    seed = cand("int x = 1;")
    a.add(seed, ok(1.0))
    child = cand("int x = 2;", seed.id)
    m = Mutation(mutator="llm", model="m", prompt="p", reply="r", cost_usd=0.25, notes=["edit 2 did not apply"])
    a.propose(child, seed.id, m, {"parent_id": seed.id})
    a.propose(None, seed.id, Mutation(mutator="llm", cost_usd=0.5), {}, error="malformed reply")
    assert [c.id for c in a.pending()] == [child.id]
    a.close()

    b = SqliteArchive(path)
    assert [c.id for c in b.pending()] == [child.id]
    assert b.get(seed.id).result.speedup == 1.0
    assert b.get(child.id).candidate.parent_ids == [seed.id]
    assert b.cost_usd == pytest.approx(0.75) and b.attempt_count == 2 and b.failed_attempts == 1
    attempts = b.attempts()
    assert attempts[0]["mutation"]["reply"] == "r" and attempts[0]["candidate_id"] == child.id
    assert attempts[1]["error"] == "malformed reply" and attempts[1]["candidate_id"] is None
    # the last attempt for a parent is what the next prompt hears about
    assert b.last_notes[seed.id] == []
    b.add(child, ok(2.0))
    assert b.pending() == [] and b.best(1)[0].candidate.id == child.id
    assert [e.candidate.id for e in b.lineage(child.id)] == [seed.id, child.id]
    b.close()
    # the schema is the documented one, readable without ksdk
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("SELECT count(*) FROM results WHERE correct=1").fetchone()[0] == 2
    assert {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")} >= {
        "candidates", "results", "attempts", "meta"}


def test_duplicates_found_by_source_normalised_in_the_archives_language(tmp_path):
    a = SqliteArchive(tmp_path / "a.sqlite", language=Language(name="c", line_comments=("//",)))
    c = cand("#define T 32\nint f() { return T; }  \n")
    a.add(c, None)
    assert a.find_duplicate(cand("// comment\n#define T 32\n\nint f() { return T; }")).candidate.id == c.id
    assert a.find_duplicate(cand("#define T 64\nint f() { return T; }")) is None
    a.close()
    # reopened, the archive knows its programs again (by the same language's rules)
    b = SqliteArchive(tmp_path / "a.sqlite", language=Language(name="c", line_comments=("//",)))
    assert b.find_duplicate(cand("#define T 32\n// tiles\nint f() { return T; }")).candidate.id == c.id
    b.close()


def test_a_non_archive_file_is_a_clear_error(tmp_path):
    junk = tmp_path / "archive.sqlite"
    junk.write_text("not a database at all" * 100)
    with pytest.raises(RunDirError, match="not a usable ksdk archive"):
        SqliteArchive(junk)
    with pytest.raises(RunDirError, match="not a ksdk run directory"):
        SqliteArchive(tmp_path / "missing.sqlite", must_exist=True)


def scored(src, result, island=0, parent=None):
    return Scored(candidate=cand(src, parent, island), result=result)


def test_fix_mode_draws_parents_from_the_closest_to_correct():
    sel = Selector(SelectionConfig(islands=1, fix_pool=2))
    far = scored("a", bad(Stage.LOAD, ErrorKind.SYNTAX))
    mid = scored("b", bad(Stage.COMPILE, ErrorKind.COMPILE))
    near = scored("c", bad(Stage.CORRECTNESS, ErrorKind.VALUE, rel_error=0.5))
    nearer = scored("d", bad(Stage.CORRECTNESS, ErrorKind.VALUE, rel_error=0.01))
    for e in (far, mid, near, nearer):
        sel.observe(e)
    assert closeness(nearer.result) > closeness(near.result) > closeness(mid.result) > closeness(far.result)
    picks = {sel.select(random.Random(i)).parent.candidate.id for i in range(40)}
    assert picks == {near.candidate.id, nearer.candidate.id}
    pick = sel.select(random.Random(0))
    assert pick.mode == "fix" and pick.parent.candidate.id not in {i.candidate.id for i in pick.inspirations}
    # once something is correct, FIX mode ends
    sel.observe(scored("e", ok(0.5)))
    assert sel.select(random.Random(0)).mode in ("exploit", "explore")


def test_exploitation_prefers_top_performers_and_exploration_reaches_other_cells():
    cfg = SelectionConfig(islands=1, exploitation=1.0, elite_size=3)
    sel = Selector(cfg)
    entries = [scored(f"X = {i}\n" + "\n" * 2 ** (i + 1), ok(float(i))) for i in range(1, 9)]  # 8 length cells
    for e in entries:
        sel.observe(e)
    rng = random.Random(1)
    exploit = [sel.select(rng).parent.result.speedup for _ in range(200)]
    assert set(exploit) <= {6.0, 7.0, 8.0} and exploit.count(8.0) > exploit.count(6.0)
    sel.config = cfg.model_copy(update={"exploitation": 0.0})
    explore = {sel.select(rng).parent.result.speedup for _ in range(300)}
    assert len(explore) == 8  # every MAP-Elites cell's elite gets picked
    insp = sel.select(rng, n_inspirations=3).inspirations
    assert insp[0].result.speedup == 8.0 and len(insp) == 3  # the global best is always shown


def test_islands_keep_their_own_members_until_ring_migration():
    sel = Selector(SelectionConfig(islands=3, migration_interval=6, migration_size=1, exploitation=1.0,
                                   elite_size=1))
    for island, speed in [(0, 5.0), (1, 2.0), (2, 3.0), (0, 1.0), (1, 1.5)]:
        sel.observe(scored(f"v{island}{speed}", ok(speed), island=island))
    rng = random.Random(0)
    before = [sel.select(rng) for _ in range(3)]
    assert [(p.island, p.parent.result.speedup) for p in before] == [(0, 5.0), (1, 2.0), (2, 3.0)]
    sel.observe(scored("v26", ok(0.5), island=2))  # 6th verdict: migration along the ring 0->1->2->0
    after = [sel.select(rng) for _ in range(3)]
    assert [(p.island, p.parent.result.speedup) for p in after] == [(0, 5.0), (1, 5.0), (2, 3.0)]


def test_descriptors_use_compiler_facts_and_source_facts():
    triton = scored("@triton.jit\ndef k():\n    tl.dot(a, b)\nBLOCK = 64  # ksdk:tune [32, 64]\n",
                    ok(1.0, [KernelMeta(name="k", registers=90, shared_mem_bytes=32768, num_warps=4, num_stages=3)]))
    d = dict(zip(SelectionConfig().descriptors, describe(triton, SelectionConfig().descriptors, TRITON)))
    assert d["kernels"] == 1 and d["matmul"] is True and d["num_warps"] == 4 and d["num_stages"] == 3
    assert d["registers"] == 2 and d["shared_mem"] == 2 and d["tunables"] == (("BLOCK", "64"),)
    c = scored("#define TILE 32 // ksdk:tune [8, 32]\n__global__ void k() {}\n", ok(1.0))
    cuda = CudaNvidiaBackend.language
    dc = dict(zip(SelectionConfig().descriptors, describe(c, SelectionConfig().descriptors, cuda)))
    assert dc["tunables"] == (("TILE", "32"),) and dc["kernels"] == 1 and dc["registers"] is None
    # what a kernel is, the language says: one that declares nothing has none, and a run from before says tl_dot
    assert describe(triton, ["kernels", "matmul"]) == (0, False)
    assert SelectionConfig(descriptors=["tl_dot", "length"]).descriptors == ["matmul", "length"]


def test_an_unknown_descriptor_is_refused_when_the_selection_is_configured():
    import pydantic
    import pytest

    from ksdk.archives.selection import SelectionConfig

    with pytest.raises(pydantic.ValidationError, match="unknown descriptor 'warps'"):
        SelectionConfig(descriptors=["kernels", "warps"])


def test_a_damaged_row_is_a_run_dir_error_naming_it(tmp_path):
    import sqlite3

    path = tmp_path / "archive.sqlite"
    a = SqliteArchive(path)
    c = cand("X = 1\n")
    a.add(c, None)
    a.close()
    db = sqlite3.connect(path)
    db.execute("UPDATE candidates SET candidate = '{\"source\": 1' WHERE id = ?", (c.id,))
    db.commit()
    db.close()
    with pytest.raises(RunDirError, match=f"damaged.*candidate {c.id}"):
        SqliteArchive(path)
