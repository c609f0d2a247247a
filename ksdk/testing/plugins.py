"""Throwaway plugin distributions for tests: modules plus .dist-info metadata in a folder for PYTHONPATH.

Entry points are found through that metadata exactly as for a pip-installed package, so a test can register
a backend (or mutator, ...) without installing anything.
"""

from __future__ import annotations

from pathlib import Path


def plugin_site(site: str | Path, dist: str, version: str, modules: dict[str, str],
                entry_points: dict[str, dict[str, str]]) -> Path:
    """Write `modules` ({module name: source}) and a `dist`-`version` .dist-info declaring `entry_points`
    ({group: {name: "module:attr"}}) into `site`; returns `site` (put it on sys.path / PYTHONPATH)."""
    site = Path(site)
    site.mkdir(parents=True, exist_ok=True)
    for module, source in modules.items():
        (site / f"{module}.py").write_text(source)
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text("".join(
        f"[{group}]\n" + "".join(f"{name} = {target}\n" for name, target in eps.items())
        for group, eps in entry_points.items()))
    return site
