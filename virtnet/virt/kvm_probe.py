"""Does KVM actually run a guest here? Booting a kernel under KVM is the only honest test.

/dev/kvm may exist and answer ioctls while every guest hangs before the kernel prints a line (as
on this project's CI machine), and libvirt still offers domain type kvm. The probe boots a kernel
with no root file system under `-accel kvm`: it runs all the way to "VFS: Unable to mount root fs",
panics and, with panic=-1 and -no-reboot, QEMU exits. Exiting in time means KVM works. The verdict
is cached per kernel release, QEMU binary and /dev/kvm, so a host pays for the probe once.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from virtnet.cache import cache_dir

if TYPE_CHECKING:
    import subprocess

PROBE_TIMEOUT_S = 30.0
# A working KVM guest's kernel prints "Linux version" within a second. Here, only its decompressor
# ever speaks; the kernel proper stays silent. Silence this long is a hang.
SILENT_LIMIT_S = 10.0
FIRST_KERNEL_LINE = b"Linux version"
QEMU = "qemu-system-x86_64"


@dataclass(frozen=True)
class KvmVerdict:
    usable: bool
    reason: str
    key: str


def verdict_key() -> str:
    """What the verdict depends on: the host kernel, the QEMU binary and /dev/kvm."""
    parts = [os.uname().release]
    qemu = shutil.which(QEMU)
    if qemu:
        stat = os.stat(qemu)
        parts.append(f"{qemu}:{stat.st_size}:{int(stat.st_mtime)}")
    try:
        kvm = os.stat("/dev/kvm")
        parts.append(f"kvm:{kvm.st_rdev}:{kvm.st_mode:o}")
    except OSError:
        parts.append("no-kvm")
    return "|".join(parts)


def cached_verdict() -> KvmVerdict | None:
    """The stored verdict if it still applies to this machine."""
    try:
        verdict = KvmVerdict(**json.loads((cache_dir() / "kvm-verdict.json").read_text()))
    except (OSError, ValueError, TypeError):
        return None
    return verdict if verdict.key == verdict_key() else None


def probe_kernel() -> Path | None:
    """A kernel to probe with: $VIRTNET_PROBE_KERNEL, else the running kernel's image in /boot."""
    for candidate in (os.environ.get("VIRTNET_PROBE_KERNEL"), f"/boot/vmlinuz-{os.uname().release}"):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def probe(kernel: Path, *, timeout_s: float = PROBE_TIMEOUT_S) -> KvmVerdict:
    """Boot `kernel` under KVM and cache the verdict."""
    verdict = _boot(kernel, timeout_s)
    target = cache_dir() / "kvm-verdict.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(asdict(verdict)))
    tmp.replace(target)
    return verdict


def _boot(kernel: Path, timeout_s: float, accel: str = "kvm") -> KvmVerdict:
    """Boot with `accel` (tests use tcg to prove that a guest that boots is recognised)."""
    import subprocess  # here, not at the top: `virtnet xml` reads the cached verdict only
    import tempfile
    import time

    key = verdict_key()
    if accel == "kvm" and not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return KvmVerdict(False, "/dev/kvm is missing or not accessible", key)
    with tempfile.TemporaryDirectory(prefix="virtnet-kvm-probe-") as tmp:
        console = Path(tmp) / "console.log"
        cmd = [
            QEMU,
            "-accel",
            accel,
            "-cpu",
            "host" if accel == "kvm" else "max",
            "-m",
            "128",
            "-smp",
            "1",
            "-display",
            "none",
            "-no-reboot",
            "-monitor",
            "none",
            "-nodefaults",
            "-serial",
            f"file:{console}",
            "-kernel",
            str(kernel),
            "-append",
            "console=ttyS0 panic=-1 earlyprintk=serial,ttyS0",
        ]
        started = time.monotonic()
        qemu = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        hung = _wait(qemu, console, timeout_s)
        if hung:
            return KvmVerdict(False, f"a KVM guest hung: its kernel {hung}", key)
        elapsed = time.monotonic() - started
        output = console.read_text(errors="replace")
    if "Kernel panic" in output or "Unable to mount root" in output:
        return KvmVerdict(True, f"a {accel.upper()} guest booted its kernel in {elapsed:.1f} s", key)
    error = (qemu.stderr.read() if qemu.stderr else "").strip().splitlines()
    return KvmVerdict(
        False, f"QEMU could not run a KVM guest: {error[-1] if error else 'no console output'}", key
    )


def _wait(qemu: subprocess.Popen[str], console: Path, timeout_s: float) -> str:
    """Wait for QEMU to exit; '' when it did, else what the hang looked like (QEMU is killed)."""
    import time

    started = time.monotonic()
    while qemu.poll() is None:
        elapsed = time.monotonic() - started
        silent = not console.exists() or FIRST_KERNEL_LINE not in console.read_bytes()
        if elapsed > timeout_s or (silent and elapsed > SILENT_LIMIT_S):
            qemu.kill()
            qemu.wait()
            return (
                f"never printed its first line in {elapsed:.0f} s"
                if silent
                else f"did not finish in {elapsed:.0f} s"
            )
        time.sleep(0.2)
    return ""
