"""Malformed or partial run directories: one clear line, exit code 2, and no output file (not even a temp)."""

from __future__ import annotations

import shutil
import sqlite3

import pytest

import ksdk.export.runs as runs_mod
from ksdk.cli.main import main

from .runs import standard_run


def _break(kind: str, run):
    if kind == "no archive":
        (run / "archive.sqlite").unlink()
    elif kind == "no run.json":
        (run / "run.json").unlink()
    elif kind == "corrupt run.json":
        (run / "run.json").write_text('{"task_name": "t", ')
    elif kind == "not a database":
        for p in run.glob("archive.sqlite*"):
            p.unlink()
        (run / "archive.sqlite").write_bytes(b"this is not sqlite\n" * 100)
    elif kind == "not a ksdk archive":
        for p in run.glob("archive.sqlite*"):
            p.unlink()
        sqlite3.connect(run / "archive.sqlite").execute("CREATE TABLE other (x)").connection.close()
    elif kind == "corrupt row":  # found mid-stream, after the first run's records were written
        con = sqlite3.connect(run / "archive.sqlite")
        con.execute("UPDATE candidates SET candidate = '{\"source\": 1' "
                    "WHERE rowid = (SELECT MAX(rowid) FROM candidates)")
        con.commit()
        con.close()
    elif kind == "empty dir":
        shutil.rmtree(run)
        run.mkdir()


CASES = {
    "no archive": "no archive.sqlite",
    "no run.json": "not a ksdk run directory (no run.json)",
    "corrupt run.json": "unreadable run config",
    "not a database": "not an SQLite database",
    "not a ksdk archive": "not a ksdk run archive",
    "corrupt row": "corrupt candidate JSON",
    "empty dir": "not a ksdk run directory",
}


@pytest.mark.parametrize("kind", list(CASES))
@pytest.mark.parametrize("command", ["sft", "rl"])
def test_bad_run_dir_fails_cleanly(kind, command, tmp_path, capsys):
    good = standard_run(tmp_path / "good", "task_a")
    bad = standard_run(tmp_path / "bad", "task_b")
    _break(kind, bad)
    out = tmp_path / "out"
    out.mkdir()
    rc = main(["export", command, str(good), str(bad), "-o", str(out / "data.jsonl")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.count("\n") == 0 and CASES[kind] in err, err
    assert str(bad) in err
    assert list(out.iterdir()) == []


def test_locked_archive_is_named_as_locked(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(runs_mod, "BUSY_TIMEOUT_S", 0.05)
    run = standard_run(tmp_path / "r", "task_a")
    holder = sqlite3.connect(run / "archive.sqlite", isolation_level=None)
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("INSERT INTO meta VALUES ('lock', '1')")
    try:
        rc = main(["export", "sft", str(run), "-o", str(tmp_path / "d.jsonl")])
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "locked" in err and err.count("\n") == 0
    assert not list(tmp_path.glob("d*")) and not list(tmp_path.glob(".d*"))


def test_folder_of_runs_gets_a_hint(tmp_path, capsys):
    standard_run(tmp_path / "runs" / "a")
    rc = main(["export", "rl", str(tmp_path / "runs"), "-o", str(tmp_path / "d.jsonl")])
    err = capsys.readouterr().err
    assert rc == 2 and "holds 1 run directories" in err and "/runs/*" in err


def test_unfinished_run_is_exported_and_flagged(tmp_path):
    from .runs import RunBuilder, program

    b = RunBuilder(tmp_path / "r", finished=False)
    s = b.seed(program("s"))
    b.step(s, program("t"), "correct", 2.0)
    b.close()
    assert main(["export", "sft", str(tmp_path / "r"), "-o", str(tmp_path / "d.jsonl")]) == 0
    assert len((tmp_path / "d.jsonl").read_text().splitlines()) == 1
    assert "| no |" in (tmp_path / "d.card.md").read_text()


def test_bad_options_are_one_line(tmp_path, capsys):
    run = standard_run(tmp_path / "r")
    assert main(["export", "sft", str(run), "-o", str(tmp_path / "d.jsonl"), "--val-fraction", "1.5"]) == 2
    assert "--val-fraction" in capsys.readouterr().err
    assert main(["export", "sft", str(run), "-o", str(tmp_path / "d.x"), "--format", "csv"]) == 2
    assert "unknown format 'csv'" in capsys.readouterr().err
    assert main(["export", "rl", str(run), "-o", str(tmp_path / "nodir" / "d.jsonl")]) == 2
    assert "output directory does not exist" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


@pytest.mark.parametrize("command", ["sft", "rl"])
def test_out_that_is_a_directory_is_one_clear_line_and_leaves_no_temp_files(command, tmp_path, capsys):
    run = standard_run(tmp_path / "r", "task_a")
    out = tmp_path / "out"
    out.mkdir()
    rc = main(["export", command, str(run), "-o", str(out)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.count("\n") == 0 and "is a directory" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "r"]  # no stray .out.*.tmp beside it
    assert list(out.iterdir()) == []


def test_a_step_correct_only_in_the_interpreter_is_never_exported_as_a_verified_result():
    """Its outcome is 'interpreted', not 'correct': no SFT record (which needs a verified gain), and in RL no more than
    the correctness reward."""
    from ksdk.export.rl import RewardConfig, reward
    from ksdk.export.reader import Step
    from ksdk.models import DeviceInfo, EvalResult, Stage, Status

    r = EvalResult(status=Status.OK, stage=Stage.CORRECTNESS, device=DeviceInfo(name="interpreter on x86_64",
                                                                               kind="interpreter"))
    step = Step.__new__(Step)
    step.__dict__.update(child=type("C", (), {"result": r})(), error=None, parent=None)
    assert step.outcome == "interpreted"
    cfg = RewardConfig()
    assert reward(step, cfg) == cfg.base + cfg.compiled + cfg.correct
