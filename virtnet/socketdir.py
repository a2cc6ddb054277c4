"""The directory vhost-user sockets live in: QEMU creates them there and ovs-vswitchd connects.

"Failed to bind socket ... Permission denied" is the most common vhost-user failure in every
project's tracker: libvirt runs QEMU as its own user, which cannot create sockets in a directory
root made. virtnet creates the directory owned by QEMU's group, mode 2770 (setgid, so the sockets
keep that group), never world-writable, and checks an existing one before any define.
"""

from __future__ import annotations

import grp
import os
import pwd
import stat
from dataclasses import dataclass
from pathlib import Path

from virtnet.errors import SwitchNotReady

MODE = 0o2770


@dataclass(frozen=True)
class QemuOwner:
    """The user and group libvirt runs QEMU as on the host (its DAC base label)."""

    uid: int
    gid: int

    def describe(self) -> str:
        return f"{_user(self.uid)}:{_group(self.gid)}"


def prepare(directory: Path, qemu: QemuOwner) -> bool:
    """Create the directory for QEMU, or check an existing one; True when it was created."""
    if not directory.exists():
        directory.parent.mkdir(parents=True, exist_ok=True)
        directory.mkdir(mode=0o700)
        os.chown(directory, -1, qemu.gid)
        directory.chmod(MODE)  # chmod after chown: mkdir's mode is filtered by the umask
        return True
    check(directory, qemu)
    return False


def check(directory: Path, qemu: QemuOwner) -> None:
    """Refuse a directory QEMU cannot create sockets in, or one anyone may write to."""
    info = directory.stat()
    fix = f"chgrp {_group(qemu.gid)} {directory} && chmod {MODE:o} {directory}"
    if not stat.S_ISDIR(info.st_mode):
        raise SwitchNotReady(f"{directory} is not a directory; vhost-user sockets need one")
    if info.st_mode & stat.S_IWOTH:
        raise SwitchNotReady(f"{directory} is world-writable: anyone could hijack a VM's NIC; {fix}")
    if not _qemu_can_write(info, qemu):
        raise SwitchNotReady(
            f"QEMU (running as {qemu.describe()}) cannot create sockets in {directory} "
            f"(owner {_user(info.st_uid)}:{_group(info.st_gid)}, mode {stat.S_IMODE(info.st_mode):o}); {fix}"
        )


def _qemu_can_write(info: os.stat_result, qemu: QemuOwner) -> bool:
    if qemu.uid == 0:
        return True
    rwx = stat.S_IRWXU if info.st_uid == qemu.uid else stat.S_IRWXG if info.st_gid == qemu.gid else 0
    return bool(rwx) and info.st_mode & rwx == rwx


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _group(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)
