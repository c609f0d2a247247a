"""Redaction keeps the error (the exception's type and message, the compiler's diagnostic) and cuts only a foreign
file's path and its content: the source lines a compiler or Python quotes from it, and quoted text on a compiler's
location line into it."""

from ksdk.evaluation.redact import compiler_output

OWN = ("/tmp/",)  # the candidate's scratch folder inside the sandbox
SITE = "/opt/elsewhere/lib/python3.12/site-packages"  # an interpreter that is not this one: foreign
SECRET = "sk-include-leak-93d1"


def test_a_python_exception_naming_a_site_packages_path_keeps_its_type_and_message():
    text = f"RuntimeError: shape mismatch in {SITE}/torch/nn/functional.py: got 3 and 4"
    out = compiler_output(text, OWN)
    assert out.startswith("RuntimeError: shape mismatch in ") and out.endswith("functional.py: got 3 and 4"), out
    assert SITE not in out


def test_a_torch_traceback_keeps_its_last_line_and_the_candidates_own_frames():
    text = f"""Traceback (most recent call last):
  File "/tmp/candidate.py", line 12, in forward
    return torch.relu(x @ w)
  File "{SITE}/torch/nn/modules/module.py", line 1775, in _call_impl
    return forward_call(*args, **kwargs)
           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"""
    out = compiler_output(text, OWN)
    lines = out.splitlines()
    assert "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB" in lines, out
    assert '  File "/tmp/candidate.py", line 12, in forward' in lines and "    return torch.relu(x @ w)" in lines
    assert any(ln.startswith("  File ") and ln.endswith("module.py\", line 1775, in _call_impl") for ln in lines)
    assert "forward_call" not in out and SITE not in out


def test_a_triton_traceback_keeps_its_last_line():
    last = ("triton.runtime.errors.OutOfResources: out of resource: shared memory, Required: 262144, "
            "Hardware limit: 232448. Reducing block sizes or `num_stages` may help.")
    text = f"""Traceback (most recent call last):
  File "{SITE}/triton/runtime/jit.py", line 419, in <lambda>
    return lambda *args, **kwargs: self.run(grid=grid, warmup=False, *args, **kwargs)
  File "{SITE}/triton/compiler/compiler.py", line 480, in _init_handles
    raise OutOfResources(self.metadata.shared, max_shared, "shared memory")
{last}"""
    out = compiler_output(text, OWN)
    assert last in out.splitlines(), out
    assert "self.run(grid" not in out and "raise OutOfResources" not in out


def test_a_cuda_error_keeps_its_text():
    text = ("RuntimeError: CUDA error: an illegal memory access was encountered\n"
            "Search for `cudaErrorIllegalAddress' in https://docs.nvidia.com/cuda/cuda-runtime-api/group.html\n"
            "Exception raised from c10_cuda_check_implementation at /pytorch/c10/cuda/CUDAException.cpp:44 "
            "(most recent call first):")
    out = compiler_output(text, OWN)
    assert "RuntimeError: CUDA error: an illegal memory access was encountered" in out.splitlines()
    assert "Exception raised from c10_cuda_check_implementation at " in out
    assert "CUDAException.cpp:44 (most recent call first):" in out and "/pytorch/" not in out
    assert "https://docs.nvidia.com/cuda/cuda-runtime-api/group.html" in out


def test_an_include_of_a_one_part_path_never_shows_its_content_even_echoed_on_the_error_line():
    text = f"""In file included from candidate.c:1:
/secret:1:17: error: invalid suffix "d1" on integer constant
    1 | {SECRET} is the key
      |                 ^~~~
/secret:1:3: error: expected ‘=’, ‘,’, ‘;’, ‘asm’ or ‘__attribute__’ before ‘-’ token
    1 | {SECRET} is the key
      |   ^"""
    out = compiler_output(text, OWN)
    assert "d1" not in out and "sk-include" not in out and "is the key" not in out, out
    assert "error: invalid suffix" in out and "on integer constant" in out and "In file included from" in out


def test_a_relative_or_dotted_path_out_of_the_sandbox_is_foreign():
    for where in ("../../../../tmp/pytest/secret_key", "/usr/include/../../etc/secret_key", "//etc/secret_key"):
        text = f"""{where}:1:3: error: unknown type name ‘{SECRET}’
    1 | {SECRET} is the key
      |   ^~"""
        out = compiler_output(text, OWN)
        assert SECRET not in out and "is the key" not in out, (where, out)
        assert "error: unknown type name" in out and "secret_key:1:3:" in out, out


def test_nvcc_and_clang_quotes_of_a_foreign_file_are_cut():
    text = f"""/home/user/.env(1): error: identifier "{SECRET}" is undefined
      {SECRET}=1
      ^
candidate.cu(3): error: expected a ";"
"""
    out = compiler_output(text, OWN)
    assert SECRET not in out and "=1" not in out, out
    assert "error: identifier" in out and 'candidate.cu(3): error: expected a ";"' in out


def test_a_python_traceback_into_a_foreign_file_never_shows_its_source():
    text = f"""  File "/etc/secret.py", line 1
    {SECRET} is the key
       ^^^^^^^^^^^^^
SyntaxError: invalid decimal literal"""
    out = compiler_output(text, OWN)
    assert SECRET not in out and "is the key" not in out, out
    assert out.splitlines()[-1] == "SyntaxError: invalid decimal literal"


def test_the_candidates_own_diagnostics_and_urls_are_untouched():
    text = """candidate.c:3:5: error: unknown type name ‘flaot’
    3 |     flaot x;
      |     ^~~~~
/tmp/ksdk-cc-1/candidate.c:4:1: warning: unused variable 'y'
see https://github.com/triton-lang/triton/issues/1 and /usr/include/stdio.h:12"""
    assert compiler_output(text, OWN) == text
