"""Plugin registry over entry points (stevedore). A broken plugin is listed with its error, never fatal."""

from __future__ import annotations

import importlib.metadata as md
from dataclasses import dataclass
from typing import Any, Optional

from ksdk.errors import PluginError

GROUPS = {
    "backends": "ksdk.backends",
    "mutators": "ksdk.mutators",
    "evaluators": "ksdk.evaluators",
}


@dataclass
class PluginEntry:
    """One entry point of a group: where it comes from and what loading it gave (object or error)."""

    name: str
    group: str
    target: str
    distribution: str
    version: str
    obj: Any = None
    error: Optional[str] = None

    @property
    def loaded(self) -> bool:
        return self.error is None and self.obj is not None


def _dist_of(ep: md.EntryPoint) -> tuple[str, str]:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return "?", "?"
    return dist.metadata["Name"], dist.version


def _expected_base(group: str) -> Optional[type]:
    from ksdk.interfaces import Backend, Evaluator, Mutator

    return {
        GROUPS["backends"]: Backend,
        GROUPS["mutators"]: Mutator,
        GROUPS["evaluators"]: Evaluator,
    }.get(group)


def discover(kind: str) -> list[PluginEntry]:
    """Load every plugin of a kind ('backends', 'mutators', ...) through stevedore; errors are recorded."""
    from stevedore import ExtensionManager

    group = GROUPS.get(kind, kind)
    failures: dict[str, str] = {}

    def on_fail(_mgr, ep, exc):  # stevedore calls this instead of raising: one bad plugin never hides others
        failures[ep.name] = f"import failed: {type(exc).__name__}: {exc}"

    # stevedore caches entry points per namespace for the life of the process; installs (and sys.path changes)
    # since the last look must show, so drop that cache for this group first.
    ExtensionManager.ENTRY_POINT_CACHE.pop(group, None)
    mgr = ExtensionManager(namespace=group, invoke_on_load=False, on_load_failure_callback=on_fail)
    loaded = {ext.name: ext for ext in mgr.extensions}
    entries: dict[str, PluginEntry] = {}
    base = _expected_base(group)
    seen_eps = {ep.name: ep for ep in md.entry_points(group=group)}
    for name, ep in sorted(seen_eps.items()):
        dist, version = _dist_of(ep)
        entry = PluginEntry(name=name, group=group, target=ep.value, distribution=dist, version=version)
        if name in failures:
            entry.error = failures[name]
        elif name in loaded:
            obj = loaded[name].plugin
            if base is not None and not (isinstance(obj, type) and issubclass(obj, base)):
                entry.error = (
                    f"{ep.value} is {type(obj).__name__} {obj!r}, not a subclass of ksdk {base.__name__}: "
                    f"point the entry point at a class deriving from ksdk.interfaces.{base.__name__}"
                )
            else:
                entry.obj = obj
        else:
            entry.error = "not loaded by stevedore (duplicate name or requirements not met)"
        entries[name] = entry
    return list(entries.values())


def load(kind: str, name: str) -> Any:
    """The plugin class registered as `name`, or a PluginError naming the plugin, the problem and the fix."""
    entries = {e.name: e for e in discover(kind)}
    if name not in entries:
        known = ", ".join(sorted(entries)) or "none installed"
        near = close_name(name, list(entries))
        if near:
            raise PluginError(f"unknown {kind[:-1]} '{name}': did you mean '{near}'? (installed: {known})")
        raise PluginError(
            f"unknown {kind[:-1]} '{name}' (installed: {known}); install a package that registers it "
            f"under the '{GROUPS.get(kind, kind)}' entry-point group"
        )
    entry = entries[name]
    if entry.error:
        raise PluginError(f"{kind[:-1]} plugin '{name}' ({entry.target}, from {entry.distribution}): {entry.error}")
    return entry.obj


def close_name(name: str, names: list[str]) -> Optional[str]:
    """The installed name a typo most likely meant ('cpu-c' -> 'cpu_c', 'triton' -> 'triton_nvidia'), or None."""
    import difflib

    def norm(x: str) -> str:
        return x.lower().replace("-", "_")

    by_norm = {norm(n): n for n in names}
    if norm(name) in by_norm:
        return by_norm[norm(name)]
    prefixed = [n for n in names if norm(n).startswith(norm(name)) and len(name) >= 3]
    if len(prefixed) == 1:
        return prefixed[0]
    found = difflib.get_close_matches(norm(name), list(by_norm), n=1, cutoff=0.7)
    return by_norm[found[0]] if found else None


def load_backend(name: str):
    """The Backend class registered as `name`."""
    return load("backends", name)


def backends_for(path: str) -> list[str]:
    """Names of the installed backends whose declared language takes files like `path`: those whose file extension
    matches it most specifically (a backend of '.np.py' files takes x.np.py over one of '.py' files)."""
    from ksdk.languages import Language

    fit: dict[str, int] = {}
    for e in discover("backends"):
        if e.loaded:
            ends = [len(x) for x in Language.of(e.obj.language).extensions if str(path).endswith(x)]
            if ends:
                fit[e.name] = max(ends)
    return sorted(n for n, length in fit.items() if length == max(fit.values()))
