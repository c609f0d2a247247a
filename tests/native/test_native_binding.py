"""The REAL cffi binding driven against the runtime test double, under both dialects' name tables."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from ksdk_native.binding import Binding, MissingSymbol, NativeError, timed_samples
from ksdk_native.compiler import compile_source
from ksdk_native.dialect import MACA, ToolchainNotFound, locate
from nativekit import host_kernel


@pytest.fixture(params=["maca", "cuda"])
def opened(request, maca_root, cuda_double):
    """(binding, dialect) opened on device 0 of a fresh double."""
    dialect = MACA if request.param == "maca" else cuda_double[0]
    b = Binding(dialect, locate(dialect))
    b.open(0)
    return b, dialect


def _vector_add_function(b: Binding, dialect, expr="a[i] + b[i]"):
    compiled = compile_source(dialect, locate(dialect).compiler, host_kernel(expr), arch=None)
    return b.get_function(b.load_module(compiled.image), "vector_add")


def test_memory_round_trip_and_memset(opened):
    b, _ = opened
    x = np.arange(1000, dtype=np.float32)
    p = b.malloc(x.nbytes)
    b.copy_to_device(p, x)
    y = np.zeros_like(x)
    b.copy_to_host(y, p)
    np.testing.assert_array_equal(x, y)
    b.memset(p, 0xFF, x.nbytes)
    b.copy_to_host(y, p)
    assert np.isnan(y).all()  # 0xFF bytes are NaN: the poison outputs get
    b.free(p)


def test_launch_through_module_api_computes(opened):
    b, dialect = opened
    fn = _vector_add_function(b, dialect)
    n = 1000
    a, c = np.random.rand(n).astype(np.float32), np.random.rand(n).astype(np.float32)
    pa, pc, po = b.malloc(a.nbytes), b.malloc(c.nbytes), b.malloc(a.nbytes)
    b.copy_to_device(pa, a)
    b.copy_to_device(pc, c)
    stream = b.stream_create()
    b.launch(fn, [8], [128], 0, stream, [("ptr", pa), ("ptr", pc), ("ptr", po), ("int64", n)])
    b.synchronize(stream)
    out = np.empty_like(a)
    b.copy_to_host(out, po)
    np.testing.assert_allclose(out, a + c)
    assert b.function_attributes(fn) == {"max_threads_per_block": 1024, "shared_size_bytes": 0,
                                         "local_size_bytes": 8, "num_regs": 32}


def test_event_timing_gives_one_sample_per_repetition(opened):
    b, dialect = opened
    fn = _vector_add_function(b, dialect)
    n = 4096
    bufs = [b.malloc(4 * n) for _ in range(3)]
    flush = (b.malloc(1 << 20), 1 << 20)
    stream = b.stream_create()
    launch = b.prepare(fn, [32], [128], 0, [("ptr", p) for p in bufs] + [("int64", n)])
    samples = timed_samples(b, stream, launch, warmup=2, repetitions=5, min_time_ms=0.0, max_repetitions=7,
                            flush=flush)
    assert len(samples) == 5 and all(s >= 0 for s in samples)


def test_errors_name_the_call_and_carry_the_runtime_text(opened):
    b, dialect = opened
    with pytest.raises(NativeError) as e:
        b.malloc(1 << 40)
    symbol = dialect.functions["malloc"][1]
    assert e.value.symbol == symbol and e.value.code == 2
    assert f"{symbol} failed with error 2: out of memory (test double)" in str(e.value)
    with pytest.raises(NativeError, match="device kernel image is invalid"):
        b.load_module(b"not an ELF image at all")
    compiled = compile_source(dialect, locate(dialect).compiler, host_kernel(), arch=None)
    with pytest.raises(NativeError, match="named symbol not found.*kernel 'nope'"):
        b.get_function(b.load_module(compiled.image), "nope")
    with pytest.raises(NativeError, match="invalid argument"):
        b.launch(_vector_add_function(b, dialect), [1], [2048], 0, b.stream_create(), [])


def test_driver_error_strings_use_the_out_parameter(cuda_double):
    dialect, _ = cuda_double
    b = Binding(dialect, locate(dialect))
    assert dialect.error_strings["driver"][1] == "out"
    assert b.error_string("driver", 500) == "named symbol not found (test double)"
    assert b.error_string("runtime", 2) == "out of memory (test double)"


def test_a_kernel_fault_is_sticky_and_surfaces_at_synchronize(opened):
    b, dialect = opened
    fault = host_kernel("a[i]") .replace("return 0;\n}", "return n > 0;\n}")  # "faults" after writing
    compiled = compile_source(dialect, locate(dialect).compiler, fault, arch=None)
    fn = b.get_function(b.load_module(compiled.image), "vector_add")
    p = b.malloc(64)
    stream = b.stream_create()
    b.launch(fn, [1], [4], 0, stream, [("ptr", p)] * 3 + [("int64", 4)])  # asynchronous: no error yet
    with pytest.raises(NativeError) as e:
        b.synchronize(stream)
    assert e.value.code == 700 and "illegal memory access" in str(e.value)
    assert e.value.sticky == (dialect.name == "cuda")  # MACA's codes are unknown: the runner assumes a fault
    with pytest.raises(NativeError):
        b.malloc(16)  # every later call fails: the worker must be recycled


def test_missing_symbol_is_a_readable_error(maca_root):
    broken = dataclasses.replace(MACA, functions={**MACA.functions, "malloc": ("runtime", "mcMallocV9")})
    b = Binding(broken, locate(broken))
    with pytest.raises(MissingSymbol, match="does not export mcMallocV9"):
        b.malloc(16)


def test_unloadable_library_is_reported_with_its_path(maca_root):
    (maca_root / "lib" / "libmcruntime.so").write_bytes(b"garbage")
    with pytest.raises(ToolchainNotFound, match="cannot load .*libmcruntime.so"):
        Binding(MACA, locate(MACA))


def test_buffers_free_what_they_allocated_when_an_allocation_fails_partway(opened):
    """An output too large for the device: the inputs already copied in are freed, not leaked."""
    from types import SimpleNamespace

    from ksdk_native.runner import Buffers, HostValue

    b, _ = opened
    live: list[int] = []

    class Counting:  # the real binding, counting live allocations
        def malloc(self, n):
            p = b.malloc(n)
            live.append(p)
            return p

        def free(self, p):
            live.remove(p)
            b.free(p)

        def copy_to_device(self, p, a):
            b.copy_to_device(p, a)

    small = HostValue(array=np.ones(16, np.float32), dtype="float32")
    huge = HostValue(array=np.lib.stride_tricks.as_strided(np.zeros(1, np.float32), (2**31,), (0,)), dtype="float32")
    with pytest.raises(NativeError):
        Buffers(SimpleNamespace(binding=Counting()), [small, small], [huge], [])
    assert live == []
