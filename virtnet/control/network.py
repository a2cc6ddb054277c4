"""A VM's network side on the host: the switch checks, the socket directories, the OVS ports.

prepare() does all of it before libvirt sees the domain; undo() takes back what prepare() did, so
a define that libvirt refuses leaves the switch as it was. check() is the same checks without a
change, for migration pre-flight, whose prepare() on the destination then does not read them again.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from virtnet import socketdir
from virtnet.errors import HostNotReady
from virtnet.ovs import switch, vmports
from virtnet.ovs.connection import Ovsdb
from virtnet.spec.derived import socket_dirs
from virtnet.spec.models import VMSpec
from virtnet.virt.host import Host


@dataclass
class NetworkChange:
    ports: vmports.PortChange | None = None
    created_dirs: list[Path] = field(default_factory=list)


def check(host: Host, spec: VMSpec, db: Ovsdb | None) -> list[str]:
    """What prepare() needs of the switch and the socket directories, checked without a change.

    Returns a line per check that passed; raises the first that failed, with its fix.
    """
    if db is None:
        carried = "the guest has no ports on OVS"
    else:
        switch.check_can_carry(db, spec)
        carried = f"OVS at {db.remote} can carry the guest's vhost-user ports"
    return [carried, _check_dirs(host, spec)]


def prepare(
    host: Host, spec: VMSpec, vm_uuid: str, db: Ovsdb | None, *, checked: bool = False
) -> NetworkChange:
    """Check the switch (unless check() just did), make the socket directories, put the ports on OVS."""
    change = NetworkChange()
    if db is not None and not checked:
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
    owner = host.qemu_runs_as()
    if owner is None:
        return []  # the driver does not say (libvirt's test driver): nothing to check against
    created = []
    for directory in socket_dirs(spec):
        if socketdir.prepare(directory, owner):
            created.append(directory)
    return created


def _check_dirs(host: Host, spec: VMSpec) -> str:
    """What _socket_dirs() would find: each existing directory fit for QEMU, each new one makeable."""
    directories = socket_dirs(spec)
    if not directories:
        return "the guest has no vhost-user sockets"
    if not host.is_local:
        return f"socket directories on {host.uri} are out of reach: its QEMU reports problems"
    owner = host.qemu_runs_as()
    for directory in directories:
        if owner is not None and directory.exists():
            socketdir.check(directory, owner)
        elif not directory.parent.is_dir():
            raise HostNotReady(
                f"vhost-user socket directory {directory} cannot be made: {directory.parent} does not exist; "
                "create it or choose another (migrate: --dest-socket-dir)"
            )
    return f"socket directories ready: {', '.join(map(str, directories))}"


def _remove_dirs(directories: list[Path]) -> None:
    for directory in reversed(directories):
        with contextlib.suppress(OSError):  # something else now lives there: keep it
            directory.rmdir()
