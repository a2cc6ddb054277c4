"""OVSDB operations as small command objects, composed into one Transaction."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import ovs.db.idl

from virtnet.errors import OvsdbError
from virtnet.ovs.connection import Ovsdb
from virtnet.ovs.rows import Rows

VHOST_USER_CLIENT = "dpdkvhostuserclient"


def find(db: Ovsdb, table: str, name: str) -> Any | None:
    """One row by name (a scan: for single lookups; commands use Rows)."""
    return next((row for row in db.rows(table) if row.name == name), None)


@dataclass
class SetOtherConfig:
    """Set keys of Open_vSwitch's other_config (the DPDK settings)."""

    values: dict[str, str]

    def run(self, db: Ovsdb, rows: Rows, txn: ovs.db.idl.Transaction) -> None:
        root = db.root()
        for key, value in sorted(self.values.items()):
            if root.other_config.get(key) != value:
                root.setkey("other_config", key, value)


@dataclass
class EnsureBridge:
    """A bridge with this datapath type, created as ovs-vsctl add-br would (with its internal port)."""

    name: str
    datapath_type: str = "netdev"

    def run(self, db: Ovsdb, rows: Rows, txn: ovs.db.idl.Transaction) -> None:
        bridge = rows.bridge(self.name)
        if bridge is not None:
            if bridge.datapath_type != self.datapath_type:
                bridge.datapath_type = self.datapath_type
            return
        iface = txn.insert(db.idl.tables["Interface"])
        iface.name = self.name
        iface.type = "internal"
        port = txn.insert(db.idl.tables["Port"])
        port.name = self.name
        port.interfaces = [iface]
        bridge = txn.insert(db.idl.tables["Bridge"])
        bridge.name = self.name
        bridge.datapath_type = self.datapath_type
        bridge.ports = [port]
        db.root().addvalue("bridges", bridge.uuid)


@dataclass
class VhostUserPort:
    """What a dpdkvhostuserclient port should look like."""

    bridge: str
    name: str
    socket: str
    n_rxq: int = 1
    mtu: int | None = None
    external_ids: dict[str, str] = field(default_factory=dict)

    @property
    def options(self) -> dict[str, str]:
        return {"vhost-server-path": self.socket, "n_rxq": str(self.n_rxq)}

    @property
    def mtu_request(self) -> list[int]:
        return [self.mtu] if self.mtu else []


@dataclass
class PortSnapshot:
    """A port as it was before a change, enough to put it back."""

    bridge: str
    name: str
    type: str
    options: dict[str, str]
    external_ids: dict[str, str]
    mtu_request: list[int]


@dataclass
class EnsureVhostUserPort:
    """Create the port, or bring an existing one to `want` changing only what differs.

    `before` records the port as it was (None: it did not exist), so a caller can undo the change.
    """

    want: VhostUserPort
    before: PortSnapshot | None = field(default=None, init=False)

    def run(self, db: Ovsdb, rows: Rows, txn: ovs.db.idl.Transaction) -> None:
        want = self.want
        bridge = rows.bridge(want.bridge)
        if bridge is None:
            raise OvsdbError(f"bridge {want.bridge!r} does not exist; create it with `virtnet switch setup`")
        port = rows.port(want.name)
        self.before = None
        if port is None:
            iface = txn.insert(db.idl.tables["Interface"])
            iface.name = want.name
            iface.type = VHOST_USER_CLIENT
            iface.options = want.options
            # A new row starts empty: writing an empty map or set would only cost python-ovs's checks.
            if want.external_ids:
                iface.external_ids = want.external_ids
            if want.mtu_request:
                iface.mtu_request = want.mtu_request
            port = txn.insert(db.idl.tables["Port"])
            port.name = want.name
            port.interfaces = [iface]
            bridge.addvalue("ports", port.uuid)
            return
        owner = rows.bridge_of(port)
        if owner is None or owner.name != want.bridge:
            where = f"bridge {owner.name!r}" if owner else "no bridge"
            raise OvsdbError(f"OVS port {want.name!r} already exists on {where}; choose another port name")
        self.before = snapshot(rows, want.name)
        _apply(port.interfaces[0], want)


@dataclass
class RestorePort:
    """Put a port back as a snapshot recorded it, recreating it if it is gone (rollback)."""

    before: PortSnapshot

    def run(self, db: Ovsdb, rows: Rows, txn: ovs.db.idl.Transaction) -> None:
        before = self.before
        port = rows.port(before.name)
        if port is None:
            bridge = rows.bridge(before.bridge)
            if bridge is None:
                return
            iface = txn.insert(db.idl.tables["Interface"])
            iface.name = before.name
            port = txn.insert(db.idl.tables["Port"])
            port.name = before.name
            port.interfaces = [iface]
            bridge.addvalue("ports", port.uuid)
        else:
            iface = port.interfaces[0]
        iface.type = before.type
        iface.options = before.options
        iface.external_ids = before.external_ids
        iface.mtu_request = before.mtu_request


def snapshot(rows: Rows, name: str) -> PortSnapshot | None:
    """The port's configuration as `rows` saw it, or None when there is no such port."""
    port = rows.port(name)
    owner = rows.bridge_of(port) if port is not None else None
    if port is None or owner is None or not port.interfaces:
        return None
    iface = port.interfaces[0]
    return PortSnapshot(
        bridge=owner.name,
        name=name,
        type=iface.type,
        options=dict(iface.options),
        external_ids=dict(iface.external_ids),
        mtu_request=list(iface.mtu_request),
    )


@dataclass
class DeletePort:
    """Remove a port from its bridge; its Port and Interface rows go with it."""

    name: str
    if_exists: bool = True

    def run(self, db: Ovsdb, rows: Rows, txn: ovs.db.idl.Transaction) -> None:
        port = rows.port(self.name)
        if port is None:
            if self.if_exists:
                return
            raise OvsdbError(f"OVS port {self.name!r} does not exist")
        owner = rows.bridge_of(port)
        if owner is not None:
            owner.delvalue("ports", port.uuid)


def _apply(iface: Any, want: VhostUserPort) -> None:
    """Write only the columns that differ, so an unchanged port makes an unchanged transaction."""
    if iface.type != VHOST_USER_CLIENT:
        iface.type = VHOST_USER_CLIENT
    if dict(iface.options) != want.options:
        iface.options = want.options
    if dict(iface.external_ids) != want.external_ids:
        iface.external_ids = want.external_ids
    if list(iface.mtu_request) != want.mtu_request:
        iface.mtu_request = want.mtu_request
