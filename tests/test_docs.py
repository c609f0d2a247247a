"""The docs run: every code block in README.md and docs/ tagged `bash cpu` or `python cpu` (runnable on a CPU, with
ksdk and the cpu_c example installed) is executed, a file's blocks in order in one fresh folder; and every
repository path the docs name exists.

Mark a block runnable by writing its fence as ```bash cpu (or ```python cpu): it then must work as written."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
BLOCK = re.compile(r"^```(bash|python) cpu\n(.*?)^```", re.M | re.S)
# a path into the repository, not one inside another path (~/.local/state/ksdk/...) or a placeholder (<task>, *)
PATH = re.compile(r"(?<![\w/.~-])((?:examples|docs|benchmarks|ksdk|backends|tests)/[\w./-]*[\w/])")


def blocks(doc: Path) -> list[tuple[str, str]]:
    return BLOCK.findall(doc.read_text())


RUNNABLE = [d for d in DOCS if blocks(d)]


def test_the_readme_and_the_python_api_have_runnable_blocks():
    assert {"README.md", "python-api.md", "writing-a-backend.md", "export.md"} <= {d.name for d in RUNNABLE}


@pytest.mark.slow
@pytest.mark.parametrize("doc", RUNNABLE, ids=[str(d.relative_to(ROOT)) for d in RUNNABLE])
def test_runnable_blocks_run_as_written(doc, tmp_path):
    pytest.importorskip("ksdk_cpu_example", reason="the docs' CPU commands use the cpu_c example backend")
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    for i, (kind, body) in enumerate(blocks(doc), 1):
        cmd = ["bash", "-euo", "pipefail", "-c", body] if kind == "bash" else [sys.executable, "-c", body]
        out = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, f"{doc.name} block {i} failed:\n{body}\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}"


def test_every_repository_path_the_docs_name_exists():
    texts = {d: d.read_text() for d in DOCS}
    named = {(d, m.group(1)) for d, text in texts.items() for m in PATH.finditer(text)
             if not text.startswith("*", m.end())}  # a glob over build outputs (dist/*) names no file
    assert sorted(f"{d.relative_to(ROOT)}: {p}" for d, p in named if not (ROOT / p).exists()) == []
