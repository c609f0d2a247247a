"""Fixtures: the test-only toy_py backend on PYTHONPATH and real `ksdk serve` processes on loopback."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import toy_backend  # noqa: E402
from service_proc import Service  # noqa: E402


@pytest.fixture(scope="session")
def toy_site(tmp_path_factory) -> Path:
    """The backend's site dir; only the subprocesses these tests start see it (never other tests)."""
    return toy_backend.make_site(tmp_path_factory.mktemp("toy"))


@pytest.fixture
def start_service(toy_site, tmp_path):
    started: list[Service] = []

    def start(*args: str, state_dir: Path | None = None, backend: str = "toy_py") -> Service:
        svc = Service(toy_site, state_dir or tmp_path / "state", tmp_path / "ledger", list(args), backend)
        started.append(svc)
        return svc.start()

    yield start
    for s in started:
        s.stop()


@pytest.fixture(scope="module")
def shared_service(toy_site, tmp_path_factory):
    """A two-worker service with auth, shared by the tests that do not kill or reconfigure it."""
    d = tmp_path_factory.mktemp("shared")
    svc = Service(toy_site, d / "state", d / "ledger", ["--workers", "2"]).start()
    yield svc
    svc.stop()
