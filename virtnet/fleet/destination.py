"""`migrate --to HOST`: the destination's URI, OVSDB remote, socket directory and link from the hosts file."""

from __future__ import annotations

from pathlib import Path

from virtnet.errors import InputError
from virtnet.fleet.hostsfile import load_hosts
from virtnet.fleet.remote import remember_tls


def by_name(
    hosts_file: Path | None,
    name: str,
    dest_uri: str | None,
    dest_ovsdb: str | None,
    dest_socket_dir: Path | None,
    link_mib_s: float,
) -> tuple[str, str | None, Path | None, float]:
    """(URI, OVSDB remote, socket dir, link MiB/s) of host `name`; options given explicitly win."""
    if dest_uri is not None:
        raise InputError(f"--to {name} and the destination URI {dest_uri}: give one of them")
    entry = load_hosts(hosts_file).get(name)
    remember_tls(entry)
    return (
        entry.uri,
        dest_ovsdb or entry.ovsdb,
        dest_socket_dir or entry.socket_dir,
        entry.link_mib_s or link_mib_s,
    )
