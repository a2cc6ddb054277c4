"""A VM's vhost-user ports on OVS: created with the VM, changed with it, removed with it.

Each port carries the os-vif external_ids (iface-id, attached-mac, vm-uuid, vm-name), so any tool
can tell which VM it belongs to and `virtnet switch gc` can find the ones whose VM is gone.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from virtnet.ovs.commands import (
    VHOST_USER_CLIENT,
    DeletePort,
    EnsureVhostUserPort,
    PortSnapshot,
    RestorePort,
    VhostUserPort,
    snapshot,
)
from virtnet.ovs.connection import Ovsdb
from virtnet.ovs.rows import Rows
from virtnet.ovs.transaction import Transaction
from virtnet.spec.derived import nic_mac, vhost_port_name
from virtnet.spec.models import VhostUserNic, VMSpec

# iface-ids are UUIDs derived from the VM's UUID and NIC index: stable across redefinitions.
_IFACE_ID_NAMESPACE = uuid.UUID("8d5f1f2e-6c0b-4d3e-9a1f-7c2b5e4d3a10")


@dataclass(frozen=True)
class VmPort:
    """A port some VM owns, as found in the database."""

    name: str
    bridge: str
    vm_uuid: str
    vm_name: str
    # status:num_of_vrings: the virtqueues OVS's vhost-user backend has for the port (2 per queue pair).
    vrings: int | None = None


@dataclass
class PortChange:
    """What apply() did, so that rollback() can undo it."""

    ensured: list[EnsureVhostUserPort] = field(default_factory=list)
    deleted: list[PortSnapshot] = field(default_factory=list)
    changed: bool = False


def planned_ports(spec: VMSpec, vm_uuid: str) -> list[VhostUserPort]:
    """The ports `spec` needs on OVS, one per vhost-user NIC that virtnet connects to OVS."""
    ports = []
    for index, nic in enumerate(spec.nics):
        if not isinstance(nic, VhostUserNic) or not nic.ovs:
            continue
        ports.append(
            VhostUserPort(
                bridge=nic.bridge,
                name=vhost_port_name(spec, index),
                socket=nic.socket,
                n_rxq=nic.queues,
                mtu=nic.mtu,
                external_ids={
                    "iface-id": str(uuid.uuid5(_IFACE_ID_NAMESPACE, f"{vm_uuid}/{index}")),
                    "attached-mac": nic_mac(spec, index),
                    "vm-uuid": vm_uuid,
                    "vm-name": spec.name,
                },
            )
        )
    return ports


def planned_rows(spec: VMSpec, vm_uuid: str) -> list[PortSnapshot]:
    """The planned ports as the rows apply() would leave in OVS (for a diff against port_rows)."""
    return [
        PortSnapshot(
            port.bridge, port.name, VHOST_USER_CLIENT, port.options, port.external_ids, port.mtu_request
        )
        for port in planned_ports(spec, vm_uuid)
    ]


def port_rows(db: Ovsdb, spec: VMSpec, vm_uuid: str) -> list[PortSnapshot]:
    """The rows OVS has now under the planned port names and for any other port of the VM."""
    names = {port.name for port in planned_ports(spec, vm_uuid)}
    names |= {port.name for port in vm_ports(db) if port.vm_uuid == vm_uuid}
    rows = Rows(db)
    return [found for name in sorted(names) if (found := snapshot(rows, name)) is not None]


def vm_ports(db: Ovsdb) -> list[VmPort]:
    """Every port that carries a vm-uuid, with its bridge."""
    bridges = {port.uuid: br.name for br in db.rows("Bridge") for port in br.ports}
    found = []
    for port in db.rows("Port"):
        iface = port.interfaces[0] if port.interfaces else None
        if iface is None or "vm-uuid" not in iface.external_ids:
            continue
        found.append(
            VmPort(
                name=port.name,
                bridge=bridges.get(port.uuid, ""),
                vm_uuid=iface.external_ids["vm-uuid"],
                vm_name=iface.external_ids.get("vm-name", ""),
                vrings=int(iface.status["num_of_vrings"]) if "num_of_vrings" in iface.status else None,
            )
        )
    return sorted(found, key=lambda p: p.name)


def apply(db: Ovsdb, spec: VMSpec, vm_uuid: str) -> PortChange:
    """Make OVS hold exactly the VM's planned ports, in one transaction."""
    planned = planned_ports(spec, vm_uuid)
    keep = {port.name for port in planned}
    change = PortChange()
    txn = Transaction(db)
    change.ensured = [txn.add(EnsureVhostUserPort(port)) for port in planned]
    stale = [p.name for p in vm_ports(db) if p.vm_uuid == vm_uuid and p.name not in keep]
    rows = Rows(db)
    change.deleted = [before for name in stale if (before := snapshot(rows, name)) is not None]
    for before in change.deleted:
        txn.add(DeletePort(before.name))
    change.changed = txn.commit()
    return change


def rollback(db: Ovsdb, change: PortChange) -> None:
    """Undo apply(): remove the ports it created, restore those it changed or deleted."""
    if not change.changed:
        return
    txn = Transaction(db)
    for ensured in change.ensured:
        if ensured.before is None:
            txn.add(DeletePort(ensured.want.name))
        else:
            txn.add(RestorePort(ensured.before))
    for before in change.deleted:
        txn.add(RestorePort(before))
    txn.commit()


def remove(db: Ovsdb, vm_uuid: str) -> list[str]:
    """Delete every port of the VM; return their names."""
    names = [p.name for p in vm_ports(db) if p.vm_uuid == vm_uuid]
    delete(db, names)
    return names


def delete(db: Ovsdb, names: list[str]) -> None:
    """Delete these ports in one transaction."""
    txn = Transaction(db)
    for name in names:
        txn.add(DeletePort(name))
    txn.commit()


def orphans(db: Ovsdb, live_uuids: set[str]) -> list[VmPort]:
    """Ports whose VM no longer exists on the libvirt host."""
    return [p for p in vm_ports(db) if p.vm_uuid not in live_uuids]
