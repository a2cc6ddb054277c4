"""A lab host's private mount + UTS namespace, held open by one sleeping process.

The holder owns the namespace; daemons join it with nsenter. Inside, the host has its own
/etc/libvirt (a copy), /run/libvirt, /var/lib/libvirt, /var/cache/libvirt, /var/log/libvirt, its own
hugetlbfs on /dev/hugepages and its own hostname. When the holder and everything that joined it
exit, the mounts vanish with the namespace.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from virtnet.errors import LabError
from virtnet.lab.process import alive, run, stop_pid

PRIVATE_DIRS = {  # mount point in the namespace -> directory under the host's lab dir
    "/etc/libvirt": "etc",
    "/var/lib/libvirt": "lib",
    "/var/cache/libvirt": "cache",
    "/var/log/libvirt": "log",
}


def create(host_dir: Path, hostname: str) -> int:
    """Start the holder and set up its mounts; return its PID."""
    for mount_point in (*PRIVATE_DIRS, "/run/libvirt", "/dev/hugepages"):
        os.makedirs(mount_point, exist_ok=True)  # empty directories, used only as mount points
    holder = subprocess.Popen(
        ["unshare", "--mount", "--uts", "--propagation", "private", "--", "sleep", "infinity"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # not in the caller's process group: Ctrl-C must not kill the lab
    )
    pid = holder.pid
    try:
        _wait_until_unshared(pid)
        enter = nsenter(pid)
        run([*enter, "mount", "-t", "tmpfs", "-o", "mode=0755", "virtnet-lab-run", "/run/libvirt"])
        for target, sub in PRIVATE_DIRS.items():
            run([*enter, "mount", "--bind", str(host_dir / sub), target])
        run([*enter, "mount", "-t", "hugetlbfs", "-o", "pagesize=2M", "virtnet-lab-huge", "/dev/hugepages"])
        run([*enter, "hostname", hostname])
    except BaseException:
        stop_pid(pid)
        raise
    return pid


def nsenter(holder_pid: int) -> list[str]:
    """The command prefix that runs a program inside the holder's namespaces."""
    return ["nsenter", "-t", str(holder_pid), "-m", "-u", "--"]


def path_inside(holder_pid: int, path: str) -> Path:
    """A path as the namespace sees it, readable from outside through /proc/PID/root."""
    return Path(f"/proc/{holder_pid}/root") / path.lstrip("/")


def _wait_until_unshared(pid: int) -> None:
    """unshare execs sleep once the namespaces exist: wait until the holder is in its own one."""
    own = os.readlink("/proc/self/ns/mnt")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if not alive(pid):
            raise LabError("unshare exited at once; are mount namespaces allowed here?")
        try:
            theirs = os.readlink(f"/proc/{pid}/ns/mnt")
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            theirs, comm = own, ""
        if comm == "sleep" and theirs != own:
            return
        time.sleep(0.01)
    raise LabError("the namespace holder did not start within 5 s")
