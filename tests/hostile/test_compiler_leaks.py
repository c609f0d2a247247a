"""Compiler output never carries the text of a file outside the candidate's sources and the toolchain: the
compile runs in the sandbox (where such files do not exist), and the judge cuts lines naming other files."""

import pytest

from hostilekit import c_task, c_with_python, evaluate

from ksdk.models import ErrorKind

SECRET = "sk-include-leak-93d1"


@pytest.mark.parametrize("sandbox", [True, False], ids=["sandboxed", "unsandboxed-opt-in"])
def test_including_a_secret_file_does_not_leak_it(tmp_path, sandbox):
    secret = tmp_path / "secret_key"
    secret.write_text(f"{SECRET} is the key\n")
    src = f'#include "{secret}"\nvoid kernel(const float* a, const float* b, float* out, long n, long n2) {{}}\n'
    (r,) = evaluate("cpu_c", c_task(), src, sandbox=sandbox)
    assert r.error_kind == ErrorKind.COMPILE, r.message
    assert SECRET not in r.message and "is the key" not in r.message
    assert SECRET not in r.feedback()


@pytest.mark.parametrize("sandbox", [True, False], ids=["sandboxed", "unsandboxed-opt-in"])
def test_including_a_secret_file_by_a_relative_path_does_not_leak_it(tmp_path, sandbox):
    secret = tmp_path / "secret_key"
    secret.write_text(f"{SECRET} is the key\n")
    climb = "../" * 40  # past the root from any compile folder: the path the compiler prints has no leading '/'
    src = f'#include "{climb}{str(secret).lstrip("/")}"\nvoid kernel(const float* a, const float* b, float* out, ' \
          'long n, long n2) {}\n'
    (r,) = evaluate("cpu_c", c_task(), src, sandbox=sandbox)
    assert r.error_kind == ErrorKind.COMPILE, r.message
    assert SECRET not in r.message and "is the key" not in r.message and "d1" not in r.message, r.message


# The candidate's own code fails with an exception naming a file outside its sources (as torch's and Triton's errors
# do on a machine where they live outside the judge's interpreter): the error's type and message must survive.
FOREIGN_ERROR = """
import ksdk_cpu_example.runner as r
def fail(self, *a, **k):
    raise RuntimeError("CUDA error: an illegal memory access was encountered (raised in "
                       "/opt/elsewhere/lib/python3.12/site-packages/torch/cuda/__init__.py)")
r.CpuCRunner.call = fail
"""


def test_an_error_naming_a_foreign_file_keeps_its_type_and_message():
    (r,) = evaluate("cpu_c", c_task(), c_with_python(FOREIGN_ERROR))
    assert "RuntimeError" in r.message and "an illegal memory access was encountered" in r.message, r.message
    assert "/opt/elsewhere" not in r.message
