"""Compiler output never carries the text of a file outside the candidate's sources and the toolchain: the
compile runs in the sandbox (where such files do not exist), and the judge cuts lines naming other files."""

import pytest

from hostilekit import c_task, evaluate

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
