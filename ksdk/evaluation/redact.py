"""Compiler output reaches an LLM provider, the archive and exported datasets: lines quoting a file other than the
candidate's own sources and the toolchain's headers are cut before it leaves the judge (a candidate that writes
`#include "/home/user/.ssh/id_rsa"` must not get that file's text back in its error message)."""

from __future__ import annotations

import re
import sys
import sysconfig

_PATH = re.compile(r"(?<![\w.])(/[\w.+@%-]+(?:/[\w.+@%-]+)+)")
# Toolchain headers; the candidate's own sources live in its scratch folder, which the caller names.
_KEEP = ("/usr/include/", "/usr/lib/gcc/", "/usr/local/cuda", "/usr/local/include/", "/opt/maca",
         "/opt/gcc/", "/usr/lib/llvm")


def _allowed_prefixes() -> tuple[str, ...]:
    inc = sysconfig.get_paths().get("include") or ""
    return _KEEP + tuple(p for p in (inc, sys.base_prefix + "/include", sys.prefix + "/lib") if p)


def compiler_output(text: str, extra_allowed: tuple[str, ...] = ()) -> str:
    """`text` with every line naming a file outside the toolchain and `extra_allowed` (the candidate's scratch
    folder) removed, with the two lines a compiler prints after it (the quoted source line and its caret)."""
    allowed = _allowed_prefixes() + tuple(extra_allowed)
    out: list[str] = []
    skip = 0
    cut = 0
    for line in text.splitlines():
        if skip:
            skip -= 1
            continue
        paths = _PATH.findall(line)
        if any(not p.startswith(allowed) for p in paths):
            cut += 1
            skip = 2 if re.search(r":\d+(:\d+)?:", line) else 0
            continue
        out.append(line)
    if cut:
        out.append(f"[{cut} line(s) naming files outside the candidate's sources and the toolchain were removed]")
    return "\n".join(out)
