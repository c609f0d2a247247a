"""The kernel record's pure parts on real kernel names (as CUPTI's symbolName and profilers print them), its ctypes
plumbing, and its failure to start without a usable libcupti. (tests/triton/test_kernel_log_gpu.py runs it live.)"""

from __future__ import annotations

import ctypes

import pytest

from ksdk_triton_nvidia import kernel_log
from ksdk_triton_nvidia.kernel_log import DRIVER, RUNTIME, KernelLog, Launch, attribute, classify, summary

COMPUTE = [
    # cuBLAS gemv (C++ template) and the Hopper / Ampere / CUTLASS GEMMs cuBLAS(Lt) picks
    "_Z17gemv2T_kernel_valIiiffffLi128ELi16ELi4ELi4ELb0ELb1E18cublasGemvParamsExIi30cublasGemvTensorStridedBatchedIKfES3_"
    "S1_IfEfEEvT11_T4_S7_",
    "nvjet_tst_128x64_64x8_1x2_v_bz_TNN",
    "sm90_xmma_gemm_f32f32_tf32f32_f32_tn_n_tilesize128x128x32_warpgroupsize1x1x1_execute_segment_k_off_kernel__5x_"
    "cublas",
    "ampere_sgemm_128x64_tn",
    "_ZN7cutlass7Kernel2I50cutlass_80_tensorop_s1688gemm_64x64_16x6_tn_align4EEvNT_6ParamsE",
    "cutlass3x_sm100_simt_sgemm_f32_f32_f32_f32_f32_64x32x16_1x1x1_3_ntn_align1_bias_f32_relu",
    "cudnn_generated_fort_native_sdpa_sm90_flash_fprop_wgmma_f16_knob_3_64x64x128_4x1x1_kernel0_0",
    # PyTorch elementwise ops: relu (clamp), add, gelu, eq; softmax; as a profiler demangles one
    "_ZN2at6native29vectorized_elementwise_kernelILi4EZZZNS0_49_GLOBAL__N__d2ba64fb_16_TensorCompare_cu_71e06f4e19launch"
    "_clamp_scalarERNS_18TensorIteratorBaseEN3c106ScalarES6_NS0_6detail11ClampLimitsEENKUlvE_clEvENKUlvE5_clEvEUlfE_St5"
    "arrayIPcLm2EEEEviT0_T1_",
    "_ZN2at6native29vectorized_elementwise_kernelILi4ENS0_15CUDAFunctor_addIfEESt5arrayIPcLm3EEEEviT0_T1_",
    "_ZN2at6native29vectorized_elementwise_kernelILi4EZZZNS0_18GeluCUDAKernelImplERNS_18TensorIteratorBaseENS0_8GeluTypeE"
    "ENKUlvE0_clEvENKUlvE2_clEvEUlN3c108BFloat16EE_NS_6detail5ArrayIPcLi2EEEEEviT0_T1_",
    "_ZN2at6native29vectorized_elementwise_kernelILi4ENS0_13AUnaryFunctorIllbNS0_51_GLOBAL__N__28ce311f_18_CompareEQKernel"
    "_cu_d8008c9616CompareEqFunctorIlEEEENS_6detail5ArrayIPcLi2EEEEEviT0_T1_",
    "_ZN43_GLOBAL__N__b6de9c8c_10_SoftMax_cu_9f978f6320softmax_warp_forwardIfffLi7ELb0ELb0EEEvPT0_PKT_iiiPKbib",
    "void at::native::vectorized_elementwise_kernel<4, at::native::CUDAFunctor_add<float>, std::array<char*, 3ul> >("
    "int, at::native::CUDAFunctor_add<float>, std::array<char*, 3ul>)",
    # names that contain "copy" or "fill" but compute: copysign, masked_fill
    "_ZN2at6native29vectorized_elementwise_kernelILi4EZZZNS0_20copysign_kernel_cudaERNS_18TensorIteratorBaseEENKUlvE_clEv"
    "ENKUlvE1_clEvEUlffE_St5arrayIPcLm3EEEEviT0_T1_",
    "_ZN2at6native29vectorized_elementwise_kernelILi4EZZZNS0_18masked_fill_kernelERNS_14TensorIteratorERKN3c106ScalarEENK"
    "UlvE_clEvENKUlvE5_clEvEUlfbE_St5arrayIPcLm3EEEEviT0_T1_",
    # torch.compile's kernels: Triton, but generated from PyTorch code
    "triton_poi_fused_add_relu_0", "triton_red_fused__softmax_0", "triton_per_fused_sum_1",
]
BOOKKEEPING = [
    # zeros / fill_ / zero_
    "_ZN2at6native29vectorized_elementwise_kernelILi4ENS0_11FillFunctorIfEESt5arrayIPcLm1EEEEviT0_T1_",
    "void at::native::vectorized_elementwise_kernel<4, at::native::FillFunctor<float>, std::array<char*, 1ul> >(int, "
    "at::native::FillFunctor<float>, std::array<char*, 1ul>)",
    # copy_ / contiguous / clone, and _to_copy casts (float -> half, bfloat16)
    "_ZN2at6native29vectorized_elementwise_kernelILi4EZZZNS0_23direct_copy_kernel_cudaERNS_18TensorIteratorBaseEENKUlvE1"
    "_clEvENKUlvE7_clEvEUlfE_St5arrayIPcLm2EEEEviT0_T1_",
    "_ZN2at6native29vectorized_elementwise_kernelILi4EZZZNS0_23direct_copy_kernel_cudaERNS_18TensorIteratorBaseEENKUlvE1"
    "_clEvENKUlvE8_clEvEUlN3c104HalfEE_St5arrayIPcLm2EEEEviT0_T1_",
    "_ZN2at6native18elementwise_kernelILi128ELi4EZNS0_22gpu_kernel_impl_nocastIZZZNS0_23direct_copy_kernel_cudaERNS_18Tens"
    "orIteratorBaseEENKUlvE1_clEvENKUlvE12_clEvEUlN3c108BFloat16EE_EEvS4_RKT_EUliE_EEviT1_",
    "void at::native::unrolled_elementwise_kernel<at::native::direct_copy_kernel_cuda(at::TensorIteratorBase&)::{lambda"
    "()#3}::operator()() const::{lambda()#7}::operator()() const::{lambda(float)#1}, std::array<char*, 2ul>, 4>",
    # cat
    "_ZN2at6native12_GLOBAL__N_126CatArrayBatchedCopy_contigINS1_10OpaqueTypeILj4EEEjLi2ELi128ELi1EEEvPT_NS1_25CatArrInpu"
    "tTensorMetadataIS5_T0_XT2_EXT3_EEENS1_16TensorSizeStrideIS8_Lj4EEEiS8_",
    # arange
    "_ZN2at6native29elementwise_kernel_with_indexIiZZZZNS0_15arange_cuda_outERKN3c106ScalarES6_S6_RNS_6TensorEENKUlvE_clEv"
    "ENKUlvE_clEvEUllE_EEvT_T0_PN15function_traitsIS9_E11result_typeE",
]
JIT = ["fused_kernel", "softmax_kernel", "matmul_kernel", "gemm_kernel", "_attn_fwd", "add_kernel_0d1d2d3de"]


@pytest.mark.parametrize("name", COMPUTE)
def test_library_compute_kernels(name):
    assert classify(name, "cudaLaunchKernel_v7000") == "library-compute"


@pytest.mark.parametrize("name", BOOKKEEPING)
def test_library_bookkeeping_kernels(name):
    assert classify(name, "cudaLaunchKernel_v7000") == "library-bookkeeping"


@pytest.mark.parametrize("name", JIT)
def test_triton_kernels_are_jit(name):
    assert classify(name, "cuLaunchKernelEx") == "jit"


@pytest.mark.parametrize("api", ["cuGraphLaunch", "cuGraphLaunch_ptsz", "cudaGraphLaunch_v10000"])
def test_graph_replays_are_seen_as_such(api):
    assert classify("", api) == "graph"


def test_a_triton_kernel_named_like_a_vendor_kernel_is_attributed_by_the_launch_hook_as_often_as_it_reported_it():
    seen = [Launch("ampere_sgemm_128x64_tn", "library-compute"), Launch("ampere_sgemm_128x64_tn", "library-compute"),
            Launch("triton_poi_fused_relu_0", "library-compute"), Launch("fused_kernel", "jit")]
    out = attribute(seen, ["ampere_sgemm_128x64_tn", "triton_poi_fused_relu_0", "fused_kernel"])
    assert [launch.kind for launch in out] == ["jit", "library-compute", "library-compute", "jit"]


def test_summary_lists_names_by_kind_in_launch_order_and_caps_them():
    seen = [Launch(f"k{i}", "jit") for i in range(5)] + [Launch("cuGraphLaunch", "graph")]
    out = summary(seen, cap=3)
    assert out["jit"] == ["k0", "k1", "k2"] and out["graph"] == ["cuGraphLaunch"]
    assert out["library-compute"] == [] and out["library-bookkeeping"] == []


def _callback_data(site: int, api: bytes, symbol: bytes):
    data = kernel_log._CallbackData(callbackSite=site, functionName=api, symbolName=symbol)
    return data, ctypes.addressof(data)


def test_the_callback_reads_cupti_callback_data_through_ctypes_and_counts_a_runtime_launch_once():
    log = KernelLog()
    thunk = kernel_log._CALLBACK(log._on_callback)  # the C function pointer CUPTI would call
    fill = b"_ZN2at6native29vectorized_elementwise_kernelILi4ENS0_11FillFunctorIfEESt5arrayIPcLm1EEEEviT0_T1_"
    calls = [(RUNTIME, 211, 0, b"cudaLaunchKernel", fill),
             (DRIVER, 307, 0, b"cuLaunchKernel", b"_ZN2at6native29vectorized"),  # the runtime's own driver call
             (DRIVER, 307, 1, b"cuLaunchKernel", b""), (RUNTIME, 211, 1, b"cudaLaunchKernel", b""),
             (DRIVER, 652, 0, b"cuLaunchKernelEx", b"fused_kernel"), (DRIVER, 652, 1, b"cuLaunchKernelEx", b""),
             (DRIVER, 514, 0, b"cuGraphLaunch", None)]
    keep = []
    for domain, cbid, site, api, symbol in calls:
        data, address = _callback_data(site, api, symbol)
        keep.append(data)
        thunk(None, domain, cbid, address)
    thunk(None, DRIVER, 307, None)  # no data: ignored
    assert log.faults == 0
    assert [(launch.kind, launch.api) for launch in log.recorded()] == [
        ("library-bookkeeping", "cudaLaunchKernel"), ("jit", "cuLaunchKernelEx"), ("graph", "cuGraphLaunch")]
    assert log.recorded()[1].name == "fused_kernel" and log.recorded()[2].name == "cuGraphLaunch"


def test_without_a_usable_libcupti_the_record_is_unavailable_with_the_reason_and_nothing_fails():
    log = KernelLog()
    reason = log.start(paths=["/nonexistent/libcupti.so.13"])
    assert reason and "cannot load" in reason and not log.available()
    assert log.start() == reason  # once per process
    log.window()
    assert log.since() == []
    log.pause()
    assert log.fields([], ["fused_kernel"]) == (None, reason, False)
    assert KernelLog().start(paths=[]) == "no libcupti found"


def test_a_record_that_ran_and_stopped_is_reported_lost_not_unavailable():
    log = KernelLog()
    log.error, log._started = None, True  # as after a successful start
    log.lost = "the CUPTI subscriber is gone (CUPTI_ERROR_INVALID_PARAMETER)"
    kernels, reason, lost = log.fields([], [])
    assert kernels is None and lost and "subscriber is gone" in reason


def _installed_cupti():
    for path in kernel_log.library_paths():
        try:
            lib = ctypes.CDLL(path)
            kernel_log.bind(lib)
            return lib
        except (OSError, AttributeError):
            continue
    pytest.skip("no libcupti on this machine")


def test_the_launch_callback_ids_are_the_ones_the_installed_cupti_names_and_it_names_no_other_launch_function():
    lib = _installed_cupti()
    wanted, notes = kernel_log.launch_ids(lambda d, c: kernel_log.callback_name(lib, d, c))
    assert notes == []
    assert {(d, c) for d, c, _ in wanted} == {(d, c) for d, c, _ in kernel_log.LAUNCH_IDS}
