"""Fixtures of the bench tests: candidate folders built from the suite's seeds, each with one wrong candidate."""

from pathlib import Path

import pytest
from benchkit import copy_seeds


@pytest.fixture(scope="session")
def triton_candidates(tmp_path_factory) -> Path:
    """Triton candidates: row_sum reduces with max instead of sum (wrong values); matmul_relu has none."""
    d = copy_seeds(tmp_path_factory.mktemp("triton_candidates"), ".py")
    row_sum = d / "level1" / "3_row_sum.py"
    row_sum.write_text(row_sum.read_text().replace("tl.sum(acc, axis=0)", "tl.max(acc, axis=0)"))
    (d / "level2" / "2_matmul_relu.py").unlink()
    return d


@pytest.fixture(scope="session")
def c_candidates(tmp_path_factory) -> Path:
    """C candidates: row_sum negates its result (wrong values); matmul_relu does not compile."""
    d = copy_seeds(tmp_path_factory.mktemp("c_candidates"), ".c")
    row_sum = d / "level1" / "3_row_sum.c"
    row_sum.write_text(row_sum.read_text().replace("y[r] = acc;", "y[r] = -acc;"))
    matmul = d / "level2" / "2_matmul_relu.c"
    matmul.write_text(matmul.read_text() + "\nthis is not C\n")
    return d
