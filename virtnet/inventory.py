"""What virtnet knows about a domain, read from libvirt alone (no state of its own)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from virtnet.domxml.domain import Domain
from virtnet.errors import SpecError, VirtnetError

if TYPE_CHECKING:
    from virtnet.migration.report import MigrationReport
    from virtnet.spec.models import VMSpec
    from virtnet.virt.guest import Guest
    from virtnet.virt.host import Host

# `virtnet list` reads every domain's XML for its row through the element classes over the standard
# library's parser (Domain.read_only), without importing lxml; the spec's models and pydantic load
# only where a spec is read (spec_of_xml).


# NamedTuples, not dataclasses: `virtnet list` then needs no dataclasses (nor the inspect it imports).
class DomainView(NamedTuple):
    """One row of `virtnet list`, one header of `virtnet show`."""

    name: str
    uuid: str
    id: int | None
    state: str
    managed: bool
    virt_type: str
    vcpus: int
    memory_kib: int
    persistent: bool

    def as_dict(self) -> dict[str, object]:
        return self._asdict()


def list_domains(host: Host, *, include_inactive: bool = False) -> list[DomainView]:
    """`virtnet list`: every running domain (and the others with include_inactive), sorted by name."""
    views = [view(guest) for guest in host.guests()]
    return [v for v in views if include_inactive or v.id is not None]


def view(guest: Guest) -> DomainView:
    domain = Domain.read_only(guest.xml())
    return DomainView(
        name=guest.name,
        uuid=guest.uuid,
        id=guest.id,
        state=guest.state,
        managed=stored_spec_json(domain) is not None,
        virt_type=domain.type or "",
        vcpus=domain.vcpus or 0,
        memory_kib=domain.memory_kib or 0,  # libvirt always writes KiB
        persistent=guest.is_persistent,
    )


def stored_spec_json(domain: Domain) -> str | None:
    info = domain.metadata.virtnet if domain.metadata is not None else None
    return info.spec_json if info is not None else None


def nic_backends(guest: Guest) -> dict[str, str | None]:
    """Each NIC's MAC and its <driver name> ('vhost', 'qemu' or None): which backend libvirt was told."""
    devices = Domain.read_only(guest.xml()).devices
    interfaces = devices.interfaces if devices is not None else []
    return {iface.mac.lower(): iface.driver_name for iface in interfaces if iface.mac}


def spec_of_xml(xml: str) -> VMSpec | None:
    """The spec stored in a domain's XML, or None when virtnet did not make the domain."""
    from virtnet.spec.codec import load_spec

    domain = Domain.read_only(xml)
    text = stored_spec_json(domain)
    if text is None:
        return None
    # libvirt keeps the graphics password out of the stored spec, in <graphics passwd> alone.
    graphics = domain.devices.graphics if domain.devices is not None else []
    password = next((g.passwd for g in graphics if g.passwd), None)
    try:
        return load_spec(text, password=password)
    except SpecError as err:
        problems = "; ".join(str(problem) for problem in err.problems)  # one line, for a one-line error
        raise VirtnetError(f"domain {domain.name!r} carries a spec virtnet cannot read: {problems}") from None


def spec_of(guest: Guest) -> VMSpec | None:
    return spec_of_xml(guest.xml(secure=True))


def last_migration(guest: Guest) -> MigrationReport | None:
    """The report `virtnet migrate` stored in the domain's metadata, if it moved here that way."""
    from virtnet.migration.report import MIGRATION_NS, MigrationReport

    xml = guest.metadata(MIGRATION_NS)
    return MigrationReport.from_xml(xml) if xml else None


class GuestSide(NamedTuple):
    """What the guest agent says, for `virtnet show`: OS, hostname, and each NIC's guest addresses."""

    os: str | None
    hostname: str | None
    # {"nic": spec index or None, "name", "mac", "addresses", "queues": {"enabled", "max"} or None}
    nics: list[dict[str, Any]]

    def as_dict(self) -> dict[str, object]:
        return self._asdict()


def switch_vrings(guest: Guest, spec: VMSpec | None, remote: str | None) -> dict[int, int | None] | None:
    """For each OVS NIC of the spec, the vrings OVS has for its port; None when OVS does not answer."""
    from virtnet.errors import OvsdbError
    from virtnet.ovs.connection import Ovsdb, default_remote
    from virtnet.ovs.vmports import vm_ports
    from virtnet.spec.derived import vhost_port_name
    from virtnet.spec.models import VhostUserNic

    if spec is None or not spec.ovs_nics:
        return None
    try:
        with Ovsdb(remote or default_remote(), timeout_s=1.0) as db:
            ports = {port.name: port for port in vm_ports(db) if port.vm_uuid == guest.uuid}
    except OvsdbError:
        return None  # show the rest; `virtnet switch show` says what is wrong with the switch
    return {
        i: port.vrings if (port := ports.get(vhost_port_name(spec, i))) else None
        for i, nic in enumerate(spec.nics)
        if isinstance(nic, VhostUserNic) and nic.ovs
    }


def guest_side(guest: Guest, spec: VMSpec | None) -> GuestSide | None:
    """The agent's view of a running guest, None when it has no agent or the agent does not answer."""
    from virtnet.errors import DomainNotRunning, HypervisorError, NoAgentChannel
    from virtnet.spec.derived import nic_mac
    from virtnet.virt.agent import Agent

    if not guest.is_active or not Agent.configured(guest):
        return None
    agent = Agent(guest)
    try:
        agent.ping(timeout_s=1)
        facts = agent.facts()
        found = agent.nics()
    except (HypervisorError, NoAgentChannel, DomainNotRunning):
        return None  # not answering, or a driver without an agent (the test driver): show the rest
    by_mac = {nic_mac(spec, i): i for i in range(len(spec.nics))} if spec else {}
    multiqueue = {i for i, _ in spec.multiqueue_nics} if spec else set()
    nics = [
        {
            "nic": by_mac.get(nic.mac or ""),
            "name": nic.name,
            "mac": nic.mac,
            "addresses": list(nic.addresses),
            "queues": _channels(agent, nic.name) if by_mac.get(nic.mac or "") in multiqueue else None,
        }
        for nic in found
        if nic.name != "lo"
    ]
    return GuestSide(os=facts.os_name, hostname=facts.hostname, nics=nics)


def _channels(agent: Any, name: str) -> dict[str, int] | None:
    """{'enabled': N, 'max': M} queue pairs, from the guest's `ethtool -l` (None if it cannot say)."""
    from virtnet.errors import VirtnetError
    from virtnet.perf.tools import combined_channels

    try:
        done = agent.run(["ethtool", "-l", name], timeout_s=5)
    except VirtnetError:
        return None
    found = combined_channels(done.stdout) if done.exit_code == 0 else None
    return {"enabled": found[0], "max": found[1]} if found else None
