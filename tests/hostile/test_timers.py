"""A candidate cannot fake its time or patch the comparison: whatever it patches in its own process, the judge
compares outputs itself and holds the reported time against its own clock over back-to-back calls."""

from hostilekit import c_task, c_with_python, evaluate

from ksdk.models import ErrorKind, Status

WRONG_C = "void kernel(const float* a, const float* b, float* out, long n, long n2) { (void)b; (void)n2;\n" \
          "    for (long i = 0; i < n; i++) out[i] = a[i]; }\n"

PATCHES = {
    # the clock the harness times with, before the harness imports it
    "perf_counter": "import time\nc = [0]\ndef fake():\n    c[0] += 1\n    return c[0]\ntime.perf_counter_ns = fake\n"
                    "time.perf_counter = lambda: c[0] * 1e-9",
    # the harness's own private reference to it
    "private_clock": "import ksdk.evaluation.timers as t\nc = [0]\ndef fake():\n    c[0] += 1\n    return c[0]\n"
                     "t._perf_ns = fake",
    # the backend's timing primitive itself
    "runner_time": "import ksdk_cpu_example.runner as r\nimport ksdk.interfaces.backend as b\n"
                   "orig = r.CpuCRunner.time\n"
                   "def fast(self, *a, **k):\n    s, rep = orig(self, *a, **k)\n    return [x / 1000 for x in s], rep\n"
                   "r.CpuCRunner.time = fast",
}


def test_patched_clocks_and_timing_primitives_are_caught_by_the_judges_clock():
    task = c_task()
    results = evaluate("cpu_c", task, *(c_with_python(p) for p in PATCHES.values()))
    for name, r in zip(PATCHES, results):
        assert r.status == Status.FAILED and r.error_kind == ErrorKind.REWARD_HACK, (name, r.error_kind, r.message)
        assert "judge's own clock measured" in r.message and "reported a median" in r.message, (name, r.message)
        assert r.speedup is None


def test_patching_the_comparison_in_the_candidates_process_changes_nothing():
    patch = ("import ksdk.verify as v\nv.compare_outputs = lambda *a, **k: ([], None)\n"
             "import numpy as np\nnp.allclose = lambda *a, **k: True\nnp.array_equal = lambda *a, **k: True")
    (r,) = evaluate("cpu_c", c_task(), c_with_python(patch, WRONG_C))
    assert r.status == Status.FAILED and r.error_kind == ErrorKind.VALUE, r.message


def test_an_honest_candidate_passes_the_judges_clock():
    from hostilekit import C_GOOD

    (r,) = evaluate("cpu_c", c_task(), C_GOOD)
    assert r.status == Status.OK, r.message
    judge = r.cross_checks["judge clock:candidate"]
    assert judge.median_ms > 0 and r.candidate_timing.median_ms > 0


SKIPS_HALF = """
static long calls = 0;
void kernel(const float* a, const float* b, float* out, long n, long n2) {
    (void)n2;
    int skip = ++calls > 6 && calls % 2;  /* after correctness: every other call skipped or changed */
    if (skip && SKIP) return;
    for (long i = 0; i < n; i++) out[i] = skip ? a[i] : a[i] + b[i];
}
"""


def test_skipping_or_changing_the_work_in_half_the_timed_calls_is_caught_whichever_calls_are_checked():
    """The judge checks as many of its timed calls as fit in its budget (here far more than three), so a candidate
    that skips (or changes) the work in half of them does not pass by luck (one time in eight with three checks)."""
    results = evaluate("cpu_c", c_task(), *([SKIPS_HALF.replace("SKIP)", "1)")] * 2),
                       *([SKIPS_HALF.replace("SKIP)", "0)")] * 2))
    for r in results[:2]:
        assert r.error_kind == ErrorKind.REWARD_HACK and "left outputs unwritten" in r.message, r.message
    for r in results[2:]:
        assert r.error_kind == ErrorKind.REWARD_HACK and "wrong" in r.message, r.message


CHANGES_BATCH_CALLS = """
static float* first_out = 0;
static long batch_calls = 0;
void kernel(const float* a, const float* b, float* out, long n, long n2) {
    (void)n2;
    if (!first_out) first_out = out;
    /* outputs at an address not seen before are the judge's timed batch: every other one gets the wrong sum */
    int wrong = out != first_out && (batch_calls++ % 2);
    for (long i = 0; i < n; i++) out[i] = wrong ? a[i] : a[i] + b[i];
}
"""


def test_work_changed_only_in_the_judges_timed_batch_is_caught():
    """The candidate recognises the batch by its output addresses and changes every other call there, never in the
    calls it times itself: three checks drawn at random would miss it one time in eight; the judge checks the last
    call and as many others as fit in its budget."""
    results = evaluate("cpu_c", c_task(), *([CHANGES_BATCH_CALLS] * 3))
    for r in results:
        assert r.error_kind == ErrorKind.REWARD_HACK, (r.error_kind, r.message)
        assert "back-to-back calls timed by the judge returned a wrong output" in r.message, r.message
