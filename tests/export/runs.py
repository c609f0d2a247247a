"""Run directories built through the real SqliteArchive and RunConfig, one step kind at a time (test helper)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from ksdk.archives.sqlite import SqliteArchive
from ksdk.evolution.config import RunConfig
from ksdk.export.revision import edit_blocks
from ksdk.interfaces.mutator import MutationRequest
from ksdk.models import Candidate, DeviceInfo, ErrorKind, EvalResult, Mutation, Stage, Status, Task
from ksdk.mutators.prompts import build_messages, render

TASK_SRC = ("import torch\nclass Model(torch.nn.Module):\n    pass\n"
            "def get_inputs(): return []\ndef get_init_inputs(): return []\n")


def program(tag: str, block: int = 64) -> str:
    """A small program whose body differs by `tag` and whose tunable is BLOCK."""
    return (f"import triton\n\nBLOCK = {block}  # ksdk:tune [32, 64, 128]\n\n"
            f"def kernel(x):\n    # variant {tag}\n    y = x * {len(tag)}\n    return y + '{tag}'\n")


class RunBuilder:
    """Writes RUN_DIR/run.json, task.py and archive.sqlite the way the evolution loop does."""

    def __init__(self, path: Path, task: str = "task_a", backend: str = "cpu_c", device: str = "cpu0",
                 finished: bool = True):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.device = DeviceInfo(name=device, kind="cpu")
        self.task, self.backend = task, backend
        RunConfig(task_name=task, backend=backend, mutator="llm", device=self.device, finished=finished,
                  seed_language="triton").save(self.path)
        (self.path / "task.py").write_text(TASK_SRC)
        self.archive = SqliteArchive(self.path / "archive.sqlite")
        self.n = 0

    def verdict(self, cand: Candidate, kind: str, speedup: Optional[float] = None) -> EvalResult:
        r = EvalResult(candidate_id=cand.id, task=self.task, backend=self.backend, device=self.device)
        if kind == "correct":
            r.stage, r.status, r.speedup = Stage.PERFORMANCE, Status.OK, speedup
            if speedup is None:
                r.stage, r.performance_skipped = Stage.CORRECTNESS, "interpreter"
        elif kind == "incorrect":
            r.fail(Stage.CORRECTNESS, ErrorKind.VALUE, "out[0] differs")
        elif kind == "build":
            r.fail(Stage.COMPILE, ErrorKind.COMPILE, "error: expected ';'", line=3)
        elif kind == "infra":
            r.stage, r.status, r.error_kind, r.message = Stage.LOAD, Status.INFRA_ERROR, ErrorKind.INFRA, "worker lost"
        return r

    def seed(self, source: str, kind: str = "correct", speedup: Optional[float] = 1.0) -> Candidate:
        c = Candidate(source=source, language="triton")
        self.archive.add(c, self.verdict(c, kind, speedup))
        return c

    def prompt(self, parent: Candidate, how: str) -> str:
        """What the LLM mutator would have recorded as its prompt for this parent."""
        task = Task(name=self.task, source=TASK_SRC)
        request = MutationRequest(task=task, parent=self.archive.get(parent.id), backend=self.backend)
        return render(build_messages(request, reply_format=how))

    def step(self, parent: Candidate, source: Optional[str], kind: Optional[str] = "correct",
             speedup: Optional[float] = None, how: str = "full", inspirations: tuple[Candidate, ...] = (),
             error: Optional[str] = None) -> Optional[Candidate]:
        """One attempt. how: 'full' / 'edits' (LLM replies), 'params' (no LLM), 'malformed' (no program);
        kind: the child's verdict ('correct', 'incorrect', 'build', 'infra') or None to leave it unevaluated."""
        self.n += 1
        if how == "params":
            mut = Mutation(mutator="params", reply_format="params", params={"BLOCK": 0})
        elif how == "malformed":
            mut = Mutation(mutator="llm", model="m", prompt=self.prompt(parent, "edits"), reply="no code here",
                           reply_format="edits")
        else:
            reply = (f"```python\n{source}```" if how == "full" else edit_blocks(parent.source, source))
            mut = Mutation(mutator="llm", model="m", prompt=self.prompt(parent, how), reply=reply, reply_format=how)
        child = None
        if how != "malformed" and error is None:
            child = Candidate(source=source, language="triton", parent_ids=[parent.id], mutation=mut)
        context = {"task": self.task, "parent_id": parent.id, "feedback": "",
                   "inspirations": [c.id for c in inspirations]}
        self.archive.propose(child, parent.id, mut, context,
                             error or ("reply had no code block" if how == "malformed" else None))
        if child is not None and kind is not None:
            self.archive.add(child, self.verdict(child, kind, speedup))
        return child

    def close(self) -> None:
        self.archive.close()


def standard_run(path: Path, task: str = "task_a", backend: str = "cpu_c", device: str = "cpu0") -> Path:
    """A run with one step of every kind the export must tell apart."""
    b = RunBuilder(path, task, backend, device)
    s = b.seed(program(f"{task}-seed"), speedup=1.0)
    fast = b.step(s, program(f"{task}-fast"), "correct", 1.5, "full")            # kept (gain 1.5)
    b.step(fast, program(f"{task}-faster"), "correct", 2.4, "edits", inspirations=(s,))  # kept (gain 1.6)
    b.step(s, program(f"{task}-slow"), "correct", 1.02, "full")                  # gain below 1.05
    b.step(s, program(f"{task}-wrong"), "incorrect", None, "full")               # incorrect
    b.step(s, program(f"{task}-broken"), "build", None, "edits")                 # build failed
    b.step(s, None, None, how="malformed")                                        # malformed reply
    b.step(s, program(f"{task}-seed", 128), "correct", 1.3, "params")           # kept (params, gain 1.3)
    b.step(s, program(f"{task}-seed", 32), "infra", None, "params")              # harness failure
    b.step(s, program(f"{task}-pending"), None, how="full")                      # never evaluated
    b.step(s, program(f"{task}-untimed"), "correct", None, "full")               # correct, untimed
    bad = b.step(s, program(f"{task}-bad"), "incorrect", None, "full")
    b.step(bad, program(f"{task}-fixed"), "correct", 3.0, "full")                 # parent incorrect
    b.step(s, program(f"{task}-dup"), "correct", 1.2, "full")                    # kept
    # the same program again (comments differ): the loop records it as a duplicate attempt, no candidate
    b.step(s, program(f"{task}-dup"), None, how="full", error="duplicate of x")
    b.close()
    return Path(path)
