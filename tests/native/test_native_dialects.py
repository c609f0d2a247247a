"""Dialects as data: cffi declarations, compiler command lines, discovery and its error messages."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import cffi
import pytest

from ksdk.models import Availability
from ksdk_cuda_nvidia.backend import CudaNvidiaBackend
from ksdk_maca_metax.backend import MacaMetaxBackend
from ksdk_native.cdefs import SIGNATURES, cdef_text
from ksdk_native.compiler import CompileError, compile_source, first_error_line
from ksdk_native.dialect import CUDA, DIALECTS, MACA, ToolchainNotFound, locate, target_arch


@pytest.mark.parametrize("dialect", list(DIALECTS.values()), ids=list(DIALECTS))
def test_cdefs_parse_and_hold_only_scalars_and_pointers(dialect):
    text = cdef_text(dialect)
    ffi = cffi.FFI()
    ffi.cdef(text)  # raises on anything cffi cannot parse
    assert "struct" not in text and "enum" not in text
    for _call, (_lib, symbol) in dialect.functions.items():
        assert f" {symbol}(" in text


def test_cdefs_reject_unknown_calls_and_incomplete_tables():
    with pytest.raises(ValueError, match="unknown logical call"):
        cdef_text(dataclasses.replace(MACA, functions={**MACA.functions, "teleport": ("runtime", "mcTeleport")}))
    no_copy = {k: v for k, v in MACA.functions.items() if k != "memcpy_htod"}
    with pytest.raises(ValueError, match="memcpy_htod"):
        cdef_text(dataclasses.replace(MACA, functions=no_copy))
    assert set(SIGNATURES) >= set(CUDA.functions) | set(MACA.functions)


def test_the_dialects_differ_as_the_vendors_do():
    assert {lib for lib, _ in MACA.functions.values()} == {"runtime"}  # one library: libmcruntime
    assert CUDA.functions["launch_kernel"] == ("driver", "cuLaunchKernel")
    assert CUDA.functions["malloc"] == ("runtime", "cudaMalloc")
    assert MACA.functions["launch_kernel"] == ("runtime", "mcModuleLaunchKernel")
    assert CUDA.error_strings["driver"] == ("cuGetErrorString", "out")
    assert MACA.memcpy_kinds is None and "memcpy" not in MACA.functions  # unconfirmed enum avoided
    assert not MACA.func_attributes_confirmed and not MACA.device_attributes
    assert (CUDA.wave_size, MACA.wave_size) == (32, 64)


def test_compiler_command_lines():
    assert CUDA.compile_command("/cuda/bin/nvcc", "candidate.cu", "candidate.cubin", "sm_90") == [
        "/cuda/bin/nvcc", "-cubin", "-O3", "-lineinfo", "-arch=sm_90", "-o", "candidate.cubin", "candidate.cu"]
    assert MACA.compile_command("/opt/maca/mxgpu_llvm/bin/mxcc", "k.maca", "k.mcfatbin", "xcore1000") == [
        "/opt/maca/mxgpu_llvm/bin/mxcc", "-x", "maca", "-fatbin", "-O3", "-lineinfo", "--offload-arch=xcore1000",
        "-o", "k.mcfatbin", "k.maca"]
    assert MACA.compile_command("mxcc", "k.maca", "k.bin", None, environ={
        "KSDK_MACA_COMPILE_FLAGS": "-x maca -device-obj -O2"}) == ["mxcc", "-x", "maca", "-device-obj", "-O2",
                                                                    "-o", "k.bin", "k.maca"]


def test_target_arch_override_detection_default():
    assert target_arch(CUDA, environ={}) == "sm_90"
    assert target_arch(CUDA, detected="sm_100", environ={}) == "sm_100"
    assert target_arch(CUDA, detected="sm_100", environ={"KSDK_CUDA_ARCH": "sm_90a"}) == "sm_90a"
    assert target_arch(MACA, environ={"KSDK_MACA_ARCH": "xcore1500"}) == "xcore1500"


def test_error_lines_from_nvcc_and_clang_style_messages():
    assert first_error_line('candidate.cu(12): error: identifier "x" is undefined') == 12
    assert first_error_line("warning first\ncandidate.maca:7:3: error: use of undeclared identifier") == 7
    assert first_error_line("candidate.cu(3): warning: unused\ncandidate.cu(9): error: bad") == 9
    assert first_error_line("ld: something else") is None


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="needs nvcc (the CUDA toolkit)")
def test_nvcc_really_compiles_a_candidate_to_a_cubin_and_maps_errors():
    src = (Path(__file__).parents[2] / "examples" / "maca_metax" / "seed.cu").read_text()
    compiled = compile_source(CUDA, shutil.which("nvcc"), src, "sm_90")
    assert compiled.image[:4] == b"\x7fELF" and "-cubin" in compiled.command
    broken = src.replace("float v = xr[c] + bias[c];", "float v = xr[c] + undefined_bias[c];")
    with pytest.raises(CompileError) as e:
        compile_source(CUDA, shutil.which("nvcc"), broken, "sm_90")
    assert e.value.line == broken.splitlines().index(
        next(line for line in broken.splitlines() if "undefined_bias" in line)) + 1
    assert "candidate.cu(" in e.value.message and "/tmp/" not in e.value.message


# -- discovery ---------------------------------------------------------------------------------------------
@pytest.fixture
def no_maca(monkeypatch):
    for var in ("MACA_PATH", "MACA_HOME"):
        monkeypatch.delenv(var, raising=False)


def test_maca_without_any_install_is_unavailable_with_reason_and_fix(no_maca):
    if locate_or_none(MACA) is not None:
        pytest.skip("a MACA SDK is installed here")
    a = MacaMetaxBackend.probe()
    assert isinstance(a, Availability) and not a.available
    assert "libmcruntime.so" in a.reason and "/opt/maca" in a.reason
    assert "MACA_PATH" in a.fix and 'ksdk[maca]' in a.fix


def locate_or_none(dialect):
    try:
        return locate(dialect)
    except ToolchainNotFound:
        return None


def test_maca_path_wins_over_maca_home(tmp_path, monkeypatch, maca_root):
    other = tmp_path / "other"
    shutil.copytree(maca_root, other)
    monkeypatch.setenv("MACA_HOME", str(other))
    assert locate(MACA).libraries["runtime"] == maca_root / "lib" / "libmcruntime.so"
    monkeypatch.delenv("MACA_PATH")
    tc = locate(MACA)
    assert tc.libraries["runtime"] == other / "lib" / "libmcruntime.so"
    assert tc.compiler == other / "mxgpu_llvm" / "bin" / "mxcc"


def test_maca_path_without_the_compiler_says_so(maca_root):
    (maca_root / "mxgpu_llvm" / "bin" / "mxcc").unlink()
    with pytest.raises(ToolchainNotFound, match="compiler mxcc was not found") as e:
        locate(MACA, environ={"MACA_PATH": str(maca_root), "PATH": "/usr/bin:/bin"})
    assert "MACA_PATH" in e.value.fix
    assert not MacaMetaxBackend.probe().available


def test_maca_path_to_an_empty_directory_names_what_was_searched(tmp_path, monkeypatch, no_maca):
    monkeypatch.setenv("MACA_PATH", str(tmp_path))
    with pytest.raises(ToolchainNotFound) as e:
        locate(MACA, ldcache={})
    assert f"MACA_PATH={tmp_path}" in e.value.reason and str(tmp_path / "lib") in e.value.reason


def test_maca_probe_with_the_double_is_available_and_names_the_device(maca_root):
    a = MacaMetaxBackend.probe()
    assert a.available and a.devices[0].name == "ksdk runtime test double (host CPU)"


def test_broken_runtime_library_makes_the_probe_explain(maca_root):
    (maca_root / "lib" / "libmcruntime.so").write_bytes(b"not a library")
    a = MacaMetaxBackend.probe()
    assert not a.available and "cannot load" in a.reason and a.fix


def test_cuda_without_a_driver_is_unavailable_with_reason_and_fix():
    if locate_or_none(CUDA) is not None:
        pytest.skip("an NVIDIA driver is installed here")
    a = CudaNvidiaBackend.probe()
    assert not a.available and a.reason and "NVIDIA driver" in a.fix and a.fallback is None


def test_device_binding_variables(monkeypatch):
    monkeypatch.delenv("MACA_VISIBLE_DEVICES", raising=False)
    assert MacaMetaxBackend.device_env(1) == {"MACA_VISIBLE_DEVICES": "1"}
    monkeypatch.setenv("MACA_VISIBLE_DEVICES", "4,6")
    assert MacaMetaxBackend.device_env(1) == {"MACA_VISIBLE_DEVICES": "6"}
    assert "MACA_*" in MacaMetaxBackend.env_allowlist()
    assert "CUDA_VISIBLE_DEVICES" in CudaNvidiaBackend.device_env(0)
