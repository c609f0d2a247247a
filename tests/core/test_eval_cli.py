"""`ksdk eval` without --backend: it names the backends that fit the candidate's file type, or says none does."""

from ksdk.cli.main import main
from ksdk.registry import backends_for

TASK = ("import torch\nclass Model(torch.nn.Module):\n    pass\n"
        "def get_inputs(): return []\ndef get_init_inputs(): return []\n")


def test_backends_are_found_by_the_file_types_their_languages_declare():
    assert backends_for("k.cu") == ["cuda_nvidia"] and backends_for("k.maca") == ["maca_metax"]
    assert backends_for("k.cpp") == ["cuda_nvidia", "maca_metax"] and backends_for("k.zzz") == []


def test_eval_says_which_backends_fit_when_the_file_type_does_not_decide(tmp_path, capsys):
    (tmp_path / "task.py").write_text(TASK)
    for name in ("k.cpp", "k.zzz"):
        (tmp_path / name).write_text("int x;\n")
    assert main(["eval", str(tmp_path / "task.py"), str(tmp_path / "k.cpp")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["ksdk: error: several installed backends take k.cpp: pass one of --backend cuda_nvidia, "
                   "--backend maca_metax"]
    assert main(["eval", str(tmp_path / "task.py"), str(tmp_path / "k.zzz")]) == 2
    err = capsys.readouterr().err.strip()
    assert "no installed backend declares a language for files like k.zzz" in err and "--backend NAME" in err
