"""A missing optional extra is named with its install line, never as an internal error, and before anything is
written (a token file, a run folder)."""

import sys

import ksdk.cli.main as cli
from ksdk.cli.main import main

SERVICE = 'pip install "ksdk[service]" (from a checkout: pip install -e ".[service]")'


def test_serve_without_uvicorn_gives_the_install_line_and_writes_no_token(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # as if the service extra were not installed
    assert main(["serve", "--backend", "cpu_c", "--state-dir", str(tmp_path / "state")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"ksdk: error: ksdk serve needs uvicorn, not installed here: {SERVICE}"]
    assert not (tmp_path / "state").exists()


def test_an_evaluator_url_without_httpx_gives_the_install_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "httpx", None)
    (tmp_path / "k.c").write_text("void f(void) {}\n")
    code = main(["eval", "examples/quickstart/matmul.py", str(tmp_path / "k.c"), "--backend", "cpu_c",
                 "--evaluator", "http://127.0.0.1:9"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == [f"ksdk: error: an evaluation service (--evaluator URL) needs httpx, not installed "
                                 f"here: {SERVICE}"]


def test_any_missing_extra_met_inside_a_command_is_named_with_its_install_line(capsys, monkeypatch):
    def app(**_kw):
        raise ModuleNotFoundError("No module named 'pyarrow'", name="pyarrow")

    monkeypatch.setattr(cli, "app", app)
    assert main(["export", "sft"]) == 2
    assert capsys.readouterr().err.strip() == ('ksdk: error: pyarrow is not installed: pip install "ksdk[parquet]" '
                                               '(from a checkout: pip install -e ".[parquet]")')


def test_a_missing_module_no_extra_provides_is_still_one_line_without_internal_error(capsys, monkeypatch):
    def app(**_kw):
        raise ModuleNotFoundError("No module named 'somelib'", name="somelib")

    monkeypatch.setattr(cli, "app", app)
    assert main(["backends"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ksdk: error: No module named 'somelib' (a package ksdk or one of its plugins needs")
    assert "internal error" not in err
