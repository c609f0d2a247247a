"""Triton's seed cache: only lists of Triton's own type names are built, and (on a GPU, with a Triton that makes a
launcher per signature) the judge's build leaves exactly the launcher Triton itself would load."""

import os
import subprocess
import sys

import pytest

from ksdk_triton_nvidia.seed import MAX_ARGS, valid_signature

SIG = ["*fp32", "*kfp16", "i32", "i64", "fp32", "constexpr"]


@pytest.mark.parametrize("sig", [SIG, ["*bf16", "constexpr", "u8"], ["*fp8e4nv", "i1"]])
def test_triton_type_lists_are_valid(sig):
    assert valid_signature(sig)


@pytest.mark.parametrize("sig", [
    [], "i32", ["i32; system(\"id\")"], ["*fp32", ["i32"]], ["*fp32", None], ["../../x"], ["i32"] * (MAX_ARGS + 1),
    ["tensordesc<fp32[64, 64]>"], ["I32"], ["*"], {"0": "i32"}, ["i32 "],
])
def test_anything_else_a_candidate_claims_is_refused(sig):
    assert not valid_signature(sig)


@pytest.mark.gpu
def test_the_judges_build_is_the_launcher_triton_loads(tmp_path):
    from triton.backends.nvidia import driver

    if not hasattr(driver, "make_launcher"):
        pytest.skip("this Triton makes no launcher per signature: there is nothing to seed beyond its utilities")
    env = dict(os.environ, TRITON_CACHE_DIR=str(tmp_path / "cache"))
    done = subprocess.run([sys.executable, "-m", "ksdk_triton_nvidia.seed", "--launchers", '[["*fp32", "i32"]]'],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "1 launchers built" in done.stdout, done.stderr
    built = [f for _, _, files in os.walk(tmp_path / "cache") for f in files if f.startswith("__triton_launcher")]
    assert len(built) == 1
    again = subprocess.run([sys.executable, "-c", (
        "import triton.runtime.build as b\n"
        "from triton.backends.nvidia import driver as d\n"
        "src = d.make_launcher({}, {'x': '*fp32', 'n': 'i32'}, None)\n"
        "b._build = None  # a cache miss would need the compiler\n"
        "b.compile_module_from_src(src=src, name='__triton_launcher', library_dirs=d.library_dirs(), "
        "include_dirs=d.include_dirs, libraries=d.libraries)\n")], env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
