"""Launch values out of range (overflowing expressions, grids past 32 bits) are the candidate's verdict."""

from __future__ import annotations

import pytest

from ksdk.models import ErrorKind, Status
from nativekit import host_kernel
from test_native_runner import run


@pytest.mark.parametrize("old,new", [
    ('"grid": ["cdiv(n, BLOCK)"]', '"grid": ["int(1e400)"]'),
    ('"grid": ["cdiv(n, BLOCK)"]', '"grid": ["2**40"]'),
    ('"value": "in0.numel"', '"value": "10.0**400"'),
    ('"type": "int64", "value": "in0.numel"', '"type": "int32", "value": "2**40"'),
])
def test_out_of_range_launch_value_is_a_candidate_failure(maca_root, old, new):
    src = host_kernel()
    assert old in src
    r, _ = run(src.replace(old, new))
    assert r.status == Status.FAILED, r.message
    assert r.error_kind in (ErrorKind.SYNTAX, ErrorKind.RUNTIME), r.message
