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


def edit_blocks(parent: str, child: str, context: int = 0) -> str:
    """SEARCH/REPLACE blocks that turn `parent` into `child`, one per changed hunk.

    Each SEARCH text is widened with surrounding lines until it occurs exactly once in the parent, so the blocks
    apply unambiguously, as the LLM mutator requires of its own replies.
    """
    a, b = parent.split("\n"), child.split("\n")
    blocks = []
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
            if (search.strip() and _occurrences(text, search) == 1) or (lo == 0 and hi == len(cur)):
                break
            lo, hi = max(0, lo - 1), min(len(cur), hi + 1)
        blocks.append(_block(cur[lo:hi], cur[lo:j1] + b[j1:j2] + cur[end:hi]))
    return "\n\n".join(blocks)


def apply_edit_blocks(parent: str, reply: str) -> str:
    """Apply SEARCH/REPLACE blocks to `parent` (each SEARCH text must occur exactly once); used to check renders."""
    out = parent
    for chunk in reply.split(SEARCH + "\n")[1:]:
        body = chunk.split("\n" + REPLACE)[0]
        lines = body.split("\n")
        k = lines.index(DIVIDER)
        search, replace = "\n".join(lines[:k]), "\n".join(lines[k + 1:])
        if _occurrences(out, search) != 1:
            raise ValueError(f"SEARCH text occurs {_occurrences(out, search)} times in the parent")
        out = out.replace(search, replace, 1)
    return out
