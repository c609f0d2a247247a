"""The native candidate format: launch descriptions, #defines, safe expressions, argument order."""

from __future__ import annotations

import pytest

from ksdk.models import ErrorKind
from ksdk_native.candidate import ArrayInfo, CandidateError, evaluate, numeric_defines, parse_candidate, resolve

KERNEL = 'extern "C" __global__ void k(const float* x, float* y, long long n) {}\n'


def test_block_comment_header_single_launch():
    src = '/* ksdk:launch {"kernel": "k", "grid": ["cdiv(n, B)"], "block": ["B"],\n' \
          ' "scalars": [{"name": "n", "value": "in0.numel"}]} */\n#define B 128 // ksdk:tune [64, 128]\n' + KERNEL
    c = parse_candidate(src)
    assert c.kernels == ["k"] and c.defines == {"B": 128} and c.header_line == 1
    plan = resolve(c, [ArrayInfo((1000,), 4)], [ArrayInfo((1000,), 4)], [], [])
    launch = plan.launches[0]
    assert (launch.grid, launch.block, launch.shared_mem) == ((8,), (128,), 0)
    assert launch.args == ["in0", "out0", "n"] and plan.scalars == {"n": ("int64", 1000)}


def test_line_comment_header_and_several_launches_with_args_and_workspaces():
    src = ('#include <x.h>\n// ksdk:launch {"launches": [\n'
           '//   {"kernel": "k", "grid": [4, 2], "block": [32, 8], "shared_mem": "32 * 8 * 4", '
           '"args": ["in0", "ws"]},\n'
           '//   {"kernel": "k", "grid": ["in0.shape[0]"], "block": [64], "args": ["ws", "out0", "p0", "scale"]}],\n'
           '//  "scalars": [{"name": "scale", "type": "float32", "value": "init0 / 2"}],\n'
           '//  "workspaces": [{"name": "ws", "bytes": "out0.nbytes * 2"}]}\n' + KERNEL)
    c = parse_candidate(src)
    assert c.header_line == 2
    plan = resolve(c, [ArrayInfo((16, 3), 4)], [ArrayInfo((16,), 2)], [ArrayInfo((3,), 4)], [5])
    assert plan.workspaces == {"ws": 64} and plan.scalars == {"scale": ("float32", 2.5)}
    assert plan.launches[0].shared_mem == 1024 and plan.launches[0].grid == (4, 2)
    assert plan.launches[1].grid == (16,) and plan.launches[1].args == ["ws", "out0", "p0", "scale"]


@pytest.mark.parametrize("src, kind, line, text", [
    (KERNEL, ErrorKind.MISSING_ENTRY, None, "no launch description"),
    ('\n\n/* ksdk:launch {"kernel": "k", "grid": [1],\n "block": [1],} */\n' + KERNEL, ErrorKind.SYNTAX, 4,
     "not valid JSON"),
    ('/* ksdk:launch {"kernel": "k", "grid": [1]} */\n' + KERNEL, ErrorKind.SYNTAX, 1, "'launches.0.block'"),
    ('/* ksdk:launch {"kernel": "other", "grid": [1], "block": [1]} */\n' + KERNEL, ErrorKind.MISSING_ENTRY, 1,
     "kernel 'other'"),
    ('/* ksdk:launch {"kernel": "k", "grid": [1], "block": [1]}\n' + KERNEL, ErrorKind.SYNTAX, 1, "never closed"),
    ('/* ksdk:launch {"kernel": "k", "grid": [1], "block": [1], "colour": 3} */\n' + KERNEL, ErrorKind.SYNTAX, 1,
     "colour"),
])
def test_bad_descriptions_say_what_and_where(src, kind, line, text):
    with pytest.raises(CandidateError) as e:
        parse_candidate(src)
    assert e.value.kind == kind and e.value.line == line and text in e.value.message


def test_expressions_are_arithmetic_only():
    names = {"n": 1000, "x": ArrayInfo((4, 5), 2)}
    assert evaluate("cdiv(n, 256) * 2", names) == 8
    assert evaluate("x.shape[1] * x.itemsize + max(1, n // 3)", names) == 343
    for bad in ("__import__('os').system('true')", "x.__class__", "open('f')", "n if n else 1", "[1, 2][0]"):
        with pytest.raises(ValueError):
            evaluate(bad, names)
    with pytest.raises(ValueError, match="unknown name 'm'"):
        evaluate("m + 1", names)


def test_resolve_reports_bad_values_at_the_header():
    src = '\n/* ksdk:launch {"kernel": "k", "grid": ["n // 0"], "block": [1],' \
          ' "scalars": [{"name": "n", "value": 3}]} */\n' + KERNEL
    with pytest.raises(CandidateError) as e:
        resolve(parse_candidate(src), [], [], [], [])
    assert e.value.line == 2 and "grid" in e.value.message
    src = '/* ksdk:launch {"kernel": "k", "grid": [1], "block": [0]} */\n' + KERNEL
    with pytest.raises(CandidateError, match="must be positive"):
        resolve(parse_candidate(src), [], [], [], [])


def test_numeric_defines_read_ints_floats_and_suffixes():
    assert numeric_defines("#define A 4\n# define B (16u)\n#define C 0.5f\n#define D foo\n") == {
        "A": 4, "B": 16, "C": 0.5}
