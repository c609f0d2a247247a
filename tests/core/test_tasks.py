"""Task files are checked without running them; bad ones get an error naming the file and the fix."""

import pytest

from ksdk.errors import TaskError
from ksdk.tasks import load_task


def test_load_task_reads_settings(tmp_path):
    p = tmp_path / "relu.py"
    p.write_text("KSDK_TASK = {'correctness_trials': 3, 'tolerances': {'float32': {'atol': 1e-5, 'rtol': 1e-5}}}\n"
                 "class Model: pass\ndef get_inputs(): return []\ndef get_init_inputs(): return []\n")
    t = load_task(p)
    assert t.name == "relu" and t.correctness_trials == 3 and t.tolerance("float32").atol == 1e-5


def test_a_task_in_a_folder_of_its_own_is_named_by_the_folder(tmp_path):
    body = "class Model: pass\ndef get_inputs(): return []\ndef get_init_inputs(): return []\n"
    (tmp_path / "layer_norm").mkdir()
    (tmp_path / "layer_norm" / "task.py").write_text(body)
    assert load_task(tmp_path / "layer_norm" / "task.py").name == "layer_norm"
    (tmp_path / "layer_norm" / "task.py").write_text("KSDK_TASK = {'name': 'ln_fp32'}\n" + body)
    assert load_task(tmp_path / "layer_norm" / "task.py").name == "ln_fp32"


@pytest.mark.parametrize("text,words", [
    ("def f(:\n", "syntax error"),
    ("class Model: pass\n", "missing get_inputs, get_init_inputs"),
    ("KSDK_TASK = {'correctness_trials': 0}\nclass Model: pass\ndef get_inputs(): pass\ndef get_init_inputs(): pass\n",
     "correctness_trials"),
])
def test_bad_task_files(tmp_path, text, words):
    p = tmp_path / "bad.py"
    p.write_text(text)
    with pytest.raises(TaskError, match=words):
        load_task(p)


def test_missing_task_file(tmp_path):
    with pytest.raises(TaskError, match="not found"):
        load_task(tmp_path / "nope.py")
