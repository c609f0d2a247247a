"""The chat a step stands for: the LLM mutator's recorded prompt, or the prompt it would have built (non-LLM steps)."""

from __future__ import annotations

from collections import OrderedDict
from functools import lru_cache
from typing import Optional

from ksdk.export.reader import Step
from ksdk.export.revision import edit_blocks
from ksdk.interfaces.mutator import MutationRequest
from ksdk.models import Task
from ksdk.mutators.prompts import SYSTEM, build_messages

_ROLES = ("system", "user", "assistant")


def parse_rendered(prompt: str) -> list[dict[str, str]]:
    """Invert ksdk.mutators.prompts.render ('[system]\\n...\\n\\n[user]\\n...'); plain text is one user turn."""
    if prompt.startswith("[system]\n"):
        body = prompt[len("[system]\n"):]
        # the system text is the mutator's fixed preamble: the first user marker after it ends it
        system, sep, user = body.partition("\n\n[user]\n")
        if sep:
            return [{"role": "system", "content": system}, {"role": "user", "content": user}]
        return [{"role": "system", "content": body}]
    if prompt.startswith("[user]\n"):
        return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt[len("[user]\n"):]}]
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}]


@lru_cache(maxsize=64)
def _task(name: str, source: str) -> Task:
    return Task(name=name, source=source)


_REBUILT: "OrderedDict[tuple, list[dict[str, str]]]" = OrderedDict()


def rebuild_messages(step: Step) -> list[dict[str, str]]:
    """The LLM mutator's messages for a step made without an LLM, asking for edit blocks (the revision's format)."""
    if step.parent is None:
        return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": f"# Task: {step.task}"}]
    notes = step.context.get("notes") if isinstance(step.context.get("notes"), list) else []
    # a tuner proposes many children of one parent: build each distinct prompt once (bounded cache)
    key = (str(step.run.path), step.parent.candidate.id, tuple(step.inspiration_ids), tuple(map(str, notes)))
    if key in _REBUILT:
        _REBUILT.move_to_end(key)
        return list(_REBUILT[key])
    messages = _build(step, notes)
    _REBUILT[key] = messages
    if len(_REBUILT) > 256:
        _REBUILT.popitem(last=False)
    return list(messages)


def reset() -> None:
    """Forget rebuilt prompts (each export starts clean, so a resumed run's new verdicts show)."""
    _REBUILT.clear()


def _build(step: Step, notes: list) -> list[dict[str, str]]:
    request = MutationRequest(
        task=_task(step.task, step.run.task_source or ""),
        parent=step.parent,
        inspirations=step.inspirations,
        backend=step.run.backend,
        language=step.run.language,
        notes=[n for n in notes if isinstance(n, str)],
    )
    return build_messages(request, reply_format="edits")


def prompt_messages(step: Step) -> list[dict[str, str]]:
    """System and user turns: the recorded LLM prompt verbatim, or a rebuilt one for non-LLM mutators."""
    m = step.mutation
    if m is not None and m.prompt:
        return parse_rendered(m.prompt)
    return rebuild_messages(step)


def revision(step: Step) -> Optional[str]:
    """The reply in the LLM mutator's format: its own reply, or edit blocks of what a non-LLM mutator changed."""
    m = step.mutation
    if m is not None and m.reply:
        return m.reply
    if step.child is not None and step.parent is not None:
        return edit_blocks(step.parent.candidate.source, step.child.candidate.source)
    return None
