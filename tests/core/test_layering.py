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


def _evaluation_imports(path: Path) -> set[str]:
    """Modules of ksdk.evaluation that `path` imports anywhere (functions included), except under TYPE_CHECKING."""
    tree = ast.parse(path.read_text(), str(path))
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for n in ast.walk(node))
    names = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom) and node.module == "ksdk.evaluation":
            names.update(f"ksdk.evaluation.{a.name}" for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ksdk.evaluation."):
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names if a.name.startswith("ksdk.evaluation."))
    return names


def test_the_evaluation_package_has_no_import_cycle():
    """The judge's modules import in one direction (the judge, its stages, the link, the process helpers): a cycle
    (on 8ab2c7c judge -> sandboxed -> process -> worker -> judge) makes every part load every other."""
    folder = KSDK / "evaluation"
    graph = {f"ksdk.evaluation.{p.stem}": {m for m in _evaluation_imports(p) if (folder / f"{m.rsplit('.', 1)[1]}.py")
                                           .exists()} for p in folder.glob("*.py") if p.stem != "__init__"}
    seen: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        seen[node] = 1
        for nxt in sorted(graph.get(node, ())):
            assert seen.get(nxt) != 1, "import cycle: " + " -> ".join(path[path.index(nxt):] + [nxt])
            if nxt not in seen:
                visit(nxt, path + [nxt])
        seen[node] = 2

    for start in sorted(graph):
        if start not in seen:
            visit(start, [start])


def test_no_module_of_the_judge_or_the_triton_backend_is_over_400_lines():
    folders = [KSDK / "evaluation", KSDK.parent / "backends" / "triton_nvidia"]
    long = {str(p.relative_to(KSDK.parent)): n for f in folders for p in f.glob("*.py")
            if (n := len(p.read_text().splitlines())) > 400}
    assert long == {}
