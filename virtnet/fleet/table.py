"""The fleet view as text: one line per host, then one indented line per problem."""

from __future__ import annotations

from virtnet.fleet.view import HostRow
from virtnet.units import KIB, format_cpuset, format_size

HEADER = (
    "HOST",
    "STATE",
    "LIBVIRT",
    "QEMU",
    "OVS",
    "DPDK",
    "CPUS",
    "PINNED",
    "PMD/LCORE",
    "FREE HUGEPAGES",
    "VMS",
)


def hosts_table(rows: list[HostRow]) -> str:
    lines = [HEADER, *(_cells(row) for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADER))]
    out = []
    for line in lines:
        out.append("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())
    for row in rows:
        if row.error:
            out.append(f"{row.entry.name}: down: {row.error}")
        if row.switch_error:
            out.append(f"{row.entry.name}: switch: {row.switch_error}")
    return "\n".join(out) + "\n"


def _cells(row: HostRow) -> tuple[str, ...]:
    facts, switch = row.facts, row.switch
    if facts is None:
        return (row.entry.name, "down", *("-" for _ in HEADER[2:]))
    if switch is None:
        ovs = dpdk = reserved = "?"
    else:
        ovs = switch.ovs_version
        dpdk = switch.dpdk_version.removeprefix("DPDK ") + ("" if switch.dpdk_initialized else " (off)")
        reserved = f"{format_cpuset(switch.pmd_cpus) or '-'}/{format_cpuset(switch.lcore_cpus) or '-'}"
    pages = " ".join(
        f"n{cell}:{format_size(kib * KIB)}={count}"
        for cell, sizes in sorted(facts.free_pages.items())
        for kib, count in sorted(sizes.items())
    )
    return (
        row.entry.name,
        "up",
        facts.libvirt_version,
        facts.qemu_version,
        ovs,
        dpdk,
        format_cpuset(facts.online_cpus),
        format_cpuset(facts.pinned_cpus()) or "-",
        reserved,
        pages or "-",
        f"{len(facts.running)}/{len(facts.defined)}",
    )
