"""Core tests' shared fixture: a test-double backend installed as a plugin for the test and its workers."""

from pathlib import Path
from typing import Callable

import pytest

from ksdk.testing.plugins import plugin_site


@pytest.fixture
def backend_double(tmp_path, monkeypatch) -> Callable[[str, str, str], Path]:
    """install(name, class, source): `source` as module NAME_backend, its class registered as backend `name`,
    on sys.path here and on PYTHONPATH for worker processes; returns the site folder."""

    def install(name: str, cls: str, source: str) -> Path:
        site = plugin_site(tmp_path / "site", f"{name}-backend", "1.0", {f"{name}_backend": source},
                           {"ksdk.backends": {name: f"{name}_backend:{cls}"}})
        monkeypatch.syspath_prepend(str(site))
        monkeypatch.setenv("PYTHONPATH", str(site))
        return site

    return install
