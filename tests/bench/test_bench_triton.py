"""`ksdk bench` with the triton_nvidia backend in Triton's interpreter (no GPU here: correct in an interpreter, never
timed, never counted as a verified result), in its three modes, and `--compare` over the results."""

import json
import textwrap

import pytest
from benchkit import PROBLEMS, SUITE, archive_results, bench, records, summary, verdicts

TRITON = ("--backend", "triton_nvidia")
INTERP = "correct in an interpreter"


@pytest.fixture(scope="module")
def self_check(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "self_check"
    assert bench(str(SUITE), "--self-check", *TRITON, "--out", str(out), "--label", "reference") == 0
    return out


@pytest.fixture(scope="module")
def given(tmp_path_factory, triton_candidates):
    out = tmp_path_factory.mktemp("bench") / "candidates"
    assert bench(str(SUITE), "--candidates", str(triton_candidates), *TRITON, "--out", str(out)) == 0
    return out


def test_self_check_every_reference_is_correct_in_the_interpreter_and_counted_apart(self_check):
    assert verdicts(self_check) == {p: (INTERP, None) for p in PROBLEMS}
    s = summary(self_check)
    assert s["finished"] and s["flags"] == [] and s["pending"] == []
    m = s["metrics"]["all"]
    assert (m["problems"], m["correct"], m["timed"], m["interpreted"]) == (0, 0, 0, 5)
    assert s["metrics"]["level2"]["interpreted"] == 2
    assert any("correct in an interpreter only (Triton interpreter" in n for n in s["notes"])
    md = (self_check / "summary.md").read_text()
    assert f"| level1/3_row_sum | {INTERP} | untimed |" in md and "correct in an interpreter only" in md
    assert (self_check / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_reference_that_disagrees_with_itself_is_flagged_and_fails_the_command(tmp_path, capsys):
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "1_relu.py").write_text((SUITE / "level1" / "1_relu.py").read_text())
    (suite / "2_counter.py").write_text(textwrap.dedent("""
        import torch
        import torch.nn as nn

        import os

        class Model(nn.Module):
            def forward(self, x):  # not a function of its input: each process draws its own factor
                return x * (1 + int.from_bytes(os.urandom(1), "little") % 5)

        def get_inputs():
            return [torch.randn(4, 8)]

        def get_init_inputs():
            return []
    """))
    assert bench(str(suite), "--self-check", *TRITON, "--out", str(tmp_path / "out")) == 1
    rs = records(tmp_path / "out")
    assert (rs["1_relu"]["verdict"], rs["2_counter"]["verdict"]) == (INTERP, "incorrect")
    assert summary(tmp_path / "out")["flags"] == [
        f"2_counter: the reference failed its own check: incorrect ({rs['2_counter']['error_kind']})"]


def test_candidates_are_matched_to_problems_by_file_name(given):
    assert verdicts(given) == {
        "level1/1_relu": (INTERP, None), "level1/2_scale_shift": (INTERP, None),
        "level1/3_row_sum": ("incorrect", "wrong_value"), "level2/1_add_relu": (INTERP, None),
        "level2/2_matmul_relu": ("no candidate", None)}
    rs = records(given)
    assert rs["level2/2_matmul_relu"]["message"].startswith("no 2_matmul_relu.py in")
    assert rs["level1/1_relu"]["candidate"].endswith("level1/1_relu.py")
    m = summary(given)["metrics"]
    assert (m["all"]["problems"], m["all"]["correct"], m["all"]["interpreted"]) == (2, 0, 3)
    assert m["level1"]["interpreted"] == 2 and m["level2"]["interpreted"] == 1


def test_evolve_with_the_seeds_beside_the_tasks_spread_over_two_local_workers(tmp_path):
    out = tmp_path / "evolve"
    args = (str(SUITE), "--evolve", *TRITON, "--mutator", "params", "--max-candidates", "2", "--devices", "0,0",
            "--level", "1", "--out", str(out))  # three problems: both lanes get one
    assert bench(*args) == 0
    rs = records(out)
    level1 = [p for p in PROBLEMS if p.startswith("level1/")]
    assert sorted(rs) == level1
    for pid, r in rs.items():
        assert r["verdict"] == INTERP and r["evaluated"] == 2, (pid, r)
        run = json.loads((out / "runs" / pid / "run.json").read_text())
        assert run["finished"] and run["seed_path"] == str(SUITE / (pid + "_seed.py"))
    assert {r["where"] for r in rs.values()} == {"Triton interpreter on the CPU #1", "Triton interpreter on the CPU #2"}

    # Run again: the bench is complete, so nothing is evaluated again.
    before = {pid: archive_results(out / "runs" / pid) for pid in level1}
    assert bench(*args) == 0
    assert records(out) == rs
    assert {pid: archive_results(out / "runs" / pid) for pid in level1} == before



def test_compare_puts_benches_side_by_side(self_check, given, capsys):
    capsys.readouterr()
    assert bench("--compare", str(self_check), str(given), "--json") == 0
    table = json.loads(capsys.readouterr().out)
    assert table["columns"] == ["reference", "candidates"]  # --label, else the folder's name
    assert table["rows"]["all correct"] == ["0 (0%)", "0 (0%)"]  # correct in the interpreter is never counted
    assert table["rows"]["level1/3_row_sum"] == [INTERP, "incorrect: wrong_value at correctness"]
    assert table["rows"]["level2/2_matmul_relu"] == [INTERP, "no candidate"]
    assert table["rows"]["settings"] == ["self-check on triton_nvidia", "candidates on triton_nvidia"]
    assert bench("--compare", str(self_check), str(given)) == 0
    assert "level1 fast_1.5" in capsys.readouterr().out
