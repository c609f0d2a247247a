"""`ksdk evolve` as a user runs it: killed with SIGKILL and resumed, stopped with Ctrl-C, fed bad input."""

import json
import os
import signal
import sqlite3
import subprocess
import sys

from ksdk.cli.main import main


def start(*args, cwd):
    return subprocess.Popen([sys.executable, "-m", "ksdk", "evolve", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ, KSDK_DEBUG="1"))


def wait_for_line(proc, needle):
    """Read the run's progress lines (stderr, not a terminal) until one contains `needle`, or, for a needle
    'candidates N/M', says at least N candidates (a line is printed at each new best and every 10 candidates, so
    the count may skip N: the judge's measured speedups decide which candidate is a new best)."""
    import re

    seen = []
    want = re.fullmatch(r"candidates (\d+)/(\d+)", needle)
    for line in proc.stderr:
        seen.append(line)
        got = re.search(r"candidates (\d+)/(\d+)", line) if want else None
        if needle in line or (got and got.group(2) == want.group(2) and int(got.group(1)) >= int(want.group(1))):
            return seen
    raise AssertionError(f"the run ended without printing {needle!r}:\n{''.join(seen)}")


def results(run):
    db = sqlite3.connect(run / "archive.sqlite")
    try:
        return {cid: (res, t) for cid, res, t in db.execute("SELECT candidate_id, result, evaluated_at FROM results")}
    finally:
        db.close()


def test_sigkill_mid_run_then_resume_loses_no_evaluation_and_duplicates_nothing(toy_task, tmp_path):
    (tmp_path / "toy_task_seed.toy").write_text("X = 1\nSLEEP = 0.25\n")
    run = tmp_path / "run"
    proc = start(str(toy_task), "--backend", "toy_speed", "--mutator", "toy_step", "--max-candidates", "8",
                 "--mutation-concurrency", "3", "--out", str(run), cwd=tmp_path)
    wait_for_line(proc, "candidates 3/8")
    proc.send_signal(signal.SIGKILL)  # no chance to clean up
    proc.wait(timeout=30)
    before = results(run)
    assert len(before) >= 3
    json.loads((run / "run.json").read_text())  # still readable

    out = subprocess.run([sys.executable, "-m", "ksdk", "evolve", "--resume", str(run)], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    after = results(run)
    assert len(after) == 8
    for cid, row in before.items():  # every verdict from before the kill is kept as it was, not redone
        assert after[cid] == row
    db = sqlite3.connect(run / "archive.sqlite")
    hashes = [h for (h,) in db.execute("SELECT source_hash FROM candidates")]
    assert len(hashes) == len(set(hashes))
    assert db.execute("SELECT count(*) FROM candidates WHERE id NOT IN (SELECT candidate_id FROM results)"
                      ).fetchone()[0] == 0
    xs = sorted(json.loads(r)["speedup"] for r, _ in after.values())
    assert xs == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]  # the step mutator's chain, each X once
    cfg = json.loads((run / "run.json").read_text())
    assert cfg["finished"] and len(cfg["resumed_at"]) == 1 and (run / "report.html").is_file()


def test_ctrl_c_stops_cleanly_saves_and_exits_130(toy_task, tmp_path):
    (tmp_path / "toy_task_seed.toy").write_text("X = 1\nSLEEP = 0.3\n")
    run = tmp_path / "run"
    proc = start(str(toy_task), "--backend", "toy_speed", "--mutator", "toy_step", "--max-candidates", "100",
                 "--out", str(run), cwd=tmp_path)
    wait_for_line(proc, "candidates 2/100")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "state saved" in err and f"--resume {run}" in err
    cfg = json.loads((run / "run.json").read_text())
    assert cfg["finished"] is False and cfg["stop_reason"] == "interrupted"
    assert (run / "report.html").is_file() and (run / "best.toy").is_file()
    assert len(results(run)) >= 2


def cli(*args):
    return main(list(args))


def new_run(toy_task, run, candidates: int, mutator: str = "toy_step") -> None:
    """A run of the toy task in `run`, as `ksdk evolve` writes it, made in this process (the toy programs evaluated
    in-process: these tests are about the CLI around a run, and `ksdk evolve` through worker processes is
    test_sigkill... and test_ctrl_c...'s); later CLI calls resume it on the toy_speed backend's real workers."""
    from ksdk.evolution.api import evolve
    from ksdk.mutators.params import ParamMutator
    from toy_plugins import InProcessToyEvaluator, StepMutator

    summary = evolve(toy_task, backend=InProcessToyEvaluator(), out=run, max_candidates=candidates,
                     mutator=StepMutator() if mutator == "toy_step" else ParamMutator(seed=0), progress=False,
                     handle_signals=False, retime_rounds=0)
    assert summary.error is None and summary.evaluated == candidates


def test_bad_input_is_one_clear_line_and_stored_runs_are_untouched(toy_task, tmp_path, capsys):
    run = tmp_path / "run"
    new_run(toy_task, run, 2)
    archive = (run / "archive.sqlite").read_bytes()
    capsys.readouterr()

    def err_of(*args):
        code = cli(*args)
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1, err
        return err

    assert "already holds a run" in err_of("evolve", str(toy_task), "--backend", "toy_speed", "--mutator",
                                           "toy_step", "--out", str(run))
    assert (run / "archive.sqlite").read_bytes() == archive
    assert "not a ksdk run directory" in err_of("evolve", "--resume", str(tmp_path))
    assert "run directory not found" in err_of("evolve", "--resume", str(tmp_path / "nope"))
    assert "unknown backend 'nope'" in err_of("evolve", str(toy_task), "--backend", "nope", "--mutator", "toy_step",
                                              "--out", str(tmp_path / "r2"))
    assert "unknown mutator 'nope'" in err_of("evolve", str(toy_task), "--backend", "toy_speed", "--mutator",
                                              "nope", "--out", str(tmp_path / "r3"))
    assert "--model" in err_of("evolve", str(toy_task), "--backend", "toy_speed", "--mutator", "llm",
                               "--out", str(tmp_path / "r4"))
    (tmp_path / "toy_task_seed.toy").unlink()
    e = err_of("evolve", str(toy_task), "--backend", "toy_speed", "--mutator", "toy_step", "--out",
               str(tmp_path / "r5"))
    assert "--seed FILE" in e and "toy_task_seed" in e
    assert not any((tmp_path / f"r{i}").exists() for i in range(2, 6))  # nothing half-made on bad input
    assert "not a ksdk run directory" in err_of("show", str(tmp_path))
    assert "--max-candidates must be positive" in err_of("evolve", "--resume", str(run), "--max-candidates", "0")


def test_resume_with_a_raised_budget_continues_and_show_reports_it(toy_task, tmp_path, capsys):
    run = tmp_path / "run"
    new_run(toy_task, run, 3)
    assert cli("evolve", "--resume", str(run), "--max-candidates", "5", "--retime-rounds", "0", "-q") == 0
    capsys.readouterr()
    assert cli("show", str(run), "--json", "--top", "2") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["evaluated"] == 5 and data["best"]["speedup"] == 5.0 and len(data["top"]) == 2
    assert [r["speedup"] for r in data["lineage"]] == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert cli("show", str(run)) == 0
    table = capsys.readouterr().out
    assert "5.000x" in table and "lineage of the best" in table
    assert "ranked by speedup over the baseline: re-timed candidates (median" in " ".join(table.split())


def test_resuming_a_run_that_stopped_at_its_budget_says_which_budget_to_raise(toy_task, tmp_path, capsys):
    run = tmp_path / "run"
    new_run(toy_task, run, 3)
    capsys.readouterr()
    assert cli("evolve", "--resume", str(run)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "stopped at its budget: max candidates (3) evaluated" in err[0]
    assert err[0].endswith(f"`ksdk evolve --resume {run} --max-candidates 6`")
    assert cli("evolve", "--resume", str(run), "--max-candidates", "6", "--retime-rounds", "0", "-q") == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("done (max candidates (6) evaluated): 6 candidates")
    assert all(line.startswith(("  beside it: ", "warning: ")) for line in err[1:])  # the summary's own lines


def test_show_prints_names_and_reasons_as_they_are(toy_task, tmp_path, capsys):
    odd = tmp_path / "odd[x]_task.py"  # square brackets would be rich markup if not escaped
    odd.write_text(toy_task.read_text())
    (tmp_path / "odd[x]_task_seed.toy").write_text("X = 1\nSLEEP = 0\n")
    run = tmp_path / "run"
    new_run(odd, run, 2)
    capsys.readouterr()
    assert cli("show", str(run)) == 0
    assert "odd[x]_task on toy_speed" in capsys.readouterr().out


def test_resume_refuses_settings_it_would_ignore(toy_task, tmp_path, capsys):
    run = tmp_path / "run"
    new_run(toy_task, run, 2)
    before = (run / "run.json").read_text()
    capsys.readouterr()
    assert cli("evolve", "--resume", str(run), "--workers", "4", "--mutator", "params", "-q") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--mutator, --workers cannot change on --resume" in err[0]
    assert (run / "run.json").read_text() == before
    assert cli("evolve", "--resume", str(run), "--no-race", "-q") == 2  # the race is a setting of the run too
    assert "--no-race cannot change on --resume" in capsys.readouterr().err
    assert (run / "run.json").read_text() == before


def test_resumed_parameter_search_goes_on_without_re_proposing_what_it_evaluated(toy_task, tmp_path):
    """The params mutator learns the archive when a run resumes: no configuration is proposed twice."""
    (tmp_path / "toy_task_seed.toy").write_text("X = 1  # ksdk:tune [1, 2, 3, 4, 5, 6, 7, 8]\n"
                                                "Y = 0  # ksdk:tune [0, 1, 2, 3]\nSLEEP = 0\n")
    run = tmp_path / "run"
    new_run(toy_task, run, 10, "params")
    import asyncio

    from ksdk.evolution.api import resume_async
    from toy_plugins import InProcessToyEvaluator

    # a fresh params mutator from the registry, as `ksdk evolve --resume` makes it (in-process evaluations)
    summary = asyncio.run(resume_async(run, max_candidates=20, evaluator=InProcessToyEvaluator(), progress=False,
                                       handle_signals=False, retime_rounds=0))
    assert summary.error is None
    db = sqlite3.connect(run / "archive.sqlite")
    try:
        dups = db.execute("SELECT count(*) FROM attempts WHERE error LIKE 'duplicate of%'").fetchone()[0]
        evaluated = db.execute("SELECT count(*) FROM results").fetchone()[0]
    finally:
        db.close()
    assert (dups, evaluated) == (0, 20)
