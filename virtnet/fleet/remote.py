"""What a hosts-file entry means to the clients that reach its host (libvirt, OVSDB)."""

from __future__ import annotations

from virtnet.fleet.hostsfile import HostEntry
from virtnet.ovs.credentials import OvsdbTls, remember


def remember_tls(entry: HostEntry) -> None:
    """Make the entry's OVSDB key, certificate and CA the ones its ssl: remote is opened with."""
    if entry.ovsdb_tls is not None:
        files = entry.ovsdb_tls
        remember(entry.ovsdb, OvsdbTls(key=files.key, cert=files.cert, ca=files.ca))
