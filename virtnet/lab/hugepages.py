"""The machine-wide 2 MiB hugepage pool: the lab adds pages on `up` and gives them back on `down`."""

from __future__ import annotations

import re
from pathlib import Path

from virtnet.errors import LabError

NR_HUGEPAGES = Path("/proc/sys/vm/nr_hugepages")
MEMINFO = Path("/proc/meminfo")
PAGE_MIB = 2


def meminfo() -> dict[str, int]:
    """HugePages_Total/Free/Rsvd/Surp from /proc/meminfo."""
    values = {}
    for line in MEMINFO.read_text().splitlines():
        match = re.match(r"(HugePages_\w+):\s+(\d+)", line)
        if match:
            values[match.group(1)] = int(match.group(2))
    return values


def reserve(pages: int) -> int:
    """Add `pages` 2 MiB pages to the pool; return how many were added. All or nothing."""
    before = int(NR_HUGEPAGES.read_text())
    NR_HUGEPAGES.write_text(str(before + pages))
    added = int(NR_HUGEPAGES.read_text()) - before
    if added < pages:
        NR_HUGEPAGES.write_text(str(before))  # the kernel found too little contiguous memory
        raise LabError(
            f"could reserve only {added} of {pages} hugepages of {PAGE_MIB} MiB; "
            "free memory, or ask for fewer with --hugepages-mib"
        )
    return added


def release(pages: int) -> None:
    """Give back up to `pages` pages; pages still in use stay until their user lets go."""
    current = int(NR_HUGEPAGES.read_text())
    NR_HUGEPAGES.write_text(str(max(0, current - pages)))
