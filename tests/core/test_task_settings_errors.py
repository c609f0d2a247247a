"""Malformed KSDK_TASK settings and unreadable task files raise TaskError, never a bare traceback."""

import pytest

from ksdk.errors import TaskError
from ksdk.tasks import load_task, task_from_source

BODY = "class Model: pass\ndef get_inputs(): return []\ndef get_init_inputs(): return []\n"


@pytest.mark.parametrize("settings", ["{{}: 1}", "{1: 2}", "{'correctness_trials': 'many'}"])
def test_bad_settings_are_task_errors(tmp_path, settings):
    p = tmp_path / "t.py"
    p.write_text(BODY + f"KSDK_TASK = {settings}\n")
    with pytest.raises(TaskError, match="KSDK_TASK|setting"):
        load_task(p)
    with pytest.raises(TaskError, match="KSDK_TASK|setting"):
        task_from_source("t", p.read_text())


def test_non_utf8_task_file_is_a_task_error(tmp_path):
    p = tmp_path / "t.py"
    p.write_bytes(BODY.encode() + b"# \xff\xfe\n")
    with pytest.raises(TaskError, match="UTF-8"):
        load_task(p)
