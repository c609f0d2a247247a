"""The docs run, in order: every code block in README.md and docs/ tagged `bash cpu` or `python cpu` (runnable on a
CPU, with ksdk[all] and the cpu_c example installed) is executed, README first and then docs/ in name order, all in
one fresh folder, as a reader following them would; and every repository path the docs name exists.

Every block of commands says whether it runs here: ```bash cpu (run by the tests), or ```bash gpu / maca (needs
that hardware), setup (installs software), synopsis (a usage form with placeholders), sketch (code with
placeholders or a heavy dependency)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```", re.M | re.S)
BLOCK = re.compile(r"^```(bash|python) cpu\n(.*?)^```", re.M | re.S)
WHY_NOT = {"gpu", "maca", "setup", "synopsis", "sketch"}
COMMAND = re.compile(r"^\s*(ksdk|pip|python3?|pytest|export|cd|mkdir) ", re.M)
CALL = re.compile(r"\b(evolve|resume|bench|export_sft|export_rl|make_evaluator|LLMMutator|RayEvaluator)\(")
RUN_DIR = re.compile(r"(?:--out|-o|--resume|\bout=)\s*['\"]?(runs/[\w./-]+)")
# a path into the repository, not one inside another path (~/.local/state/ksdk/...) or a placeholder (<task>, *)
PATH = re.compile(r"(?<![\w/.~-])((?:examples|docs|benchmarks|ksdk|backends|tests)/[\w./-]*[\w/])")


def blocks(doc: Path) -> list[tuple[str, str]]:
    return BLOCK.findall(doc.read_text())


RUNNABLE = [d for d in DOCS if blocks(d)]


def test_the_readme_and_the_python_api_have_runnable_blocks():
    assert {"README.md", "python-api.md", "writing-a-backend.md", "export.md", "bench.md", "mutators.md",
            "service.md"} <= {d.name for d in RUNNABLE}


def test_every_block_of_commands_says_whether_it_runs_here():
    untagged = []
    for doc in DOCS:
        text = doc.read_text()
        for m in FENCE.finditer(text):
            lang, *why = m.group(1).split() or [""]
            if lang not in ("bash", "python", "sh", "") or (why and why[0] in WHY_NOT | {"cpu"}):
                continue
            body = m.group(2)
            if COMMAND.search(body) or (lang == "python" and CALL.search(body)):
                untagged.append(f"{doc.relative_to(ROOT)}:{text[:m.start()].count(chr(10)) + 1} ```{m.group(1)}")
    assert untagged == [], "tag each as ```bash cpu (run by tests) or with why not: " + ", ".join(sorted(WHY_NOT))


def test_no_two_docs_write_the_same_run_folder():
    writers: dict[str, set[str]] = {}
    for doc in DOCS:
        for _kind, body in blocks(doc):
            for folder in RUN_DIR.findall(body):
                if "--resume" not in body.split(folder)[0][-12:]:  # resuming reads its own folder again
                    writers.setdefault(folder.rstrip("/"), set()).add(doc.name)
    assert {f: d for f, d in writers.items() if len(d) > 1} == {}


@pytest.fixture(scope="module")
def reader_folder(tmp_path_factory):
    """One folder for every doc, as a reader who follows them in order has."""
    folder = tmp_path_factory.mktemp("reader")
    (folder / "examples").symlink_to(ROOT / "examples")
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("doc", RUNNABLE, ids=[str(d.relative_to(ROOT)) for d in RUNNABLE])
def test_runnable_blocks_run_as_written_in_order(doc, reader_folder):
    pytest.importorskip("ksdk_cpu_example", reason="the docs' CPU commands use the cpu_c example backend")
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    for i, (kind, body) in enumerate(blocks(doc), 1):
        cmd = ["bash", "-euo", "pipefail", "-c", body] if kind == "bash" else [sys.executable, "-c", body]
        out = subprocess.run(cmd, cwd=reader_folder, env=env, capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, f"{doc.name} block {i} failed:\n{body}\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}"


def test_every_repository_path_the_docs_name_exists():
    texts = {d: d.read_text() for d in DOCS}
    named = {(d, m.group(1)) for d, text in texts.items() for m in PATH.finditer(text)
             if not text.startswith("*", m.end())}  # a glob over build outputs (dist/*) names no file
    assert sorted(f"{d.relative_to(ROOT)}: {p}" for d, p in named if not (ROOT / p).exists()) == []
