"""A candidate cannot fake its time or patch the comparison: whatever it patches in its own process, the judge
compares outputs itself, and the speedup is the judge's own measurement over back-to-back calls, taken while
nothing of the candidate's ran but the calls."""

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


def test_patched_clocks_and_timing_primitives_change_nothing():
    """Whatever a candidate patches in its own process (the clock, the harness's private reference to it, the
    backend's timing primitive), the speedup is the judge's measurement: the patched candidates get the honest one's."""
    from hostilekit import C_GOOD

    task = c_task()
    honest, *patched, again = evaluate("cpu_c", task, C_GOOD, *(c_with_python(p) for p in PATCHES.values()), C_GOOD)
    assert honest.status == Status.OK and again.status == Status.OK, (honest.message, again.message)
    best = max(honest.speedup, again.speedup)  # a busy 2-core machine moves one evaluation's figure by up to ~2x
    for name, r in zip(PATCHES, patched):
        assert r.status == Status.OK, (name, r.error_kind, r.message)
        assert "judge's clock" in r.candidate_timing.method, r.candidate_timing.method
        assert r.speedup < 2 * best, (name, r.speedup, honest.speedup, again.speedup)


def test_a_kernel_of_a_few_microseconds_reporting_a_thousandth_of_its_time_gains_nothing():
    """The old bound let any kernel under ~50 us report 1000x too little (its floor went to zero); the judge's clock
    has no floor a report can slip under."""
    from hostilekit import C_ADD_TASK, C_GOOD

    from ksdk.tasks import task_from_source

    task = task_from_source("tiny_add", C_ADD_TASK.replace("1 << 20", "4096"))
    honest, cheat, again = evaluate("cpu_c", task, C_GOOD, c_with_python(PATCHES["runner_time"]), C_GOOD)
    assert all(r.status == Status.OK for r in (honest, cheat, again)), (honest.message, cheat.message)
    # the report says 1000x; a busy 2-core machine moved one honest figure 2x (0.73 against 1.40 on 2026-12-07)
    assert cheat.speedup < 2 * max(honest.speedup, again.speedup), (cheat.speedup, honest.speedup, again.speedup)


JOINED_THREAD = r"""
#include <pthread.h>
typedef struct { const float* a; const float* b; float* out; long n; } job_t;
static void* work(void* p) {
    job_t* j = (job_t*)p;
    for (long i = 0; i < j->n; i++) j->out[i] = j->a[i] + j->b[i];
    return 0;
}
void kernel(const float* a, const float* b, float* out, long n, long n2) {
    (void)n2;
    job_t j = {a, b, out, n};
    pthread_t t;
    if (pthread_create(&t, 0, work, &j) != 0) { work(&j); return; }
    pthread_join(t, 0);
}
"""

BURNER = r"""
#include <pthread.h>
#include <stdlib.h>
static void* burn(void* p) {
    (void)p;
    long n = 1L << 24;
    volatile float* buf = (volatile float*)malloc(n * sizeof(float));
    for (;;) for (long i = 0; i < n; i++) buf[i] = buf[i] + 1.0f;
    return 0;
}
__attribute__((constructor)) static void start(void) { pthread_t t; pthread_create(&t, 0, burn, 0); }
"""


def test_work_in_a_new_thread_per_call_is_counted():
    """A thread that does the call's work and exits before the call returns: its CPU time is the candidate's (the
    kernel's accounting of every thread the candidate's processes ever had), and so is the wall time it took."""
    from hostilekit import C_GOOD

    honest, threaded = evaluate("cpu_c", c_task(), C_GOOD, JOINED_THREAD)
    assert honest.status == Status.OK and threaded.status == Status.OK, (honest.message, threaded.message)
    assert threaded.speedup < 1.5 * honest.speedup, (threaded.speedup, honest.speedup)


def test_a_thread_burning_memory_bandwidth_while_the_judge_times_the_baseline_gains_nothing():
    """The candidate's processes are frozen whenever they serve no request, so a thread it leaves running cannot
    slow the judge's own timing of the baseline (it only slows the candidate's own batch)."""
    from hostilekit import C_GOOD

    honest, burning = evaluate("cpu_c", c_task(), C_GOOD, C_GOOD + BURNER)
    assert honest.status == Status.OK and burning.status == Status.OK, (honest.message, burning.message)
    assert burning.speedup < 1.3 * honest.speedup, (burning.speedup, honest.speedup)


COMPARISON_PATCH = ("import ksdk.evaluation.trial as t\nimport ksdk.verify as v\n"
                    "t.compare_outputs = v.compare_outputs = lambda *a, **k: ([], None)\n"
                    "import numpy as np\nnp.allclose = lambda *a, **k: True\nnp.array_equal = lambda *a, **k: True")


def test_patching_the_comparison_in_the_candidates_process_changes_nothing(monkeypatch):
    """The patch replaces the very names the judge calls (ksdk.evaluation.trial.compare_outputs among them): where
    judge and candidate share a process (the control, tests/core/judgekit.py) it makes wrong values pass; through the
    sandboxed candidate process it changes nothing."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "core"))
    import judgekit

    def patched_and_wrong(n, x):
        monkeypatch.setattr("ksdk.evaluation.trial.compare_outputs", lambda *a, **k: ([], None))
        return [judgekit.honest(n, x)[0] + 1.0]

    control, _ = judgekit.judge(patched_and_wrong)
    assert control.error_kind != ErrorKind.VALUE, "the control's patch did not reach the judge: the test proves nothing"
    monkeypatch.undo()
    (r,) = evaluate("cpu_c", c_task(), c_with_python(COMPARISON_PATCH, WRONG_C))
    assert r.status == Status.FAILED and r.error_kind == ErrorKind.VALUE, r.message


def test_an_honest_candidate_passes_the_judges_clock():
    from hostilekit import C_GOOD

    (r,) = evaluate("cpu_c", c_task(), C_GOOD)
    assert r.status == Status.OK, r.message
    assert "judge's clock" in r.candidate_timing.method and "judge's clock" in r.baseline_timing.method
    assert r.candidate_timing.median_ms > 0 and r.speedup_ci[0] <= r.speedup <= r.speedup_ci[1]


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
