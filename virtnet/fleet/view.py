"""The fleet view: every host of the hosts file queried at once, each within its own timeout.

Each host is read in a thread of its own (libvirt's and python-ovs's calls block), so the view costs
about as long as its slowest host, not the sum; a host that does not answer in time shows as down
with that reason, and its thread is left behind (daemon) rather than waited for.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from virtnet.errors import VirtnetError
from virtnet.fleet.hostsfile import HostEntry
from virtnet.fleet.remote import remember_tls
from virtnet.units import format_cpuset

if TYPE_CHECKING:  # libvirt, lxml and ovs load in the reading threads, not at import
    from virtnet.ovs.facts import SwitchFacts
    from virtnet.virt.facts import HostFacts

DEFAULT_TIMEOUT_S = 10.0


@dataclass
class HostRow:
    entry: HostEntry
    facts: HostFacts | None = None
    switch: SwitchFacts | None = None
    error: str = ""  # why libvirt could not be read: the host is down
    switch_error: str = ""
    seconds: float = 0.0
    done: bool = field(default=False, repr=False)

    @property
    def reachable(self) -> bool:
        return self.facts is not None

    def free_cpus(self) -> frozenset[int]:
        """Online CPUs no running VM is pinned to and OVS does not reserve."""
        if self.facts is None:
            return frozenset()
        reserved = self.switch.reserved_cpus() if self.switch else frozenset()
        return self.facts.online_cpus - self.facts.pinned_cpus() - reserved

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.entry.name,
            "uri": self.entry.uri,
            "ovsdb": self.entry.ovsdb,
            "labels": dict(self.entry.labels),
            "reachable": self.reachable,
            "error": self.error or None,
            "seconds": round(self.seconds, 3),
        }
        if self.facts is not None:
            facts = self.facts
            data.update(
                libvirt_version=facts.libvirt_version,
                qemu_version=facts.qemu_version,
                cpus_online=format_cpuset(facts.online_cpus),
                cpus_pinned=format_cpuset(facts.pinned_cpus()) or None,
                cells={str(c): format_cpuset(cpus) for c, cpus in sorted(facts.cell_cpus.items())},
                free_hugepages={
                    str(cell): {f"{kib}KiB": n for kib, n in sorted(sizes.items())}
                    for cell, sizes in sorted(facts.free_pages.items())
                },
                running=facts.running,
                defined=facts.defined,
                pins={d.name: format_cpuset(d.cpus) for d in facts.pinned},
            )
        if self.switch is not None:
            sw = self.switch
            data["switch"] = {
                "ovs_version": sw.ovs_version,
                "dpdk_version": sw.dpdk_version,
                "dpdk_initialized": sw.dpdk_initialized,
                "pmd_cpus": format_cpuset(sw.pmd_cpus) or None,
                "lcore_cpus": format_cpuset(sw.lcore_cpus) or None,
                "bridges": sw.bridges,
            }
        data["switch_error"] = self.switch_error or None
        return data


def gather(entries: list[HostEntry], *, timeout_s: float = DEFAULT_TIMEOUT_S) -> list[HostRow]:
    """Read every host concurrently; rows in the file's order, each complete or saying why not."""
    for entry in entries:
        remember_tls(entry)
    rows = [HostRow(entry) for entry in entries]
    threads = [threading.Thread(target=_read, args=(row, timeout_s), daemon=True) for row in rows]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout_s
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    for row in rows:
        if not row.done:
            # The thread may still fill the row in; the caller gets a copy that says it timed out.
            rows[rows.index(row)] = HostRow(
                row.entry, error=f"no answer within {timeout_s:g} s", seconds=timeout_s
            )
    return rows


def _read(row: HostRow, timeout_s: float) -> None:
    from virtnet.ovs.facts import switch_facts
    from virtnet.virt.facts import host_facts
    from virtnet.virt.host import Host

    start = time.monotonic()
    try:
        with Host.open(row.entry.uri, fix="check that libvirtd runs there and the hosts file's uri") as host:
            row.facts = host_facts(host)
    except VirtnetError as err:
        row.error = str(err)
    try:
        row.switch = switch_facts(row.entry.ovsdb, timeout_s)
    except VirtnetError as err:
        row.switch_error = str(err)
    row.seconds = time.monotonic() - start
    row.done = True
