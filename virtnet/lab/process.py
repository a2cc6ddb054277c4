"""Processes the lab starts: run, check liveness, stop by PID (never by name)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

from virtnet.errors import LabError


def run(cmd: list[str], *, timeout: float = 60.0, cwd: Path | None = None) -> str:
    """Run a command (argument list, no shell) and return its stdout; LabError on failure."""
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd, check=False)
    except FileNotFoundError:
        raise LabError(f"{cmd[0]} is not installed; run `make deps`") from None
    except subprocess.TimeoutExpired:
        raise LabError(f"{' '.join(cmd)} did not finish within {timeout:g} s") from None
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise LabError(f"{' '.join(cmd)} failed: {detail[-1] if detail else f'exit {done.returncode}'}")
    return done.stdout


def alive(pid: int | None) -> bool:
    """True for a live process. A zombie counts as dead: PID 1 here may reap daemons late."""
    if not pid:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def read_pid(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None


def wait_for_pidfile(pidfile: Path, timeout: float = 10.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid = read_pid(pidfile)
        if alive(pid):
            assert pid is not None
            return pid
        time.sleep(0.05)
    raise LabError(f"no live process in {pidfile} after {timeout:g} s")


def stop_pid(pid: int | None, *, timeout: float = 10.0) -> None:
    """SIGTERM, wait up to `timeout`, then SIGKILL: only this PID."""
    if not alive(pid):
        return
    assert pid is not None
    _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return
        time.sleep(0.05)
    _signal(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # it exited meanwhile
        os.kill(pid, sig)
