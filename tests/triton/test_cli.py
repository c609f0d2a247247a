"""`ksdk eval TASK CANDIDATE --backend triton_nvidia` on the CPU (interpreter): table, JSON and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

from ksdk_triton_nvidia.conformance import GOOD, TASK, WRONG


def _eval(tmp_path, candidate: str, *extra: str) -> subprocess.CompletedProcess:
    (tmp_path / "task.py").write_text(TASK)
    (tmp_path / "cand.py").write_text(candidate)
    cmd = [sys.executable, "-m", "ksdk.cli.main", "eval", str(tmp_path / "task.py"), str(tmp_path / "cand.py"),
           "--backend", "triton_nvidia", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path)


def test_eval_json_correct_candidate_exits_zero(tmp_path):
    p = _eval(tmp_path, GOOD, "--json")
    assert p.returncode == 0, p.stderr + p.stdout
    r = json.loads(p.stdout)
    assert r["status"] == "ok"
    if r["device"]["kind"] == "interpreter":
        assert r["stage"] == "correctness" and r["speedup"] is None and "interpreter" in r["performance_skipped"]
    else:
        assert r["stage"] == "performance" and r["speedup"] > 0


def test_eval_table_wrong_candidate_exits_nonzero(tmp_path):
    p = _eval(tmp_path, WRONG)
    assert p.returncode == 1, p.stderr + p.stdout
    assert "wrong_value" in p.stdout and "correctness" in p.stdout
