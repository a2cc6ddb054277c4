"""What one libvirt host offers, in a handful of calls whatever its number of domains.

The fleet view and placement read: versions, online CPUs by NUMA cell, free hugepages per page size
per cell (one getFreePages for all cells and sizes), domains running and defined (one
listAllDomains), and the host CPUs running domains are pinned to. libvirt has no bulk call for pins,
so those cost one XMLDesc per *running* domain; everything else is a fixed number of round trips.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import libvirt
from lxml import etree

from virtnet.domxml.domain import Domain
from virtnet.units import parse_cpuset
from virtnet.virt.errors import libvirt_errors
from virtnet.virt.host import Host, _version_triple


@dataclass
class PinnedDomain:
    name: str
    cpus: frozenset[int]


@dataclass
class HostFacts:
    uri: str
    libvirt_version: str
    qemu_version: str
    online_cpus: frozenset[int]
    # NUMA cell -> its host CPUs; cell -> page size (KiB) -> free pages
    cell_cpus: dict[int, frozenset[int]]
    free_pages: dict[int, dict[int, int]]
    running: list[str] = field(default_factory=list)
    defined: list[str] = field(default_factory=list)
    pinned: list[PinnedDomain] = field(default_factory=list)

    def pinned_cpus(self) -> frozenset[int]:
        return frozenset().union(*(d.cpus for d in self.pinned))

    def cell_of(self, cpu: int) -> int | None:
        for cell, cpus in self.cell_cpus.items():
            if cpu in cpus:
                return cell
        return None


def host_facts(host: Host) -> HostFacts:
    """Read the host's facts: 8 round trips plus one per running domain."""
    conn = host.conn
    with libvirt_errors(host.uri):
        caps = etree.fromstring(conn.getCapabilities().encode())
        _count, online, _n = conn.getCPUMap(0)
        cell_cpus, page_sizes = _topology(caps)
        cells = sorted(cell_cpus) or [0]
        free = conn.getFreePages(page_sizes, cells[0], len(cells), 0) if page_sizes else {}
        # Filtered lists, not isActive()/isPersistent() per domain: one round trip each.
        running = conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE)
        persistent = conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_PERSISTENT)
        facts = HostFacts(
            uri=host.uri,
            libvirt_version=".".join(map(str, _version_triple(conn.getLibVersion()))),
            qemu_version=".".join(map(str, _version_triple(conn.getVersion()))),
            online_cpus=frozenset(cpu for cpu, up in enumerate(online) if up),
            cell_cpus=cell_cpus,
            free_pages={
                int(cell): {int(k): int(v) for k, v in sizes.items()} for cell, sizes in free.items()
            },
            running=sorted(d.name() for d in running),
            defined=sorted(d.name() for d in persistent),
        )
        for dom in running:
            cpus = domain_pins(Domain.parse(dom.XMLDesc(0)))
            if cpus:
                facts.pinned.append(PinnedDomain(dom.name(), cpus))
    return facts


def _topology(caps: etree._Element) -> tuple[dict[int, frozenset[int]], list[int]]:
    """NUMA cells with their CPUs, and the page sizes (KiB) the host offers besides 4 KiB."""
    cell_cpus = {
        int(cell.get("id", "0")): frozenset(int(cpu.get("id", "0")) for cpu in cell.iterfind("cpus/cpu"))
        for cell in caps.iterfind("host/topology/cells/cell")
    }
    sizes = sorted({int(page.get("size", "0")) for page in caps.iterfind("host/cpu/pages")} - {4, 0})
    return cell_cpus, sizes


def domain_pins(domain: Domain) -> frozenset[int]:
    """Host CPUs the domain's vCPUs, emulator and I/O threads are pinned to (its <cputune>)."""
    cpus: set[int] = set()
    tune = domain.cputune
    if tune is not None:
        pins = [*tune.vcpupins, *tune.iothreadpins, *([tune.emulatorpin] if tune.emulatorpin else [])]
        for pin in pins:
            cpus |= parse_cpuset(pin.cpuset or "")
    if domain.vcpu_cpuset and not cpus:
        cpus |= parse_cpuset(domain.vcpu_cpuset)
    return frozenset(cpus)
