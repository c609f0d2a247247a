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


NUMPY_TASK = textwrap.dedent('''
    import torch
    import torch.nn as nn

    KSDK_TASK = {"correctness_trials": 1}

    class Model(nn.Module):
        def forward(self, x):
            return x * 2.0 + 1.0

    def get_inputs():
        return [torch.randn(256)]

    def get_init_inputs():
        return []
''')
NUMPY_SEED = "def kernel(x):\n    return x * 2.0 + 1.0\n"


@pytest.fixture
def numpy_backend(tmp_path, monkeypatch):
    """The numpy_cpu backend (tests/evolution/numpy_backend.py) installed for the test and its workers; returns
    a task in a folder of its own (scale/task.py) with its seed beside it."""
    site = plugin_site(tmp_path / "site", "ksdk-numpy-cpu", "1.0",
                       {"numpy_backend": (HERE / "numpy_backend.py").read_text()},
                       {"ksdk.backends": {"numpy_cpu": "numpy_backend:NumpyCpuBackend"}})
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", str(site))
    task = tmp_path / "scale" / "task.py"
    task.parent.mkdir()
    task.write_text(NUMPY_TASK)
    (task.parent / "seed.c").write_text("void kernel(void) {}\n")  # sorts first: only the extension tells them apart
    (task.parent / "seed.np.py").write_text(NUMPY_SEED)
    return task
