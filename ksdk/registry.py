"""Plugin registry over entry points (stevedore). A broken plugin is listed with its error, never fatal."""

from __future__ import annotations

import importlib.metadata as md
from dataclasses import dataclass
from typing import Any, Optional

from ksdk.errors import PluginError

GROUPS = {
    "backends": "ksdk.backends",
    "mutators": "ksdk.mutators",
    "archives": "ksdk.archives",
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
    from ksdk.interfaces import Archive, Backend, Evaluator, Mutator

    return {
        GROUPS["backends"]: Backend,
        GROUPS["mutators"]: Mutator,
        GROUPS["archives"]: Archive,
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
        raise PluginError(
            f"unknown {kind[:-1]} '{name}' (installed: {known}); install a package that registers it "
            f"under the '{GROUPS.get(kind, kind)}' entry-point group"
        )
    entry = entries[name]
    if entry.error:
        raise PluginError(f"{kind[:-1]} plugin '{name}' ({entry.target}, from {entry.distribution}): {entry.error}")
    return entry.obj


def load_backend(name: str):
    """The Backend class registered as `name`."""
    return load("backends", name)


def make_evaluator(backend: str, url: Optional[str] = None, **kwargs: Any):
    """A LocalEvaluator for `backend`, or a `ksdk serve` client when a URL is given (URL1,URL2: one pool)."""
    if url:
        cls = load("evaluators", "service")
        urls = [u.strip() for u in url.split(",") if u.strip()]
        if len(urls) > 1:  # several services of one backend (one per GPU or machine) used as one pool
            from ksdk.service.multi import MultiEvaluator

            return MultiEvaluator([cls(u, backend=backend, **kwargs) for u in urls])
        return cls(urls[0] if urls else url, backend=backend, **kwargs)
    return load("evaluators", "local")(backend, **kwargs)
