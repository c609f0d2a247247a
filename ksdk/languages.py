r"""Candidate languages as data: what a backend declares about the programs it accepts, so that the core reads,
edits, stores and exports them without knowing any language itself.

    class CpuCBackend(Backend):
        language = Language(name="c", extensions=(".c", ".h"), fence_tags=("c", "cpp"), line_comments=("//",),
                            program_patterns=(r"\{", r";", r"^\s*(#include|void|int|float|static)\b"))
"""

from __future__ import annotations

import hashlib
import re
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

EditMatch = Literal["exact", "whitespace", "indentation"]


class Language(BaseModel):
    """A candidate language: its name, file types, code fences, comment syntax and how edits may match.

    Frozen and JSON-serialisable: a run stores its language in run.json, a service sends it in /info."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field("", description="what candidates and runs record, e.g. 'triton' or 'c'")
    extensions: tuple[str, ...] = Field((), description="file name endings of its source files, e.g. ('.c', '.h'); "
                                        "seed files are found by them, and the first names files ksdk writes")
    fence_tags: tuple[str, ...] = Field((), description="info strings of the Markdown code fences that hold its "
                                        "code (untagged fences always count); the first is used in prompts")
    line_comments: tuple[str, ...] = Field((), description="what starts a comment line, e.g. ('//',) or ('#',)")
    program_patterns: tuple[str, ...] = Field((), description="regular expressions (multi-line mode) that together "
                                              "make an LLM reply without a code fence a whole program; none: only "
                                              "fenced code is taken")
    kernel_pattern: str = Field("", description="regular expression (multi-line) matching each kernel definition, "
                                "e.g. Triton's @triton.jit: the selection's `kernels` descriptor counts them")
    matmul_pattern: str = Field("", description="regular expression found when a program uses the hardware's "
                                "matrix-multiply primitive (Triton's tl.dot): the selection's `matmul` descriptor")
    edit_matching: tuple[EditMatch, ...] = Field(("exact", "whitespace", "indentation"), description="how the "
                                                 "SEARCH side of an edit block may match the program, tried in "
                                                 "order: exactly, ignoring trailing whitespace, ignoring "
                                                 "indentation (the replacement is then re-indented alike)")

    @field_validator("extensions")
    @classmethod
    def _dotted(cls, extensions: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(e if e.startswith(".") else "." + e for e in extensions)

    def __str__(self) -> str:
        return self.name

    @classmethod
    def of(cls, value: Union[str, "Language", None]) -> "Language":
        """A Language from a backend's declaration: a Language, or a bare name (no syntax known)."""
        if isinstance(value, Language):
            return value
        return cls(name=str(value or ""))

    @property
    def extension(self) -> str:
        """The ending of files ksdk writes in this language ('.txt' when it declares none)."""
        return self.extensions[0] if self.extensions else ".txt"

    @property
    def fence(self) -> str:
        """The code-fence tag prompts ask for."""
        return self.fence_tags[0] if self.fence_tags else self.name

    def fences(self, tag: str) -> bool:
        """True when a code fence tagged `tag` holds this language's code (an untagged fence always does)."""
        tag = tag.lower()
        return tag == "" or tag == self.name.lower() or tag in (t.lower() for t in self.fence_tags)

    def is_program(self, text: str) -> bool:
        """True when an unfenced reply is a whole program: every declared pattern is found in it."""
        return bool(self.program_patterns) and all(re.search(p, text, re.M) for p in self.program_patterns)

    def is_comment(self, line: str) -> bool:
        """True for a comment-only line."""
        return line.lstrip().startswith(self.line_comments) if self.line_comments else False

    def normalize(self, source: str) -> str:
        """Canonical form for duplicate detection: no trailing spaces, no blank or comment-only lines."""
        lines = (line.rstrip() for line in source.replace("\r\n", "\n").split("\n"))
        return "\n".join(line for line in lines if line.strip() and not self.is_comment(line))

    def source_hash(self, source: str) -> str:
        """Hash of the normalised source: two programs with the same hash are the same program."""
        return hashlib.sha256(self.normalize(source).encode()).hexdigest()[:16]


def _coerce(value: Any) -> Any:
    return Language.of(value) if value is None or isinstance(value, str) else value


# A model field holding a Language that also takes a bare name (what older runs and plugins give).
LanguageField = Annotated[Language, BeforeValidator(_coerce)]
