"""cpu_c's pure helpers: the entry scan, the signature convention, the compiler's line mapping."""

import numpy as np
import pytest

from ksdk_cpu_example import compiler, signature
from ksdk_cpu_example.reference import task_spec


def test_entry_scan_ignores_comments_strings_and_declarations():
    src = '/* void kernel(int x) { } */\nconst char* s = "kernel(){";\nvoid kernel(int);\n\nvoid kernel(int x)\n{ }\n'
    assert compiler.find_entry(src, "kernel") == 5
    assert compiler.find_entry("void kernel(int);", "kernel") is None
    assert compiler.find_entry("void my_kernel(int x) {}", "kernel") is None


def test_signature_orders_inputs_weights_outputs_then_sizes():
    a, w, o = np.zeros((2, 3), np.float32), np.zeros(3, np.float64), np.zeros(2, np.int64)
    sig = signature.build("f", [a, 2.0, 7], [w], [o])
    assert sig.prototype() == ("void f(const float* in0, double in1, long in2, const double* w0, int64_t* out0, "
                               "long in0_d0, long in0_d1, long w0_d0);")


def test_unsupported_dtype_names_the_tensor_and_the_fix():
    with pytest.raises(signature.SignatureError, match="input 0 has dtype float16.*convert it"):
        signature.build("f", [np.zeros(2, np.float16)], [], [])


def test_task_spec_reads_entry_and_baseline_literals():
    spec = task_spec('C_ENTRY = "mm"\nC_BASELINE = "void mm(void) {}"\n')
    assert (spec.entry, spec.baseline_c) == ("mm", "void mm(void) {}")
    assert task_spec("x = 1\n").entry == "kernel"


def test_compile_and_call_through_cffi(tmp_path, monkeypatch):
    monkeypatch.setenv("KSDK_CPU_CACHE", str(tmp_path))
    proto = "void twice(const float* in0, float* out0, long in0_d0);"
    src = "void twice(const float* x, float* y, long n) { for (long i = 0; i < n; i++) y[i] = 2 * x[i]; }"
    built = compiler.build(src, proto, "twice")
    x, y = np.arange(5, dtype=np.float32), np.zeros(5, np.float32)
    built.fn(built.ffi.cast("const float*", x.ctypes.data), built.ffi.cast("float*", y.ctypes.data), 5)
    assert y.tolist() == [0, 2, 4, 6, 8]
    assert compiler.compile_source(src, proto) == built.path  # cached by content


def test_an_undefined_function_is_a_link_error(tmp_path, monkeypatch):
    monkeypatch.setenv("KSDK_CPU_CACHE", str(tmp_path))
    src = "void helper(void);\nvoid f(void) {\n  helper();\n}\n"
    with pytest.raises(compiler.CompileError, match="helper"):
        compiler.compile_source(src, "void f(void);")


def test_the_compile_cache_is_used_only_when_it_is_private(tmp_path, monkeypatch):
    """A cache another user could write into could have this process load their code: it is not used."""
    import os

    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    monkeypatch.setenv("KSDK_CPU_CACHE", str(shared))
    assert compiler._cache_dir() is None
    private = tmp_path / "private"
    monkeypatch.setenv("KSDK_CPU_CACHE", str(private))
    assert compiler._cache_dir() == private and (private.stat().st_mode & 0o777) == 0o700


def test_a_cached_object_whose_content_changed_is_rebuilt(tmp_path, monkeypatch):
    """Objects are keyed by content, and each one's digest is checked before it is loaded."""
    monkeypatch.setenv("KSDK_CPU_CACHE", str(tmp_path / "cache"))
    proto = "void kernel(const float* in0, float* out0, long in0_d0);"
    src = "void kernel(const float* a, float* out, long n) { for (long i = 0; i < n; i++) out[i] = a[i]; }"
    first = compiler.compile_source(src, proto)
    assert compiler._cached(first)
    first.write_bytes(first.read_bytes() + b"tampered")  # another build's object, or a poisoned one
    assert not compiler._cached(first)
    again = compiler.compile_source(src, proto)
    assert again == first and compiler._cached(again)
