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


def test_table_shows_every_timing_a_result_carries(capsys):
    from ksdk.cli.eval_cmd import render_result
    from ksdk.models import EvalResult, Stage, Status, TimingStats

    def st(ms: float) -> TimingStats:
        return TimingStats(median_ms=ms, iqr_ms=0.001, mean_ms=ms, std_ms=0.001, min_ms=ms, max_ms=ms, n=40)

    r = EvalResult(task="t", status=Status.OK, stage=Stage.PERFORMANCE, speedup=1.5, baseline="PyTorch eager",
                   candidate_timing=st(0.02), baseline_timing=st(0.03), extra_baselines={"torch.compile": st(0.025)},
                   cross_checks={"placement 1 (+28 KB):candidate": st(0.0212)})
    render_result(r)
    out = capsys.readouterr().out
    assert "baseline torch.compile" in out and "0.0250 ms" in out
    assert "placement 1 (+28 KB):candidate" in out and "0.0212 ms" in out
