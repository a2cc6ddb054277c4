"""What a VM spec needs from this machine: free hugepages of its page size, and its pinned CPUs.

`virtnet host check --spec` reports these; `define` and `start` refuse with the same words.
"""

from __future__ import annotations

from virtnet.errors import HostNotReady
from virtnet.hostcheck.finding import Finding
from virtnet.hostcheck.machine import Machine
from virtnet.spec.derived import pinned_cpusets
from virtnet.spec.models import VMSpec
from virtnet.units import format_cpuset, format_size, pages_needed


def resource_findings(machine: Machine, spec: VMSpec) -> list[Finding]:
    return [*_hugepages(machine, spec), *_cpus(machine, spec)]


def require_resources(machine: Machine, spec: VMSpec) -> None:
    """Raise HostNotReady with the first failing finding."""
    for finding in resource_findings(machine, spec):
        if finding.status == "fail":
            raise HostNotReady(finding.message())


def _hugepages(machine: Machine, spec: VMSpec) -> list[Finding]:
    pages = spec.memory.hugepages
    if pages is None:
        return []
    size = format_size(pages.page_size)
    needed = pages_needed(spec.memory.size, pages.page_size)
    pool = machine.pool(pages.page_size)
    if pool is None:
        return [
            Finding(
                "spec hugepages",
                "fail",
                f"this kernel has no {size} hugepages",
                f"boot with hugepagesz={size[:-2]} or use page_size = '2MiB'",
            )
        ]
    if pool.available < needed:
        target = pool.total + needed - pool.available
        return [
            Finding(
                "spec hugepages",
                "fail",
                f"{spec.name} needs {needed} free {size} hugepages ({format_size(spec.memory.size)}), "
                f"but only {pool.available} of {pool.total} are free",
                f"virtnet host prepare --hugepages {format_size(target * pages.page_size)} "
                f"--page-size {size}",
            )
        ]
    # Where hugetlbfs is mounted is libvirtd's own view (its mount namespace); `host check` reports
    # this machine's mounts, and libvirt itself names a missing one at start.
    return [Finding("spec hugepages", "ok", f"{needed} of {pool.available} free {size} hugepages")]


def _cpus(machine: Machine, spec: VMSpec) -> list[Finding]:
    pins = pinned_cpusets(spec)
    if not pins:
        return []
    online = machine.online_cpus()
    for path, cpus in pins:
        missing = cpus - online
        if missing:
            return [
                Finding(
                    "spec cpus",
                    "fail",
                    f"{path}: host CPU {format_cpuset(missing)} does not exist here "
                    f"(online: {format_cpuset(online)})",
                    f"pin to CPUs in {format_cpuset(online)}",
                )
            ]
    return [Finding("spec cpus", "ok", f"pinned CPUs are online ({format_cpuset(online)})")]
