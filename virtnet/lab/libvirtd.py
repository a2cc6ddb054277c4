"""virtlogd + libvirtd for one lab host, inside its namespace, listening on its own loopback address.

With TLS (the default) only clients with a certificate of the lab's CA get in. LAB ONLY with
`lab up --tcp`: libvirtd listens on TCP without authentication. The address is on loopback, so only
this machine can reach it, but every local user can: never run that on a shared machine.
"""

from __future__ import annotations

import shutil
import time
import uuid
from pathlib import Path

from virtnet.errors import ConnectionFailed, LabError, VirtnetError
from virtnet.lab.namespace import PRIVATE_DIRS, nsenter, path_inside
from virtnet.lab.pki import HostFiles
from virtnet.lab.process import alive, cmdline, read_pid, run, stop_pid, wait_for_pidfile
from virtnet.virt.host import Host

SYSTEM_CONFIG = Path("/etc/libvirt")


def socket_dir(host_dir: Path) -> Path:
    """Where the host's libvirtd puts libvirt-sock, libvirt-sock-ro and libvirt-admin-sock."""
    return host_dir / "sock"


def prepare(
    host_dir: Path,
    address: str,
    migration_ports: tuple[int, int],
    capcache: Path,
    *,
    tls: HostFiles | None = None,
) -> None:
    """Write the host's private /etc/libvirt copy and make its state directories.

    With `tls`, libvirtd listens for TLS only (clients must show a certificate of the lab's CA) and
    QEMU encrypts migration streams with the same files; without, plain TCP with no authentication.
    """
    for sub in PRIVATE_DIRS.values():
        (host_dir / sub).mkdir(parents=True, exist_ok=True)
    socket_dir(host_dir).mkdir(mode=0o700, exist_ok=True)
    etc = host_dir / "etc"
    shutil.rmtree(etc)
    shutil.copytree(SYSTEM_CONFIG, etc, symlinks=True)
    for autostart in (etc / "qemu" / "networks" / "autostart").glob("*"):
        autostart.unlink()  # no 'default' network: it would want a bridge and dnsmasq
    with (etc / "libvirtd.conf").open("a") as conf:
        if tls is None:
            conf.write(
                "\n# ---- virtnet lab (LAB ONLY: unauthenticated TCP on loopback) ----\n"
                'listen_tls = 0\nlisten_tcp = 1\nauth_tcp = "none"\n'
            )
        else:
            conf.write(
                "\n# ---- virtnet lab: TLS with the lab's CA; the client certificate is the credential ----\n"
                "listen_tls = 1\nlisten_tcp = 0\n"
                f'key_file = "{tls.key}"\ncert_file = "{tls.cert}"\nca_file = "{tls.ca}"\n'
            )
        conf.write(
            f'listen_addr = "{address}"\n'
            # The unix socket outside the namespace's private /run/libvirt: local clients (virt-manager
            # shows a loopback console only over a URI without transport) can reach it by path.
            f'unix_sock_dir = "{socket_dir(host_dir)}"\n'
            f'host_uuid = "{uuid.uuid4()}"\n'
            f'log_outputs = "3:file:{host_dir / "libvirtd.log"}"\n'
        )
    with (etc / "qemu.conf").open("a") as conf:
        conf.write(
            "\n# ---- virtnet lab ----\n"
            # root QEMU: no ownership juggling, and the capability cache stays valid (host.md:
            # with a 0600 /dev/kvm the qemu user's check differs from the probe's, and every call
            # re-probes QEMU for 30-45 s).
            'user = "root"\ngroup = "root"\ndynamic_ownership = 0\nremember_owner = 0\n'
            'security_driver = "none"\n'
            "cgroup_controllers = [ ]\n"  # two hosts' cgroup names would clash
            f'migration_address = "{address}"\nmigration_host = "{address}"\n'
            f"migration_port_min = {migration_ports[0]}\nmigration_port_max = {migration_ports[1]}\n"
        )
        if tls is not None:
            # VIR_MIGRATE_TLS: QEMU's migration stream over TLS, checked against the lab's CA.
            conf.write(f'migrate_tls_x509_cert_dir = "{tls.qemu}"\nmigrate_tls_x509_verify = 1\n')
    if capcache.is_dir():
        target = host_dir / "cache" / "qemu" / "capabilities"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(capcache, target)  # a warm cache saves QEMU's ~4 s probe


def start(host_dir: Path, holder_pid: int, uri: str, *, timeout: float = 60.0) -> tuple[int, int]:
    """Start virtlogd and libvirtd in the namespace; return their PIDs once libvirtd answers."""
    enter = nsenter(holder_pid)
    run([*enter, "virtlogd", "-d", "-p", str(host_dir / "virtlogd.pid")])
    virtlogd = wait_for_pidfile(host_dir / "virtlogd.pid")
    run([*enter, "libvirtd", "-d", "--listen", "-p", str(host_dir / "libvirtd.pid")])
    libvirtd = wait_for_pidfile(host_dir / "libvirtd.pid")
    wait_until_answering(uri, libvirtd, host_dir, timeout)
    return virtlogd, libvirtd


def stop(host_dir: Path, holder_pid: int | None, uri: str, capcache: Path) -> None:
    """Destroy the host's domains, stop its QEMUs, libvirtd and virtlogd: by PID only."""
    libvirtd = read_pid(host_dir / "libvirtd.pid")
    if alive(libvirtd):
        _destroy_domains(uri)
    if holder_pid and alive(holder_pid):
        for pid in _qemu_pids(holder_pid):
            stop_pid(pid, timeout=5)
    warm = host_dir / "cache" / "qemu" / "capabilities"
    if warm.is_dir() and any(warm.iterdir()) and not capcache.exists():
        shutil.copytree(warm, capcache)
    stop_pid(libvirtd)
    stop_pid(read_pid(host_dir / "virtlogd.pid"))


def wait_until_answering(uri: str, pid: int, host_dir: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            raise LabError(f"libvirtd for {uri} exited; see {host_dir / 'libvirtd.log'}")
        try:
            Host.open(uri).close()
            return
        except ConnectionFailed:
            time.sleep(0.1)
    raise LabError(f"libvirtd for {uri} did not answer within {timeout:g} s; see {host_dir / 'libvirtd.log'}")


def _destroy_domains(uri: str) -> None:
    try:
        host = Host.open(uri)
    except ConnectionFailed:
        return
    with host:
        for guest in host.guests():
            try:
                if guest.is_active:
                    guest.destroy()
                if guest.is_persistent:
                    guest.undefine()
            except VirtnetError:
                pass  # best effort: its QEMU is killed by PID next


def _qemu_pids(holder_pid: int) -> list[int]:
    """QEMU processes of this host, from its /run/libvirt/qemu/*.pid (works with libvirtd down)."""
    pids = []
    for pidfile in path_inside(holder_pid, "/run/libvirt/qemu").glob("*.pid"):
        if pidfile.name == "driver.pid":
            continue  # libvirtd's own PID, not a QEMU
        pid = read_pid(pidfile)
        if pid and alive(pid) and any("qemu-system" in arg for arg in cmdline(pid)[:1]):
            pids.append(pid)
    return pids
