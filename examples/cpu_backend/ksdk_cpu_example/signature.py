"""The calling convention: which C prototype a task's entry function must have, derived from its tensors.

    void ENTRY(<inputs>, <weights>, <outputs>, <sizes>)

- inputs: one argument per get_inputs() item, in order: a tensor becomes `const T* inK`, a Python int
  `long inK`, a Python float `double inK`;
- weights: the reference Model's state_dict tensors (parameters, then buffers), in order: `const T* wK`;
- outputs: one `T* outK` per tensor the reference returns (allocated by the backend, C-contiguous);
- sizes: every dimension of every tensor input, then of every weight: `long inK_dJ`, `long wK_dJ`.
ENTRY is `kernel` unless the task file sets `C_ENTRY = "name"`. All tensors are C-contiguous (row-major).
"""

from __future__ import annotations

from dataclasses import dataclass, field

# numpy dtype name -> C type. Other dtypes (float16, complex) are not part of this backend's contract.
C_TYPES = {
    "float32": "float", "float64": "double",
    "int8": "int8_t", "int16": "int16_t", "int32": "int32_t", "int64": "int64_t",
    "uint8": "uint8_t", "bool": "_Bool",
}


class SignatureError(ValueError):
    """The task's tensors cannot be passed through this convention (e.g. an unsupported dtype)."""


@dataclass
class Arg:
    """One C parameter: its name, its C type, and what fills it ('input', 'weight', 'output', 'size')."""

    name: str
    ctype: str
    role: str


@dataclass
class Signature:
    """The entry function's prototype for one task."""

    entry: str
    args: list[Arg] = field(default_factory=list)

    def prototype(self) -> str:
        params = ", ".join(f"{a.ctype} {a.name}" for a in self.args) or "void"
        return f"void {self.entry}({params});"

    def cdef(self) -> str:
        """The declaration cffi needs (cffi knows the stdint and _Bool types natively)."""
        return self.prototype()


def c_type(dtype: str, what: str) -> str:
    key = str(dtype).replace("torch.", "")
    if key not in C_TYPES:
        raise SignatureError(
            f"{what} has dtype {key}, which the cpu_c backend cannot pass to C "
            f"(supported: {', '.join(C_TYPES)}); convert it in the task's get_inputs() or forward()"
        )
    return C_TYPES[key]


def build(entry: str, inputs: list, weights: list, outputs: list) -> Signature:
    """Prototype for host arrays: `inputs` holds numpy arrays or Python scalars, the others numpy arrays."""
    sig = Signature(entry=entry)
    sizes: list[Arg] = []
    for k, x in enumerate(inputs):
        if isinstance(x, bool) or isinstance(x, int):
            sig.args.append(Arg(f"in{k}", "long", "input"))
        elif isinstance(x, float):
            sig.args.append(Arg(f"in{k}", "double", "input"))
        else:
            sig.args.append(Arg(f"in{k}", f"const {c_type(x.dtype, f'input {k}')}*", "input"))
            sizes += [Arg(f"in{k}_d{j}", "long", "size") for j in range(x.ndim)]
    for k, w in enumerate(weights):
        sig.args.append(Arg(f"w{k}", f"const {c_type(w.dtype, f'weight {k}')}*", "weight"))
        sizes += [Arg(f"w{k}_d{j}", "long", "size") for j in range(w.ndim)]
    for k, o in enumerate(outputs):
        sig.args.append(Arg(f"out{k}", f"{c_type(o.dtype, f'output {k}')}*", "output"))
    sig.args += sizes
    return sig
