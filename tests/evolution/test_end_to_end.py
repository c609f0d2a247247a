"""Real runs on the cpu_c example backend: the quickstart command, and an LLM evolution over real HTTP."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("ksdk_cpu_example")

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "examples" / "quickstart" / "matmul.py"
SEED = (ROOT / "examples" / "quickstart" / "matmul_seed.c").read_text()


def evolve(*args, cwd, env=None):
    return subprocess.run([sys.executable, "-m", "ksdk", "evolve", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, **(env or {})))


def tuned(**values):
    src = SEED
    for name, value in values.items():
        line = next(ln for ln in src.splitlines() if ln.startswith(f"#define {name} "))
        old = line.split()[2]
        src = src.replace(line, line.replace(f"{name} {old}", f"{name} {value}", 1))
    return src


@pytest.mark.slow
def test_scripted_llm_evolution_reaches_the_known_best(tmp_path):
    from ksdk.evolution import api
    from ksdk.models import source_hash
    from ksdk.testing.scripted_llm import ScriptedLLM

    best = tuned(LOOP_IKJ=1, BLOCK_K=32, UNROLL_J=4)
    replies = [
        "I cannot help with that.",  # malformed: a failed attempt, and a note in the next prompt
        "<<<<<<< SEARCH\n#define NOT_THERE 1\n=======\n#define NOT_THERE 2\n>>>>>>> REPLACE\n",  # does not apply
        "Here is a faster version:\n```c\n" + best + "```\n",  # full program: the known best
        "<<<<<<< SEARCH\n#define BLOCK_I 320  // ksdk:tune [8, 16, 32, 64, 320]\n=======\n"
        "#define BLOCK_I 64  // ksdk:tune [8, 16, 32, 64, 320]\n>>>>>>> REPLACE\n",  # a modest edit
    ]
    run = tmp_path / "run"
    with ScriptedLLM(replies) as llm:
        summary = api.evolve(QUICKSTART, backend="cpu_c", mutator="llm", model="openai/scripted", api_base=llm.url,
                             api_key="test-key", max_candidates=3, mutation_concurrency=1,
                             out=run, progress=False, handle_signals=False)
        prompts = [json.dumps(r["messages"]) for r in llm.requests]
    assert "Problems with your last answer" in prompts[1]
    assert "NOT_THERE" in prompts[2]  # the edit block that did not apply is shown for that parent
    assert (run / "best.c").read_text() == best
    assert summary.evaluated == 3 and summary.valid == 3 and summary.best_speedup > 1.5
    assert summary.failed_attempts == 2
    show = subprocess.run([sys.executable, "-m", "ksdk", "show", str(run), "--json"], capture_output=True, text=True,
                          timeout=60)
    data = json.loads(show.stdout)
    assert data["best"]["model"] == "openai/scripted" and source_hash(best) == source_hash((run / "best.c").read_text())


@pytest.mark.slow
def test_quickstart_command_evolves_a_real_speedup(tmp_path):
    """README's main job, shortened: the parameter mutator on the cpu_c backend, no LLM, no GPU."""
    run = tmp_path / "runs" / "quickstart"
    out = evolve(str(QUICKSTART), "--backend", "cpu_c", "--mutator", "params", "--max-candidates", "12",
                 "--out", str(run), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert summary["evaluated"] == 12 and summary["valid"] == 12
    assert summary["best_speedup"] > 1.3  # the seed is the naive loop; loop order and tiles pay off at once
    assert (run / "best.c").read_text() != SEED and (run / "report.html").is_file()
    # the figure is the winner's median over fresh rounds on the real backend (12 evaluations: the best and the
    # seed, 3 rounds each), over the naive loop, with PyTorch eager beside it
    lo, hi = summary["best_interval"]
    assert summary["retimed"] and lo <= summary["best_speedup"] <= hi and "range of 3 rounds" in summary["best_text"]
    assert summary["baseline"].startswith("naive C kernel") and summary["beside"][0].startswith("PyTorch eager")
