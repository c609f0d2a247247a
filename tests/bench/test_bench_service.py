"""`ksdk bench --evaluator URL --evaluator URL`: problems spread over two real `ksdk serve --backend cpu_c`."""

import sys
from pathlib import Path

import pytest
from benchkit import SUITE, bench, records, verdicts

sys.path.insert(0, str(Path(__file__).parent.parent / "service"))
from service_proc import Service


@pytest.fixture
def two_services(tmp_path, monkeypatch):
    token = tmp_path / "token"  # one token for both, as an operator would share it
    token.write_text("bench-test-token\n")
    monkeypatch.setenv("KSDK_SERVICE_TOKEN_FILE", str(token))
    started = []
    try:
        for i in range(2):
            started.append(Service(tmp_path / "site", tmp_path / f"state{i}", tmp_path / f"ledger{i}",
                                   ["--workers", "1", "--token-file", str(token)], backend="cpu_c").start())
        yield started
    finally:
        for s in started:
            s.stop()


def test_problems_are_spread_over_every_service_given(two_services, c_candidates, tmp_path):
    a, b = two_services
    out = tmp_path / "out"
    assert bench(str(SUITE), "--candidates", str(c_candidates), "--evaluator", a.url, "--evaluator", b.url,
                 "--out", str(out)) == 0
    assert verdicts(out) == {
        "level1/1_relu": ("correct", None), "level1/2_scale_shift": ("correct", None),
        "level1/3_row_sum": ("incorrect", "wrong_value"), "level2/1_add_relu": ("correct", None),
        "level2/2_matmul_relu": ("incorrect", "compile_error")}
    rs = records(out)
    assert {r["where"] for r in rs.values()} == {a.url, b.url}  # each service took a problem first thing
    assert all(r["speedup"] > 0 for r in rs.values() if r["correct"])
