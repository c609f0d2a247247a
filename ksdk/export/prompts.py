"""The chat a step stands for: the mutator's own prompt when it recorded one, else one rebuilt from the context."""

from __future__ import annotations

from typing import Optional

from ksdk.export.reader import Step
from ksdk.export.revision import edit_blocks

SYSTEM = ("You are an expert GPU kernel engineer. You improve a working kernel so that it stays correct and runs "
          "faster on the target device. Reply with SEARCH/REPLACE edit blocks of the lines you change.")


def _feedback(step: Step) -> str:
    r = step.parent_result
    return r.feedback() if r is not None else "(not evaluated)"


def rebuild_prompt(step: Step) -> str:
    """A user prompt for a step whose mutator asked no LLM (parameter tuning): task, parent, feedback, inspirations."""
    lang = (step.parent.candidate.language if step.parent else "") or step.run.language or "text"
    parts = [f"# Task: {step.task} (backend {step.run.backend}, device {step.device})"]
    if step.run.task_source:
        parts += ["## Reference (PyTorch)", f"```python\n{step.run.task_source.rstrip()}\n```"]
    if step.parent is not None:
        parts += ["## Current program", f"```{lang}\n{step.parent.candidate.source.rstrip()}\n```",
                  "## Its evaluation", _feedback(step)]
    for i, insp in enumerate(step.inspirations, 1):
        score = f"score {insp.result.score:.3f}" if insp.result is not None else "not evaluated"
        parts += [f"## Inspiration {i} ({score})", f"```{lang}\n{insp.candidate.source.rstrip()}\n```"]
    parts.append("Improve the current program. Reply with SEARCH/REPLACE edit blocks.")
    return "\n\n".join(parts)


def prompt_messages(step: Step) -> list[dict[str, str]]:
    """System and user turns: the recorded LLM prompt verbatim, or a rebuilt one for non-LLM mutators."""
    m = step.mutation
    if m is not None and m.prompt:
        return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": m.prompt}]
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": rebuild_prompt(step)}]


def revision(step: Step) -> Optional[str]:
    """The reply in the LLM mutator's format: its own reply, or edit blocks of what a non-LLM mutator changed."""
    m = step.mutation
    if m is not None and m.reply:
        return m.reply
    if step.child is not None and step.parent is not None:
        return edit_blocks(step.parent.candidate.source, step.child.candidate.source)
    return None
