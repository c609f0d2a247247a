"""The cpu_c example backend is a separate distribution: its tests need it installed
(pip install -e ./examples/cpu_backend)."""

import importlib.metadata as md

import pytest


def pytest_collection_modifyitems(config, items):
    if any(ep.name == "cpu_c" for ep in md.entry_points(group="ksdk.backends")):
        return
    skip = pytest.mark.skip(reason="the example backend is not installed: pip install -e ./examples/cpu_backend")
    for item in items:
        if "tests/cpu_backend" in str(item.fspath):
            item.add_marker(skip)
