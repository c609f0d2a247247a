"""GPU-only behaviour: real timing and metadata, sticky device faults, and the cheats only timing can expose."""

from __future__ import annotations

import math

import pytest

from ksdk.models import ErrorKind, Stage, Status
from ksdk_triton_nvidia.conformance import GOOD

from tritonkit import HERE, evaluate_in_order, example, small_task

pytestmark = pytest.mark.gpu

# Writes far outside its buffer: an illegal memory access poisons the CUDA context.
ILLEGAL = GOOD.replace("tl.store(out_ptr + offs,", "tl.store(out_ptr + offs * 1000000007,")
FAST = {"warmup": 3, "repetitions": 20, "min_time_ms": 5.0, "max_repetitions": 200}


def test_good_candidate_timed_with_metadata_and_versions():
    task, seed = example("row_softmax")
    (r,) = evaluate_in_order([(task.model_copy(update={"timing": task.timing.model_copy(update=FAST)}), seed)])
    assert r.status == Status.OK and r.stage == Stage.PERFORMANCE, r.message
    assert r.device.kind == "gpu" and r.device.name
    assert {"torch", "triton", "cuda", "driver"} <= set(r.versions)
    assert r.speedup and math.isfinite(r.speedup) and r.speedup > 0
    assert r.candidate_timing.n >= 5 and "the judge's clock" in r.candidate_timing.method
    assert "replayed device graphs" in r.candidate_timing.method and r.speedup_ci[0] <= r.speedup <= r.speedup_ci[1]
    clk = r.device.extra["clocks_during_timing"]  # NVML ships with every NVIDIA driver
    assert clk["before"]["sm_mhz"] > 0 and clk["after"]["mem_mhz"] > 0 and "throttle_reasons" in clk["after"]
    k = r.kernels[0]
    assert k.name == "softmax_kernel" and k.registers and k.registers > 0
    assert k.spills is not None and k.num_warps == 8 and k.shared_mem_bytes is not None


@pytest.mark.parametrize("by,word", [(None, "reading"), ("read", "reading"), ("write", "zeroing")])
def test_l2_eviction_setting_is_honoured_and_recorded(by, word):
    task, seed = example("row_softmax")
    task = task.model_copy(update={"timing": task.timing.model_copy(update={**FAST, "l2_flush_by": by})})
    (r,) = evaluate_in_order([(task, seed)])
    assert r.status == Status.OK and r.speedup, r.message
    # the judge times the baseline and the candidate the same way
    for t in (r.candidate_timing, r.baseline_timing):
        assert f"caches evicted by {word} before each batch" in t.method, t.method


def test_illegal_memory_access_ends_only_its_candidate_and_the_next_verdict_is_clean():
    task = small_task()
    bad, good = evaluate_in_order([(task, ILLEGAL), (task, GOOD)])
    assert bad.status == Status.FAILED and bad.error_kind in (ErrorKind.DEVICE_FAULT, ErrorKind.CRASH), (
        bad.error_kind, bad.message)
    assert not any("recycled" in w for w in bad.warnings)  # the fault was in the candidate's own CUDA context
    assert good.status == Status.OK and good.stage == Stage.PERFORMANCE, good.message


def test_compile_error_from_the_triton_compiler_names_kernel_and_line():
    bad = GOOD.replace("tl.maximum(x * scale + y, 0.0)", "tl.maximum(x * scale + y, undefined_name)")
    (r,) = evaluate_in_order([(small_task(), bad)])
    assert (r.stage, r.error_kind) == (Stage.COMPILE, ErrorKind.COMPILE), r.message
    line = next(i + 1 for i, t in enumerate(bad.split("\n")) if "undefined_name" in t)
    assert r.line == line and "fused_kernel" in r.message


@pytest.mark.parametrize("name", ["lazy_when_timed", "hidden_side_stream"])
def test_timing_cheats_rejected(name):
    task = small_task(timing=FAST)
    (r,) = evaluate_in_order([(task, (HERE / "cheats" / f"{name}.py").read_text())])
    assert r.error_kind == ErrorKind.REWARD_HACK, (r.stage, r.error_kind, r.message)
    assert r.speedup is None


def test_do_bench_cross_check_is_recorded_beside_the_timing():
    task, seed = example("row_softmax")
    task = task.model_copy(update={"timing": task.timing.model_copy(update={**FAST, "cross_check_do_bench": True})})
    (r,) = evaluate_in_order([(task, seed)])
    assert r.status == Status.OK and r.speedup, r.message
    assert not [w for w in r.warnings if "cross-check" in w], r.warnings
    base, cand = r.cross_checks["do_bench:baseline"], r.cross_checks["do_bench:candidate"]
    assert "evicted by read" in base.method
    assert base.median_ms > 0 and cand.median_ms > 0 and "a record" in cand.method
    assert "reported:candidate" in r.cross_checks  # the Runner's own timing, never the speedup


def test_a_batch_timed_by_the_candidates_own_events_is_kept_as_a_record_beside_the_judges_clock():
    """With the candidate's own timing asked for, one more batch is timed by its process's device events too: where a
    batch's time goes (its device work, or the hand-over around it) is in the clock's record, never in the speedup."""
    task, seed = example("elementwise_chain")
    task = task.model_copy(update={"timing": task.timing.model_copy(update={**FAST, "cross_check_reported": True})})
    (r,) = evaluate_in_order([(task, seed)])
    assert r.status == Status.OK and r.speedup, r.message
    rec = r.device.extra["clock"]["events_batch"]
    assert rec["judge_clock_ms"] > 0 and rec["candidate_events_ms"] > 0, rec
    assert rec["threads_cpu_ms"] and rec["judge_threads_cpu_ms"], rec  # which threads ran during the batch
    assert rec["candidate_notes"]["graphs"] > 0 and "num_device_alloc" in rec["candidate_notes"], rec  # its allocator
    clock = r.device.extra["clock"]
    assert clock["floor_after_load_ms"] > 0
    assert len(clock["floor_sides_ms"]) == 3 and len(clock["batch_sides_ms"]) == 3, clock  # its own stamps


def test_the_ring_spreads_inputs_over_memory_and_both_sides_time_over_it():
    """The judge's clock times batches over a ring of input sets at different places in device memory (what
    timing.placements asked for, now always), the baseline over the same ring as the candidate."""
    task, seed = example("matmul_bias_relu")
    task = task.model_copy(update={"timing": task.timing.model_copy(update={**FAST, "placements": 3})})
    (r,) = evaluate_in_order([(task, seed)])
    assert r.status == Status.OK and r.speedup and math.isfinite(r.speedup), r.message
    for t in (r.candidate_timing, r.baseline_timing):
        assert "over fresh input sets" in t.method and t.n >= 5, t.method


def test_torch_compile_baseline_is_timed_and_not_taken_for_tampering():
    task, seed = example("row_softmax")
    task = task.model_copy(update={"timing": task.timing.model_copy(update={**FAST, "compile_baseline": True})})
    (r,) = evaluate_in_order([(task, seed)])
    assert r.status == Status.OK and r.speedup, (r.error_kind, r.message)
    assert "torch.compile" in r.extra_baselines, r.warnings
    assert r.extra_baselines["torch.compile"].median_ms > 0, r.warnings


def test_patched_cuda_events_change_nothing():
    """The candidate switches off the in-process integrity check, then patches the harness's private event
    references and torch's so every repetition reads 1 us: the speedup is the judge's clock's, so it gains nothing
    (on 8ab2c7c the patched events were only bounded by the judge's clock, which read its floor on a GPU)."""
    task, seed = example("elementwise_chain")
    task = task.model_copy(update={"timing": task.timing.model_copy(update={**FAST, "cross_check_reported": True})})
    patch = ("import ksdk_triton_nvidia.checks as _c\n_c.Integrity.changed = lambda self: []\n"
             "import ksdk.evaluation.timers as _t\n_t._elapsed = lambda a, b: 0.001\n"
             "import torch\ntorch.cuda.Event.elapsed_time = lambda self, other: 0.001\n")
    (honest, cheat) = evaluate_in_order([(task, seed), (task, patch + seed)])
    assert honest.status == Status.OK, honest.message
    assert cheat.status == Status.OK or cheat.error_kind == ErrorKind.REWARD_HACK, (cheat.error_kind, cheat.message)
    if cheat.status == Status.OK:
        assert cheat.speedup < 1.25 * honest.speedup, (cheat.speedup, honest.speedup)
        assert cheat.cross_checks["reported:candidate"].median_ms < 0.01  # what it claimed, kept as a record
        assert any("reported" in w for w in cheat.warnings), cheat.warnings


def test_pytorch_doing_the_work_is_rejected_on_the_gpu():
    task = small_task()
    src = GOOD.replace("        out = torch.empty_like(x)", "        x = torch.relu(x * self.scale + y)\n"
                       "        y = torch.zeros_like(y)\n        out = torch.empty_like(x)").replace(
        "fused_kernel[(triton.cdiv(n, BLOCK_SIZE),)](x, y, out, n, self.scale, BLOCK=BLOCK_SIZE)",
        "fused_kernel[(triton.cdiv(n, BLOCK_SIZE),)](x, y, out, n, 1.0, BLOCK=BLOCK_SIZE)")
    (r,) = evaluate_in_order([(task, src)])
    assert r.error_kind == ErrorKind.REWARD_HACK and "aten::relu" in r.message, (r.error_kind, r.message)


def test_a_batch_that_replies_before_its_device_work_is_done_is_timed_until_it_is():
    """The candidate also makes its process reply to the judge's timed batch without waiting for the device: the
    judge's clock runs on until the outputs are written and the device is idle (on 8ab2c7c: ok 327.8x)."""
    task, seed = example("elementwise_chain")
    task = task.model_copy(update={"timing": task.timing.model_copy(update=FAST)})
    patch = ("import ksdk_triton_nvidia.checks as _c\n_c.Integrity.changed = lambda self: []\n"
             "import ksdk.evaluation.timers as _t\n_t._elapsed = lambda a, b: 0.001\n"
             "import torch\ntorch.cuda.Event.elapsed_time = lambda self, other: 0.001\n"
             "_t.synchronize = lambda: None\ntorch.cuda.synchronize = lambda *a, **k: None\n")
    (honest, cheat) = evaluate_in_order([(task, seed), (task, patch + seed)])
    assert honest.status == Status.OK, honest.message
    if cheat.status == Status.OK:
        assert cheat.speedup < 1.25 * honest.speedup, (cheat.speedup, honest.speedup)
    else:
        assert cheat.error_kind == ErrorKind.REWARD_HACK and cheat.speedup is None, (cheat.error_kind, cheat.message)


def test_a_kernel_that_skips_inputs_it_has_seen_is_never_judged_faster_than_writing_its_outputs():
    """The attacker keeps state on the device and does nothing on a pass over inputs it has seen (timing_cheats/
    skips_seen_inputs.py): where the ring is short, the judge times passes over the same sets, whose difference
    then reads almost no work. docs/architecture.md's bound: never faster than writing the pass's outputs beyond the
    L2 at 1.5x the judge's own zeroing speed (for 3 x 64 MiB of outputs about a quarter of the honest 44 us)."""
    task, seed = example("elementwise_chain")
    task = task.model_copy(update={"timing": task.timing.model_copy(update=FAST)})
    cheat_source = (HERE / "timing_cheats" / "skips_seen_inputs.py").read_text()
    (honest, cheat) = evaluate_in_order([(task, seed), (task, cheat_source)])
    assert honest.status == Status.OK, honest.message
    h, c = honest.device.extra["clock"], cheat.device.extra.get("clock") or {}
    assert h["passes"] > 1 and h["repeat_ms_per_call"] > 0.02, h  # passes are timed here, the honest work seen
    if cheat.status == Status.OK:
        assert c["repeat_ms_per_call"] < 0.5 * h["repeat_ms_per_call"], c  # the attack worked: the difference saw
        assert cheat.candidate_timing.median_ms >= 0.2 * honest.candidate_timing.median_ms  # ... the bound held
    else:
        assert cheat.error_kind == ErrorKind.REWARD_HACK, (cheat.error_kind, cheat.message)


def test_a_problem_that_cannot_fit_the_device_is_told_so_with_its_figures_before_any_candidate_code_runs():
    """Inputs of about 35% of the device each way: the judge's own copy and reference fit, the shared copies
    the candidate would need do not."""
    import torch

    n = int(torch.cuda.get_device_properties(0).total_memory * 0.35) // 4
    source = ("import torch\nimport torch.nn as nn\n\nclass Model(nn.Module):\n    def forward(self, x):\n"
              "        return torch.relu(x)\n\n"
              f"def get_inputs():\n    return [torch.rand({n})]\n\ndef get_init_inputs():\n    return []\n")
    (r,) = evaluate_in_order([(small_task(source, "too_big"), GOOD)])
    assert r.status == Status.INFRA_ERROR and r.stage == Stage.LOAD, (r.status, r.stage, r.message)
    assert "the problem needs about" in r.message and "GiB is free" in r.message, r.message


def test_a_forward_with_temporaries_as_large_as_its_output_writes_its_output_in_place_both_ways():
    """Swish as its own candidate, 128 MiB each way: the eager forward allocates sigmoid's temporary before its
    output. The arena holds the reference's temporaries beside the outputs, so the output is written where the judge
    reads it (graphs and eager calls alike), never copied in the timed calls (25_Swish read 0.68x that way)."""
    source = ("import torch\nimport torch.nn as nn\n\nclass Model(nn.Module):\n    def forward(self, x):\n"
              "        return x * torch.sigmoid(x)\n\n"
              "def get_inputs():\n    return [torch.randn(1 << 25)]\n\ndef get_init_inputs():\n    return []\n")
    task = small_task(source, "swish", allow_torch_ops=["*"])
    task = task.model_copy(update={"timing": task.timing.model_copy(update={"cross_check_reported": True})})
    for graphs in (True, False):  # eager calls as KernelBench's problems of 2 ms and more get them
        timed = task.model_copy(update={"timing": task.timing.model_copy(update={"graphs": graphs})})
        (r,) = evaluate_in_order([(timed, source.replace("class Model(", "class ModelNew("))])
        assert r.status == Status.OK and r.speedup, r.message
        notes = r.device.extra["clock"]["events_batch"]["candidate_notes"]
        assert notes["placed"] == 1.0 and notes["outputs_copied"] == 0.0, (graphs, notes)
        assert (notes["graphs"] > 0) == graphs, notes
        assert r.device.extra["device_peak_during"], r.device.extra  # what the evaluation did at its memory peak


def test_a_candidate_holding_the_device_memory_gets_the_out_of_memory_verdict_never_a_harness_error():
    """After the correctness calls, the candidate's forward takes every free byte of device memory and keeps it:
    whichever side then runs out (its own allocations, or the judge, which checked the problem fitted before any
    candidate code ran), the verdict is the candidate's out_of_memory, not an infra error (a bench would retry that
    forever)."""
    task = small_task()
    hog = ("import torch\n_hog, _calls = [], [0]\n"
           "def _grab():\n    for chunk in (1 << 30, 1 << 26, 1 << 21):\n        while True:\n"
           "            try:\n                _hog.append(torch.empty(chunk, dtype=torch.uint8, device='cuda'))\n"
           "            except torch.cuda.OutOfMemoryError:\n                break\n")
    src = hog + GOOD.replace("        out = torch.empty_like(x)", "        out = torch.empty_like(x)\n"
                             "        _calls[0] += 1\n        if _calls[0] == 4:\n            _grab()")
    (r,) = evaluate_in_order([(task, src)])
    assert r.status == Status.FAILED and r.error_kind == ErrorKind.OOM, (r.status, r.error_kind, r.message)


def test_an_evaluation_waits_while_another_judge_times_on_its_device():
    """Judges sharing a GPU: one holding the device's lock exclusively (timing) keeps another's evaluation from
    starting; released, the evaluation runs and is timed."""
    import threading

    from ksdk.evaluation.device_lock import DeviceLock, default_path

    other = DeviceLock(default_path(0))
    other.exclusive()
    out: list = []
    t = threading.Thread(target=lambda: out.extend(evaluate_in_order([(small_task(), GOOD)])), daemon=True)
    t.start()
    try:
        t.join(20)  # the judge starts (seconds), then waits at the lock
        assert t.is_alive() and not out, "an evaluation ran while another judge held the device exclusively"
    finally:
        other.release()
    t.join(300)
    (r,) = out
    assert r.status == Status.OK and r.stage == Stage.PERFORMANCE, r.message
    assert r.stages.get("device lock", 0.0) > 0
