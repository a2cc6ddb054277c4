"""A virtual X server for the viewing tests, the GUI programs they run on it, and OCR to read it.

Everything is started in a session of its own and stopped through that process group, so a test
stops exactly what it started: Xvfb, and each viewer with its dbus-run-session bus and whatever
that spawned (dconf-service). Viewers run as host.md measured: inside dbus-run-session (else they
leave a D-Bus and accessibility daemons behind) with NO_AT_BRIDGE=1, GDK_BACKEND=x11 and a private
HOME and XDG_RUNTIME_DIR.
"""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

SCREEN = "1280x1024x24"
TOOLS = ("Xvfb", "dbus-run-session", "import", "convert", "tesseract", "virt-manager", "virt-viewer")


class GuiProgram:
    """A program on the X server, in its own process group; its output goes to `log`."""

    def __init__(self, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.proc = proc
        self.log = log

    def stop(self) -> None:
        stop_group(self.proc)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


class XServer:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.display = ""
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> None:
        # -displayfd: Xvfb picks a free display number itself and writes it once it accepts clients,
        # so two test runs never race for the same number.
        read_end, write_end = os.pipe()
        with (self.workdir / "xvfb.log").open("wb") as log:
            self._proc = subprocess.Popen(
                ["Xvfb", "-displayfd", str(write_end), "-screen", "0", SCREEN, "-nolisten", "tcp"],
                pass_fds=(write_end,),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        os.close(write_end)
        try:
            number = _read_line(read_end, timeout)
        finally:
            os.close(read_end)
        if not number.isdigit():
            self.stop()
            raise AssertionError(f"Xvfb did not start: {(self.workdir / 'xvfb.log').read_text()}")
        self.display = f":{number}"

    def stop(self) -> None:
        if self._proc is not None:
            stop_group(self._proc)
            self._proc = None

    def launch(self, argv: list[str], label: str) -> GuiProgram:
        """Run a GUI program inside its own session bus, as a desktop would."""
        home = self.workdir / f"home-{label}"
        runtime = self.workdir / f"run-{label}"
        for folder in (home, runtime):
            folder.mkdir(mode=0o700, exist_ok=True)
        env = {
            **os.environ,
            "DISPLAY": self.display,
            "NO_AT_BRIDGE": "1",
            "GDK_BACKEND": "x11",
            "HOME": str(home),
            "XDG_RUNTIME_DIR": str(runtime),
        }
        log = self.workdir / f"{label}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                ["dbus-run-session", "--", *argv],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,
            )
        return GuiProgram(proc, log)

    def capture(self, path: Path) -> Path:
        """The whole screen (no window manager: windows stack at the top left)."""
        subprocess.run(
            ["import", "-display", self.display, "-window", "root", str(path)],
            check=True,
            capture_output=True,
            timeout=120,
        )
        return path


def ocr(image: Path) -> str:
    """The text tesseract reads in an image, upscaled first: VGA's 9x16 glyphs are small for it.

    --psm 6 (one block of text) keeps each console line whole; tesseract's default page layout
    may read a screen of "VIRTNET-TICK n" lines as two columns.
    """
    big = image.with_name(f"{image.stem}.ocr.png")
    subprocess.run(["convert", str(image), "-resize", "200%", str(big)], check=True, timeout=120)
    done = subprocess.run(
        ["tesseract", str(big), "stdout", "--psm", "6"],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return done.stdout


def ticks(text: str) -> list[int]:
    """The guest's VIRTNET-TICK counters in a text (OCR'd or from the console), in order."""
    return [int(n) for n in re.findall(r"TICK[ \t]+(\d+)", text)]


def wait_for_screen(
    take: Callable[[Path], Path],
    workdir: Path,
    label: str,
    wanted: Callable[[str], bool],
    *,
    timeout: float = 300.0,
) -> tuple[Path, str]:
    """Screenshot and OCR until the text satisfies `wanted`; every screenshot is kept in workdir."""
    deadline = time.monotonic() + timeout
    attempt = 0
    while True:
        attempt += 1
        path = take(workdir / f"{label}-{attempt:02d}.png")
        text = ocr(path)
        if wanted(text):
            return path, text
        if time.monotonic() > deadline:
            raise AssertionError(f"{label}: not on screen after {timeout:g} s; see {path}\nOCR read:\n{text}")
        time.sleep(1)


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group this test started, then SIGKILL what is left of it."""
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break  # the whole group is gone
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            continue
        if not _group_alive(proc.pid):
            break
        time.sleep(0.5)


def _group_alive(pgid: int) -> bool:
    """Whether a live (non-zombie) process remains in the group: PID 1 here reaps late."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            return True
    return False


def _read_line(fd: int, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    data = b""
    while b"\n" not in data and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            chunk = os.read(fd, 64)
            if not chunk:
                break
            data += chunk
    return data.decode().strip()
