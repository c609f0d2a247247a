"""Error text from the candidate's process (compiler output, tracebacks, crash logs) reaches an LLM provider, the
archive and exported datasets. It keeps the error, the exception's type and message and the compiler's diagnostic,
and loses only what belongs to files outside the candidate's sources and the toolchain: their paths (shown as
`…/NAME`), the source lines a compiler or Python quotes from them, and quoted text on a compiler's location line
into them (a candidate that writes `#include "/home/user/.ssh/id_rsa"` must not get that file's text back)."""

from __future__ import annotations

import os
import re
import sys
import sysconfig

# Toolchain headers; the candidate's own sources live in its scratch folder, which the caller names.
_KEEP = ("/usr/include/", "/usr/lib/gcc/", "/usr/local/cuda", "/usr/local/include/", "/opt/maca",
         "/opt/gcc/", "/usr/lib/llvm")
ELIDED = "…"  # a foreign path is shown as …/NAME, which reads as a relative path of the candidate's own (idempotent)

_CH = r"[\w.+@%~-]"
_TOKEN = re.compile(rf"(?<![\w.+@%~/{ELIDED}-]){_CH}*/[\w.+@%~/-]*{_CH}")
# A compiler's (or Python warning's) location: the line's text up to the first ':' or '(' is a path, followed by
# a line number: `path:L:C: error: ...`, `path:L: UserWarning: ...`, nvcc's `path(L): error: ...`.
_LOCATION = re.compile(r"^(?P<ind>\s*)(?P<path>[^\s:(][^:(]*?)(?P<pos>:\d+(?::\d+)?:|\(\d+\):?)(?P<rest>.*)$")
_SCOPE = re.compile(r"^(?P<ind>\s*)(?P<path>[^\s:(][^:(]*?)(?P<pos>: In )(?P<rest>.*)$")  # gcc: `path: In function`
_FRAME = re.compile(r'^(?P<ind>[\s|]*)File "(?P<path>[^"]*)"(?P<rest>, line \d+.*)$')  # a Python traceback's frame
_QUOTED = re.compile(r"'[^'\n]*'|\"[^\"\n]*\"|‘[^’\n]*’|“[^”\n]*”|`[^`'\n]*['`]")
_DIRECTIVE = re.compile(r"(#\s*(?:error|warning)\b).*")  # `#error TEXT` echoes the file's text unquoted
_GCC_QUOTE = re.compile(r"^\s*\d*\s*\|")  # gcc >= 9 quotes a source line as `  12 | text` and its caret as `     |  ^`
_CARET = re.compile(r"^\s*[~^][\s~^]*$")


def _allowed_prefixes() -> tuple[str, ...]:
    inc = sysconfig.get_paths().get("include") or ""
    return _KEEP + tuple(p for p in (inc, sys.base_prefix + "/include", sys.prefix + "/lib") if p)


def foreign(path: str, allowed: tuple[str, ...]) -> bool:
    """True when `path` names a file outside `allowed` (absolute prefixes) and the current folder: an absolute path,
    after `..` is resolved, outside them; a relative one that climbs out; one under a home folder (`~`)."""
    if path.startswith("~"):
        return True
    if path.startswith("/"):
        norm = "/" + os.path.normpath(path).lstrip("/") + "/"
        return not norm.startswith(allowed)
    norm = os.path.normpath(path)
    return norm == ".." or norm.startswith("../")


def _shown(path: str) -> str:
    return f"{ELIDED}/{os.path.basename(os.path.normpath(path.rstrip('.'))) or 'file'}"


def _paths_in(text: str, allowed: tuple[str, ...]) -> str:
    """`text` with each foreign path shown as …/NAME (URLs are not paths)."""

    def sub(m: re.Match) -> str:
        if m.group(0).startswith("//") and text[:m.start()].endswith(("http:", "https:")):
            return m.group(0)
        return _shown(m.group(0)) if foreign(m.group(0), allowed) else m.group(0)

    return _TOKEN.sub(sub, text)


def _location(m: re.Match, allowed: tuple[str, ...]) -> str:
    """A compiler's location line into a foreign file: its path shown as …/NAME, its quoted text (the file's) cut."""
    rest = _DIRECTIVE.sub(lambda d: d.group(1) + " " + ELIDED, _QUOTED.sub(_elide, m.group("rest")))
    return m.group("ind") + _shown(m.group("path")) + m.group("pos") + _paths_in(rest, allowed)


def _quote_end(lines: list[str], i: int) -> int:
    """Index past the source a compiler quotes at lines[i:] after a location line."""
    if i < len(lines) and _GCC_QUOTE.match(lines[i]):
        while i < len(lines) and _GCC_QUOTE.match(lines[i]):
            i += 1
        return i
    if i < len(lines):  # clang, nvcc, Python warnings: the raw source line, then maybe a caret
        i += 1
        if i < len(lines) and _CARET.match(lines[i]):
            i += 1
    return i


def _redact(text: str, allowed: tuple[str, ...]) -> str:
    """One pass. It adds no note of what it cut, so the message keeps its shape: the first line (a summary in logs)
    and the last (a traceback's exception) stay where they were."""
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        frame = _FRAME.match(line)
        if frame:
            if not foreign(frame.group("path"), allowed):
                out.append(_paths_in(line, allowed))
                continue
            ind = frame.group("ind")
            out.append(f'{ind}File "{_shown(frame.group("path"))}"' + _paths_in(frame.group("rest"), allowed))
            # Python quotes the frame's source (and its carets) indented deeper than the frame
            while i < len(lines) and lines[i].strip() and _indent(lines[i]) > len(ind):
                i += 1
            continue
        loc = _LOCATION.match(line)
        if loc and foreign(loc.group("path"), allowed):
            out.append(_location(loc, allowed))
            i = _quote_end(lines, i)
            continue
        scope = None if loc else _SCOPE.match(line)
        if scope and foreign(scope.group("path"), allowed):
            out.append(_location(scope, allowed))
            continue
        out.append(_paths_in(line, allowed))
    return "\n".join(out)


def _indent(line: str) -> int:
    """Leading blanks and the `|` an exception group's traceback draws."""
    return len(line) - len(line.lstrip(" \t|"))


def _elide(m: re.Match) -> str:
    q = m.group(0)
    return q[0] + ELIDED + q[-1]


def compiler_output(text: str, extra_allowed: tuple[str, ...] = ()) -> str:
    """`text` with the error kept and every file outside the toolchain and `extra_allowed` (the candidate's scratch
    folder) reduced to its base name: its path, the source lines quoted from it and quoted text on its location
    lines are cut."""
    return _redact(text, _allowed_prefixes() + tuple(extra_allowed))
