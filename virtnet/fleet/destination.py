"""`migrate --to HOST|auto`: the destination's URI, OVSDB remote, socket directory, link and pins."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from virtnet.errors import InputError
from virtnet.fleet.hostsfile import load_hosts
from virtnet.fleet.remote import remember_tls


@dataclass
class Destination:
    uri: str
    ovsdb: str
    socket_dir: Path | None
    link_mib_s: float | None
    dest_cpus: frozenset[int] | None = None  # re-planned pins, when the guest's CPUs are taken there
    reasons: list[str] = field(default_factory=list)  # the placement's, for --to auto


def resolve(hosts_file: Path | None, to: str, source_uri: str | None, vm: str) -> Destination:
    """Host `to` of the hosts file, or with 'auto' the host placement chooses for the VM's spec.

    A named host is judged too (when the VM has a virtnet spec): it must fit, and pins taken there
    are re-planned on its free CPUs, as for 'auto'.
    """
    from virtnet.fleet.placement import TIMEOUT_S, place
    from virtnet.fleet.view import gather
    from virtnet.inventory import spec_of
    from virtnet.virt.host import Host, default_uri

    hosts = load_hosts(hosts_file)
    source_uri = source_uri or default_uri()
    candidates = [hosts.get(to)] if to != "auto" else [entry for entry in hosts if entry.uri != source_uri]
    with Host.open(source_uri) as source:
        spec = spec_of(source.lookup(vm))
    if spec is None:
        if to == "auto":
            raise InputError(
                f"--to auto: {vm} has no virtnet spec to place it by; name the host with --to HOST"
            )
        entry = candidates[0]
        remember_tls(entry)
        return Destination(entry.uri, entry.ovsdb, entry.socket_dir, entry.link_mib_s)
    placement = place(spec, gather(candidates, timeout_s=TIMEOUT_S))
    chosen = placement.require(vm)
    remember_tls(chosen.entry)
    entry = chosen.entry
    return Destination(
        entry.uri,
        entry.ovsdb,
        entry.socket_dir,
        entry.link_mib_s,
        chosen.dest_cpus if chosen.replanned else None,
        [verdict.line() for verdict in placement.verdicts],
    )
