"""Messages that say what happened: load is named as load, a CPU verdict shows only what a CPU has, and running
unsandboxed is said in one line."""

import pytest

from ksdk.cli.eval_cmd import load_note, render_result
from ksdk.cli.main import main
from ksdk.models import EvalResult, KernelMeta, Stage, Status


def test_a_cpu_verdict_prints_only_the_compiler_facts_it_has(capsys):
    r = EvalResult(task="t", stage=Stage.PERFORMANCE, status=Status.OK,
                   kernels=[KernelMeta(name="matmul", extra={"object_bytes": 15320, "cflags": "-O2"})])
    render_result(r)
    out = capsys.readouterr().out
    assert "None" not in out and "regs=" not in out and "warps=" not in out
    assert "object_bytes=15320" in out and "cflags=-O2" in out
    render_result(EvalResult(kernels=[KernelMeta(name="k", registers=32, num_warps=4)]))
    out = capsys.readouterr().out
    assert "registers=32" in out and "num_warps=4" in out and "spills" not in out


def test_load_is_named_as_load():
    assert load_note(0.2, 2) is None
    note = load_note(3.1, 2)
    assert note == ("this machine was busy while it was timed (load average 3.1 on 2 cores): times vary with load; "
                    "the speedup pairs candidate and baseline in turn and holds better than either time")
    assert "timer" not in note and "backend" not in note


@pytest.mark.parametrize("how", [["--no-sandbox"], []])
def test_running_unsandboxed_is_said_in_one_line(how, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("KSDK_NO_SANDBOX", "0" if how else "1")  # restored after: --no-sandbox sets it to 1
    main([*how, "eval", "examples/quickstart/matmul.py", str(tmp_path / "missing.c"), "--backend", "cpu_c"])
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0] == ("ksdk: candidates run WITHOUT the OS sandbox (--no-sandbox or KSDK_NO_SANDBOX=1): they can "
                      "read your files and secrets and reach the network")
    assert len(err) == 2 and "candidate file not found" in err[1]


def test_commands_that_run_no_candidate_say_nothing_of_the_sandbox(capsys, monkeypatch):
    monkeypatch.setenv("KSDK_NO_SANDBOX", "1")
    assert main(["show", "/nonexistent"]) == 2
    assert "sandbox" not in capsys.readouterr().err


@pytest.mark.parametrize("kind,typo,meant", [("backends", "cpu-c", "cpu_c"), ("backends", "triton", "triton_nvidia"),
                                             ("mutators", "param", "params")])
def test_a_misspelt_plugin_name_gets_did_you_mean(kind, typo, meant):
    from ksdk.errors import PluginError
    from ksdk.registry import load

    with pytest.raises(PluginError) as e:
        load(kind, typo)
    assert str(e.value).startswith(f"unknown {kind[:-1]} '{typo}': did you mean '{meant}'? (installed: ")
    assert "install a package" not in str(e.value)


def test_a_name_like_no_installed_plugin_still_says_how_to_install_one():
    from ksdk.errors import PluginError
    from ksdk.registry import load

    with pytest.raises(PluginError, match="install a package that registers it under the 'ksdk.backends'"):
        load("backends", "zzzz")
