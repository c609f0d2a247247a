"""Fixtures: toolkit trees holding the runtime TEST DOUBLE (tests/native/runtime_double.c) and the fake compiler.

A MACA tree (lib/libmcruntime.so, mxgpu_llvm/bin/mxcc) is what MACA_PATH points at; a CUDA tree holds
libcudart.so, libcuda.so.1 (one file: the double keeps one error state) and bin/nvcc.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).parent


def _build(tmp: Path, flavour: str) -> Path:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("needs a C compiler (cc) to build the runtime test double")
    out = tmp / f"double_{flavour}.so"
    subprocess.run([cc, "-shared", "-fPIC", "-O1", f"-DDOUBLE_{flavour.upper()}", "-o", str(out),
                    str(HERE / "runtime_double.c"), "-ldl"], check=True, capture_output=True)
    return out


@pytest.fixture(scope="session")
def double_libs(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("double")
    return {"maca": _build(tmp, "maca"), "cuda": _build(tmp, "cuda")}


def make_maca_root(base: Path, lib: Path) -> Path:
    """A MACA_PATH tree around a private copy of the double (its own error state)."""
    (base / "lib").mkdir(parents=True)
    (base / "mxgpu_llvm" / "bin").mkdir(parents=True)
    shutil.copy(lib, base / "lib" / "libmcruntime.so")
    shutil.copy(HERE / "fake_compiler.sh", base / "mxgpu_llvm" / "bin" / "mxcc")
    return base


def make_cuda_root(base: Path, lib: Path) -> Path:
    (base / "lib64").mkdir(parents=True)
    (base / "bin").mkdir()
    (base / "driver").mkdir()
    shutil.copy(lib, base / "lib64" / "libcudart.so")
    os.symlink(base / "lib64" / "libcudart.so", base / "driver" / "libcuda.so.1")
    shutil.copy(HERE / "fake_compiler.sh", base / "bin" / "nvcc")
    return base


@pytest.fixture
def maca_root(tmp_path, double_libs, monkeypatch) -> Path:
    """A fresh MACA tree; MACA_PATH points at it for this test."""
    root = make_maca_root(tmp_path / "maca", double_libs["maca"])
    monkeypatch.setenv("MACA_PATH", str(root))
    monkeypatch.delenv("MACA_HOME", raising=False)
    monkeypatch.delenv("KSDK_MACA_ARCH", raising=False)
    return root


@pytest.fixture
def cuda_double(tmp_path, double_libs, monkeypatch):
    """(dialect, root): the CUDA dialect's names over the double, its driver library looked up in root/driver."""
    from ksdk_native.dialect import CUDA, LibrarySpec

    root = make_cuda_root(tmp_path / "cuda", double_libs["cuda"])
    monkeypatch.setenv("CUDA_HOME", str(root))
    dialect = dataclasses.replace(CUDA, libraries={
        "runtime": LibrarySpec(names=("libcudart.so",), root_dirs=("lib64",)),
        "driver": LibrarySpec(names=("libcuda.so.1",), root_dirs=("driver",)),
    })
    return dialect, root
