"""Seeing a virtnet VM for real: its VGA screen through `virtnet screenshot`, virt-manager and
virt-viewer on a virtual X server (read back by OCR), and its serial console through `virtnet console`.

The guest's init writes `VIRTNET-TICK n` every second on the serial port and on the VGA console, so
every way of looking must show the counter, and show it advancing. Screenshots stay under each
test's tmp_path; failures name the one to look at.
"""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import termios
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from lab_support import LabClient
from xdisplay import TOOLS, XServer, ocr, ticks, wait_for_screen

from virtnet.lab.lab import Lab

GUI = "gui"
TITLE = f"{GUI}: VGA counter guest"  # virt-manager lists a domain by its title


@pytest.fixture(scope="module")
def host(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> LabClient:
    state = lab.load()
    assert state is not None
    return LabClient(lab, state.hosts[0], tmp_path_factory.mktemp("viewing"))


@pytest.fixture(scope="module")
def gui_vm(host: LabClient) -> Iterator[str]:
    """A running TCG guest with VGA and VNC (listening on 127.0.0.1), counting on both consoles."""
    spec = host.spec(GUI, vhost_user=False, gui=True, title=TITLE)
    host.virtnet("define", str(spec))
    host.virtnet("start", GUI)
    host.wait_console(GUI, "VIRTNET-TICK", timeout=300)
    yield GUI
    host.virsh("destroy", GUI, check=False)
    host.virsh("undefine", GUI, check=False)


@pytest.fixture(scope="module")
def xserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[XServer]:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    assert not missing, f"{', '.join(missing)} missing: `make deps` installs them"
    server = XServer(tmp_path_factory.mktemp("xvfb"))
    server.start()
    yield server
    server.stop()


def virtnet_argv(uri: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "virtnet", "-c", uri, *args]


def counter_advances(take: Callable[[Path], Path], tmp_path: Path, label: str) -> None:
    """Screens (kept in tmp_path) show the guest's counter, then a higher one."""
    _, text = wait_for_screen(take, tmp_path, label, lambda text: bool(ticks(text)))
    first = max(ticks(text))
    wait_for_screen(take, tmp_path, f"{label}-later", lambda text: max(ticks(text), default=-1) > first)


def test_screenshot_shows_the_counter(host: LabClient, gui_vm: str, tmp_path: Path) -> None:
    def take(path: Path) -> Path:
        done = host.virtnet("screenshot", gui_vm, str(path))
        assert "PNG 720x400" in done.stdout, done.stdout  # VGA text mode, and QEMU 7.2 writes PNG
        return path

    counter_advances(take, tmp_path, "screenshot")
    misnamed = host.virtnet("screenshot", gui_vm, str(tmp_path / "screen.ppm"))
    assert (tmp_path / "screen.ppm").read_bytes().startswith(b"\x89PNG")
    assert "holds a PNG image" in misnamed.stderr and "screen.png" in misnamed.stderr


def test_virt_manager_lists_the_vm_as_running(
    host: LabClient, gui_vm: str, xserver: XServer, tmp_path: Path
) -> None:
    status = json.loads(
        subprocess.run(
            [sys.executable, "-m", "virtnet", "lab", "status", "--dir", str(host.lab.base), "--json"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    local_uri = status["hosts"][0]["local_uri"]
    assert local_uri == host.host.local_uri
    hostname = subprocess.run(["virsh", "-c", local_uri, "hostname"], capture_output=True, text=True)
    assert hostname.stdout.strip() == host.host.name  # the same libvirtd as the TCP URI

    manager = xserver.launch(["virt-manager", "--connect", local_uri, "--no-fork"], "virt-manager-list")
    try:
        shot, text = wait_for_screen(
            xserver.capture, tmp_path, "virt-manager-list", lambda text: TITLE in text and "Running" in text
        )
    finally:
        manager.stop()
    assert GUI in text, f"{shot}: {text}"


def test_view_in_virt_manager_shows_the_counter_advancing(
    host: LabClient, gui_vm: str, xserver: XServer, tmp_path: Path
) -> None:
    argv = virtnet_argv(host.host.local_uri, "view", gui_vm, "--viewer", "virt-manager")
    viewer = xserver.launch(argv, "view-virt-manager")
    try:
        counter_advances(xserver.capture, tmp_path, "virt-manager")
    finally:
        viewer.stop()
    assert "with virt-manager" in viewer.output(), viewer.output()


def test_view_in_virt_viewer_over_tcp_shows_the_counter_advancing(
    host: LabClient, gui_vm: str, xserver: XServer, tmp_path: Path
) -> None:
    viewer = xserver.launch(virtnet_argv(host.host.uri, "view", gui_vm), "view-virt-viewer")
    try:
        counter_advances(xserver.capture, tmp_path, "virt-viewer")
    finally:
        viewer.stop()
    assert "with virt-viewer" in viewer.output(), viewer.output()


def test_view_says_why_virt_manager_cannot_show_it_over_tcp(host: LabClient, gui_vm: str) -> None:
    refused = subprocess.run(
        virtnet_argv(host.host.uri, "view", gui_vm, "--viewer", "virt-manager"),
        capture_output=True,
        text=True,
        env={**os.environ, "DISPLAY": ":0"},
        timeout=120,
    )
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert "virt-manager refuses a console that listens on 127.0.0.1 over a qemu+tcp" in refused.stderr


class Follower:
    """`virtnet console --log` in the background, its output read line by line."""

    def __init__(self, host: LabClient, name: str, *extra: str) -> None:
        self.proc = subprocess.Popen(
            virtnet_argv(host.host.uri, "console", name, "--log", *extra),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            bufsize=0,  # unbuffered: select() then sees every line that is not read yet
        )
        self.seen: list[int] = []

    def read_ticks(self, count: int, timeout: float = 120.0) -> list[int]:
        """Read until `count` more ticks came; return all seen."""
        assert self.proc.stdout is not None
        wanted = len(self.seen) + count
        deadline = time.monotonic() + timeout
        while len(self.seen) < wanted:
            ready, _, _ = select.select([self.proc.stdout], [], [], 1.0)
            if ready:
                line = self.proc.stdout.readline().decode(errors="replace")
                assert line, f"console --log ended early: {self.finish()}"
                self.seen += ticks(line)
            assert time.monotonic() < deadline, f"only {self.seen} in {timeout:g} s"
        return self.seen

    def finish(self, timeout: float = 60.0) -> tuple[int, str]:
        """Its exit status and stderr, once it ended."""
        try:
            self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        assert self.proc.stderr is not None
        return self.proc.returncode, self.proc.stderr.read().decode(errors="replace")


def test_console_log_follows_the_same_counter(host: LabClient, gui_vm: str, tmp_path: Path) -> None:
    follower = Follower(host, gui_vm)
    first = follower.read_ticks(2)
    assert first[1] == first[0] + 1, first  # the serial console, line by line, advancing
    shot = host.virtnet("screenshot", gui_vm, str(tmp_path / "screen.png"))
    assert shot.returncode == 0
    on_screen = max(ticks(ocr(tmp_path / "screen.png")))
    while follower.seen[-1] < on_screen:
        follower.read_ticks(1)
    assert on_screen in follower.seen, f"{tmp_path / 'screen.png'} shows {on_screen}; serial {follower.seen}"

    held = host.virtnet("console", gui_vm, "--log", check=False)
    assert held.returncode == 1 and held.stderr.count("\n") == 1
    assert "holds the console" in held.stderr and "--force" in held.stderr

    taker = Follower(host, gui_vm, "--force")
    taker.read_ticks(1)
    code, err = follower.finish()
    assert code == 1 and "another client took it over" in err, err
    taker.proc.send_signal(signal.SIGINT)  # Ctrl-C stops following, successfully
    code, err = taker.finish()
    assert code == 0, err


def test_interactive_console_types_into_the_guest_and_restores_the_terminal(
    host: LabClient, gui_vm: str
) -> None:
    master, terminal = pty.openpty()
    saved = termios.tcgetattr(terminal)
    proc = subprocess.Popen(
        virtnet_argv(host.host.uri, "console", gui_vm),
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        start_new_session=True,
    )
    try:
        seen = read_pty_until(master, b"VIRTNET-TICK")
        assert b"Escape character is ^] (Ctrl-])" in seen
        # Raw mode: no local echo, so what comes back below comes from the guest.
        deadline = time.monotonic() + 60
        while termios.tcgetattr(terminal)[3] & termios.ECHO:
            assert time.monotonic() < deadline, "the terminal never went raw"
            time.sleep(0.1)
        # The guest's ttyS0 line discipline echoes what arrives: proof the keys reached the guest.
        os.write(master, b"typed-into-the-guest")
        read_pty_until(master, b"typed-into-the-guest")
        os.write(master, b"\x1d")  # Ctrl-]
        assert proc.wait(60) == 0
        assert b"Disconnected from domain 'gui'" in read_pty_until(master, b"Disconnected")
        assert termios.tcgetattr(terminal) == saved
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
        os.close(terminal)


def read_pty_until(fd: int, marker: bytes, timeout: float = 120.0) -> bytes:
    data = b""
    deadline = time.monotonic() + timeout
    while marker not in data:
        assert time.monotonic() < deadline, f"no {marker!r} in {timeout:g} s: {data[-500:]!r}"
        ready, _, _ = select.select([fd], [], [], 1.0)
        if ready:
            data += os.read(fd, 4096)
    return data


def test_console_ends_when_the_guest_stops_and_a_headless_guest_has_no_screen(
    host: LabClient, tmp_path: Path
) -> None:
    name = "headless"
    host.virtnet("define", str(host.spec(name, vhost_user=False)))
    try:
        host.virtnet("start", name)
        refused = host.virtnet("screenshot", name, str(tmp_path / "x.png"), check=False)
        assert refused.returncode == 2 and "no display to capture" in refused.stderr
        follower = Follower(host, name)
        follower.read_ticks(1, timeout=300)
        host.virsh("destroy", name)
        code, err = follower.finish()
        assert code == 0 and f"Domain '{name}' stopped; console closed" in err, err
    finally:
        host.virsh("destroy", name, check=False)
        host.virsh("undefine", name, check=False)
