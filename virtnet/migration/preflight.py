"""Checks on both hosts before a migration changes anything; each failure is one line with the fix.

They read the destination through its own libvirt (free hugepages, CPUs, the CPU model) and its own
OVS, so they hold for a real remote host as much as for a lab host.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from lxml import etree

from virtnet.control import network
from virtnet.domxml.capabilities import Capabilities
from virtnet.domxml.domain import Domain
from virtnet.domxml.memory import page_size_kib
from virtnet.errors import CpuIncompatible, DomainExists, HostNotReady, InputError, InvalidDomainState
from virtnet.ovs import switch
from virtnet.ovs.connection import Ovsdb
from virtnet.spec.derived import pinned_cpusets
from virtnet.spec.models import VMSpec
from virtnet.units import KIB, format_cpuset, pages_needed
from virtnet.virt.guest import Guest
from virtnet.virt.host import Host

POSTCOPY_KEY = switch.POSTCOPY_KEY


@dataclass(frozen=True)
class Sides:
    """The guest on the source, and what it becomes on the destination."""

    source: Host
    guest: Guest
    xml: str  # the live XML on the source
    dest: Host
    dest_spec: VMSpec | None  # None for a domain virtnet did not make
    dest_db: Ovsdb | None  # the destination's OVS, when the guest has ports there

    @cached_property
    def domain(self) -> Domain:
        """The live XML, parsed once for every check that reads it."""
        return Domain.parse(self.xml)


def run_checks(sides: Sides) -> list[str]:
    """Every check, in order; return what each verified, for --dry-run."""
    return [
        _running(sides),
        _distinct_hosts(sides),
        _no_clash(sides),
        _cpu_model(sides),
        _hugepages(sides),
        _pinned_cpus(sides),
        *_network(sides),
        _postcopy(sides),
    ]


def _has_vhost_user(sides: Sides) -> bool:
    interfaces = sides.domain.devices.interfaces if sides.domain.devices is not None else []
    return any(interface.type == "vhostuser" for interface in interfaces)


def postcopy_unsafe(sides: Sides) -> str | None:
    """Why post-copy could lose the guest's network, or None when it is safe.

    During post-copy the destination's vhost-user backend reads guest memory that has not arrived
    yet; OVS handles those faults only with other_config:vhost-postcopy-support=true.
    """
    if not _has_vhost_user(sides):
        return None
    spec = sides.dest_spec
    if spec is None or any(not nic.ovs for nic in spec.vhost_user_nics):
        return "a vhost-user NIC has a backend other than virtnet's OVS, which may not handle post-copy"
    if sides.dest_db is None:
        return "the destination's OVS was not consulted"
    value = switch.dpdk_state(sides.dest_db).other_config.get(POSTCOPY_KEY, "false")
    if value != "true":
        return (
            f"the guest has vhost-user NICs and OVS at {sides.dest_db.remote} has "
            f"other_config:{POSTCOPY_KEY}={value}; set it to true there and restart ovs-vswitchd"
        )
    return None


def _postcopy(sides: Sides) -> str:
    """Not a refusal: without post-copy, steering has one rung less (plan.py refuses --postcopy)."""
    why = postcopy_unsafe(sides)
    if why is not None:
        return f"post-copy is not possible: {why}"
    if sides.dest_db is not None and _has_vhost_user(sides):
        return f"OVS at {sides.dest_db.remote} has other_config:{POSTCOPY_KEY}=true: post-copy is safe"
    return "post-copy is safe: no vhost-user NIC"


def _running(sides: Sides) -> str:
    if not sides.guest.is_active:
        raise InvalidDomainState(
            f"domain {sides.guest.name!r} is not running; live migration moves a running guest "
            f"(start it with `virtnet start {sides.guest.name}`)",
            uri=sides.source.uri,
        )
    return f"{sides.guest.name} runs on {sides.source.uri}"


def _distinct_hosts(sides: Sides) -> str:
    source, dest = _host_uuid(sides.source), _host_uuid(sides.dest)
    if source == dest:
        raise InputError(
            f"{sides.dest.uri} is the same host as {sides.source.uri} (host UUID {source}); "
            "give another host's URI"
        )
    return f"{sides.dest.uri} is another host ({dest})"


def _no_clash(sides: Sides) -> str:
    name, uuid = sides.guest.name, sides.guest.uuid
    fix = f"remove it there (virsh -c {sides.dest.uri} undefine {name}) or migrate another guest"
    same_name = sides.dest.find(name)
    if same_name is not None:
        raise DomainExists(
            f"a domain named {name!r} already exists on {sides.dest.uri} (UUID {same_name.uuid}); {fix}",
            uri=sides.dest.uri,
        )
    same_uuid = sides.dest.find_uuid(uuid)
    if same_uuid is not None:
        raise DomainExists(
            f"domain {same_uuid.name!r} on {sides.dest.uri} has this guest's UUID {uuid}; {fix}",
            uri=sides.dest.uri,
        )
    return f"no domain named {name} or with UUID {uuid} on {sides.dest.uri}"


def _cpu_model(sides: Sides) -> str:
    domain = sides.domain
    os = domain.os
    arch = (os.arch if os is not None else None) or "x86_64"
    machine = os.machine if os is not None else None
    cpu: etree._Element | None = None
    if domain.cpu is not None and domain.cpu.mode == "host-passthrough":
        # The guest sees the source's own CPU: the destination must offer all of it.
        host = Capabilities.parse(sides.source.capabilities_xml()).host
        found = host.cpu if host is not None else None
        cpu = found.node if found is not None else None
        what = f"the source host's CPU ({found.model if found is not None else '?'}, host-passthrough)"
    elif domain.cpu is not None and domain.cpu.model is not None:
        cpu = _without(domain.cpu.node, ("numa", "topology", "cache"))
        what = f"CPU model {domain.cpu.model}"
    if cpu is None:
        return "the guest uses the hypervisor's default CPU model: nothing to compare"
    try:
        sides.dest.compare_cpu(
            etree.tostring(cpu, encoding="unicode"),
            virt_type=domain.type or "kvm",
            arch=arch,
            machine=machine,
        )
    except CpuIncompatible as err:
        raise CpuIncompatible(
            f"{sides.dest.uri} cannot provide {what}: {err}; migrate to a host with a compatible CPU "
            "or define the guest with a baseline CPU model",
            uri=sides.dest.uri,
        ) from None
    return f"{sides.dest.uri} provides {what}"


def _hugepages(sides: Sides) -> str:
    page_kib = page_size_kib(sides.domain)
    if page_kib is None:
        return "the guest does not use hugepages"
    needed = pages_needed((sides.domain.memory_kib or 0) * KIB, page_kib * KIB)
    free = sides.dest.free_hugepages(page_kib)
    if free < needed:
        raise HostNotReady(
            f"{sides.dest.uri} has {free} free hugepages of {page_kib} KiB, the guest needs {needed}; "
            f"free some there or add them (virtnet host prepare --hugepages ...) and try again"
        )
    return f"{sides.dest.uri} has {free} free {page_kib} KiB hugepages, the guest needs {needed}"


def _pinned_cpus(sides: Sides) -> str:
    pins = pinned_cpusets(sides.dest_spec) if sides.dest_spec is not None else []
    if not pins:
        return "the guest is not pinned"
    online = sides.dest.online_cpus()
    for path, cpus in pins:
        missing = cpus - online
        if missing:
            raise HostNotReady(
                f"{path}: host CPU {format_cpuset(missing)} is not online on {sides.dest.uri} "
                f"(online: {format_cpuset(online)}); map the pins with --dest-cpus"
            )
    return f"the pinned CPUs are online on {sides.dest.uri}"


def _network(sides: Sides) -> list[str]:
    """The destination's switch and socket directories, as the define there will need them."""
    if sides.dest_spec is None:
        return ["the guest has no ports on OVS", "the guest has no vhost-user sockets"]
    return network.check(sides.dest, sides.dest_spec, sides.dest_db)


def _host_uuid(host: Host) -> str:
    found = Capabilities.read_only(host.capabilities_xml()).host
    return (found.uuid if found is not None else None) or host.uri


def _without(element: etree._Element, tags: tuple[str, ...]) -> etree._Element:
    copy = etree.fromstring(etree.tostring(element))
    for tag in tags:
        for child in copy.findall(tag):
            copy.remove(child)
    return copy
