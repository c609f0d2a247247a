"""The native runtime through cffi (ABI mode): memory, streams, events, modules and launches for any dialect.

Every call's status is checked; a failure raises NativeError naming the call, the exported symbol, the
code and the runtime's own error string. Device pointers travel as Python ints.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional, Sequence

from ksdk.errors import KsdkError
from ksdk_native.cdefs import cdef_text
from ksdk_native.dialect import Dialect, Toolchain, ToolchainNotFound

# Kernel argument types a launch description may use, and their C types.
ARG_CTYPES = {
    "ptr": "void *", "int32": "int32_t", "int64": "int64_t", "uint32": "uint32_t", "uint64": "uint64_t",
    "float32": "float", "float64": "double",
}


class NativeError(KsdkError):
    """A runtime call returned an error status."""

    def __init__(self, call: str, symbol: str, code: int, text: str, sticky: bool, oom: bool, context: str = ""):
        where = f" ({context})" if context else ""
        super().__init__(f"{symbol} failed with error {code}: {text}{where}")
        self.call, self.symbol, self.code, self.text = call, symbol, code, text
        self.sticky, self.oom, self.context = sticky, oom, context


class MissingSymbol(KsdkError):
    """A library lacks a symbol the dialect's name table expects (wrong library or version)."""


@dataclass
class PreparedLaunch:
    """A launch with its arguments packed once, re-issued cheaply (timing loops)."""

    binding: "Binding"
    function: Any
    grid: tuple[int, int, int]
    block: tuple[int, int, int]
    shared: int
    params: Any
    keep: list

    def __call__(self, stream) -> None:
        self.binding._launch_packed(self.function, self.grid, self.block, self.shared, stream, self.params)


class Binding:
    """One dialect's runtime, loaded from full library paths."""

    def __init__(self, dialect: Dialect, toolchain: Toolchain):
        import cffi

        self.dialect, self.toolchain = dialect, toolchain
        self.ffi = cffi.FFI()
        self.ffi.cdef(cdef_text(dialect))
        self._libs: dict[str, Any] = {}
        opened: dict[str, Any] = {}
        for key, path in toolchain.libraries.items():
            if str(path) not in opened:
                try:
                    opened[str(path)] = self.ffi.dlopen(str(path))
                except OSError as e:
                    raise ToolchainNotFound(f"cannot load {path}: {e}", dialect.install_fix) from None
            self._libs[key] = opened[str(path)]
        self._fns: dict[str, Any] = {}
        self.device: Optional[int] = None
        self.ordinal: Optional[int] = None

    # -- calls and errors --------------------------------------------------------------------------
    def _fn(self, call: str):
        fn = self._fns.get(call)
        if fn is None:
            if call not in self.dialect.functions:
                raise MissingSymbol(f"dialect {self.dialect.name} names no symbol for {call}")
            lib_key, symbol = self.dialect.functions[call]
            try:
                fn = getattr(self._libs[lib_key], symbol)
            except AttributeError:
                raise MissingSymbol(
                    f"{self.toolchain.libraries[lib_key]} does not export {symbol} (needed for {call}): "
                    f"this {self.dialect.vendor} runtime is not the version ksdk's {self.dialect.name} dialect expects"
                ) from None
            self._fns[call] = fn
        return fn

    def check(self, call: str, *args, context: str = "") -> None:
        """Call a logical function; raise NativeError unless it returns the dialect's success value."""
        code = self._fn(call)(*args)
        if code != self.dialect.success:
            raise self.error(call, code, context)

    def error(self, call: str, code: int, context: str = "") -> NativeError:
        """The NativeError for `code` returned by `call`, with the runtime's error string."""
        lib_key, symbol = self.dialect.functions[call]
        return NativeError(call, symbol, int(code), self.error_string(lib_key, code),
                           sticky=int(code) in self.dialect.sticky_codes,
                           oom=int(code) in self.dialect.oom_codes, context=context)

    def error_string(self, lib_key: str, code: int) -> str:
        """The runtime's text for an error code, or a placeholder when it has none."""
        spec = self.dialect.error_strings.get(lib_key)
        if spec is None:
            return "(no error-string function)"
        symbol, style = spec
        try:
            fn = getattr(self._libs[lib_key], symbol)
        except AttributeError:
            return f"({symbol} not exported)"
        if style == "out":
            out = self.ffi.new("const char **")
            if fn(code, out) != self.dialect.success or out[0] == self.ffi.NULL:
                return "(unknown error code)"
            return self.ffi.string(out[0]).decode(errors="replace")
        text = fn(code)
        return self.ffi.string(text).decode(errors="replace") if text != self.ffi.NULL else "(unknown error code)"

    def _ptr(self, value) -> Any:
        if isinstance(value, int):
            return self.ffi.cast("void *", value)
        return self.ffi.NULL if value is None else value

    # -- devices ------------------------------------------------------------------------------------
    def device_count(self) -> int:
        n = self.ffi.new("int *")
        self.check("get_device_count", n)
        return int(n[0])

    def device_names(self, count: int) -> list[str]:
        """Device names without making any device current (for probes)."""
        if not self.dialect.has("device_get_name"):
            return [f"{self.dialect.vendor} device {i}" for i in range(count)]
        if self.dialect.has("init"):
            self.check("init", 0)
        names, buf, d = [], self.ffi.new("char[256]"), self.ffi.new("int *")
        for i in range(count):
            dev = i
            if self.dialect.has("device_get"):
                self.check("device_get", d, i)
                dev = int(d[0])
            self.check("device_get_name", buf, 256, dev)
            names.append(self.ffi.string(buf).decode(errors="replace"))
        return names

    def open(self, ordinal: int) -> None:
        """Make device `ordinal` current, with one context shared by runtime and module calls."""
        if self.dialect.has("init"):
            self.check("init", 0)
        self.check("set_device", ordinal, context=f"device {ordinal}")
        self.check("free", self.ffi.NULL, context="creating the runtime's context")  # the cudaFree(0) idiom
        device = ordinal
        if self.dialect.has("device_get"):
            d = self.ffi.new("int *")
            self.check("device_get", d, ordinal)
            device = int(d[0])
        if self.dialect.has("primary_ctx_retain") and self.dialect.has("ctx_set_current"):
            # The runtime works in the device's primary context; module calls must see the same one.
            ctx = self.ffi.new("void **")
            self.check("primary_ctx_retain", ctx, device)
            self.check("ctx_set_current", ctx[0])
        self.device, self.ordinal = device, ordinal

    def device_name(self) -> str:
        if not self.dialect.has("device_get_name"):
            return f"{self.dialect.vendor} device {self.ordinal}"
        buf = self.ffi.new("char[256]")
        self.check("device_get_name", buf, 256, self.device)
        return self.ffi.string(buf).decode(errors="replace")

    def device_attribute(self, name: str) -> Optional[int]:
        """A device attribute the dialect knows the number of, else None."""
        if name not in self.dialect.device_attributes or not self.dialect.has("device_get_attribute"):
            return None
        v = self.ffi.new("int *")
        self.check("device_get_attribute", v, self.dialect.device_attributes[name], self.device)
        return int(v[0])

    def versions(self) -> dict[str, str]:
        out = {}
        for call, key in (("runtime_get_version", "runtime"), ("driver_get_version", "driver")):
            if self.dialect.has(call):
                v = self.ffi.new("int *")
                try:
                    self.check(call, v)
                    out[f"{self.dialect.name}_{key}"] = str(int(v[0]))
                except (NativeError, MissingSymbol):
                    pass
        return out

    # -- memory -------------------------------------------------------------------------------------
    def malloc(self, size: int) -> int:
        p = self.ffi.new("void **")
        self.check("malloc", p, max(1, int(size)), context=f"{size} bytes")
        return int(self.ffi.cast("uintptr_t", p[0]))

    def free(self, ptr: int) -> None:
        self.check("free", self._ptr(ptr))

    def copy_to_device(self, dptr: int, host) -> None:
        """Copy a C-contiguous numpy array (or bytes) to device memory."""
        buf = self.ffi.from_buffer(host)
        n = len(buf)
        if self.dialect.memcpy_kinds is None:
            self.check("memcpy_htod", self._ptr(dptr), buf, n, context=f"{n} bytes host->device")
        else:
            self.check("memcpy", self._ptr(dptr), buf, n, self.dialect.memcpy_kinds["htod"],
                       context=f"{n} bytes host->device")

    def copy_to_host(self, host, dptr: int) -> None:
        """Copy device memory into a writable C-contiguous numpy array (its size sets the byte count)."""
        buf = self.ffi.from_buffer(host, require_writable=True)
        n = len(buf)
        if self.dialect.memcpy_kinds is None:
            self.check("memcpy_dtoh", buf, self._ptr(dptr), n, context=f"{n} bytes device->host")
        else:
            self.check("memcpy", buf, self._ptr(dptr), n, self.dialect.memcpy_kinds["dtoh"],
                       context=f"{n} bytes device->host")

    def memset(self, dptr: int, value: int, size: int, stream=None) -> None:
        if stream is None:
            self.check("memset", self._ptr(dptr), value, size)
        else:
            self.check("memset_async", self._ptr(dptr), value, size, self._ptr(stream))

    # -- streams and events -------------------------------------------------------------------------
    def stream_create(self):
        s = self.ffi.new("void **")
        self.check("stream_create", s)
        return s[0]

    def stream_destroy(self, stream) -> None:
        if self.dialect.has("stream_destroy"):
            self.check("stream_destroy", self._ptr(stream))

    def synchronize(self, stream=None, context: str = "") -> None:
        """Wait for `stream` (or the whole device); kernel faults surface here."""
        if stream is None and self.dialect.has("device_synchronize"):
            self.check("device_synchronize", context=context)
        else:
            self.check("stream_synchronize", self._ptr(stream), context=context)

    def event_create(self):
        e = self.ffi.new("void **")
        self.check("event_create", e)
        return e[0]

    def event_record(self, event, stream) -> None:
        self.check("event_record", event, self._ptr(stream))

    def event_synchronize(self, event) -> None:
        self.check("event_synchronize", event)

    def elapsed_ms(self, start, end) -> float:
        ms = self.ffi.new("float *")
        self.check("event_elapsed_time", ms, start, end)
        return float(ms[0])

    def event_destroy(self, event) -> None:
        self.check("event_destroy", event)

    def clear_error(self) -> None:
        """Reset the runtime's last (non-sticky) error, where the dialect has such a call."""
        if self.dialect.has("get_last_error"):
            self._fn("get_last_error")()

    # -- modules and launches -----------------------------------------------------------------------
    def load_module(self, image: bytes):
        m = self.ffi.new("void **")
        data = self.ffi.from_buffer(image)
        self.check("module_load_data", m, data, context=f"{len(image)}-byte {self.dialect.binary_format} image")
        return m[0]

    def unload_module(self, module) -> None:
        if self.dialect.has("module_unload"):
            self.check("module_unload", module)

    def get_function(self, module, name: str):
        f = self.ffi.new("void **")
        self.check("module_get_function", f, module, name.encode(), context=f"kernel '{name}'")
        return f[0]

    def function_attributes(self, function) -> dict[str, int]:
        """The kernel attributes the dialect knows the numbers of (registers, local bytes, shared bytes...)."""
        out: dict[str, int] = {}
        if not self.dialect.has("func_get_attribute"):
            return out
        v = self.ffi.new("int *")
        for name, number in self.dialect.func_attributes.items():
            code = self._fn("func_get_attribute")(v, number, function)
            if code == self.dialect.success:
                out[name] = int(v[0])
        return out

    def pack_args(self, args: Sequence[tuple[str, Any]]) -> tuple[Any, list]:
        """The kernelParams array (one pointer per argument) and the buffers it points into."""
        keep = []
        for ctype, value in args:
            if ctype not in ARG_CTYPES:
                raise ValueError(f"unknown kernel argument type {ctype!r} (known: {', '.join(ARG_CTYPES)})")
            c = ARG_CTYPES[ctype]
            if ctype == "ptr":
                keep.append(self.ffi.new("void **", self._ptr(value)))
            else:
                keep.append(self.ffi.new(f"{c} *", value))
        params = self.ffi.new("void *[]", [self.ffi.cast("void *", h) for h in keep] or [self.ffi.NULL])
        return params, keep

    def prepare(self, function, grid: Iterable[int], block: Iterable[int], shared: int,
                args: Sequence[tuple[str, Any]]) -> PreparedLaunch:
        """Pack a launch once; calling the result with a stream issues it."""
        params, keep = self.pack_args(args)
        g, b = _dims(grid, "grid"), _dims(block, "block")
        return PreparedLaunch(self, function, g, b, int(shared), params, keep)

    def launch(self, function, grid, block, shared: int, stream, args: Sequence[tuple[str, Any]]) -> None:
        self.prepare(function, grid, block, shared, args)(stream)

    def _launch_packed(self, function, g, b, shared, stream, params) -> None:
        self.check("launch_kernel", function, g[0], g[1], g[2], b[0], b[1], b[2], shared, self._ptr(stream),
                   params, self.ffi.NULL, context=f"grid {g}, block {b}, {shared} B shared")


def _dims(v: Iterable[int], what: str) -> tuple[int, int, int]:
    d = [int(x) for x in v]
    if not 1 <= len(d) <= 3 or any(x < 1 for x in d):
        raise ValueError(f"{what} must be 1 to 3 positive integers, got {d}")
    return tuple(d + [1] * (3 - len(d)))  # type: ignore[return-value]


def timed_samples(binding: Binding, stream, run: Callable[[Any], None], warmup: int, repetitions: int,
                  min_time_ms: float, max_repetitions: int, flush: Optional[tuple[int, int]] = None,
                  before: Optional[Callable[[Any], None]] = None, warmup_ms: float = 0.0) -> list[float]:
    """Per-repetition device times (ms) from event pairs around `run(stream)`, L2 flushed before each.

    `flush` is (device pointer, bytes) of a buffer overwritten between repetitions so that no
    repetition finds the previous one's data in L2; `before(stream)` is issued before each repetition,
    outside its events (the runner poisons outputs there). Warm-up: `warmup` runs, then at least warmup_ms.
    """
    def flush_l2(i: int) -> None:
        if before is not None:
            before(stream)
        if flush is not None:
            binding.memset(flush[0], i & 0xFF, flush[1], stream)

    def warm_up(n: int) -> None:
        for i in range(n):
            flush_l2(i)
            run(stream)
        binding.synchronize(stream, context="warm-up runs")

    warm_up(warmup)
    # A short probe sizes the loop so that about min_time_ms of kernel time is sampled.
    probe = _event_loop(binding, stream, run, 3, flush_l2)
    est = max(sorted(probe)[1], 1e-4)
    extra = min(max_repetitions, int(warmup_ms / est))  # warm up for at least warmup_ms (sustained clocks)
    if extra:
        warm_up(extra)
    n = int(min(max_repetitions, max(repetitions, min_time_ms / est)))
    return _event_loop(binding, stream, run, n, flush_l2)


def _event_loop(binding: Binding, stream, run, n: int, flush_l2) -> list[float]:
    events = [(binding.event_create(), binding.event_create()) for _ in range(n)]
    try:
        for i, (s, e) in enumerate(events):
            flush_l2(i)
            binding.event_record(s, stream)
            run(stream)
            binding.event_record(e, stream)
        binding.event_synchronize(events[-1][1])
        return [binding.elapsed_ms(s, e) for s, e in events]
    finally:
        for s, e in events:
            for ev in (s, e):
                try:
                    binding.event_destroy(ev)
                except NativeError:
                    pass
