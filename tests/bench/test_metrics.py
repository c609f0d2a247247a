"""The bench's figures against values worked out by hand."""

import math

import pytest

from ksdk.bench.metrics import amsr, compute, fast_p, geomean
from ksdk.bench.runner import self_check_flag
from ksdk.bench.store import ProblemRecord, metrics_by_level

# Six problems: four correct (speedups 0.5, 1.0, 1.5, 4.0), one incorrect, one without a candidate.
SIX = [(True, 0.5), (True, 1.0), (True, 1.5), (True, 4.0), (False, None), (False, None)]


def test_fast_p_counts_correct_problems_at_least_p_times_faster_over_all_problems():
    assert fast_p(SIX, 1.0) == pytest.approx(3 / 6)  # 1.0, 1.5, 4.0: exactly p counts
    assert fast_p(SIX, 1.5) == pytest.approx(2 / 6)
    assert fast_p(SIX, 2.0) == pytest.approx(1 / 6)
    assert fast_p(SIX, 0.0) == pytest.approx(4 / 6)  # fast_0 is the correctness rate
    assert fast_p([], 1.0) == 0.0


def test_an_incorrect_problem_with_a_speedup_is_never_fast():
    assert fast_p([(False, 9.0), (True, 1.2)], 1.0) == pytest.approx(1 / 2)


def test_geomean_and_mean_are_over_correct_timed_problems():
    m = compute(SIX)
    assert m.problems == 6 and m.correct == 4 and m.timed == 4
    assert m.correctness_rate == pytest.approx(4 / 6)
    assert m.mean_speedup == pytest.approx((0.5 + 1.0 + 1.5 + 4.0) / 4)  # 1.75
    assert m.geomean_speedup == pytest.approx((0.5 * 1.0 * 1.5 * 4.0) ** 0.25)  # 3 ** 0.25 = 1.3161
    assert m.median_speedup == pytest.approx(1.25)
    assert m.fast_p == pytest.approx({"1": 0.5, "1.5": 1 / 3, "2": 1 / 6})
    assert geomean([2.0, 8.0]) == pytest.approx(4.0)
    assert geomean([]) is None


def test_amsr_counts_a_problem_without_a_correct_kernel_as_0_or_as_1x():
    # (0.5 + 1.0 + 1.5 + 4.0 + 0 + 0) / 6 = 7 / 6; with failures at 1x: (7 + 2) / 6 = 1.5
    assert amsr(SIX, 0.0) == pytest.approx(7 / 6)
    assert amsr(SIX, 1.0) == pytest.approx(1.5)
    m = compute(SIX)
    assert (m.amsr_failed_as_0, m.amsr_failed_as_1) == pytest.approx((7 / 6, 1.5))


def test_untimed_correct_problems_count_as_correct_never_as_fast_and_leave_amsr_undefined():
    m = compute([(True, None), (True, 2.0), (False, None)])
    assert m.correct == 2 and m.timed == 1
    assert m.fast_p["1"] == pytest.approx(1 / 3)
    assert m.mean_speedup == pytest.approx(2.0)
    assert m.amsr_failed_as_0 is None and m.amsr_failed_as_1 is None


def test_nothing_correct():
    m = compute([(False, None), (False, None)])
    assert m.correctness_rate == 0 and m.mean_speedup is None and m.geomean_speedup is None
    assert m.amsr_failed_as_0 == 0.0 and m.amsr_failed_as_1 == 1.0


def record(pid, level, verdict, speedup=None):
    return ProblemRecord(id=pid, name=pid.split("/")[-1], level=level, path="/x.py", verdict=verdict,
                         correct=verdict == "correct", speedup=speedup)


def test_metrics_per_level_and_overall():
    rs = [record("level1/a", 1, "correct", 2.0), record("level1/b", 1, "incorrect"),
          record("level2/c", 2, "correct", 0.5), record("level10/d", 10, "infra_error")]
    m = metrics_by_level(rs)
    assert list(m) == ["all", "level1", "level2", "level10"]
    assert m["all"].problems == 4 and m["all"].correct == 2 and m["all"].infra_errors == 1
    assert m["level1"].amsr_failed_as_0 == pytest.approx(1.0)  # (2 + 0) / 2
    assert m["level2"].geomean_speedup == pytest.approx(0.5)
    assert m["level10"].correct == 0
    assert math.isclose(m["all"].amsr_failed_as_1, (2.0 + 1 + 0.5 + 1) / 4)


def test_a_single_level_gets_only_the_overall_row():
    assert list(metrics_by_level([record("level1/a", 1, "correct", 1.0)])) == ["all"]


@pytest.mark.parametrize("speedup, flagged", [(1.0, False), (0.97, False), (1.03, False), (0.969, True),
                                              (1.2, True), (None, False)])
def test_self_check_flags_speedups_outside_the_band(speedup, flagged):
    flag = self_check_flag(record("p", None, "correct", speedup))
    assert (flag is not None) == flagged
    if flagged:
        assert "outside [0.97, 1.03]" in flag


def test_a_self_check_flag_says_where_the_time_went_when_the_clock_recorded_it():
    r = record("p", None, "correct", 0.83)
    r.clock = {"events_batch": {"judge_clock_ms": 5.21, "candidate_events_ms": 4.4}}
    assert self_check_flag(r) == ("self-check speedup 0.830x is outside [0.97, 1.03] (one batch: 4.400 ms of device "
                                  "work by the candidate process's own events, 5.210 ms by the judge's clock)")


def test_a_self_check_flag_says_when_the_one_pass_bound_set_the_time():
    """Level 1's 73_conv_transposed_3D on an H100: passes gave 1.975 ms a call against the baseline's 2.050, and the
    one-pass batch's bound (3.710) made it 0.552x."""
    r = record("p", None, "correct", 0.552)
    r.clock = {"repeat_ms_per_call": 1.975, "first_pass_bound_ms": 3.71, "baseline_repeat_ms_per_call": 2.05,
               "events_batch": {"judge_clock_ms": 3.343, "candidate_events_ms": 2.241}}
    assert self_check_flag(r) == ("self-check speedup 0.552x is outside [0.97, 1.03] (the one-pass bound set its "
                                  "time: 3.710 ms a call, where its passes gave 1.975 and the baseline's 2.050)")
    r.clock["first_pass_bound_ms"] = 1.9  # the passes' figure stood: the batch the process timed is shown
    assert "one batch: 2.241 ms" in self_check_flag(r)


def test_a_self_check_that_is_not_correct_is_flagged():
    r = record("p", None, "incorrect")
    r.error_kind = "wrong_value"
    assert self_check_flag(r) == "the reference failed its own check: incorrect (wrong_value)"


def test_a_record_keeps_the_evaluations_device_memory_peak_against_its_io():
    from ksdk.bench.report import _memory
    from ksdk.bench.runner import from_result
    from ksdk.bench.suite import Problem
    from ksdk.models import EvalResult, Stage, Status

    r = EvalResult(candidate_id="c", task="t", backend="b", status=Status.OK, stage=Stage.PERFORMANCE)
    r.device.extra.update({"device_peak_memory_bytes": 3 << 30, "inputs_outputs_bytes": 1 << 30})
    rec = from_result(Problem(name="1_x", level=1, path="1_x.py"), r)
    assert (rec.peak_memory_bytes, rec.io_bytes) == (3 << 30, 1 << 30)
    assert _memory(rec.peak_memory_bytes, rec.io_bytes) == "3072.0 MiB (3.0x I/O)"
    assert _memory(None, 1) == "-" and _memory(1 << 20, None) == "1.0 MiB"


def test_a_problem_that_does_not_fit_the_device_is_counted_apart():
    """'does not fit this device' is neither correct nor incorrect nor a harness error to retry: every share leaves it
    out, and the summary says how many there were."""
    from ksdk.bench.report import markdown
    from ksdk.bench.runner import from_result
    from ksdk.bench.store import DOES_NOT_FIT, INCORRECT, BenchConfig, BenchSummary, metrics_by_level
    from ksdk.bench.suite import Problem
    from ksdk.models import ErrorKind, EvalResult, Stage, Status

    def problem(i):
        return Problem(name=f"{i}_p", level=1, path=f"/x/level1/{i}_p.py")

    big = EvalResult(status=Status.INFRA_ERROR, error_kind=ErrorKind.INFRA, stage=Stage.LOAD,
                     message="does not fit this device: the problem needs about 90.0 GiB more device memory")
    wrong = EvalResult(status=Status.FAILED, error_kind=ErrorKind.VALUE, stage=Stage.CORRECTNESS, message="trial 0")
    records = [from_result(problem(1), big), from_result(problem(2), wrong)]
    assert [r.verdict for r in records] == [DOES_NOT_FIT, INCORRECT]
    m = metrics_by_level(records)["all"]
    assert (m.problems, m.does_not_fit, m.infra_errors, m.correct) == (1, 1, 0, 0)
    summary = BenchSummary(config=BenchConfig(suite="/x", backend="triton_nvidia", mode="self_check"), out="/o",
                           metrics={"all": m}, records=records)
    assert "Does not fit this device: 1 problem(s)" in markdown(summary)
