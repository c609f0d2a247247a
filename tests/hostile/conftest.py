"""The hostile-candidate suite: every guarantee in docs/architecture.md's threat model, played by an attacker."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(params=["auto", "signals"])
def containment(request, monkeypatch):
    """Each test twice: with the containment this machine offers, and with the signals fallback."""
    monkeypatch.setenv("KSDK_CONTAINMENT", request.param)
    return request.param
