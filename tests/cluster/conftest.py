"""Ray tests run only where Ray is installed (`pip install "ksdk[ray]"`); they use the toy_py test backend."""

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "service"))
import toy_backend  # noqa: E402

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


@pytest.fixture(scope="session")
def ray_toy_site(tmp_path_factory) -> Path:
    return toy_backend.make_site(tmp_path_factory.mktemp("raytoy"))
