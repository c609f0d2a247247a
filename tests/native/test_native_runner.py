"""The runner end to end over the runtime test double: verdicts, poisoning, faults, baselines, line mapping."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ksdk.evaluation.local import LocalEvaluator
from ksdk.models import Candidate, ErrorKind, Stage, Status, TimingSettings
from ksdk.tasks import task_from_source
from ksdk.testing.conformance import BackendConformance, Case
from ksdk_maca_metax.backend import MacaMetaxBackend
from nativekit import BIAS_RELU_HOST, host_kernel, vector_add_task

FAST = TimingSettings(warmup=1, repetitions=3, min_time_ms=0.0, max_repetitions=5, flush_l2=True)


def run(source: str, task_source: str | None = None, trials: int = 2, skip_performance: bool = False):
    """One verdict through the judge and a sandboxed candidate process (MACA_PATH reaches both)."""
    task = task_from_source("vadd", task_source or vector_add_task(torch=False), correctness_trials=trials,
                            timing=FAST)

    async def go():
        ev = LocalEvaluator("maca_metax", cache=False)
        try:
            proc = ev._procs[0]
            return await asyncio.to_thread(proc.evaluate, task, Candidate(source=source, language="maca"),
                                           skip_performance)
        finally:
            await ev.close()

    return asyncio.run(go()), MacaMetaxBackend()


def test_correct_candidate_is_timed_against_the_host_reference(maca_root):
    r, _ = run(host_kernel())
    assert r.status == Status.OK and r.stage == Stage.PERFORMANCE, r.message
    assert r.trials == 2 and all(o.ok for o in r.outputs)
    assert r.candidate_timing.n >= 3 and "L2 flushed" in r.candidate_timing.method
    assert r.baseline.startswith("PyTorch eager (the task's Model) on the CPU") and r.speedup > 0
    assert r.device.name == "ksdk runtime test double (host CPU)"
    k = r.kernels[0]
    assert k.name == "vector_add" and k.registers is None  # MACA's attribute numbers are unconfirmed
    assert k.extra["unconfirmed_attributes"]["num_regs"] == 32 and k.extra["wave_size"] == 64


def test_shipped_native_baseline_is_used_and_named(maca_root):
    r, _ = run(host_kernel(), vector_add_task(baseline=host_kernel(), torch=False))
    assert r.status == Status.OK, r.message
    assert "naive maca kernel" in r.baseline and r.baseline_timing.method.startswith("maca events")


def test_torch_task_with_a_parameter_passes_inputs_outputs_then_parameters(maca_root):
    """The example task's Model (torch, a learned bias) with a host-C kernel: argument order in0, out0, p0."""
    example = (Path(__file__).parents[2] / "examples" / "maca_metax" / "task.py").read_text()
    small = example.replace("ROWS, COLS = 8192, 4096", "ROWS, COLS = 64, 48")
    r, _ = run(BIAS_RELU_HOST, small)
    assert r.status == Status.OK, r.message
    assert r.outputs[0].shape == [64, 48] and r.outputs[0].dtype == "float32"
    # NATIVE_BASELINE there is CUDA/MACA device code the host compiler rejects: fall back, and say so
    assert r.baseline.startswith("PyTorch eager (the task's Model) on the CPU")
    assert "NATIVE_BASELINE" in r.warnings[0] and "unusable" in r.warnings[0]


def test_wrong_values_fail_correctness(maca_root):
    r, _ = run(host_kernel("a[i] - b[i]"))
    assert (r.status, r.stage, r.error_kind) == (Status.FAILED, Stage.CORRECTNESS, ErrorKind.VALUE)
    assert not r.outputs[0].ok and "trial 0" in r.message


def test_unwritten_outputs_are_caught_by_the_poison(maca_root):
    r, _ = run(host_kernel("a[i] + b[i]").replace("if (i < n) out[i]", "if (i < n / 2) out[i]"))
    assert r.error_kind == ErrorKind.NAN_INF and r.stage == Stage.CORRECTNESS


def test_kernel_fault_is_a_device_fault_of_the_candidate_alone(maca_root):
    r, backend = run(host_kernel().replace("return 0;\n}", "return 1;\n}"))
    assert (r.stage, r.error_kind) == (Stage.CORRECTNESS, ErrorKind.DEVICE_FAULT)
    # the fault happened in the candidate's own process: the judge's process is not recycled
    assert "illegal memory access" in r.message and not backend.sticky_error(r)


def test_compile_error_points_at_the_candidate_line(maca_root):
    src = host_kernel().replace("int64_t n = ", "int64_t n = undefined_thing + ")
    r, _ = run(src)
    assert (r.stage, r.error_kind) == (Stage.COMPILE, ErrorKind.COMPILE)
    assert r.line == src.splitlines().index(next(line for line in src.splitlines() if "undefined_thing" in line)) + 1
    assert "candidate.maca" in r.message and "/tmp/" not in r.message


def test_unexported_kernel_is_a_missing_entry_at_compile(maca_root):
    r, _ = run(host_kernel().replace("int vector_add(", "static int vector_add(") + "void *keep = vector_add;\n")
    assert (r.stage, r.error_kind) == (Stage.COMPILE, ErrorKind.MISSING_ENTRY)
    assert 'extern "C"' in r.message


def test_bad_launch_description_fails_at_load_with_its_line(maca_root):
    src = "// a comment\n" + host_kernel().replace('"block": ["BLOCK"]', '"block": ["BLOK"]')
    r, _ = run(src)
    assert (r.stage, r.error_kind, r.line) == (Stage.LOAD, ErrorKind.SYNTAX, 2)
    assert "unknown name 'BLOK'" in r.message


def test_skip_performance_says_why(maca_root):
    r, _ = run(host_kernel(), skip_performance=True)
    assert r.correct and r.stage == Stage.CORRECTNESS and r.performance_skipped and r.speedup is None


def test_a_fault_ends_its_candidate_process_and_the_next_verdict_is_fine(maca_root):
    """Through LocalEvaluator's real processes (MACA_PATH reaches the judge and the sandbox via the allowlist)."""
    task = task_from_source("vadd", vector_add_task(torch=False), correctness_trials=1, timing=FAST)

    async def go():
        ev = LocalEvaluator("maca_metax", cache=False)
        try:
            bad = await ev.evaluate(task, Candidate(source=host_kernel().replace("return 0;\n}", "return 1;\n}"),
                                                    language="maca"))
            good = await ev.evaluate(task, Candidate(source=host_kernel(), language="maca"))
            return bad, good
        finally:
            await ev.close()

    bad, good = asyncio.run(go())
    assert bad.error_kind == ErrorKind.DEVICE_FAULT
    assert good.status == Status.OK and good.stage == Stage.PERFORMANCE, good.message


class TestMacaMetaxConformanceOverTheDouble(BackendConformance):
    """The conformance kit for maca_metax, on CPU: MACA's real dialect over the runtime test double."""

    backend = "maca_metax"

    @pytest.fixture(autouse=True)
    def _double(self, maca_root):
        yield

    def cases(self):
        settings = {"correctness_trials": 1, "timing": FAST.model_dump()}
        task = vector_add_task(torch=False)
        return {
            "good": Case(task, host_kernel(), settings),
            "slow": Case(task, host_kernel().replace("    for (int64_t i = 0;", "    for (int rep = 0; rep < 64; "
                                                     "rep++, ({__asm__ volatile(\"\" ::: \"memory\");}))\n"
                                                     "    for (int64_t i = 0;"), settings),
            "broken_load": Case(task, "int vector_add(void) { return 0; }  /* no launch description */", settings),
            "broken_compile": Case(task, host_kernel("a[i] +* b[i]"), settings),
            "wrong": Case(task, host_kernel("a[i] * b[i]"), settings),
        }


def test_a_long_lived_session_keeps_a_bounded_module_cache(maca_root, monkeypatch):
    """The judge's own session (it times a task's NATIVE_BASELINE) loads modules for as long as it lives."""
    import numpy as np

    import ksdk_native.runner as runner
    from ksdk.interfaces.backend import RunContext, TaskView

    monkeypatch.setattr(runner, "MAX_CACHED", 1)
    backend = MacaMetaxBackend()
    spec = {"shape": [64], "dtype": "float32"}
    a, b, out = (np.arange(64, dtype=np.float32) for _ in range(3))
    for expr in ("a[i] + b[i]", "b[i] + a[i]", "(a[i] + b[i])", "a[i] + b[i]"):
        r = backend.runner(RunContext())
        r.setup(TaskView("vadd", vector_add_task(torch=False), 0, [], [], [spec, spec], [spec]))
        r.load(host_kernel(expr))
        r.build()
        r.call([a, b], [out])
        assert np.allclose(out, a + b)
    assert len(backend._session.modules) == 1 and len(backend._session.images) == 1


def test_compute_once_then_skip_is_caught_after_timing(maca_root):
    """A kernel that keeps a 'done' flag between launches passes one trial but not the timed repetitions."""
    cheat = host_kernel().replace("    const float *a", "    static int done;\n    if (done) return 0;\n    done = 1;\n"
                                  "    const float *a")
    r, _ = run(cheat, trials=1)
    assert r.error_kind == ErrorKind.REWARD_HACK, r.message
    assert "cached" in r.message or "repeatedly" in r.message
