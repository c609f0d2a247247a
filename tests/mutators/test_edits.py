"""Reply parsing: SEARCH/REPLACE blocks (exact, whitespace/indent tolerant, failing, partial, malformed) and
full programs (fenced, bare, mixed with prose)."""

import pytest

from ksdk.languages import Language
from ksdk.mutators.edits import ReplyError, apply_edits, extract_program, parse_edit_blocks, program_from_reply

from ksdk_cuda_nvidia.backend import CudaNvidiaBackend
from ksdk_triton_nvidia.backend import TRITON

CUDA = CudaNvidiaBackend.language
PARENT = """import torch

def add(x, y):
    z = x + y
    return z

xx = 10
"""


def block(search: str, replace: str) -> str:
    return f"<<<<<<< SEARCH\n{search}\n=======\n{replace}\n>>>>>>> REPLACE"


def test_exact_blocks_apply_in_order_on_whole_lines():
    reply = "Here you go:\n" + block("    z = x + y", "    z = x * y") + "\n\n" + block("xx = 10", "xx = 11")
    source, used, notes = program_from_reply(reply, PARENT, TRITON, "auto")
    assert used == "edits" and notes == []
    assert source == PARENT.replace("x + y", "x * y").replace("xx = 10", "xx = 11")


def test_search_does_not_match_inside_a_longer_line():
    with pytest.raises(ReplyError, match="did not apply"):
        program_from_reply(block("x = 10", "x = 3"), PARENT, TRITON, "auto")


def test_indentation_and_trailing_whitespace_are_tolerated():
    reply = "```python\n" + block("z = x + y   \nreturn z", "z = x - y\nif z is None:\n    z = 0\nreturn z") + "\n```"
    source, used, notes = program_from_reply(reply, PARENT, TRITON, "edits")
    assert "    z = x - y\n    if z is None:\n        z = 0\n    return z\n" in source
    assert notes == ["edit block 1 matched ignoring indentation"]


def test_a_block_that_does_not_apply_rejects_the_whole_edit_and_is_reported():
    reply = block("    z = x + y", "    z = x * y") + "\n" + block("    return w", "    return 2 * w")
    with pytest.raises(ReplyError, match="1 of 2 edit blocks did not apply .*discarded") as info:
        program_from_reply(reply, PARENT, TRITON, "auto")
    assert len(info.value.notes) == 1
    assert "edit block 2 did not apply" in info.value.notes[0] and "return w" in info.value.notes[0]


@pytest.mark.parametrize(
    "reply, problem",
    [
        ("<<<<<<< SEARCH\nxx = 10\n>>>>>>> REPLACE", "no ======= line"),
        ("<<<<<<< SEARCH\nxx = 10\n=======\nxx = 2\n", "no >>>>>>> REPLACE"),
        ("no blocks here", "no <<<<<<< SEARCH"),
    ],
)
def test_malformed_blocks_are_errors(reply, problem):
    with pytest.raises(ReplyError, match=problem):
        parse_edit_blocks(reply)


def test_empty_and_noop_edits_are_errors():
    with pytest.raises(ReplyError, match="SEARCH section is empty"):
        apply_edits(PARENT, parse_edit_blocks(block("", "x = 1")))
    with pytest.raises(ReplyError, match="unchanged"):
        program_from_reply(block("xx = 10", "xx = 10"), PARENT, TRITON, "auto")
    with pytest.raises(ReplyError, match="empty"):
        program_from_reply("   ", PARENT, TRITON, "auto")


def test_deleting_lines():
    source, _, _ = program_from_reply(block("xx = 10", ""), PARENT, TRITON, "auto")
    assert "xx" not in source and "return z" in source


def test_full_program_largest_block_of_the_right_language_among_prose():
    reply = (
        "I'll first show the shell command:\n```bash\npip install triton\n```\n"
        "A tiny snippet:\n```python\nx = 1\n```\nAnd the program:\n```python\n"
        + PARENT.replace("+", "-")
        + "```\nDone."
    )
    source, used, _ = program_from_reply(reply, PARENT, TRITON, "auto")
    assert used == "full" and source == PARENT.replace("+", "-")


def test_full_program_without_fences_when_the_reply_is_code():
    assert extract_program(PARENT.replace("+", "*"), TRITON) == PARENT.replace("+", "*")
    cu = '#include <cuda.h>\n__global__ void k(float* x) { x[0] = 1; }\n'
    assert extract_program("```cuda\n" + cu + "```", CUDA) == cu
    assert extract_program(cu, CUDA) == cu


def test_prose_only_and_wrong_language_are_errors():
    with pytest.raises(ReplyError, match="no triton program"):
        program_from_reply("I think you should use shared memory.", PARENT, TRITON, "auto")
    with pytest.raises(ReplyError, match="tagged bash"):
        program_from_reply("```bash\nls\n```", PARENT, TRITON, "full")
    with pytest.raises(ReplyError, match="unchanged"):
        program_from_reply("```python\n" + PARENT + "```", PARENT, TRITON, "auto")


def test_either_form_is_accepted_whatever_was_asked():
    full = "```python\n" + PARENT.replace("+", "-") + "```"
    assert program_from_reply(full, PARENT, TRITON, "edits")[1] == "full"
    edit = "```python\n" + block("xx = 10", "xx = 12") + "\n```"
    assert program_from_reply(edit, PARENT, TRITON, "full")[1] == "edits"


def test_nul_bytes_and_garbage_are_errors_not_crashes():
    with pytest.raises(ReplyError):
        program_from_reply("def f(:\x00\n" * 3, PARENT, TRITON, "auto")


def test_the_language_decides_fences_unfenced_programs_and_edit_matching():
    frob = Language(name="frob", fence_tags=("frob",), program_patterns=(r"^frob ",), edit_matching=("exact",))
    assert extract_program("```frob\nfrob 1\n```", frob) == "frob 1\n"
    assert extract_program("frob 2\nfrob 3", frob) == "frob 2\nfrob 3\n"
    with pytest.raises(ReplyError, match=r"no frob program .*tagged frob or untagged.*tagged python"):
        extract_program("```python\nx = 1\n```", frob)
    # the same indented SEARCH applies in Triton (indentation tolerated) but not in a language that asks exact lines
    reply = block("z = x + y\nreturn z", "z = x - y\nreturn z")
    assert "    z = x - y" in program_from_reply(reply, PARENT, TRITON, "edits")[0]
    with pytest.raises(ReplyError, match="were not found in the program$"):
        program_from_reply(reply, PARENT, Language(name="strict", edit_matching=("exact",)), "edits")
