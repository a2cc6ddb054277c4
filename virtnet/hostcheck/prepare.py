"""`virtnet host prepare`: the walkthrough's hugepage set-up, idempotent, all or nothing."""

from __future__ import annotations

import subprocess

from virtnet.errors import HostNotReady, InputError
from virtnet.hostcheck.machine import Machine
from virtnet.units import format_size

SYSCTL_FILE = "/etc/sysctl.d/80-virtnet-hugepages.conf"


def prepare_hugepages(
    machine: Machine, size_bytes: int, page_size: int, *, persist: bool = False, mount: bool = True
) -> list[str]:
    """Make the pool of `page_size` pages hold exactly `size_bytes` and mount hugetlbfs for it.

    Returns what changed (empty when nothing had to). When the kernel cannot find the memory, the
    pool is put back as it was and HostNotReady says so.
    """
    size = format_size(page_size)
    if size_bytes % page_size:
        raise InputError(f"--hugepages {format_size(size_bytes)} is not a multiple of {size} pages")
    pool = machine.pool(page_size)
    if pool is None:
        raise HostNotReady(
            f"this kernel offers no {size} hugepages; boot it with hugepagesz={size[:-2]}, "
            "or use --page-size 2MiB"
        )
    target = size_bytes // page_size
    changes = []
    if pool.total != target:
        _set_pool(machine, page_size, pool.total, target)
        changes.append(f"{size} hugepages: {pool.total} -> {target} ({format_size(size_bytes)})")
    if mount and target and not machine.hugetlbfs_mounts(page_size):
        try:
            changes.append(_mount(machine, page_size))
        except HostNotReady:
            if pool.total != target:
                _set_pool(machine, page_size, target, pool.total)  # all or nothing
            raise
    if persist:
        changes += _persist(machine, page_size, target)
    return changes


def mount_point(machine: Machine, page_size: int) -> str:
    """Where libvirt and DPDK look first: /dev/hugepages for the default size."""
    if page_size == machine.default_hugepage_size():
        return "/dev/hugepages"
    return f"/dev/hugepages{format_size(page_size).removesuffix('iB')}"


def _set_pool(machine: Machine, page_size: int, before: int, target: int) -> None:
    path = machine.hugepage_count_file(page_size)
    path.write_text(f"{target}\n")
    got = int(path.read_text().strip())
    if got == target:
        return
    path.write_text(f"{before}\n")
    size = format_size(page_size)
    if got < target:
        raise HostNotReady(
            f"the kernel found memory for only {got} of {target} {size} hugepages; nothing was changed: "
            "free memory or ask for fewer (or reserve them at boot with hugepages= on the kernel "
            "command line)"
        )
    raise HostNotReady(f"{got} {size} hugepages are in use; cannot shrink the pool to {target}")


def _mount(machine: Machine, page_size: int) -> str:
    target = mount_point(machine, page_size)
    path = machine.path(target)
    path.mkdir(parents=True, exist_ok=True)
    option = f"pagesize={format_size(page_size).removesuffix('iB')}"
    done = subprocess.run(
        ["mount", "-t", "hugetlbfs", "-o", option, "hugetlbfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise HostNotReady(f"mount -t hugetlbfs on {target} failed: {done.stderr.strip()}")
    return f"mounted hugetlbfs ({option}) on {target}"


def _persist(machine: Machine, page_size: int, target: int) -> list[str]:
    changes = []
    if page_size == machine.default_hugepage_size():
        sysctl = machine.path(SYSCTL_FILE)
        line = f"vm.nr_hugepages = {target}\n"
        if not sysctl.exists() or sysctl.read_text() != line:
            sysctl.parent.mkdir(parents=True, exist_ok=True)
            sysctl.write_text(line)
            changes.append(f"wrote {SYSCTL_FILE}: {line.strip()}")
    else:
        changes.append(
            f"note: {format_size(page_size)} pages are reserved reliably only at boot: add "
            f"'hugepagesz={format_size(page_size).removesuffix('iB')} hugepages={target}' "
            "to the kernel command line"
        )
    fstab = machine.path("/etc/fstab")
    target_dir = mount_point(machine, page_size)
    existing = fstab.read_text() if fstab.exists() else ""
    if not any(line.split()[1:2] == [target_dir] for line in existing.splitlines() if line.strip()):
        option = f"pagesize={format_size(page_size).removesuffix('iB')}"
        entry = f"hugetlbfs {target_dir} hugetlbfs {option} 0 0\n"
        fstab.parent.mkdir(parents=True, exist_ok=True)
        fstab.write_text(existing + ("" if existing.endswith("\n") or not existing else "\n") + entry)
        changes.append(f"added to /etc/fstab: {entry.strip()}")
    return changes
