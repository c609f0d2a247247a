"""Registers the evolution test doubles (tests/evolution/toy_plugins.py) through a throwaway distribution."""

import os
import sys
import textwrap
from pathlib import Path

import pytest

from ksdk.testing.plugins import plugin_site

HERE = Path(__file__).parent
TASK = textwrap.dedent('''
    import torch
    import torch.nn as nn

    KSDK_TASK = {"correctness_trials": 1, "timing": {"warmup": 1, "warmup_ms": 0, "repetitions": 3, "min_time_ms": 0,
                                                     "flush_l2": False}}

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
    site = plugin_site(tmp_path_factory.mktemp("site"), "ksdk-evolution-toys", "1.0",
                       {"ksdk_evolution_toys": (HERE / "toy_plugins.py").read_text()},
                       {"ksdk.backends": {"toy_speed": "ksdk_evolution_toys:ToySpeedBackend"},
                        "ksdk.mutators": {"toy_step": "ksdk_evolution_toys:StepMutator"}})
    sys.path.insert(0, str(site))
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = str(site) + (os.pathsep + old if old else "")
    yield site  # ksdk.registry drops stevedore's entry-point memo on every lookup, so these plugins are seen
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
