"""Turn an LLM reply into a program: SEARCH/REPLACE edit blocks against the parent, or a full program.

Edit block format (markers of 5 to 9 characters are accepted; the canonical form has 7):

    <<<<<<< SEARCH
    lines copied exactly from the parent
    =======
    the lines that replace them
    >>>>>>> REPLACE

Each block applies to the program as the earlier blocks left it: exact match first, then (where the language's
`edit_matching` allows) ignoring trailing whitespace, then ignoring indentation (the replacement is re-indented by
the same offset). All or nothing: if any block does not apply, the whole edit is rejected, so a half-applied
program is never evaluated, and every failing block is reported so the next prompt can show it. Which code fences
hold a program, and whether an unfenced reply is one, is the language's declaration (ksdk/languages.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Optional, Union

from ksdk.languages import Language

_SEARCH = re.compile(r"^\s*<{5,9}\s*SEARCH\s*$")
_DIVIDER = re.compile(r"^\s*={5,9}\s*$")
_REPLACE = re.compile(r"^\s*>{5,9}\s*REPLACE\s*$")
_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<ticks>`{3,}|~{3,})[ \t]*(?P<lang>[\w+#.-]*)[^\n]*$", re.M)


class ReplyError(ValueError):
    """A reply that yields no program; the message says what was wrong, for the attempt log and the next prompt."""

    def __init__(self, message: str, notes: Optional[list[str]] = None):
        super().__init__(message)
        self.notes = notes or []


@dataclass
class EditBlock:
    search: str
    replace: str
    index: int  # 1-based position in the reply


@dataclass
class Applied:
    """The edited program and how each block matched ('exact', 'whitespace', 'indentation')."""

    source: str
    matches: list[str] = field(default_factory=list)


def has_edit_blocks(reply: str) -> bool:
    """True when the reply contains at least one SEARCH marker."""
    return any(_SEARCH.match(line) for line in reply.split("\n"))


def parse_edit_blocks(reply: str) -> list[EditBlock]:
    """The SEARCH/REPLACE blocks of a reply, in order; ReplyError when one is malformed or there are none."""
    blocks: list[EditBlock] = []
    lines = reply.replace("\r\n", "\n").split("\n")
    i = 0
    while i < len(lines):
        if not _SEARCH.match(lines[i]):
            i += 1
            continue
        n = len(blocks) + 1
        start = i + 1
        j = start
        while j < len(lines) and not _DIVIDER.match(lines[j]):
            if _SEARCH.match(lines[j]) or _REPLACE.match(lines[j]):
                raise ReplyError(f"edit block {n} is malformed: no ======= line between SEARCH and REPLACE")
            j += 1
        if j == len(lines):
            raise ReplyError(f"edit block {n} is malformed: no ======= line after <<<<<<< SEARCH")
        k = j + 1
        while k < len(lines) and not _REPLACE.match(lines[k]):
            if _SEARCH.match(lines[k]):
                raise ReplyError(f"edit block {n} is malformed: no >>>>>>> REPLACE line before the next block")
            k += 1
        if k == len(lines):
            raise ReplyError(f"edit block {n} is malformed: no >>>>>>> REPLACE line closing it")
        blocks.append(EditBlock(search="\n".join(lines[start:j]), replace="\n".join(lines[j + 1: k]), index=n))
        i = k + 1
    if not blocks:
        raise ReplyError("the reply has no <<<<<<< SEARCH / ======= / >>>>>>> REPLACE edit blocks")
    return blocks


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _reindent(lines: list[str], old: str, new: str) -> list[str]:
    """Move lines from indentation `old` to `new` (the offset between the reply's and the parent's lines)."""
    out = []
    for line in lines:
        if not line.strip():
            out.append(line)
        elif line.startswith(old):
            out.append(new + line[len(old):])
        else:
            out.append(new + line.lstrip())
    return out


def _trim_blank(lines: list[str]) -> list[str]:
    start, end = 0, len(lines)
    while start < end and not lines[start].strip():
        start += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return lines[start:end]


def _apply_one(source: str, block: EditBlock, language: Language) -> tuple[Optional[str], str]:
    """(new source, how it matched) or (None, why it did not)."""
    if not block.search.strip():
        return None, "its SEARCH section is empty (copy the lines to replace from the current program)"
    # Exact: whole lines only (a SEARCH of `x = 1` must not match inside `xx = 10`); first occurrence wins.
    padded, needle = "\n" + source + "\n", "\n" + block.search + "\n"
    pos = padded.find(needle) if "exact" in language.edit_matching else -1
    if pos >= 0:
        middle = "\n" + block.replace + "\n" if block.replace else "\n"
        return (padded[:pos] + middle + padded[pos + len(needle):])[1:-1], "exact"
    src = source.split("\n")
    want = _trim_blank(block.search.split("\n"))
    repl = block.replace.split("\n")
    n = len(want)
    for how, key in (("whitespace", str.rstrip), ("indentation", str.strip)):
        if how not in language.edit_matching:
            continue
        target = [key(x) for x in want]
        for start in range(len(src) - n + 1):
            if [key(x) for x in src[start: start + n]] != target:
                continue
            first = next(i for i, x in enumerate(want) if x.strip())
            old_indent, new_indent = _indent(want[first]), _indent(src[start + first])
            new_lines = _reindent(_trim_blank(repl), old_indent, new_indent) if how == "indentation" else _trim_blank(
                repl
            )
            return "\n".join(src[:start] + new_lines + src[start + n:]), how
    loose = [how for how in ("whitespace", "indentation") if how in language.edit_matching]
    return None, "its SEARCH lines were not found in the program" + (f" (not even ignoring {' and '.join(loose)})"
                                                                      if loose else "")


def _excerpt(text: str, limit: int = 600) -> str:
    return text if len(text) <= limit else text[:limit] + f"\n... [{len(text) - limit} more chars]"


def apply_edits(parent: str, blocks: list[EditBlock], language: Optional[Language] = None) -> Applied:
    """Apply every block in order, or raise ReplyError listing each block that failed (nothing is applied)."""
    language = language or Language()
    current, matches, failures, reasons = parent, [], [], []
    for block in blocks:
        new, how = _apply_one(current, block, language)
        if new is None:
            failures.append(
                f"edit block {block.index} did not apply: {how}. Its SEARCH section was:\n{_excerpt(block.search)}"
            )
            reasons.append(f"block {block.index}: {how}")
            continue
        current = new
        matches.append(how)
    if failures:
        applied = len(blocks) - len(failures)
        raise ReplyError(
            f"{len(failures)} of {len(blocks)} edit blocks did not apply"
            + (f" (the other {applied} were discarded too: edits apply all or nothing)" if applied else "")
            + ": " + "; ".join(reasons),
            notes=failures,
        )
    if current == parent:
        raise ReplyError("the edit blocks leave the program unchanged (each REPLACE equals its SEARCH)")
    return Applied(source=current, matches=matches)


def fenced_blocks(reply: str) -> list[tuple[str, str]]:
    """(language tag, body) of each fenced code block, in order."""
    out = []
    lines = reply.replace("\r\n", "\n").split("\n")
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        ticks, lang = m.group("ticks"), m.group("lang").lower()
        j = i + 1
        while j < len(lines) and not re.match(rf"^[ \t]*{re.escape(ticks[0])}{{{len(ticks)},}}[ \t]*$", lines[j]):
            j += 1
        out.append((lang, "\n".join(lines[i + 1: j])))
        i = j + 1
    return out


def extract_program(reply: str, language: Union[Language, str]) -> str:
    """The full program in a reply: the largest fenced block the language's fence tags (or no tag) mark, else the
    whole reply when the language's program patterns find it is code; ReplyError otherwise."""
    language = Language.of(language)
    fenced = fenced_blocks(reply)
    blocks = [body for tag, body in fenced if language.fences(tag) and body.strip()]
    if blocks:
        return max(blocks, key=len).strip("\n") + "\n"
    stripped = reply.strip()
    if stripped and language.is_program(stripped):
        return stripped + "\n"
    others = sorted({tag for tag, _ in fenced if not language.fences(tag)})
    extra = f" (found fenced blocks tagged {', '.join(others)})" if others else ""
    tags = ", ".join(t for t in dict.fromkeys([language.fence, *language.fence_tags]) if t)
    raise ReplyError(f"the reply holds no {language.name or 'candidate'} program in a fenced code block "
                     f"({f'tagged {tags} or ' if tags else ''}untagged){extra}")


def program_from_reply(reply: str, parent: str, language: Union[Language, str],
                       reply_format: str) -> tuple[str, str, list[str]]:
    """(program, format used 'full'/'edits', notes) from a reply; ReplyError when it yields none.

    Either form is accepted whatever `reply_format` asked for (models do not always comply): any SEARCH
    marker makes it an edit, and with 'edits' a reply without one must hold a full program."""
    if not reply or not reply.strip():
        raise ReplyError("the reply is empty")
    if "\x00" in reply:
        raise ReplyError("the reply contains NUL bytes (no source file does)")
    use_edits = has_edit_blocks(reply)
    if use_edits:
        applied = apply_edits(parent, parse_edit_blocks(reply), Language.of(language))
        notes = [
            f"edit block {i + 1} matched ignoring {how}" for i, how in enumerate(applied.matches) if how != "exact"
        ]
        return applied.source, "edits", notes
    program = extract_program(reply, language)
    if program.strip() == parent.strip():
        raise ReplyError("the reply repeats the parent program unchanged")
    return program, "full", []
