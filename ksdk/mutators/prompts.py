"""Build the LLM mutator's prompt: task, backend rules, parent with feedback, inspirations, last attempt's notes.

The prompt stays within a character budget: the parent program is kept whole (edits must match it), the rest
is trimmed in order of least value: inspiration sources first, then the reference and feedback (head and tail
kept), then the hints.
"""

from __future__ import annotations

from ksdk.interfaces.mutator import MutationRequest, Scored
from ksdk.models import trim_message

SYSTEM = (
    "You are an expert GPU kernel engineer. You rewrite programs so that their kernels compute exactly what "
    "the reference computes, faster. You answer with code in the exact format you are asked for."
)

EDIT_FORMAT = """Answer with one or more SEARCH/REPLACE edit blocks against the CURRENT PROGRAM, in this exact format:

<<<<<<< SEARCH
lines copied exactly from the current program (enough to be unique)
=======
the lines that replace them
>>>>>>> REPLACE

Blocks apply in order; every SEARCH must match the current program (after the earlier blocks) exactly, or
the whole answer is rejected."""

FULL_FORMAT = """Answer with the complete new program in ONE fenced code block (```{fence}
...
```), nothing left out."""

AUTO_FORMAT = (
    "Choose the answer format. For local changes, use SEARCH/REPLACE edit blocks:\n\n"
    + EDIT_FORMAT.split("\n", 2)[2]
    + "\n\nFor a rewrite, instead give the complete new program in ONE fenced code block (```{fence} ... ```)."
)

SCORE_HELP = "score = speedup over the baseline when correct and timed, 0 when correct but untimed, -1 when wrong"


def _scored_line(label: str, s: Scored) -> str:
    r = s.result
    if r is None:
        return f"{label} (id {s.candidate.id}): not evaluated yet"
    speed = f", speedup {r.speedup:.3f}x" if r.speedup is not None else ""
    kind = f" ({r.error_kind.value})" if r.error_kind else ""
    verdict = "correct" if r.correct else f"failed at {r.stage.value}{kind}"
    return f"{label} (id {s.candidate.id}): score {r.score:.3f}{speed}, {verdict}"


def _code(source: str, fence: str) -> str:
    return f"```{fence}\n{source.rstrip()}\n```"


def build_messages(request: MutationRequest, reply_format: str = "auto", max_chars: int = 48_000) -> list[dict]:
    """Chat messages (system + user) for one mutation, at most about `max_chars` characters of user text."""
    lang = request.language
    fence = lang.fence
    parent = request.parent
    fmt = {"edits": EDIT_FORMAT, "full": FULL_FORMAT.format(fence=fence)}.get(
        reply_format, AUTO_FORMAT.format(fence=fence)
    )

    feedback = parent.result.feedback() if parent.result is not None else "not evaluated yet"
    parent_head = (
        f"## Current program ({_scored_line('parent', parent)})\n{_code(parent.candidate.source, fence)}\n\n"
        f"### Its evaluation feedback\n"
    )
    notes = [n for n in request.notes if not n.startswith("[call] ")]  # API-call notes are not the model's concern
    notes_part = ""
    if notes:
        notes_part = "## Problems with your last answer (fix them this time)\n" + "\n\n".join(
            f"- {n}" for n in notes
        )
    goal = (
        f"## Goal\nImprove the current program: keep it correct against the reference, make it faster on the "
        f"`{request.backend or 'target'}` backend ({lang}). If it fails, fix the failure first.\n({SCORE_HELP})"
    )
    fixed = len(SYSTEM) + len(parent_head) + len(notes_part) + len(goal) + len(fmt) + 400
    room = max(2000, max_chars - fixed)

    # Share what is left: reference and hints and feedback first, inspirations with what remains.
    hints_text = trim_message(request.hints, max(400, room // 6)) if request.hints else ""
    reference = trim_message(request.task.source, max(800, room // 3))
    feedback = trim_message(feedback, max(600, room // 4))
    room -= len(hints_text) + len(reference) + len(feedback)

    parts = [f"## Task: {request.task.name}\nThe reference implementation (PyTorch):\n{_code(reference, 'python')}"]
    if hints_text:
        parts.append(f"## Backend rules and hints ({request.backend or lang})\n{hints_text}")
    parts.append(parent_head + feedback)  # not str.replace: the program may contain any text
    if request.inspirations:
        lines = ["## Other programs from the archive, for ideas (edits must target the CURRENT program only)"]
        for i, s in enumerate(request.inspirations, start=1):
            lines.append("### " + _scored_line(f"inspiration {i}", s))
            if s.result is not None and not s.result.correct and s.result.message:
                lines.append("why it failed: " + trim_message(s.result.message, 300))
            src = _code(s.candidate.source, fence)
            if len(src) + 200 <= room:
                lines.append(src)
                room -= len(src)
            else:
                lines.append("(source left out to keep the prompt short)")
        parts.append("\n".join(lines))
    if notes_part:
        parts.append(notes_part)
    parts.append(goal)
    parts.append("## Answer format\n" + fmt)
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "\n\n".join(parts)}]


def render(messages: list[dict]) -> str:
    """The prompt as one text, for the attempt log and training-data export."""
    return "\n\n".join(f"[{m['role']}]\n{m['content']}" for m in messages)
