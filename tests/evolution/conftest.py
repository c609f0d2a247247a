"""Registers the evolution test doubles (tests/evolution/toy_plugins.py) through a throwaway distribution."""

import os
import shutil
import sys
import textwrap
from pathlib import Path

import pytest

HERE = Path(__file__).parent
TASK = textwrap.dedent('''
    import torch
    import torch.nn as nn

    class Model(nn.Module):
        def forward(self, x):
            return x

    def get_inputs():
        return [torch.ones(4)]

    def get_init_inputs():
        return []
''')


@pytest.fixture(scope="session")
def toy_site(tmp_path_factory):
    site = tmp_path_factory.mktemp("site")
    shutil.copy(HERE / "toy_plugins.py", site / "ksdk_evolution_toys.py")
    info = site / "ksdk_evolution_toys-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ksdk-evolution-toys\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[ksdk.backends]\ntoy_speed = ksdk_evolution_toys:ToySpeedBackend\n"
        "[ksdk.mutators]\ntoy_step = ksdk_evolution_toys:StepMutator\n")
    sys.path.insert(0, str(site))
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = str(site) + (os.pathsep + old if old else "")
    # stevedore keeps each group's entry points for the life of the process; plugins installed mid-session
    # (this fixture) are seen only once that memo is cleared
    from stevedore import ExtensionManager

    ExtensionManager.ENTRY_POINT_CACHE.clear()
    yield site
    ExtensionManager.ENTRY_POINT_CACHE.clear()
    sys.path.remove(str(site))
    if old is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = old


@pytest.fixture
def toy_task(tmp_path, toy_site):
    """A task file with its seed beside it (toy_task_seed.toy)."""
    task = tmp_path / "toy_task.py"
    task.write_text(TASK)
    (tmp_path / "toy_task_seed.toy").write_text("X = 1\nSLEEP = 0\n")
    return task
