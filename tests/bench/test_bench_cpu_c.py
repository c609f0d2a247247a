"""`ksdk bench` with the cpu_c backend (C candidates, compiled and timed on this CPU) in its three modes, including
an --evolve bench killed with SIGKILL and continued."""

import asyncio
import json
import signal

import pytest
from benchkit import (
    PROBLEMS,
    SUITE,
    archive_results,
    bench,
    copy_seeds,
    records,
    start_bench,
    summary,
    verdicts,
    wait_until,
)

from ksdk.bench import bench_async
from ksdk.evaluation import make_evaluator
from ksdk.models import Candidate
from ksdk.tasks import load_task

CPU = ("--backend", "cpu_c")
LEVEL1 = [p for p in PROBLEMS if p.startswith("level1/")]


def test_self_check_needs_a_python_backend_and_says_so(tmp_path, capsys):
    out = tmp_path / "out"
    assert bench(str(SUITE), "--self-check", *CPU, "--out", str(out)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs a backend whose candidates are Python" in err
    assert "backend cpu_c takes c candidates" in err and "triton_nvidia" in err
    assert not out.exists()


def test_candidates_are_checked_and_timed(tmp_path, c_candidates):
    out = tmp_path / "out"
    assert bench(str(SUITE), "--candidates", str(c_candidates), *CPU, "--out", str(out)) == 0
    assert verdicts(out) == {
        "level1/1_relu": ("correct", None), "level1/2_scale_shift": ("correct", None),
        "level1/3_row_sum": ("incorrect", "wrong_value"), "level2/1_add_relu": ("correct", None),
        "level2/2_matmul_relu": ("incorrect", "compile_error")}
    rs = records(out)
    correct = [r for r in rs.values() if r["correct"]]
    assert all(r["speedup"] > 0 and r["candidate_ms"] > 0 and r["baseline_ms"] > 0 for r in correct)
    assert all("PyTorch eager" in r["baseline"] for r in correct)
    m = summary(out)["metrics"]["all"]
    assert (m["problems"], m["correct"], m["timed"]) == (5, 3, 3)
    speedups = [r["speedup"] for r in correct]
    for p in ("1", "1.5", "2"):
        assert m["fast_p"][p] == pytest.approx(sum(s >= float(p) for s in speedups) / 5)
    assert m["amsr_failed_as_0"] == pytest.approx(sum(speedups) / 5)
    assert m["amsr_failed_as_1"] == pytest.approx((sum(speedups) + 2) / 5)
    md = (out / "summary.md").read_text()
    assert "| level2/2_matmul_relu | incorrect: compile_error at compile |" in md


def evolve_until_the_second_problem_has_a_verdict(tmp_path):
    """Start an --evolve bench of the suite (seeds from a --seeds folder) and return once the first problem is stored
    and the second one's run holds a verdict: a moment inside the second problem's run."""
    seeds = copy_seeds(tmp_path / "seeds", ".c")
    slow = seeds / "level1" / "2_scale_shift.c"  # a slower seed: this problem's run is long enough to be cut short
    spin = "const long n = d0 * d1;\n    for (volatile long k = 0; k < 20000000; k++) {}"
    slow.write_text(slow.read_text().replace("const long n = d0 * d1;", spin))
    out = tmp_path / "out"
    # level 1's three problems: one done, one cut short, one not begun when the bench is stopped; two candidates
    # each (seed and child); no re-timing (a bench's re-timed records: tests/evolution/test_verified_best.py)
    args = [str(SUITE), "--evolve", *CPU, "--mutator", "params", "--max-candidates", "2", "--seeds", str(seeds),
            "--level", "1", "--retime-rounds", "0", "--out", str(out)]
    proc = start_bench(*args, cwd=tmp_path)
    for line in proc.stderr:
        if "bench [1/3] level1/1_relu: correct" in line:  # stored; the run of level1/2_scale_shift starts next
            break
    wait_until(lambda: archive_results(out / "runs" / "level1" / "2_scale_shift"))
    return proc, out, args, seeds


def test_an_evolve_bench_killed_mid_run_continues_where_it_stopped(tmp_path):
    proc, out, args, seeds = evolve_until_the_second_problem_has_a_verdict(tmp_path)
    cut_run = out / "runs" / "level1" / "2_scale_shift"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    before = records(out)
    assert sorted(before) == ["level1/1_relu"] and summary(out)["finished"] is False
    kept = {pid: archive_results(out / "runs" / pid) for pid in ("level1/1_relu", "level1/2_scale_shift")}

    assert bench(*args) == 0
    after = records(out)
    assert sorted(after) == LEVEL1
    assert after["level1/1_relu"] == before["level1/1_relu"]  # finished before the kill: not redone
    assert archive_results(out / "runs" / "level1" / "1_relu") == kept["level1/1_relu"]
    cut = json.loads((cut_run / "run.json").read_text())  # cut short by the kill: resumed, not restarted
    assert len(cut["resumed_at"]) == 1 and cut["finished"]
    assert set(kept["level1/2_scale_shift"]) <= set(archive_results(cut_run))
    for pid, r in after.items():
        assert r["verdict"] == "correct" and r["evaluated"] <= 2, (pid, r)
        assert r["candidate"] == str(out / "runs" / pid / "best.c")
        assert json.loads((out / "runs" / pid / "run.json").read_text())["seed_path"] == str(seeds / (pid + ".c"))
    assert summary(out)["finished"] and summary(out)["metrics"]["all"]["correct"] == 3


def test_ctrl_c_stops_the_bench_saves_the_run_in_flight_and_resume_finishes_it(tmp_path):
    proc, out, _, _ = evolve_until_the_second_problem_has_a_verdict(tmp_path)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert f"Continue with: ksdk bench --resume {out}" in err
    s = summary(out)
    assert s["interrupted"] and not s["finished"] and sorted(records(out)) == ["level1/1_relu"]
    assert s["pending"] == LEVEL1[1:]
    run = json.loads((out / "runs" / "level1" / "2_scale_shift" / "run.json").read_text())
    assert (run["finished"], run["stop_reason"]) == (False, "interrupted")
    assert bench("--resume", str(out)) == 0
    assert sorted(records(out)) == LEVEL1 and summary(out)["finished"]


def test_continuing_a_bench_with_other_settings_is_refused(tmp_path, c_candidates, capsys):
    out = tmp_path / "out"
    assert bench(str(SUITE), "--candidates", str(c_candidates), *CPU, "--level", "2", "--out", str(out)) == 0
    capsys.readouterr()
    assert bench(str(SUITE), "--candidates", str(c_candidates), *CPU, "--level", "1", "--out", str(out)) == 2
    err = capsys.readouterr().err
    assert "holds a bench with other settings (levels differ)" in err and f"--resume {out}" in err
    assert sorted(records(out)) == ["level2/1_add_relu", "level2/2_matmul_relu"]
    assert bench("--resume", str(out)) == 0  # its own settings: nothing left to do


def test_the_python_api_runs_on_an_evaluator_the_caller_owns(tmp_path, c_candidates):
    async def go():
        ev = make_evaluator("cpu_c", workers=1)
        try:
            s = await bench_async(SUITE, mode="candidates", candidates=c_candidates, evaluators=[ev], levels=[2],
                                  out=tmp_path / "out", progress=False)
            task = load_task(SUITE / "level1" / "1_relu.py")  # not in the bench: a fresh evaluation
            again = await ev.evaluate(task, Candidate(source=(c_candidates / "level1" / "1_relu.c").read_text(),
                                                      language="c"))
            return s, again
        finally:
            await ev.close()

    s, again = asyncio.run(go())
    assert [(r.id, r.verdict, r.where) for r in s.records] == [
        ("level2/1_add_relu", "correct", "LocalEvaluator 0"), ("level2/2_matmul_relu", "incorrect", "LocalEvaluator 0")]
    assert s.metrics["all"].correct == 1 and s.config.backend == "cpu_c"
    assert again.correct  # the bench left the caller's evaluator open
