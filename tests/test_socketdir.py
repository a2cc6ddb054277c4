"""The vhost-user socket directory: made for QEMU's group, never world-writable, checked if it exists."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from virtnet.errors import SwitchNotReady
from virtnet.socketdir import MODE, QemuOwner, check, prepare

QEMU = QemuOwner(uid=64055, gid=64055)  # Debian's libvirt-qemu


@pytest.fixture(autouse=True)
def _root_only() -> None:
    if os.geteuid() != 0:
        pytest.skip("chown to QEMU's group needs root")


def test_prepare_creates_a_directory_for_qemus_group(tmp_path: Path) -> None:
    directory = tmp_path / "run" / "vhost"
    assert prepare(directory, QEMU) is True
    info = directory.stat()
    assert stat.S_IMODE(info.st_mode) == MODE and info.st_gid == QEMU.gid
    assert not info.st_mode & stat.S_IWOTH
    assert prepare(directory, QEMU) is False  # exists and is fine: left alone


def test_world_writable_is_refused_with_the_fix(tmp_path: Path) -> None:
    tmp_path.chmod(0o777)
    with pytest.raises(SwitchNotReady, match=r"world-writable.*chgrp .* && chmod 2770"):
        check(tmp_path, QEMU)


def test_a_directory_qemu_cannot_write_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "root-only"
    directory.mkdir(mode=0o755)
    with pytest.raises(SwitchNotReady, match=r"QEMU \(running as .*\) cannot create sockets"):
        check(directory, QEMU)
    os.chown(directory, QEMU.uid, -1)
    directory.chmod(0o700)
    check(directory, QEMU)  # owned by QEMU's user: fine


def test_root_qemu_can_use_any_private_directory(tmp_path: Path) -> None:
    directory = tmp_path / "private"
    directory.mkdir(mode=0o700)
    check(directory, QemuOwner(0, 0))


def test_a_file_is_not_a_socket_directory(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_text("")
    with pytest.raises(SwitchNotReady, match="not a directory"):
        check(path, QEMU)
