"""Which files of a suite are problems, how the filters pick them, and which candidate file goes with each."""

import pytest
from benchkit import SUITE

from ksdk.bench.suite import discover, match_file
from ksdk.errors import KsdkError

TASK = (SUITE / "level1" / "1_relu.py").read_text()  # any task file will do


def ids(problems):
    return [p.id for p in problems]


def test_level_folders_give_levels_and_seeds_beside_the_tasks_are_not_problems():
    found = discover(SUITE)
    assert ids(found) == ["level1/1_relu", "level1/2_scale_shift", "level1/3_row_sum",
                          "level2/1_add_relu", "level2/2_matmul_relu"]
    assert [p.number for p in found] == [1, 2, 3, 1, 2]
    assert found[0].path == str((SUITE / "level1" / "1_relu.py").resolve())


def test_filters_by_level_name_pattern_and_number():
    assert ids(discover(SUITE, levels=[2])) == ["level2/1_add_relu", "level2/2_matmul_relu"]
    assert ids(discover(SUITE, patterns=["*relu*"])) == ["level1/1_relu", "level2/1_add_relu",
                                                         "level2/2_matmul_relu"]
    assert ids(discover(SUITE, patterns=["3"])) == ["level1/3_row_sum"]
    assert ids(discover(SUITE, levels=[1], patterns=["1", "level1/2_*"])) == ["level1/1_relu",
                                                                              "level1/2_scale_shift"]
    with pytest.raises(KsdkError, match="passes the filters.*5 problems in levels \\[1, 2\\]"):
        discover(SUITE, levels=[3])


def test_a_level_folder_a_single_file_and_a_kernelbench_checkout(tmp_path):
    assert ids(discover(SUITE / "level2")) == ["level2/1_add_relu", "level2/2_matmul_relu"]
    assert ids(discover(SUITE / "level1" / "3_row_sum.py")) == ["level1/3_row_sum"]
    checkout = tmp_path / "KernelBench"
    for level, name in ((1, "19_ReLU"), (1, "2_Standard_matrix_multiplication_"), (3, "1_MLP")):
        (checkout / "KernelBench" / f"level{level}").mkdir(parents=True, exist_ok=True)
        (checkout / "KernelBench" / f"level{level}" / f"{name}.py").write_text(TASK)
    (checkout / "README.md").write_text("not a task")
    assert ids(discover(checkout)) == ["level1/2_Standard_matrix_multiplication_", "level1/19_ReLU",
                                       "level3/1_MLP"]  # by number, not by text


def test_any_folder_of_tasks_including_one_folder_per_task(tmp_path):
    (tmp_path / "b_op.py").write_text(TASK)
    (tmp_path / "helper.py").write_text("X = 1\n")  # not a task: skipped
    (tmp_path / "a_op").mkdir()
    (tmp_path / "a_op" / "task.py").write_text(TASK)
    (tmp_path / "a_op" / "seed.py").write_text("class ModelNew: pass\n")
    found = discover(tmp_path)
    assert ids(found) == ["a_op", "b_op"] and all(p.level is None for p in found)


def test_errors_say_what_a_suite_is(tmp_path):
    with pytest.raises(KsdkError, match="suite not found"):
        discover(tmp_path / "nope")
    (tmp_path / "notes.py").write_text("print('hi')\n")
    with pytest.raises(KsdkError, match="no KernelBench-format problems.*class Model"):
        discover(tmp_path)


def test_a_candidate_is_matched_by_stem_in_the_level_folder_first(tmp_path):
    relu, add = discover(SUITE, patterns=["1"])
    (tmp_path / "level1").mkdir()
    (tmp_path / "level1" / "1_relu.py").write_text("# level1")
    (tmp_path / "1_relu.py").write_text("# top")
    (tmp_path / "1_add_relu.py").write_text("# top")
    (tmp_path / "1_add_relu.c").write_text("/* c */")
    assert match_file(tmp_path, relu, (".py",))[0] == tmp_path / "level1" / "1_relu.py"
    assert match_file(tmp_path, add, (".py",))[0] == tmp_path / "1_add_relu.py"
    assert match_file(tmp_path, add, (".c", ".h"))[0] == tmp_path / "1_add_relu.c"
    f, why = match_file(tmp_path, relu, (".c", ".h"))
    assert f is None and "1_relu.py has another extension" in why
    f, why = match_file(tmp_path / "level1", add, (".py",))
    assert f is None and why.startswith("no 1_add_relu.py in")
