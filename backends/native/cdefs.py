"""cffi ABI-mode declarations for a dialect: only handles (void*), ints, sizes and pointers, never a struct.

Each logical call has one C signature; the dialect's name table says which exported symbol carries it.
Enum-typed parameters and results (cudaError_t, CUresult, mcError_t, memcpy kinds, attributes) are plain
ints: C enums are int-sized on the platforms these vendors support. Device pointers (CUdeviceptr is a
64-bit integer, mcDeviceptr_t a pointer) are declared void*: the x86-64 and AArch64 calling conventions
pass both in the same integer register.
"""

from __future__ import annotations

from ksdk_native.dialect import Dialect

# logical call -> C declaration with {name} for the symbol. Every one returns the dialect's status code.
SIGNATURES: dict[str, str] = {
    "get_device_count": "int {name}(int *count);",
    "set_device": "int {name}(int device);",
    "malloc": "int {name}(void **ptr, size_t size);",
    "free": "int {name}(void *ptr);",
    "memcpy": "int {name}(void *dst, const void *src, size_t size, int kind);",
    "memcpy_htod": "int {name}(void *dst, const void *src, size_t size);",
    "memcpy_dtoh": "int {name}(void *dst, void *src, size_t size);",
    "memset": "int {name}(void *ptr, int value, size_t size);",
    "memset_async": "int {name}(void *ptr, int value, size_t size, void *stream);",
    "device_synchronize": "int {name}(void);",
    "stream_create": "int {name}(void **stream);",
    "stream_destroy": "int {name}(void *stream);",
    "stream_synchronize": "int {name}(void *stream);",
    "event_create": "int {name}(void **event);",
    "event_record": "int {name}(void *event, void *stream);",
    "event_synchronize": "int {name}(void *event);",
    "event_elapsed_time": "int {name}(float *ms, void *start, void *end);",
    "event_destroy": "int {name}(void *event);",
    "runtime_get_version": "int {name}(int *version);",
    "driver_get_version": "int {name}(int *version);",
    "get_last_error": "int {name}(void);",
    "init": "int {name}(unsigned int flags);",
    "device_get": "int {name}(int *device, int ordinal);",
    "device_get_name": "int {name}(char *name, int length, int device);",
    "device_get_attribute": "int {name}(int *value, int attribute, int device);",
    "primary_ctx_retain": "int {name}(void **ctx, int device);",
    "ctx_set_current": "int {name}(void *ctx);",
    "module_load_data": "int {name}(void **module, const void *image);",
    "module_get_function": "int {name}(void **function, void *module, const char *name);",
    "module_unload": "int {name}(void *module);",
    "launch_kernel": ("int {name}(void *function, unsigned int gx, unsigned int gy, unsigned int gz, "
                      "unsigned int bx, unsigned int by, unsigned int bz, unsigned int shared_bytes, "
                      "void *stream, void **params, void **extra);"),
    "func_get_attribute": "int {name}(int *value, int attribute, void *function);",
}

ERROR_STRING_SIGNATURES = {
    "return": "const char *{name}(int error);",  # cudaGetErrorString, mcGetErrorString
    "out": "int {name}(int error, const char **text);",  # cuGetErrorString
}

# Calls every dialect must name; the rest are optional and used when present.
REQUIRED = (
    "get_device_count", "set_device", "malloc", "free", "memset", "memset_async", "stream_create",
    "stream_synchronize", "event_create", "event_record", "event_synchronize", "event_elapsed_time",
    "event_destroy", "module_load_data", "module_get_function", "launch_kernel",
)


def cdef_text(dialect: Dialect) -> str:
    """The declarations for every symbol the dialect names (what `ffi.cdef` gets)."""
    lines = [f"/* {dialect.name}: {dialect.vendor} */"]
    seen: set[str] = set()
    for call, (_lib, symbol) in dialect.functions.items():
        if call not in SIGNATURES:
            raise ValueError(f"dialect {dialect.name}: unknown logical call {call!r} (known: {', '.join(SIGNATURES)})")
        if symbol in seen:
            raise ValueError(f"dialect {dialect.name}: symbol {symbol} is named twice")
        seen.add(symbol)
        lines.append(SIGNATURES[call].format(name=symbol))
    for _lib, (symbol, style) in dialect.error_strings.items():
        if symbol not in seen:
            seen.add(symbol)
            lines.append(ERROR_STRING_SIGNATURES[style].format(name=symbol))
    missing = [c for c in REQUIRED if c not in dialect.functions]
    if missing:
        raise ValueError(f"dialect {dialect.name} lacks required calls: {', '.join(missing)}")
    if dialect.memcpy_kinds is None and not {"memcpy_htod", "memcpy_dtoh"} <= set(dialect.functions):
        raise ValueError(f"dialect {dialect.name}: without memcpy kinds it needs memcpy_htod and memcpy_dtoh")
    return "\n".join(lines) + "\n"
