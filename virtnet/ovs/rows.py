"""Name indexes over the OVSDB replica, for the commands of one transaction."""

from __future__ import annotations

from typing import Any

from virtnet.ovs.connection import Ovsdb


class Rows:
    """Name indexes over the replica as it was before a transaction changed anything.

    Built once per commit attempt: looking rows up by scanning tables, or reading a bridge's ports
    column while deletions are pending, makes a 100-port transaction quadratic in python-ovs.
    """

    def __init__(self, db: Ovsdb) -> None:
        self.bridges = {row.name: row for row in db.rows("Bridge")}
        self.ports = {row.name: row for row in db.rows("Port")}
        self._owner = {port.uuid: br for br in self.bridges.values() for port in br.ports}

    def bridge(self, name: str) -> Any | None:
        return self.bridges.get(name)

    def port(self, name: str) -> Any | None:
        return self.ports.get(name)

    def bridge_of(self, port: Any) -> Any | None:
        return self._owner.get(port.uuid)
