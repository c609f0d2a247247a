"""Every model round-trips through JSON; feedback carries what an LLM needs; verification is scale-aware."""

import numpy as np

from ksdk.models import (Candidate, DeviceInfo, ErrorKind, EvalResult, KernelMeta, Mutation, OutputCheck, Stage,
                         Status, Task, normalize_source, source_hash, trim_message)
from ksdk.languages import Language
from ksdk.timing import summarize
from ksdk.verify import compare_outputs

TASK_SRC = "class Model: pass\ndef get_inputs(): return []\ndef get_init_inputs(): return []\n"


def full_result() -> EvalResult:
    t = summarize([1.0, 1.1, 0.9, 1.0, 5.0], "test")
    return EvalResult(
        candidate_id="c1", task="t", backend="b", backend_version="1", stage=Stage.PERFORMANCE, status=Status.OK,
        outputs=[OutputCheck(index=0, shape=[2, 3], dtype="float32", max_abs_error=1e-6, max_rel_error=1e-5)],
        candidate_timing=t, baseline_timing=t, baseline="eager", speedup=1.0, device=DeviceInfo(name="H100"),
        kernels=[KernelMeta(name="k", registers=32, spills=0, num_warps=4)], versions={"torch": "2"},
    )


def test_models_round_trip_json():
    task = Task(name="t", source=TASK_SRC)
    cand = Candidate(source="x = 1", parent_ids=["a"], mutation=Mutation(mutator="llm", model="m", prompt="p"))
    for obj in (task, cand, full_result(), summarize([1, 2, 3])):
        assert type(obj).from_json(obj.to_json()) == obj


def test_feedback_names_stage_error_line_and_numbers():
    r = EvalResult().fail(Stage.COMPILE, ErrorKind.COMPILE, "bad tl.load", line=12)
    fb = r.feedback()
    assert "compile" in fb and "compile_error" in fb and "line 12" in fb and "bad tl.load" in fb
    fb2 = full_result().feedback()
    assert "speedup: 1.000x" in fb2 and "registers=32" in fb2 and "max_abs_err" in fb2


def test_trim_keeps_head_and_tail():
    msg = "HEAD" + "x" * 10000 + "TAIL"
    out = trim_message(msg, 500)
    assert out.startswith("HEAD") and out.endswith("TAIL") and len(out) < 600


def test_normalized_hash_ignores_blank_lines_and_the_languages_comments():
    a = "x = 1\n\n# comment\ny = 2   \n"
    b = "x = 1\ny = 2\n"
    hashed = Language(name="hashed", line_comments=("#",))
    assert normalize_source(a, hashed) == normalize_source(b, hashed) == "x = 1\ny = 2"
    assert source_hash(a, hashed) == source_hash(b, hashed) != source_hash("x = 2\ny = 2\n", hashed)
    # without a language nothing is known to be a comment; blank lines and trailing spaces still never count
    assert normalize_source(a) == "x = 1\n# comment\ny = 2" and source_hash(b + "\n\n") == source_hash(b)
    # '#' is not a comment in C: a #define is code, and '//' lines are comments
    c = Language(name="c", line_comments=("//",))
    assert normalize_source("#define T 32\n// tile\nint t = T;", c) == "#define T 32\nint t = T;"


def test_tolerance_defaults_follow_kernelbench():
    t = Task(name="t", source=TASK_SRC)
    assert t.tolerance("torch.float32").atol == 1e-4 and t.tolerance("float16").rtol == 1e-2


def tol(_):
    from ksdk.models import Tolerance
    return Tolerance(atol=1e-4, rtol=1e-4)


def test_compare_accepts_close_rejects_wrong_and_nan():
    ref = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    checks, fail = compare_outputs([ref + 1e-6], [ref], tol)
    assert fail is None and checks[0].ok
    _, fail = compare_outputs([ref + 1], [ref], tol)
    assert fail[0] == ErrorKind.VALUE
    bad = ref.copy()
    bad[1, 2] = np.nan
    _, fail = compare_outputs([bad], [ref], tol)
    assert fail[0] == ErrorKind.NAN_INF and "(1, 2)" in fail[1]
    _, fail = compare_outputs([ref.T], [ref], tol)
    assert fail[0] == ErrorKind.SHAPE
    _, fail = compare_outputs([ref.astype(np.float64)], [ref], tol)
    assert fail[0] == ErrorKind.DTYPE


def test_compare_rejects_zero_output_on_tiny_reference():
    # softmax over a wide row: every value ~1e-5, inside atol=1e-4, so zeros would pass allclose
    x = 0.5 * np.random.default_rng(1).standard_normal((2, 200000))
    ref = (np.exp(x) / np.exp(x).sum(-1, keepdims=True)).astype(np.float32)
    assert np.allclose(np.zeros_like(ref), ref, atol=1e-4, rtol=1e-4)
    _, fail = compare_outputs([np.zeros_like(ref)], [ref], tol)
    assert fail is not None and fail[0] == ErrorKind.VALUE and "tiny" in fail[1]
    _, fail = compare_outputs([np.full_like(ref, ref.mean())], [ref], tol)
    assert fail is not None


def test_timing_summary_counts_outliers():
    s = summarize([1.0] * 20 + [10.0])
    assert s.median_ms == 1.0 and s.outliers == 1 and s.n == 21


def test_compare_gives_the_same_verdicts_on_torch_tensors_as_on_numpy():
    torch = __import__("pytest").importorskip("torch")
    rng = np.random.default_rng(2)
    ref = rng.standard_normal((8, 9)).astype(np.float32)
    nan = ref.copy()
    nan[3, 4] = np.inf
    x = 0.5 * rng.standard_normal((2, 200000))
    tiny = (np.exp(x) / np.exp(x).sum(-1, keepdims=True)).astype(np.float32)
    cases = [(ref + 1e-6, ref), (ref + 1, ref), (nan, ref), (np.zeros_like(tiny), tiny), (ref.T.copy(), ref)]
    for out, r in cases:
        n_checks, n_fail = compare_outputs([out], [r], tol)
        t_checks, t_fail = compare_outputs([torch.from_numpy(out)], [torch.from_numpy(r)], tol)
        assert (n_fail is None) == (t_fail is None)
        if n_fail:
            assert n_fail == t_fail
        assert n_checks == t_checks
    bf = torch.randn(16, 16).bfloat16()
    _, fail = compare_outputs([bf.clone()], [bf], tol)
    assert fail is None
