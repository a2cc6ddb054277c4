"""network.check(): migration pre-flight's view of what the define on the destination will need."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from support import vhost_vm_spec

from virtnet.control import network
from virtnet.errors import HostNotReady, SwitchNotReady
from virtnet.socketdir import QemuOwner
from virtnet.spec import VMSpec


@dataclass
class FakeHost:
    """The three things check() asks of a host."""

    uri: str = "qemu:///system"
    is_local: bool = True
    owner: QemuOwner | None = None

    def qemu_runs_as(self) -> QemuOwner | None:
        return self.owner


def spec_with_socket(path: Path) -> VMSpec:
    nic = {"type": "vhostuser", "socket": str(path), "queues": 2, "port": "vm1-p0"}
    return vhost_vm_spec(nics=[nic])


def test_a_directory_that_can_be_made_passes_and_nothing_is_made(tmp_path: Path) -> None:
    directory = tmp_path / "vhost"
    lines = network.check(FakeHost(), spec_with_socket(directory / "vm1.sock"), None)  # type: ignore[arg-type]
    assert lines == ["the guest has no ports on OVS", f"socket directories ready: {directory}"]
    assert not directory.exists()  # a check, not prepare()


def test_a_directory_whose_parent_is_missing_is_refused_with_the_fix(tmp_path: Path) -> None:
    socket = tmp_path / "missing" / "vhost" / "vm1.sock"
    with pytest.raises(HostNotReady, match=r"cannot be made: .*/missing does not exist; create it or choose"):
        network.check(FakeHost(), spec_with_socket(socket), None)  # type: ignore[arg-type]


def test_an_existing_directory_qemu_cannot_use_is_refused(tmp_path: Path) -> None:
    tmp_path.chmod(0o777)
    host = FakeHost(owner=QemuOwner(uid=64055, gid=64055))
    with pytest.raises(SwitchNotReady, match="world-writable"):
        network.check(host, spec_with_socket(tmp_path / "vm1.sock"), None)  # type: ignore[arg-type]


def test_a_remote_hosts_directories_are_not_judged_from_here(tmp_path: Path) -> None:
    host = FakeHost(uri="qemu+tls://192.0.2.7/system", is_local=False)
    socket = tmp_path / "missing" / "vhost" / "vm1.sock"  # missing here; may exist there
    lines = network.check(host, spec_with_socket(socket), None)  # type: ignore[arg-type]
    assert (
        lines[1]
        == "socket directories on qemu+tls://192.0.2.7/system are out of reach: its QEMU reports problems"
    )
