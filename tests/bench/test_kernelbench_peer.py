"""The CPU parts of benchmarks/kernelbench_peer.py (KernelBench's evaluator beside ksdk): which pairs it builds, how
it reads KernelBench's result, why verdicts differ, the table and summary, the stand-ins for KernelBench's LLM-client
imports, and its refusal without a GPU."""

import importlib.util
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("kernelbench_peer", ROOT / "benchmarks" / "kernelbench_peer.py")
peer = importlib.util.module_from_spec(spec)
sys.modules["kernelbench_peer"] = peer  # dataclasses look their module up
spec.loader.exec_module(peer)

REF = "import torch\nclass Model(torch.nn.Module):\n    def forward(self, x):\n        return x\n" \
      "def get_inputs():\n    return [torch.rand(4)]\ndef get_init_inputs():\n    return []\n"


@pytest.fixture
def levels(tmp_path):
    """KernelBench's level folders with the problems the pairs name (all the same small reference)."""
    names = [p.stem for p in (ROOT / "benchmarks" / "kernelbench" / "level1").glob("*.py")]
    names += ["1_Square_matrix_multiplication_", "9_Tall_skinny"]
    for name in names:
        (tmp_path / "level1").mkdir(exist_ok=True)
        (tmp_path / "level1" / f"{name}.py").write_text(REF)
    (tmp_path / "level2").mkdir()
    (tmp_path / "level2" / "66_Matmul_Dropout_Softmax.py").write_text(REF + "# nn.Dropout(p)\n")
    return tmp_path


def test_pairs_are_cheats_then_references_then_honest_kernels(levels):
    pairs = peer.build_pairs(levels, self_problems=["1/1", "2/66"])
    kinds = [p.candidate.split(":")[0] for p in pairs]
    assert kinds == sorted(kinds, key=["cheat", "self", "honest"].index) and set(kinds) == {"cheat", "self", "honest"}
    cheats = {p.cheat for p in pairs if p.cheat}
    assert {"torch_output", "side_stream", "cached_by_input", "lazy_when_timed"} <= cheats
    assert all(p.source.startswith('"""Trick') and not p.allow_torch for p in pairs if p.cheat)
    refs = [p for p in pairs if p.candidate == "self"]
    assert [p.problem for p in refs] == ["level1/1_Square_matrix_multiplication_", "level2/66_Matmul_Dropout_Softmax"]
    assert all(p.allow_torch and p.source.endswith("ModelNew = Model\n") for p in refs)
    honest = [p.problem for p in pairs if p.candidate == "honest"]
    assert honest[0] == "level1/19_ReLU" and "level1/88_MinGPTNewGelu" in honest
    assert all(p.path.is_file() for p in pairs)


def test_filters_name_problems_by_number_or_stem(levels):
    pairs = peer.build_pairs(levels, self_problems=["1/1"], problems=["1/88", "19_ReLU"])
    assert {p.problem for p in pairs} == {"level1/88_MinGPTNewGelu", "level1/19_ReLU"}
    assert peer.build_pairs(levels, kinds=("self",), self_problems=["1/9"])[0].problem == "level1/9_Tall_skinny"
    with pytest.raises(SystemExit, match="no problem 3/1"):
        peer.build_pairs(levels, kinds=("self",), self_problems=["3/1"])


def test_a_differing_verdict_names_the_hole_or_says_it_is_unexplained(levels):
    by = {(p.candidate): p for p in peer.build_pairs(levels, self_problems=["1/1", "2/66"])}
    ok, hack = {"verdict": "correct"}, {"verdict": "reward_hack", "detail": "forward ran aten::gelu"}
    note = peer.explain(by["cheat:side_stream"], ok, hack)
    assert note.startswith("KernelBench records its CUDA events") and note.endswith("; ksdk: reward_hack: forward ran "
                                                                                      "aten::gelu")
    assert peer.explain(by["cheat:torch_output"], hack, hack) == ""
    assert peer.explain(by["cheat:torch_output"], hack, ok) == "UNEXPLAINED: ksdk passed a cheat"
    dropout = next(p for p in by.values() if p.problem.startswith("level2/66"))
    assert peer.explain(dropout, {"verdict": "incorrect"}, ok) == peer.RANDOM_REFERENCE
    assert peer.explain(by["honest"], {"verdict": "incorrect", "detail": "Output mismatch"}, ok).startswith(
        "UNEXPLAINED: KernelBench 'Output mismatch'")


def test_kernelbench_results_are_read_as_verdict_speedup_and_detail(levels):
    pair = peer.build_pairs(levels, kinds=("honest",), problems=["1/19"])[0]

    def result(**kw):
        base = {"compiled": True, "correctness": True, "runtime": 2.0, "ref_runtime": 5.0, "metadata": {}}
        return lambda *a, **k: types.SimpleNamespace(**{**base, **kw})

    r = peer.run_kb(result(), pair, 5, 100)
    assert (r["verdict"], r["speedup"]) == ("correct", 2.5) and r["wall_s"] >= 0
    r = peer.run_kb(result(correctness=False, metadata={"runtime_error": "illegal memory access"}), pair, 5, 100)
    assert (r["verdict"], r["speedup"], r["detail"]) == ("runtime_error", None, "illegal memory access")
    assert peer.run_kb(result(compiled=False, correctness=False), pair, 5, 100)["verdict"] == "compile_error"
    assert peer.run_kb(lambda *a, **k: None, pair, 5, 100)["verdict"] == "harness_error"


def test_table_and_summary():
    rows = [peer.Row("level1/19_ReLU", "honest", {"verdict": "correct", "speedup": 2.0, "wall_s": 30.0},
                     {"verdict": "correct", "speedup": 2.04, "wall_s": 9.0}),
            peer.Row("level1/88_MinGPTNewGelu", "cheat:side_stream",
                     {"verdict": "correct", "speedup": 90.0, "wall_s": 5.0, "excessive_speedup": True},
                     {"verdict": "reward_hack", "wall_s": 3.0}, note="KernelBench's CUDA events"),
            peer.Row("level2/12_Gemm", "self", note="not run: past the time budget")]
    text = peer.table(rows)
    assert "| level1/19_ReLU | honest | correct | correct | 2.000 | 2.040 | 1.020 | 30.0 | 9.0 |  |" in text
    assert "| level2/12_Gemm | self | - | - | - | - | - | - | - | not run: past the time budget |" in text
    assert "| cheat:side_stream | correct (flagged >10x) | reward_hack | 90.000 | - | - | 5.0 | 3.0 |" in text
    s = peer.summary(rows)
    assert (s["pairs"], s["ran"], s["verdicts_agree"], s["differ_explained"]) == (3, 2, 1, 1)
    assert s["median_speedup_ratio"] == pytest.approx(1.02) and s["ratios_within_3pct"] == 1
    assert (s["median_kb_wall_s"], s["median_ksdk_wall_s"]) == (17.5, 6.0)


def test_missing_llm_client_modules_get_stand_ins(monkeypatch):
    monkeypatch.delitem(sys.modules, "ksdk_peer_absent", raising=False)
    assert peer.stub_missing({"ksdk_peer_absent": {"completion": None}, "json": {}}) == ["ksdk_peer_absent"]
    from ksdk_peer_absent import completion  # noqa: F401 - importable now

    monkeypatch.delitem(sys.modules, "ksdk_peer_absent")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_without_cuda_it_says_so_and_exits_2(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "kernelbench_peer.py"), "--kb", str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "needs a CUDA GPU" in out.stderr, out.stderr
