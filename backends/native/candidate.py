"""The native candidate format: C++ source with extern "C" kernels plus a `ksdk:launch` JSON header.

    /* ksdk:launch
    {"kernel": "vector_add", "grid": ["cdiv(n, BLOCK)"], "block": ["BLOCK"],
     "scalars": [{"name": "n", "type": "int64", "value": "in0.numel"}]}
    */
    #define BLOCK 256  // ksdk:tune [128, 256, 512, 1024]
    extern "C" __global__ void vector_add(const float* a, const float* b, float* out, long long n) {...}

Kernel arguments, unless a launch lists its own `args`: the task's inputs (in0, in1, ...), then its outputs
(out0, ...), then the model's parameters (p0, ... in state_dict order), then the scalars in declared order.
Expressions (grid, block, shared_mem, scalar values, workspace bytes) are arithmetic over integers, the
source's numeric #defines, scalars declared earlier, `inN/outN/pN/initN` (.numel .shape[i] .ndim .nbytes)
and cdiv/min/max. docs/backends/native.md is the full description.
"""

from __future__ import annotations

import ast
import json
import math
import operator
import re
from dataclasses import dataclass, field
from typing import Any, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ksdk.interfaces.backend import CandidateError as BaseCandidateError
from ksdk.models import ErrorKind

MARK = "ksdk:launch"
SCALAR_TYPES = ("int32", "int64", "uint32", "uint64", "float32", "float64")
Expr = Union[int, float, str]


class CandidateError(BaseCandidateError):
    """The candidate's source or launch description is unusable; `kind` and `line` say why and where."""


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LaunchSpec(_Spec):
    """One kernel launch: the kernel's name, its grid and block (1 to 3 expressions), dynamic shared memory."""

    kernel: str
    grid: list[Expr] = Field(min_length=1, max_length=3)
    block: list[Expr] = Field(min_length=1, max_length=3)
    shared_mem: Expr = 0
    args: Optional[list[str]] = None

    @field_validator("kernel")
    @classmethod
    def _identifier(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z_]\w*", v):
            raise ValueError(f"kernel must be a C identifier, got {v!r}")
        return v


class ScalarSpec(_Spec):
    """A scalar kernel argument: name, C type, and its value as an expression."""

    name: str
    type: str = "int64"
    value: Expr

    @field_validator("type")
    @classmethod
    def _type(cls, v: str) -> str:
        if v not in SCALAR_TYPES:
            raise ValueError(f"scalar type must be one of {', '.join(SCALAR_TYPES)}, got {v!r}")
        return v


class WorkspaceSpec(_Spec):
    """A scratch device buffer (zeroed before each run) that launches may name in their `args`."""

    name: str
    bytes: Expr


class LaunchDescription(_Spec):
    """The whole header: one launch (inline fields) or several (`launches`), scalars and workspaces."""

    launches: list[LaunchSpec] = Field(min_length=1)
    scalars: list[ScalarSpec] = Field(default_factory=list)
    workspaces: list[WorkspaceSpec] = Field(default_factory=list)


@dataclass
class NativeCandidate:
    """A parsed candidate: its source, launch description, numeric #defines and the header's line."""

    source: str
    spec: LaunchDescription
    defines: dict[str, float | int]
    header_line: int

    @property
    def kernels(self) -> list[str]:
        return list(dict.fromkeys(launch.kernel for launch in self.spec.launches))


_DEFINE = re.compile(r"^[ \t]*#[ \t]*define[ \t]+([A-Za-z_]\w*)[ \t]+\(?(-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)[uUlLfF]*\)?",
                     re.M)


def numeric_defines(source: str) -> dict[str, float | int]:
    """`#define NAME 123` constants (tunables among them), usable in launch expressions."""
    out: dict[str, float | int] = {}
    for m in _DEFINE.finditer(source):
        text = m.group(2)
        out[m.group(1)] = float(text) if any(c in text for c in ".eE") else int(text)
    return out


def _header_text(source: str) -> tuple[str, int]:
    """The JSON text after the mark, and the 1-based line it starts on."""
    idx = source.find(MARK)
    if idx < 0:
        raise CandidateError(
            ErrorKind.MISSING_ENTRY,
            f"no launch description: put a comment "
            f"`/* {MARK} {{\"kernel\": ..., \"grid\": [...], \"block\": [...]}} */` "
            "in the source (see docs/backends/native.md)")
    line = source.count("\n", 0, idx) + 1
    line_start = source.rfind("\n", 0, idx) + 1
    prefix = source[line_start:idx].strip()
    rest = source[idx + len(MARK):]
    if prefix.startswith("//"):  # consecutive // lines
        lines = rest.split("\n")
        text = [lines[0]]
        for ln in lines[1:]:
            s = ln.strip()
            if not s.startswith("//") or MARK in s:
                break
            text.append(s[2:])
        return "\n".join(text), line
    end = rest.find("*/")
    if end < 0:
        raise CandidateError(ErrorKind.SYNTAX, f"the {MARK} comment is never closed with */", line)
    return rest[:end], line


def parse_candidate(source: str) -> NativeCandidate:
    """Parse and check a candidate's launch description; raise CandidateError with the line at fault."""
    text, line = _header_text(source)
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as e:
        raise CandidateError(ErrorKind.SYNTAX, f"the {MARK} description is not valid JSON: {e.msg} "
                             f"(description line {e.lineno}, column {e.colno})", line + e.lineno - 1) from None
    if not isinstance(raw, dict):
        raise CandidateError(ErrorKind.SYNTAX, f"the {MARK} description must be a JSON object", line)
    if "launches" not in raw:
        single = {k: raw.pop(k) for k in ("kernel", "grid", "block", "shared_mem", "args") if k in raw}
        raw["launches"] = [single]
    try:
        spec = LaunchDescription.model_validate(raw)
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(x) for x in first["loc"])
        raise CandidateError(ErrorKind.SYNTAX, f"bad {MARK} description at '{loc}': {first['msg']}", line) from None
    for launch in spec.launches:
        if not re.search(rf"\b{re.escape(launch.kernel)}\s*\(", source):
            raise CandidateError(ErrorKind.MISSING_ENTRY,
                                 f"kernel '{launch.kernel}' named in the launch description is not defined in "
                                 "the source "
                                 f"(define it as extern \"C\" __global__ void {launch.kernel}(...))", line)
    names = [s.name for s in spec.scalars] + [w.name for w in spec.workspaces]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise CandidateError(ErrorKind.SYNTAX, f"names declared twice in the launch description: {sorted(dup)}", line)
    return NativeCandidate(source=source, spec=spec, defines=numeric_defines(source), header_line=line)


# -- expressions --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ArrayInfo:
    """What expressions may read of an array: its shape and sizes."""

    shape: tuple[int, ...]
    itemsize: int

    @property
    def numel(self) -> int:
        return int(math.prod(self.shape))

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def nbytes(self) -> int:
        return self.numel * self.itemsize


def cdiv(a, b):
    """Ceiling division."""
    return -(-int(a) // int(b))


_FUNCS = {"cdiv": cdiv, "min": min, "max": max, "int": int}
_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
           ast.LShift: operator.lshift, ast.RShift: operator.rshift, ast.BitAnd: operator.and_,
           ast.BitOr: operator.or_}
_ATTRS = {"numel", "shape", "ndim", "nbytes", "itemsize"}


def evaluate(expr: Expr, names: dict[str, Any]) -> int | float:
    """Value of a launch expression; only arithmetic, known names, array sizes and cdiv/min/max are allowed."""
    if isinstance(expr, bool):
        raise ValueError("booleans are not launch values")
    if isinstance(expr, (int, float)):
        return expr
    try:
        tree = ast.parse(str(expr).strip(), mode="eval")
    except SyntaxError as e:
        raise ValueError(f"cannot parse expression {expr!r}: {e.msg}") from None
    return _eval(tree.body, names, str(expr))


def _eval(node, names, text):
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in names:
            return names[node.id]
        raise ValueError(f"unknown name '{node.id}' in {text!r} (known: {', '.join(sorted(names)) or 'none'})")
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        return _BINOPS[type(node.op)](_eval(node.left, names, text), _eval(node.right, names, text))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = _eval(node.operand, names, text)
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.Attribute) and node.attr in _ATTRS:
        obj = _eval(node.value, names, text)
        if isinstance(obj, ArrayInfo):
            return getattr(obj, node.attr)
    if isinstance(node, ast.Subscript):
        obj = _eval(node.value, names, text)
        idx = _eval(node.slice, names, text)
        if isinstance(obj, tuple) and isinstance(idx, int):
            return obj[idx]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCS and not node.keywords:
        return _FUNCS[node.func.id](*[_eval(a, names, text) for a in node.args])
    raise ValueError(f"{ast.unparse(node)!r} is not allowed in launch expression {text!r} "
                     "(arithmetic, names, .numel/.shape[i]/.ndim/.nbytes, cdiv/min/max only)")


# -- resolving a description against concrete shapes ------------------------------------------------------
@dataclass
class ResolvedLaunch:
    kernel: str
    grid: tuple[int, ...]
    block: tuple[int, ...]
    shared_mem: int
    args: list[str]  # names: inN/outN/pN (buffers or by-value task inputs), scalars, workspaces


@dataclass
class Plan:
    """A description with every expression evaluated for one set of shapes."""

    launches: list[ResolvedLaunch]
    scalars: dict[str, tuple[str, int | float]] = field(default_factory=dict)
    workspaces: dict[str, int] = field(default_factory=dict)


_U32 = 2**32 - 1  # grid, block and shared memory are unsigned int in the launch call
_SCALAR_RANGE = {"int32": (-2**31, 2**31 - 1), "uint32": (0, _U32), "int64": (-2**63, 2**63 - 1),
                 "uint64": (0, 2**64 - 1)}


def resolve(cand: NativeCandidate, inputs: list, outputs: list[ArrayInfo], params: list[ArrayInfo],
            init_values: list) -> Plan:
    """Evaluate the description for these shapes. `inputs` holds ArrayInfo or by-value numbers."""
    names: dict[str, Any] = dict(cand.defines)
    default_args: list[str] = []
    for prefix, items in (("in", inputs), ("out", outputs), ("p", params)):
        for i, item in enumerate(items):
            names[f"{prefix}{i}"] = item
            default_args.append(f"{prefix}{i}")
    for i, v in enumerate(init_values):
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            names[f"init{i}"] = v
    plan = Plan(launches=[])
    line = cand.header_line

    def value(expr, what, conv=lambda v: v, lo=None, hi=None):
        try:
            v = conv(evaluate(expr, names))
        except (ValueError, ArithmeticError, TypeError, IndexError, MemoryError) as e:
            raise CandidateError(ErrorKind.SYNTAX, f"launch description, {what}: {e}", line) from None
        if (lo is not None and v < lo) or (hi is not None and v > hi):  # what the C type can hold
            raise CandidateError(ErrorKind.SYNTAX, f"launch description, {what}: {v} is out of range "
                                 f"[{lo}, {hi}]", line)
        return v

    for s in cand.spec.scalars:
        lo, hi = _SCALAR_RANGE.get(s.type, (None, None))
        v = value(s.value, f"scalar '{s.name}'", float if s.type.startswith("float") else int, lo, hi)
        plan.scalars[s.name] = (s.type, v)
        names[s.name] = v
        default_args.append(s.name)
    for w in cand.spec.workspaces:
        nbytes = value(w.bytes, f"workspace '{w.name}'", int)
        if nbytes < 0:
            raise CandidateError(ErrorKind.SYNTAX, f"workspace '{w.name}' has negative size {nbytes}", line)
        plan.workspaces[w.name] = nbytes
    known_args = set(default_args) | set(plan.workspaces)
    for i, launch in enumerate(cand.spec.launches):
        where = f"launch {i} ({launch.kernel})"
        grid = tuple(value(g, f"{where} grid", int, hi=_U32) for g in launch.grid)
        block = tuple(value(b, f"{where} block", int, hi=_U32) for b in launch.block)
        if any(x < 1 for x in grid + block):
            raise CandidateError(ErrorKind.SYNTAX, f"{where}: grid {grid} and block {block} must be positive", line)
        shared = value(launch.shared_mem, f"{where} shared_mem", int, 0, _U32)
        args = list(launch.args) if launch.args is not None else default_args
        unknown = [a for a in args if a not in known_args]
        if unknown:
            raise CandidateError(ErrorKind.SYNTAX, f"{where}: unknown args {unknown} "
                                 f"(known: {', '.join(sorted(known_args))})", line)
        plan.launches.append(ResolvedLaunch(launch.kernel, grid, block, shared, args))
    return plan
