"""The `ksdk:tune` contract: source lines that declare a constant and the choices a tuner may give it.

    BLOCK_M = 64  # ksdk:tune [16, 32, 64, 128]            (Python / Triton)
    BLOCK_K: tl.constexpr = 32  # ksdk:tune [16, 32, 64]   (annotated assignment)
    #define TILE 32 // ksdk:tune [8, 16, 32, 64]           (C / C++ / CUDA / MACA)
    constexpr int WARPS = 4; // ksdk:tune [2, 4, 8]

Name = the identifier assigned or defined on that line; value = the literal before the comment; choices = the
JSON list after `ksdk:tune` (numbers, strings or booleans), in the order a tuner treats as "adjacent".
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, Mapping, Optional

from ksdk.errors import KsdkError
from ksdk.models import normalize_source


class TunableError(KsdkError):
    """A `ksdk:tune` declaration is malformed, or a value outside its declared choices was requested."""


_MARKER = re.compile(r"(#|//|/\*)\s*ksdk:tune\b\s*")
_NUMBER = r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?[fFuUlL]*"
_LITERAL = rf"(?:\"[^\"\\]*\"|'[^'\\]*'|True|False|true|false|{_NUMBER})"
_DEFINE = re.compile(rf"^\s*#\s*define\s+(?P<name>[A-Za-z_]\w*)\s+(?P<value>{_LITERAL})\s*$")
# `NAME = 64`, `NAME: tl.constexpr = 64`, `constexpr int NAME = 64;`, `num_warps=4,` (a keyword argument line).
_ASSIGN = re.compile(
    rf"(?<![\w.])(?P<name>[A-Za-z_]\w*)\s*(?::[^=]+?)?=(?!=)\s*(?P<value>{_LITERAL})\s*[,;]?\s*$"
)
_HELP = "write it as `NAME = VALUE  # ksdk:tune [v1, v2, ...]` or `#define NAME VALUE // ksdk:tune [v1, v2, ...]`"


@dataclass(frozen=True)
class Tunable:
    """One declared tunable: its name, current value, declared choices and where its literal sits."""

    name: str
    value: Any
    choices: tuple[Any, ...]
    line: int  # 1-based line number in the source
    start: int  # column span of the value literal on that line
    end: int
    style: str  # 'python' or 'c': how values are written back

    @property
    def index(self) -> Optional[int]:
        """Position of the current value among the choices, or None when it is not one of them."""
        for i, choice in enumerate(self.choices):
            if same_value(choice, self.value):
                return i
        return None

    def nearest_index(self) -> int:
        """The choice closest to the current value (itself when it is a choice): where a search starts."""
        exact = self.index
        if exact is not None:
            return exact
        if _is_number(self.value) and all(_is_number(c) for c in self.choices):
            return min(range(len(self.choices)), key=lambda i: abs(float(self.choices[i]) - float(self.value)))
        return 0


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def same_value(a: Any, b: Any) -> bool:
    """Equality that keeps True apart from 1 (a JSON `true` choice is not the number 1)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return a == b


def _parse_literal(text: str) -> Any:
    if text[0] in "\"'":
        return text[1:-1]
    if text in ("True", "true"):
        return True
    if text in ("False", "false"):
        return False
    number = text.rstrip("fFuUlL")
    if re.fullmatch(r"[-+]?\d+", number):
        return int(number)
    return float(number)


def _format(value: Any, style: str, old_literal: str) -> str:
    if isinstance(value, bool):
        if style == "python":
            return "True" if value else "False"
        return "true" if value else "false"
    if isinstance(value, str):
        quote = "'" if old_literal.startswith("'") and "'" not in value else '"'
        return f"{quote}{value}{quote}"
    if isinstance(value, float) and style == "c":
        suffix = old_literal[len(old_literal.rstrip("fFlL")):]
        return repr(value) + suffix
    return repr(value)


def _parse_line(lineno: int, line: str) -> Optional[Tunable]:
    marker = _MARKER.search(line)
    if marker is None:
        return None
    code, rest = line[: marker.start()], line[marker.end():]
    where = f"line {lineno}: {line.strip()!r}"
    try:
        choices, _ = json.JSONDecoder().raw_decode(rest)
    except json.JSONDecodeError as exc:
        raise TunableError(f"ksdk:tune on {where}: the choices are not a JSON list ({exc.msg}); {_HELP}") from None
    if not isinstance(choices, list) or not choices:
        raise TunableError(f"ksdk:tune on {where}: the choices must be a non-empty JSON list; {_HELP}")
    if not all(isinstance(c, (int, float, str, bool)) for c in choices):
        raise TunableError(f"ksdk:tune on {where}: choices must be numbers, strings or booleans; {_HELP}")
    if len({json.dumps(c) for c in choices}) != len(choices):
        raise TunableError(f"ksdk:tune on {where}: the choices repeat a value; list each value once")
    match = _DEFINE.match(code) or _ASSIGN.search(code)
    if match is None:
        raise TunableError(f"ksdk:tune on {where}: no `NAME = literal` or `#define NAME literal` before it; {_HELP}")
    style = "python" if marker.group(1) == "#" else "c"
    return Tunable(
        name=match.group("name"),
        value=_parse_literal(match.group("value")),
        choices=tuple(choices),
        line=lineno,
        start=match.start("value"),
        end=match.end("value"),
        style=style,
    )


def find_tunables(source: str) -> list[Tunable]:
    """Every `ksdk:tune` declaration in the source, in order; raises TunableError on a malformed one."""
    found: list[Tunable] = []
    names: dict[str, int] = {}
    for lineno, line in enumerate(source.split("\n"), start=1):
        if "ksdk:tune" not in line:
            continue
        tunable = _parse_line(lineno, line)
        if tunable is None:
            continue
        if tunable.name in names:
            raise TunableError(
                f"ksdk:tune: {tunable.name!r} is declared twice (lines {names[tunable.name]} and {lineno}); "
                "give each tunable constant one declaration and a unique name"
            )
        names[tunable.name] = lineno
        found.append(tunable)
    return found


def apply_tunables(source: str, values: Mapping[str, Any]) -> str:
    """Source with the named tunables set to the given values; each value must be one of its choices."""
    tunables = {t.name: t for t in find_tunables(source)}
    unknown = sorted(set(values) - set(tunables))
    if unknown:
        raise TunableError(
            f"no ksdk:tune declaration for {', '.join(unknown)}; declared: {', '.join(tunables) or 'none'}"
        )
    lines = source.split("\n")
    for name, value in values.items():
        t = tunables[name]
        if not any(same_value(value, c) for c in t.choices):
            raise TunableError(
                f"{name}={value!r} is outside its declared choices {list(t.choices)} (line {t.line}); "
                "pick one of them or extend the ksdk:tune list"
            )
        line = lines[t.line - 1]
        lines[t.line - 1] = line[: t.start] + _format(value, t.style, line[t.start: t.end]) + line[t.end:]
    return "\n".join(lines)


def current_values(tunables: list[Tunable]) -> dict[str, Any]:
    """{name: value} of the declared tunables as written in the source."""
    return {t.name: t.value for t in tunables}


def skeleton_hash(source: str, tunables: Optional[list[Tunable]] = None) -> str:
    """Hash of the source with every tunable value blanked: programs that differ only in tunables share it."""
    tunables = find_tunables(source) if tunables is None else tunables
    lines = source.split("\n")
    for t in tunables:
        line = lines[t.line - 1]
        lines[t.line - 1] = line[: t.start] + "\0" + line[t.end:]
    return hashlib.sha256(normalize_source("\n".join(lines)).encode()).hexdigest()[:16]
