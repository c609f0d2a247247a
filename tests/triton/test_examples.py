"""The example tasks under examples/triton_nvidia: their seeds are correct (interpreter, small sizes) and tunable."""

from __future__ import annotations

import pytest

from ksdk.models import Status

from tritonkit import EXAMPLES, evaluate_all, example

SMALL = {
    "elementwise_chain": "(33, 70)",
    "row_softmax": "(12, 200)",
    "layer_norm": "(10, 96)",
    "matmul_bias_relu": "(40, 48, 72)",
}


def test_every_example_has_a_task_and_a_seed():
    names = sorted(p.name for p in EXAMPLES.iterdir() if p.is_dir())
    assert names == sorted(SMALL)
    for n in names:
        assert (EXAMPLES / n / "task.py").is_file() and (EXAMPLES / n / "seed.py").is_file()


@pytest.fixture(scope="module")
def verdicts():
    return evaluate_all({n: example(n, shape) for n, shape in SMALL.items()})


@pytest.mark.parametrize("name", sorted(SMALL))
def test_seed_is_correct(verdicts, name):
    r = verdicts[name]
    assert r.status == Status.OK and r.correct, f"{name}: {r.error_kind} {r.message}"


@pytest.mark.parametrize("name", sorted(SMALL))
def test_seed_declares_tunables(name):
    from ksdk.mutators.tunables import find_tunables

    tunables = find_tunables((EXAMPLES / name / "seed.py").read_text())
    assert tunables, f"{name}/seed.py declares no `# ksdk:tune [...]` constant"
    for t in tunables:
        assert t.name.isupper()
