"""One direction of imports: no module of the library imports the CLI (or typer, which only the CLI needs), not
even lazily inside a function."""

import ast
from pathlib import Path

KSDK = Path(__file__).resolve().parents[2] / "ksdk"


def imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_the_library_never_imports_the_cli():
    library = [p for p in KSDK.rglob("*.py") if "cli" not in p.relative_to(KSDK).parts and p.name != "__main__.py"]
    bad = {str(p.relative_to(KSDK.parent)): sorted(n for n in imported(p) if n.startswith("ksdk.cli") or n == "typer")
           for p in library}
    assert len(library) > 40 and {k: v for k, v in bad.items() if v} == {}
