"""Find the problems of a suite (a KernelBench checkout's level folders, or any folder of task files) and the
candidate or seed file that goes with each problem."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from pathlib import Path

from ksdk.errors import KsdkError, TaskError
from ksdk.models import Model

LEVEL_DIR = re.compile(r"^level_?(\d+)$", re.IGNORECASE)
# Files beside the tasks that are seeds, not problems (the seed finder's patterns).
SEED_NAMES = ("*_seed", "*.seed", "seed_*", "seed")


class Problem(Model):
    """One problem of a suite: a KernelBench-format task file, its name (the file's stem) and level."""

    name: str
    level: int | None = None
    path: str

    @property
    def id(self) -> str:
        """Unique within a suite: 'level1/19_ReLU', or the bare name for a folder without levels."""
        return f"level{self.level}/{self.name}" if self.level is not None else self.name

    @property
    def number(self) -> int | None:
        """KernelBench's problem number, the digits the name starts with (19 in '19_ReLU')."""
        m = re.match(r"(\d+)", self.name)
        return int(m.group(1)) if m else None

    @property
    def level_key(self) -> str:
        return f"level{self.level}" if self.level is not None else "unlevelled"


def _is_task(path: Path) -> bool:
    from ksdk.tasks import check_reference

    try:
        check_reference(path.read_text(encoding="utf-8"), str(path))
    except (TaskError, UnicodeDecodeError, OSError):
        return False
    return True


def _tasks_in(folder: Path, level: int | None) -> list[Problem]:
    """Task files directly in `folder` (seeds and non-task modules skipped), and SUB/task.py as problem SUB."""
    out = []
    for f in sorted(folder.glob("*.py")):
        if f.name == "__init__.py" or any(fnmatch.fnmatch(f.stem, p) for p in SEED_NAMES):
            continue
        if f.is_file() and _is_task(f):
            out.append(Problem(name=f.stem, level=level, path=str(f.resolve())))
    for sub in sorted(d for d in folder.iterdir() if d.is_dir() and not LEVEL_DIR.match(d.name)):
        task = sub / "task.py"
        if task.is_file() and _is_task(task):
            out.append(Problem(name=sub.name, level=level, path=str(task.resolve())))
    return out


def _level_dirs(folder: Path) -> list[tuple[int, Path]]:
    return sorted((int(m.group(1)), d) for d in folder.iterdir()
                  if d.is_dir() and (m := LEVEL_DIR.match(d.name)))


def discover(suite: str | Path, levels: Sequence[int] = (), patterns: Sequence[str] = ()) -> list[Problem]:
    """The problems of `suite`, sorted by level, number and name, kept by the level and name filters.

    `suite` is a task file, a folder with level1/, level2/ ... folders (or a KernelBench checkout, whose level folders
    sit in KernelBench/), a levelN folder, or any folder of task files. `patterns` keep problems whose name or id
    matches one of them (shell-style, case-insensitive; a bare number matches the problem number)."""
    root = Path(suite)
    if root.is_file():
        m = LEVEL_DIR.match(root.parent.name)
        if not _is_task(root):
            raise TaskError(f"{root} is not a KernelBench-format task (class Model, get_inputs, get_init_inputs)")
        found = [Problem(name=root.stem, level=int(m.group(1)) if m else None, path=str(root.resolve()))]
    elif root.is_dir():
        dirs = _level_dirs(root)
        if not dirs:  # a KernelBench checkout keeps its level folders one folder down (KernelBench/level1)
            dirs = next((ld for d in sorted(root.iterdir()) if d.is_dir() and (ld := _level_dirs(d))), [])
        if dirs:
            found = [p for n, d in dirs for p in _tasks_in(d, n)]
        else:
            m = LEVEL_DIR.match(root.resolve().name)
            found = _tasks_in(root, int(m.group(1)) if m else None)
    else:
        raise KsdkError(f"suite not found: {root} (give a folder of KernelBench-format task files, e.g. a "
                        "KernelBench checkout's KernelBench/level1)")
    if not found:
        raise KsdkError(f"no KernelBench-format problems in {root}: a problem is a .py file defining class Model, "
                        "get_inputs() and get_init_inputs() (in the folder, in its levelN/ folders, or SUB/task.py)")
    ids = [p.id for p in found]
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        raise KsdkError(f"{root}: several problems are named {', '.join(twice)} (NAME.py and NAME/task.py); rename one")
    kept = [p for p in found if (not levels or p.level in levels) and (not patterns or _matches(p, patterns))]
    if not kept:
        levels_seen = sorted({p.level for p in found if p.level is not None})
        raise KsdkError(f"no problem of {root} passes the filters (--level {list(levels) or 'any'}, --problem "
                        f"{list(patterns) or 'any'}); it has {len(found)} problems"
                        + (f" in levels {levels_seen}" if levels_seen else ""))
    return sorted(kept, key=lambda p: (p.level if p.level is not None else -1,
                                       p.number if p.number is not None else 1 << 30, p.name))


def _matches(p: Problem, patterns: Sequence[str]) -> bool:
    for pat in patterns:
        if pat.isdigit():
            if p.number == int(pat):
                return True
        elif fnmatch.fnmatch(p.name.lower(), pat.lower()) or fnmatch.fnmatch(p.id.lower(), pat.lower()):
            return True
    return False


def match_file(folder: str | Path, problem: Problem, extensions: Sequence[str]) -> tuple[Path | None, str]:
    """The file in `folder` that goes with `problem`: FOLDER/levelN/STEM.EXT, else FOLDER/STEM.EXT, where STEM is the
    problem's name and EXT one of the backend language's `extensions` (earlier ones first). Returns (path, "") or
    (None, why not), the why naming a same-stem file of another extension when there is one."""
    base = Path(folder)
    places = ([base / f"level{problem.level}"] if problem.level is not None else []) + [base]
    for place in places:
        for ext in extensions:
            f = place / f"{problem.name}{ext}"
            if f.is_file():
                return f, ""
    others = sorted(str(f) for place in places if place.is_dir() for f in place.glob(f"{problem.name}.*")
                    if f.is_file())
    want = " or ".join(f"{problem.name}{e}" for e in extensions) or problem.name
    if others:
        return None, f"no {want} in {base}; {others[0]} has another extension than the backend's language takes"
    return None, f"no {want} in {base}" + (f" or {base / f'level{problem.level}'}" if problem.level else "")
