"""Helpers of the bench tests: the suite (tests/bench/suite: small KernelBench-format problems with Triton and C seeds
beside them), `ksdk bench` run in or out of process, and readers of what it wrote."""

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from ksdk.cli.main import main

SUITE = Path(__file__).parent / "suite"
PROBLEMS = ["level1/1_relu", "level1/2_scale_shift", "level1/3_row_sum", "level2/1_add_relu", "level2/2_matmul_relu"]


def bench(*args: str) -> int:
    """`ksdk bench ARGS -q` in this process; its exit code."""
    return main(["bench", *args, "-q"])


def start_bench(*args: str, cwd: Path) -> subprocess.Popen:
    """`ksdk bench ARGS` as a child process; its progress lines come on stderr (not a terminal: one per problem)."""
    return subprocess.Popen([sys.executable, "-m", "ksdk", "bench", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ, KSDK_DEBUG="1"))


def summary(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())


def records(out: Path) -> dict[str, dict]:
    """Every stored problem record of a bench, by problem id."""
    return {r["id"]: r for r in (json.loads(f.read_text()) for f in (out / "problems").glob("*.json"))}


def verdicts(out: Path) -> dict[str, tuple]:
    return {pid: (r["verdict"], r["error_kind"]) for pid, r in records(out).items()}


def copy_seeds(dest: Path, ext: str) -> Path:
    """The suite's seeds of one language under their problems' names (DEST/levelN/STEM.EXT), the layout that
    --candidates and --seeds match."""
    for f in sorted(SUITE.glob(f"level*/*_seed{ext}")):
        target = dest / f.parent.name / (f.name[: -len(f"_seed{ext}")] + ext)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(f.read_text())
    return dest


def wait_until(condition, timeout: float = 120.0, every: float = 0.02):
    """Poll `condition` (state another process writes, e.g. a verdict in an archive) until it is truthy; its value.
    It waits for that state, not for a guessed delay."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout:g} s: {condition}")
        time.sleep(every)
    return value


def archive_results(run_dir: Path) -> list:
    """(candidate id, evaluated_at) of every verdict in a run's archive, read-only ([] while there is none yet)."""
    try:
        db = sqlite3.connect(f"file:{run_dir / 'archive.sqlite'}?mode=ro", uri=True)
    except sqlite3.OperationalError:
        return []
    try:
        return sorted(db.execute("SELECT candidate_id, evaluated_at FROM results"))
    except sqlite3.OperationalError:
        return []
    finally:
        db.close()
