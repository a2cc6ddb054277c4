"""Start-up: what the commands import, and the launcher's answers against typer's.

Not timings (bench/startup.py measures those): each test fails when a change makes a fast command
load a heavy module again, or makes the launcher's shortcut print something typer would not.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import libvirt
import pytest
from support import ROOT, TEST_URI
from typer.testing import CliRunner

from virtnet import helptext, launcher
from virtnet.cli import app

HEAVY = (
    "libvirt",
    "ovs",
    "lxml",
    "pydantic",
    "pydantic_core",
    "rich",
    "yaml",
    "pycdlib",
    "virtnet.spec.models",
)
HELPTEXT = ROOT / "virtnet" / "helptext.py"

# Runs the console script's entry point as its own process and reports the modules loaded at exit.
PROBE = """
import json, sys
sys.argv = ["virtnet", *sys.argv[1:]]
try:
    from virtnet.launcher import run
    run()
except SystemExit as done:
    code = done.code
else:
    code = 0
print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""


def loaded(*argv: str, columns: str = "120") -> tuple[int, set[str], str]:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "COLUMNS": columns}
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, env=env, check=False, cwd=ROOT
    )
    report = json.loads(proc.stderr.strip().splitlines()[-1])
    roots = {name.split(".")[0] for name in report["modules"]} | set(report["modules"])
    return report["code"], roots, proc.stdout


@pytest.mark.parametrize("argv", [["--help"], ["--version"]], ids=["help", "version"])
def test_help_and_version_import_nothing_heavy(argv: list[str]) -> None:
    code, modules, out = loaded(*argv)
    assert code == 0 and out.startswith(("Usage: virtnet", "virtnet "))
    assert modules.isdisjoint(HEAVY), sorted(modules & set(HEAVY))
    assert "typer" not in modules  # the launcher answers these two alone


def test_help_on_a_narrow_terminal_is_typers_and_still_light() -> None:
    code, modules, out = loaded("--help", columns="60")
    assert code == 0 and "Usage: virtnet" in out
    assert "typer" in modules and modules.isdisjoint(HEAVY), sorted(modules & set(HEAVY))


@pytest.mark.parametrize(
    "argv",
    [["xml", "--help"], ["define", "--help"], ["host", "check", "--help"], ["no-such-command"]],
    ids=["xml-help", "define-help", "host-check-help", "unknown-command"],
)
def test_typer_paths_import_nothing_heavy(argv: list[str]) -> None:
    _, modules, _ = loaded(*argv)
    assert "typer" in modules
    # typer >= 0.2x converts every parameter value with a pydantic TypeAdapter: its import, not ours.
    ours = set(HEAVY) - {"pydantic", "pydantic_core"}
    assert modules.isdisjoint(ours), sorted(modules & ours)


def test_list_needs_libvirt_only() -> None:
    code, modules, out = loaded("-c", TEST_URI, "list", "--all")
    assert code == 0 and "test" in out
    assert "libvirt" in modules
    assert modules.isdisjoint({"typer", "lxml", "pydantic", "rich", "ovs"}), modules


@pytest.mark.parametrize(
    "argv",
    [["xml", "examples/multiqueue-vm.toml"], ["xml", "examples/multiqueue-vm.toml", "--virt-type", "qemu"]],
    ids=["launcher", "typer"],
)
def test_xml_needs_no_libvirt_nor_ovs(argv: list[str]) -> None:
    code, modules, out = loaded(*argv)
    assert code == 0 and out.startswith("<domain")
    assert modules.isdisjoint({"libvirt", "ovs", "rich"}), modules
    assert ("typer" in modules) == ("--virt-type" in argv)
    if "typer" not in modules:  # typer brings pydantic along; the spec itself does not need it
        assert modules.isdisjoint({"pydantic", "pydantic_core"}), modules


def typer_help(columns: int) -> str:
    """`virtnet --help` from the typer app itself on a terminal this wide (CliRunner forces 80 - 2)."""
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "COLUMNS": str(columns)}
    code = "from virtnet.cli import app; app(['--help'], prog_name='virtnet')"
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    ).stdout


def test_stored_help_is_what_typer_renders(request: pytest.FixtureRequest) -> None:
    rendered = typer_help(helptext.WIDTH)
    if request.config.getoption("--update-golden"):
        HELPTEXT.write_text(helptext_module(rendered))
    assert helptext_module(rendered) == HELPTEXT.read_text(), "run `make golden` if this change is intended"
    assert typer_help(200) == rendered  # and on any wider terminal


@pytest.mark.parametrize("columns", ["80", "200", ""])
def test_launcher_help_is_typers(
    columns: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", columns)  # "": no terminal under pytest, so click's fallback of 80
    assert launcher.answer(["--help"], "virtnet") == 0
    assert capsys.readouterr().out == typer_help(int(columns or 80))


def helptext_module(text: str) -> str:
    assert '"""' not in text and "\\" not in text, "the help text needs escaping: use repr() here"
    return (
        '"""`virtnet --help` as typer renders it: the launcher prints this without importing typer.\n\n'
        "Written by `make golden`; tests/test_startup.py fails when typer renders anything else.\n"
        '"""\n\n'
        "# click wraps help to min(terminal columns, 80) - 2: this text holds on terminals this wide.\n"
        f"WIDTH = {helptext.WIDTH}\n"
        f'TEXT = """\\\n{text}"""\n'
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["--version"],
        ["-c", TEST_URI, "list"],
        ["-c", TEST_URI, "list", "--all"],
        ["--connect", TEST_URI, "list", "--json", "--all"],
        [f"--connect={TEST_URI}", "--ovsdb", "unix:/nowhere", "list", "--all", "--json"],
        ["-c", "qemu+unix:///system?socket=/nonexistent/virtnet.sock", "list"],
        ["xml", "examples/multiqueue-vm.toml"],  # with a warning on stderr
        ["-c", "qemu+tcp://192.0.2.1/nowhere", "xml", "examples/install-vm.toml"],
        ["xml", "no-such-spec.toml"],
        ["xml", "tests/data/kitchen-sink.toml"],
    ],
)
def test_launcher_prints_what_typer_prints(
    argv: list[str],
    testdriver: libvirt.virConnect,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    code = launcher.answer(argv, "virtnet")
    ours = capsys.readouterr()
    theirs = CliRunner().invoke(app, argv, prog_name="virtnet")
    assert code == theirs.exit_code
    assert (ours.out, ours.err) == (theirs.stdout, theirs.stderr)


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["list", "--al"],
        ["list", "-a"],
        ["list", "extra"],
        ["-c", "--all", "list"],
        ["-ctest:///default", "list"],
        ["--help", "list"],
        ["list", "--help"],
        ["--version", "list"],
        ["-c"],
        ["xml"],
        ["xml", "--seed", "examples/kvm-ssh-vm.toml"],
        ["xml", "examples/install-vm.toml", "--virt-type", "qemu"],
        ["xml", "a.toml", "b.toml"],
        ["--ovsdb", "garbage", "list"],  # typer's callback refuses it, as for every command
        ["--ovsdb=tcp:127.0.0.1:99999", "-c", "test:///default", "list"],
    ],
)
def test_launcher_leaves_every_other_argv_to_typer(argv: list[str]) -> None:
    assert launcher.answer(argv, "virtnet") is None


def test_narrow_terminal_help_is_left_to_typer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", str(helptext.WIDTH - 1))
    assert launcher.answer(["--help"], "virtnet") is None


def test_python_dash_m_names_itself_as_click_does(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "COLUMNS": "100"}
    out = subprocess.run(
        [sys.executable, "-m", "virtnet", "--help"], capture_output=True, text=True, env=env, check=True
    ).stdout
    assert out.startswith("Usage: python -m virtnet [OPTIONS] COMMAND [ARGS]...")


def test_the_launchers_xml_hides_the_graphics_password_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "vnc.toml"
    spec.write_text(
        'name = "vnc"\n[cpu]\ncount = 1\n[memory]\nsize = "64MiB"\n[graphics]\npassword = "hunter2-secret"\n'
    )
    assert launcher.answer(["xml", str(spec)], "virtnet") == 0
    out = capsys.readouterr()
    assert "hunter2" not in out.out + out.err and "secret: not shown" in out.out
