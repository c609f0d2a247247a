"""The revision of a step in the LLM mutator's reply format: its own reply, or edit blocks of the changed lines."""

from __future__ import annotations

import difflib

SEARCH, DIVIDER, REPLACE = "<<<<<<< SEARCH", "=======", ">>>>>>> REPLACE"


def _block(search: list[str], replace: list[str]) -> str:
    return "\n".join([SEARCH, *search, DIVIDER, *replace, REPLACE])


def _occurrences(text: str, part: str) -> int:
    """Occurrences of `part` in `text`, overlapping ones included (str.count skips those)."""
    n, i = 0, text.find(part)
    while i != -1:
        n += 1
        i = text.find(part, i + 1)
    return n


def _same_length_ops(a: list[str], b: list[str], most: int = 8) -> list[tuple] | None:
    """Line-by-line changes of two equally long texts (the common case: tuned values); None when many differ."""
    diff = [i for i, (x, y) in enumerate(zip(a, b)) if x != y]
    if len(diff) > most:
        return None
    ops: list[tuple] = []
    for i in diff:
        if ops and ops[-1][2] == i:
            ops[-1] = ("replace", ops[-1][1], i + 1, ops[-1][3], i + 1)
        else:
            ops.append(("replace", i, i + 1, i, i + 1))
    return ops


def _edit_blocks(parent: str, child: str, context: int) -> str:
    a, b = parent.split("\n"), child.split("\n")
    blocks = []
    ops = _same_length_ops(a, b) if len(a) == len(b) else None
    if ops is None:
        ops = [op for op in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes() if op[0] != "equal"]
    # merge hunks that overlap once widened by `context`, so no two SEARCH texts share lines
    merged: list[list[int]] = []
    for _, i1, i2, j1, j2 in ops:
        if merged and i1 - merged[-1][1] <= 2 * context:
            merged[-1][1], merged[-1][3] = i2, j2
        else:
            merged.append([i1, i2, j1, j2])
    for i1, i2, j1, j2 in merged:
        # after the earlier blocks are applied, the text is the child up to this hunk and the parent after it
        cur = b[:j1] + a[i1:]
        end = j1 + (i2 - i1)
        lo, hi = max(0, j1 - context), min(len(cur), end + context)
        text = "\n".join(cur)
        while True:
            search = "\n".join(cur[lo:hi])
            replace = cur[lo:j1] + b[j1:j2] + cur[end:hi]
            # a REPLACE of one blank line reads as an empty one (a deletion): widen instead
            if (search.strip() and _occurrences(text, search) == 1 and replace != [""]) or (
                    lo == 0 and hi == len(cur)):
                break
            lo, hi = max(0, lo - 1), min(len(cur), hi + 1)
        blocks.append(_block(cur[lo:hi], replace))
    return "\n\n".join(blocks)


def edit_blocks(parent: str, child: str, context: int = 0) -> str:
    """SEARCH/REPLACE blocks (ksdk.mutators.edits' format) that turn `parent` into `child`, one per changed hunk.

    Each SEARCH is the changed lines, widened with neighbours until it is non-blank and occurs exactly once. The
    result is checked with the LLM mutator's own applier; where blank-only text defeats the format, one block
    replacing the whole program is used instead.
    """
    from ksdk.mutators.edits import ReplyError, apply_edits, parse_edit_blocks

    reply = _edit_blocks(parent, child, context)
    try:
        if apply_edits(parent, parse_edit_blocks(reply)).source == child:
            return reply
    except ReplyError:
        pass
    return _block(parent.split("\n"), child.split("\n"))
