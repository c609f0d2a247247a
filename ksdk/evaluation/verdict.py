"""How a stage of the judge ends an evaluation: a Verdict names the stage, the error kind, a message for the author
(or the LLM) and the candidate's line."""

from __future__ import annotations

from typing import Optional

from ksdk.models import ErrorKind, Stage


class Verdict(Exception):
    """Ends the evaluation: the stage, the error kind, a message for the author (or LLM), the candidate's line."""

    def __init__(self, stage: Stage, kind: ErrorKind, message: str, line: Optional[int] = None):
        super().__init__(message)
        self.stage, self.kind, self.message, self.line = stage, kind, message, line


def out_of_memory(e: BaseException) -> bool:
    """A device allocation failed: PyTorch's OutOfMemoryError, or a driver call's out-of-memory result."""
    return type(e).__name__ == "OutOfMemoryError" or "out of memory" in str(e).lower()


DOES_NOT_FIT = "does not fit this device"  # the words every too-large-for-the-device verdict starts with
