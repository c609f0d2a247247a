"""`ksdk eval` on the quickstart task with no --backend: the C candidate's file type picks cpu_c, and the
compiler's text is shown as it is (square brackets included)."""

from pathlib import Path

from ksdk.cli.main import main

QUICKSTART = Path(__file__).resolve().parents[2] / "examples" / "quickstart" / "matmul.py"
BROKEN = """void matmul(const float* A, const float* B, float* C, long M, long K, long K2, long N) {
    for (long x = 0; x < M * N; x++)
        C[x] = 0.0f
}
"""


def test_eval_infers_the_backend_and_shows_compiler_text_verbatim(tmp_path, capsys):
    cand = tmp_path / "broken.c"
    cand.write_text(BROKEN)
    assert main(["eval", str(QUICKSTART), str(cand)]) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "matmul: failed at compile" in out and "cpu_c" in out and "compile_error at line 3" in out
    assert "C[x] = 0.0f" in out
