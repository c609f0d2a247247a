"""A backend in a language ksdk has never seen (tests/evolution/numpy_backend.py) works end to end: the seed is
found by its declared extension, the LLM mutator asks for and reads its code fences, full replies and edit replies
both make children, the best is written with its extension, and `ksdk eval` finds the backend by file type."""

import json
import re
import subprocess
import sys
from pathlib import Path

from ksdk.testing.scripted_llm import ScriptedLLM, ScriptedReply

FULL = "A version with a named temporary:\n```numpy\ndef kernel(x):\n    y = x * 2.0\n    return y + 1.0\n```\n"
EDIT_SEED = "<<<<<<< SEARCH\n    return x * 2.0 + 1.0\n=======\n    return np.add(x * 2.0, 1.0)\n>>>>>>> REPLACE\n"
EDIT_FULL = "<<<<<<< SEARCH\n    return y + 1.0\n=======\n    return np.add(y, 1.0)\n>>>>>>> REPLACE\n"


def current_program(body: dict) -> str:
    prompt = body["messages"][-1]["content"]
    return re.search(r"## Current program .*?\n```numpy\n(.*?)\n```", prompt, re.S).group(1)


def test_an_llm_evolution_in_a_language_ksdk_never_saw(numpy_backend, tmp_path, monkeypatch):
    from ksdk.evolution.api import evolve

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("KSDK_API_KEY", raising=False)
    asked: list[str] = []

    def reply(body):  # answers by the parent it is shown, so the run's order of proposals does not matter
        program = current_program(body)
        asked.append(program)
        if "return y + 1.0" in program:
            return EDIT_FULL
        if "return x * 2.0 + 1.0" in program:
            return FULL if asked.count(program) == 1 else EDIT_SEED
        return ScriptedReply(f"```numpy\ndef kernel(x):\n    return x * 2.0 + 1.0 + {len(asked)} * 0.0\n```")

    run = tmp_path / "run"
    with ScriptedLLM(reply) as llm:
        summary = evolve(numpy_backend, backend="numpy_cpu", mutator="llm", model="openai/scripted",
                         api_base=llm.url, max_candidates=4, mutation_concurrency=1, out=run, progress=False,
                         handle_signals=False)
        prompts = [r["messages"][-1]["content"] for r in llm.requests]
    assert summary.error is None and summary.task == "scale" and summary.evaluated == summary.valid == 4
    config = json.loads((run / "run.json").read_text())
    assert config["seed_path"].endswith("seed.np.py") and config["language"]["extensions"] == [".np.py"]
    assert all("Answer" in p and "```numpy" in p for p in prompts)  # the language's own fence, in every prompt
    from ksdk.archives.sqlite import SqliteArchive

    archive = SqliteArchive(run / "archive.sqlite")
    children = [e for e in archive.all() if e.candidate.mutation and e.candidate.mutation.mutator == "llm"]
    assert {e.candidate.mutation.reply_format for e in children} == {"full", "edits"}
    assert all(e.candidate.language == "numpy" and e.result.correct for e in children)
    archive.close()
    assert Path(summary.best_path).name == "best.np.py" and "def kernel" in Path(summary.best_path).read_text()


def test_ksdk_eval_finds_the_backend_by_the_declared_file_type(numpy_backend, tmp_path):
    cand = tmp_path / "fast.np.py"
    cand.write_text("def kernel(x):\n    return np.add(x * 2.0, 1.0)\n")
    out = subprocess.run([sys.executable, "-m", "ksdk", "eval", str(numpy_backend), str(cand), "--json"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["backend"] == "numpy_cpu" and result["task"] == "scale" and result["speedup"] is not None
