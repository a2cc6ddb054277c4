"""console, screenshot and view through typer's CliRunner on libvirt's test driver: the refusals,
and what the test driver can do (it takes screenshots; it has no console streams)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import libvirt
import pytest
import tomli_w
from test_cli import virtnet

from virtnet.viewing.screenshot import PNG_MAGIC


def spec_file(tmp_path: Path, name: str, **extra: Any) -> str:
    spec: dict[str, Any] = {"name": name, "cpu": {"count": 1}, "memory": {"size": "64MiB"}, **extra}
    path = tmp_path / f"{name}.toml"
    path.write_text(tomli_w.dumps(spec))
    return str(path)


@pytest.fixture
def gui_vm(testdriver: libvirt.virConnect, tmp_path: Path) -> str:
    """A running domain with VGA and VNC."""
    spec = spec_file(tmp_path, "gui", title="gui VM", video="vga", graphics={"type": "vnc"})
    assert virtnet("define", spec).exit_code == 0
    assert virtnet("start", "gui").exit_code == 0
    return "gui"


@pytest.fixture
def headless_vm(testdriver: libvirt.virConnect, tmp_path: Path) -> str:
    """A running domain with a serial console and nothing to look at."""
    assert virtnet("define", spec_file(tmp_path, "headless")).exit_code == 0
    assert virtnet("start", "headless").exit_code == 0
    return "headless"


def test_screenshot_writes_the_image_and_says_what_it_is(gui_vm: str, tmp_path: Path) -> None:
    target = tmp_path / "gui.png"
    result = virtnet("screenshot", gui_vm, str(target))
    assert result.exit_code == 0, result.stderr
    assert target.read_bytes().startswith(PNG_MAGIC)
    assert result.stdout.startswith(f"Screenshot of 'gui' saved to {target}: PNG ")
    assert result.stderr == ""


def test_screenshot_under_another_name_warns_but_keeps_the_bytes(gui_vm: str, tmp_path: Path) -> None:
    target = tmp_path / "gui.ppm"
    result = virtnet("screenshot", gui_vm, str(target))
    assert result.exit_code == 0
    assert target.read_bytes().startswith(PNG_MAGIC)
    assert "warning" in result.stderr and "holds a PNG image" in result.stderr and "gui.png" in result.stderr


def test_screenshot_refuses_a_stopped_vm_and_one_without_display(
    gui_vm: str, headless_vm: str, tmp_path: Path
) -> None:
    none = virtnet("screenshot", headless_vm, str(tmp_path / "x.png"))
    assert none.exit_code == 2 and none.stderr.count("\n") == 1
    assert "no display to capture" in none.stderr and 'video = "vga"' in none.stderr
    assert "virtnet console headless" in none.stderr
    virtnet("stop", gui_vm, "--force")
    stopped = virtnet("screenshot", gui_vm, str(tmp_path / "x.png"))
    assert stopped.exit_code == 2 and "is not running; start it with `virtnet start gui`" in stopped.stderr
    assert not list(tmp_path.glob("x.png*"))


def test_screenshot_of_a_missing_vm(testdriver: libvirt.virConnect, tmp_path: Path) -> None:
    result = virtnet("screenshot", "nosuch", str(tmp_path / "x.png"))
    assert result.exit_code == 2 and "no domain 'nosuch'" in result.stderr


def test_console_refusals(headless_vm: str, testdriver: libvirt.virConnect, tmp_path: Path) -> None:
    virtnet("stop", headless_vm, "--force")
    stopped = virtnet("console", headless_vm, "--log")
    assert stopped.exit_code == 2 and "is not running" in stopped.stderr

    log = tmp_path / "serial.log"
    virtnet("define", spec_file(tmp_path, "filecon", console={"type": "file", "log": str(log)}))
    virtnet("start", "filecon")
    to_file = virtnet("console", "filecon", "--log")
    assert to_file.exit_code == 2 and to_file.stderr.count("\n") == 1
    assert f"writes its serial console to a file ({log})" in to_file.stderr
    assert 'type = "pty"' in to_file.stderr

    # libvirt's own 'test' domain has no <console> and no <serial> at all.
    bare = virtnet("console", "test", "--log")
    assert bare.exit_code == 2 and "has no serial console" in bare.stderr


def test_console_where_the_driver_has_no_streams(headless_vm: str) -> None:
    result = virtnet("console", headless_vm, "--log")
    assert result.exit_code == 1  # libvirt's refusal, in one line with the URI
    assert "virDomainOpenConsole" in result.stderr and "test:///default" in result.stderr


@pytest.fixture
def viewer_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An X display and a PATH whose only viewer is a virt-viewer stub that records its arguments."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("DISPLAY", ":99")
    return bin_dir


def install_stub(bin_dir: Path, name: str, exit_code: int = 0) -> Path:
    record = bin_dir / f"{name}.args"
    stub = bin_dir / name
    stub.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {record}\nexit {exit_code}\n')
    stub.chmod(0o755)
    return record


def test_view_runs_the_viewer_with_the_uri_and_name(gui_vm: str, viewer_path: Path) -> None:
    record = install_stub(viewer_path, "virt-viewer")
    result = virtnet("view", gui_vm)
    assert result.exit_code == 0, result.stderr
    assert record.read_text().split() == ["--connect", "test:///default", "--wait", "gui"]
    assert "Opening the graphical console of 'gui' (vnc on 127.0.0.1" in result.stdout
    assert "with virt-viewer" in result.stdout


def test_view_refusals(gui_vm: str, headless_vm: str, viewer_path: Path) -> None:
    nothing = virtnet("view", gui_vm)
    assert nothing.exit_code == 2 and "apt install virt-viewer" in nothing.stderr
    install_stub(viewer_path, "virt-viewer")
    headless = virtnet("view", headless_vm)
    assert headless.exit_code == 2 and "has no graphical console" in headless.stderr
    assert "[graphics]" in headless.stderr
    install_stub(viewer_path, "virt-manager", exit_code=3)
    failed = virtnet("view", gui_vm, "--viewer", "virt-manager")
    assert failed.exit_code == 1 and "virt-manager exited with status 3" in failed.stderr


def test_view_of_a_stopped_vm_says_the_viewer_waits(gui_vm: str, viewer_path: Path) -> None:
    install_stub(viewer_path, "virt-viewer")
    virtnet("stop", gui_vm, "--force")
    result = virtnet("view", gui_vm)
    assert result.exit_code == 0
    assert "is not running: the console shows once it starts" in result.stderr
