"""What this machine's /proc, /sys and /dev say, read under a root directory so tests can fake it."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from virtnet.units import KIB, parse_cpuset


@dataclass(frozen=True)
class HugepagePool:
    page_size: int  # bytes
    total: int
    free: int
    reserved: int  # promised to a mapping, not yet faulted in (2M pool only, from /proc/meminfo)

    @property
    def available(self) -> int:
        return self.free - self.reserved


@dataclass(frozen=True)
class Mount:
    source: str
    target: str
    fstype: str
    options: dict[str, str]


@dataclass(frozen=True)
class DeviceNode:
    uid: int
    gid: int
    mode: int


class Machine:
    def __init__(self, root: Path = Path("/"), *, mounts_of: int | None = None) -> None:
        """`mounts_of`: read the mount table as that process sees it (libvirtd's namespace)."""
        self.root = root
        self.mounts_of = mounts_of

    def path(self, absolute: str) -> Path:
        return self.root / absolute.lstrip("/")

    def read(self, absolute: str) -> str | None:
        try:
            return self.path(absolute).read_text()
        except OSError:
            return None

    def default_hugepage_size(self) -> int:
        match = re.search(r"^Hugepagesize:\s+(\d+) kB", self.read("/proc/meminfo") or "", re.M)
        return int(match.group(1)) * KIB if match else 2048 * KIB

    def hugepage_pools(self) -> list[HugepagePool]:
        """One pool per page size the kernel offers, smallest first."""
        pools = []
        base = self.path("/sys/kernel/mm/hugepages")
        for directory in sorted(base.glob("hugepages-*kB"), key=lambda d: int(d.name[10:-2])):
            size = int(directory.name[10:-2]) * KIB
            reserved = self._meminfo("HugePages_Rsvd") if size == self.default_hugepage_size() else 0
            pools.append(
                HugepagePool(
                    page_size=size,
                    total=_int(directory / "nr_hugepages"),
                    free=_int(directory / "free_hugepages"),
                    reserved=reserved,
                )
            )
        return pools

    def pool(self, page_size: int) -> HugepagePool | None:
        return next((p for p in self.hugepage_pools() if p.page_size == page_size), None)

    def hugepage_count_file(self, page_size: int) -> Path:
        return self.path(f"/sys/kernel/mm/hugepages/hugepages-{page_size // KIB}kB/nr_hugepages")

    def mounts(self) -> list[Mount]:
        mounts = []
        table = f"/proc/{self.mounts_of}/mounts" if self.mounts_of else "/proc/mounts"
        for line in (self.read(table) or "").splitlines():
            parts = line.split()
            if len(parts) < 4:
                continue
            options = dict(opt.partition("=")[::2] for opt in parts[3].split(","))
            mounts.append(Mount(parts[0], parts[1], parts[2], options))
        return mounts

    def hugetlbfs_mounts(self, page_size: int) -> list[Mount]:
        """hugetlbfs mounts serving this page size (no pagesize= option means the default size)."""
        found = []
        for mount in self.mounts():
            if mount.fstype != "hugetlbfs":
                continue
            size = mount.options.get("pagesize")
            mount_size = _size_option(size) if size else self.default_hugepage_size()
            if mount_size == page_size:
                found.append(mount)
        return found

    def cmdline(self) -> list[str]:
        return (self.read("/proc/cmdline") or "").split()

    def iommu_groups(self) -> list[str]:
        return sorted(p.name for p in self.path("/sys/class/iommu").glob("*"))

    def module_loaded(self, name: str) -> bool:
        return self.path(f"/sys/module/{name}").is_dir()

    def online_cpus(self) -> frozenset[int]:
        text = (self.read("/sys/devices/system/cpu/online") or "").strip()
        return parse_cpuset(text) if text else frozenset(range(os.cpu_count() or 1))

    def device(self, absolute: str) -> DeviceNode | None:
        try:
            info = self.path(absolute).stat()
        except OSError:
            return None
        return DeviceNode(info.st_uid, info.st_gid, info.st_mode & 0o777)

    def _meminfo(self, key: str) -> int:
        match = re.search(rf"^{key}:\s+(\d+)", self.read("/proc/meminfo") or "", re.M)
        return int(match.group(1)) if match else 0


def can_open_rw(node: DeviceNode, uid: int, gids: set[int]) -> bool:
    """Unix permission check for read+write, as the kernel would make it for that user."""
    if uid == 0:
        return True
    if node.uid == uid:
        return node.mode & 0o600 == 0o600
    if node.gid in gids:
        return node.mode & 0o060 == 0o060
    return node.mode & 0o006 == 0o006


def _int(path: Path) -> int:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return 0


def _size_option(text: str) -> int:
    """hugetlbfs pagesize option: '2M', '1G', '2048k'."""
    units = {"k": KIB, "m": 1024 * KIB, "g": 1024 * 1024 * KIB}
    match = re.fullmatch(r"(\d+)([kKmMgG]?)", text)
    if not match:
        return 0
    return int(match.group(1)) * units.get(match.group(2).lower(), 1)
