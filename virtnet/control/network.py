"""A VM's network side on the host: the switch checks, the socket directories, the OVS ports.

prepare() does all of it before libvirt sees the domain; undo() takes back what prepare() did, so
a define that libvirt refuses leaves the switch as it was.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from virtnet import socketdir
from virtnet.ovs import switch, vmports
from virtnet.ovs.connection import Ovsdb
from virtnet.spec.models import VMSpec
from virtnet.virt.host import Host


@dataclass
class NetworkChange:
    ports: vmports.PortChange | None = None
    created_dirs: list[Path] = field(default_factory=list)


def prepare(host: Host, spec: VMSpec, vm_uuid: str, db: Ovsdb | None) -> NetworkChange:
    """Check the switch, make the socket directories, and put the VM's ports on OVS."""
    change = NetworkChange()
    if db is not None:
        switch.check_can_carry(db, spec)
    change.created_dirs = _socket_dirs(host, spec)
    if db is not None:
        try:
            change.ports = vmports.apply(db, spec, vm_uuid)
        except BaseException:
            _remove_dirs(change.created_dirs)
            raise
    return change


def undo(change: NetworkChange, db: Ovsdb | None) -> None:
    if db is not None and change.ports is not None:
        vmports.rollback(db, change.ports)
    _remove_dirs(change.created_dirs)


def new_uuid() -> str:
    """A domain's UUID, chosen before libvirt sees it so its OVS ports can name it."""
    return str(uuid.uuid4())


def _socket_dirs(host: Host, spec: VMSpec) -> list[Path]:
    """Make or check each vhost-user socket directory, where QEMU runs on this machine."""
    if not spec.vhost_user_nics or not host.is_local:
        return []  # a remote host's directories are out of reach; its QEMU reports problems
    owner = host.qemu_owner("kvm") or host.qemu_owner("qemu")
    if owner is None:
        return []  # the driver does not say (libvirt's test driver): nothing to check against
    created = []
    for directory in sorted({Path(nic.socket).parent for nic in spec.vhost_user_nics}):
        if socketdir.prepare(directory, owner):
            created.append(directory)
    return created


def _remove_dirs(directories: list[Path]) -> None:
    for directory in reversed(directories):
        with contextlib.suppress(OSError):  # something else now lives there: keep it
            directory.rmdir()
