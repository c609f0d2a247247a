"""The judge's reading of a call's two in-process records (aten ops, kernel launches): every branch of
ksdk.evaluation.kernel_policy."""

from ksdk.evaluation.kernel_policy import kernel_verdict, record_warning

GEMM = "sm90_xmma_gemm_f32f32_tf32f32_f32_tn_n_tilesize128x128x32_warpgroupsize1x1x1_execute_segment_k_off_kernel"
RELU = "_ZN2at6native29vectorized_elementwise_kernelILi4EZZZNS0_49_GLOBAL__N__d2ba64fb_16_TensorCompare_cu_71e0"
FILL = "_ZN2at6native29vectorized_elementwise_kernelILi4ENS0_11FillFunctorIfEESt5arrayIPcLm1EEEEviT0_T1_"


def kernels(jit=(), compute=(), bookkeeping=(), graph=()):
    return {"jit": list(jit), "library-compute": list(compute), "library-bookkeeping": list(bookkeeping),
            "graph": list(graph)}


def test_an_honest_call_passes():
    seen = kernels(jit=["fused_kernel"], bookkeeping=[FILL])
    assert kernel_verdict(["aten::empty_like", "aten::zeros"], seen, False, 1, []) is None


def test_a_record_that_was_switched_off_is_a_reward_hack():
    message = kernel_verdict(["aten::empty_like"], None, True, 1, [])
    assert message and "switched off" in message


def test_no_record_is_no_verdict_but_a_warning():
    assert kernel_verdict(["aten::relu"], None, False, 1, []) is None
    warning = record_warning(None, "no libcupti found", False)
    assert warning and "no libcupti found" in warning
    assert record_warning(kernels(), None, False) is None and record_warning(None, "x", True) is None


def test_library_compute_the_task_does_not_allow_is_named():
    message = kernel_verdict(["aten::relu"], kernels(jit=["fused_kernel"], compute=[RELU]), False, 1, [])
    assert message and message.startswith("PyTorch/cuBLAS computed part of the output") and RELU in message


def test_library_compute_the_op_recorder_did_not_see_is_a_disagreement():
    seen = kernels(jit=["copy_kernel"], compute=[RELU, RELU])
    message = kernel_verdict(["aten::empty_like"], seen, False, 1, [])
    assert message and "did not report" in message and message.count(RELU) == 1
    # also where the task allows some op: the recorder saw no compute op at all
    assert "did not report" in kernel_verdict([], kernels(compute=[GEMM]), False, 1, ["aten::mm"])


def test_allowed_ops_explain_library_compute_the_op_recorder_saw():
    seen = kernels(jit=["silu_bias_kernel"], compute=[GEMM])
    assert kernel_verdict(["aten::mm", "aten::empty_like"], seen, False, 1, ["aten::mm"]) is None
    assert kernel_verdict(None, seen, False, 1, ["aten::mm"]) is None  # ops not recorded this call


def test_triton_launches_the_record_never_saw_mean_it_was_switched_off():
    message = kernel_verdict(["aten::empty_like"], kernels(bookkeeping=[FILL]), False, 2, [])
    assert message and "launch hook counted 2" in message and "switched off" in message
    assert kernel_verdict([], kernels(), False, 0, []) is None  # no launches either way


def test_a_graph_replay_cannot_be_attributed():
    message = kernel_verdict([], kernels(jit=["decoy"], graph=["cuGraphLaunch"]), False, 1, [])
    assert message and "CUDA graph" in message


def test_a_task_that_allows_any_torch_has_no_verdict():
    assert kernel_verdict([], kernels(compute=[RELU], graph=["cuGraphLaunch"]), False, 3, ["*"]) is None
    assert kernel_verdict([], None, True, 3, ["*"]) is None


def test_long_name_lists_are_shortened():
    seen = kernels(compute=[f"_Zkernel{i}" for i in range(20)])
    message = kernel_verdict(["aten::relu"], seen, False, 0, [])
    assert "_Zkernel5" in message and "_Zkernel6" not in message and "and 14 more" in message
