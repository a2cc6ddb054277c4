"""`virtnet show`: everything known about one domain, read from libvirt (and OVS, and the guest agent)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from virtnet.inventory import (
    DomainView,
    GuestSide,
    guest_side,
    last_migration,
    nic_backends,
    spec_of_xml,
    switch_vrings,
    view,
)
from virtnet.migration.report import MigrationReport
from virtnet.spec.models import VMSpec
from virtnet.virt.host import Host


@dataclass(frozen=True)
class DomainReport:
    """One domain as `virtnet show` prints it."""

    state: DomainView  # name, UUID, id, state, type, vCPUs, memory: libvirt's view
    spec: VMSpec | None  # the spec virtnet stored, None for a domain virtnet did not make
    xml: str  # libvirt's live domain XML (secrets left out, as virsh dumpxml)
    backends: dict[str, str | None]  # each NIC's MAC -> the XML's <driver name> (vhost, qemu, None)
    guest: GuestSide | None  # what the guest agent says; None when it does not answer (or not asked)
    vrings: dict[int, int | None] | None  # OVS NIC index -> the vrings OVS has; None if not read
    last_migration: MigrationReport | None  # the report `virtnet migrate` stored, if it moved here

    def as_dict(self) -> dict[str, Any]:
        """What `virtnet show --json` prints."""
        import json

        from virtnet.spec.codec import dump_spec

        return {
            "domain": self.state.as_dict(),
            "spec": json.loads(dump_spec(self.spec)) if self.spec else None,
            "guest": self.guest.as_dict() if self.guest else None,
            "ovs_vrings": self.vrings,
            "last_migration": asdict(self.last_migration) if self.last_migration else None,
        }


def show(host: Host, name: str, *, ovsdb: str | None = None, live: bool = True) -> DomainReport:
    """Domain `name`: its state, stored spec, NIC backends, guest side, OVS vrings and last migration.

    Args:
        host: the libvirt host.
        name: the domain.
        ovsdb: the OVSDB remote its ports are on (None: the default socket); unreachable is no error.
        live: also ask the guest agent and OVS (each has about a second to answer); False reads
            libvirt alone, for the XML and the spec.

    Raises:
        DomainNotFound; VirtnetError (a stored spec virtnet cannot read); HypervisorError.
    """
    guest = host.lookup(name)
    spec = spec_of_xml(guest.xml(secure=True))
    state = view(guest)
    running = live and state.id is not None
    return DomainReport(
        state=state,
        spec=spec,
        xml=guest.xml(),
        backends=nic_backends(guest),
        guest=guest_side(guest, spec) if live else None,
        vrings=switch_vrings(guest, spec, ovsdb) if running else None,
        last_migration=last_migration(guest),
    )
