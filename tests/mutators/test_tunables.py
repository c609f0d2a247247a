"""The ksdk:tune contract: declarations in Python and C lines are found, and values applied only within choices."""

import pytest

from ksdk.mutators.tunables import TunableError, apply_tunables, find_tunables, skeleton_hash

PY = """import triton
BLOCK_M = 64  # ksdk:tune [16, 32, 64, 128]
    BLOCK_K: tl.constexpr = 32  # ksdk:tune [16, 32, 64]
        num_warps=4,  # ksdk:tune [2, 4, 8]
MODE = 'fast'  # ksdk:tune ["fast", "slow"]
FLAG = True  # ksdk:tune [true, false]
X = 3  # an ordinary constant
"""

C = """#include <stdio.h>
#define TILE 32 // ksdk:tune [8, 16, 32, 64]
constexpr int WARPS = 4; // ksdk:tune [2, 4, 8]
const float ALPHA = 0.5f; /* ksdk:tune [0.25, 0.5, 1.0] */
"""


def test_python_declarations_are_found_with_name_value_choices():
    found = {t.name: t for t in find_tunables(PY)}
    assert list(found) == ["BLOCK_M", "BLOCK_K", "num_warps", "MODE", "FLAG"]
    assert found["BLOCK_M"].value == 64 and found["BLOCK_M"].choices == (16, 32, 64, 128)
    assert found["BLOCK_M"].index == 2 and found["BLOCK_M"].line == 2
    assert found["BLOCK_K"].value == 32 and found["num_warps"].value == 4
    assert found["MODE"].value == "fast" and found["FLAG"].value is True and found["FLAG"].index == 0


def test_c_declarations_are_found():
    found = {t.name: t for t in find_tunables(C)}
    assert [(n, t.value) for n, t in found.items()] == [("TILE", 32), ("WARPS", 4), ("ALPHA", 0.5)]
    assert all(t.style == "c" for t in found.values())


def test_apply_rewrites_only_the_literals():
    out = apply_tunables(PY, {"BLOCK_M": 128, "BLOCK_K": 16, "num_warps": 2, "MODE": "slow", "FLAG": False})
    lines = out.split("\n")
    assert lines[1] == "BLOCK_M = 128  # ksdk:tune [16, 32, 64, 128]"
    assert lines[2] == "    BLOCK_K: tl.constexpr = 16  # ksdk:tune [16, 32, 64]"
    assert lines[3] == "        num_warps=2,  # ksdk:tune [2, 4, 8]"
    assert lines[4] == "MODE = 'slow'  # ksdk:tune [\"fast\", \"slow\"]"
    assert lines[5] == "FLAG = False  # ksdk:tune [true, false]"
    assert {t.name: t.value for t in find_tunables(out)}["BLOCK_M"] == 128
    c = apply_tunables(C, {"TILE": 8, "WARPS": 8, "ALPHA": 1.0}).split("\n")
    assert c[1] == "#define TILE 8 // ksdk:tune [8, 16, 32, 64]"
    assert c[2] == "constexpr int WARPS = 8; // ksdk:tune [2, 4, 8]"
    assert c[3] == "const float ALPHA = 1.0f; /* ksdk:tune [0.25, 0.5, 1.0] */"


def test_out_of_range_and_unknown_values_are_refused():
    with pytest.raises(TunableError, match="outside its declared choices"):
        apply_tunables(PY, {"BLOCK_M": 256})
    with pytest.raises(TunableError, match="outside"):
        apply_tunables(PY, {"FLAG": 1})  # the number 1 is not the choice `true`
    with pytest.raises(TunableError, match="no ksdk:tune declaration for NOPE"):
        apply_tunables(PY, {"NOPE": 1})


@pytest.mark.parametrize(
    "line, problem",
    [
        ("B = 64  # ksdk:tune [16, 32", "not a JSON list"),
        ("B = 64  # ksdk:tune []", "non-empty"),
        ("B = 64  # ksdk:tune [16, 16]", "repeat"),
        ("B = f(64)  # ksdk:tune [16, 32]", "NAME = literal"),
        ("B = 64  # ksdk:tune [[1], 2]", "numbers, strings or booleans"),
    ],
)
def test_malformed_declarations_name_the_line_and_fix(line, problem):
    with pytest.raises(TunableError, match=problem) as info:
        find_tunables("x = 1\n" + line)
    assert "line 2" in str(info.value) or "repeat" in problem


def test_duplicate_names_are_refused():
    with pytest.raises(TunableError, match="declared twice"):
        find_tunables("B = 1  # ksdk:tune [1, 2]\nB = 2  # ksdk:tune [1, 2]")


def test_skeleton_ignores_tunable_values_only():
    assert skeleton_hash(PY) == skeleton_hash(apply_tunables(PY, {"BLOCK_M": 16}))
    assert skeleton_hash(PY) != skeleton_hash(PY.replace("import triton", "import numpy"))
