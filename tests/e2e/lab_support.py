"""Helpers for the end-to-end tests: drive a lab host with virsh, ovs-vsctl and virtnet."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import tomli_w

from virtnet.lab import lan, libvirtd, perf_guest
from virtnet.lab.debian_image import DebianImage
from virtnet.lab.guest_image import guest_cmdline
from virtnet.lab.hugepages import meminfo
from virtnet.lab.lab import Lab, LabHost
from virtnet.lab.namespace import nsenter
from virtnet.lab.process import read_pid, run, stop_pid, wait_for_pidfile

INTERRUPTED_WAIT_S = 120  # a virtnet given Ctrl-C after its timeout: time to abort and clean up


class LabClient:
    """Drives one lab host with the real command-line tools."""

    def __init__(self, lab: Lab, host: LabHost, workdir: Path) -> None:
        self.lab = lab
        self.host = host
        self.workdir = workdir

    def virtnet(
        self, *args: str, check: bool = True, timeout: float = 180
    ) -> subprocess.CompletedProcess[str]:
        return _run(
            [sys.executable, "-m", "virtnet", "-c", self.host.uri, "--ovsdb", self.host.ovsdb, *args],
            check=check,
            timeout=timeout,
        )

    def virsh(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return _run(["virsh", "-q", "-c", self.host.uri, *args], check=check)

    def vsctl(self, *args: str) -> str:
        return _run(
            ["ovs-vsctl", f"--db={self.host.ovsdb}", "--timeout=20", *args], check=True
        ).stdout.strip()

    def vm_ports(self) -> list[str]:
        """The ports on br0 but the lab's own (lan0, the LAN's wire), as ovs-vsctl lists them."""
        return [p for p in self.vsctl("list-ports", "br0").split() if p != lan.HOST_PORT]

    def console_log(self, name: str) -> Path:
        return self.workdir / f"{name}.console.log"

    def socket(self, name: str) -> Path:
        return self.host.vhost_dir / f"{name}.sock"

    def spec(
        self,
        name: str,
        *,
        ips: tuple[str, ...] = (),
        ping: str | None = None,
        vcpus: int = 1,
        queues: int = 1,
        pin: dict[str, str] | None = None,
        emulator: str | None = None,
        memory: str = "256MiB",
        bridge: str = "br0",
        dirty_mib: int = 0,
        dirty_wait: bool = False,
        disk: tuple[str, str] | None = None,
        vhost_user: bool = True,
        hugepages: bool | None = None,
        gui: bool = False,
        title: str | None = None,
    ) -> Path:
        """A spec file for a test guest on this host, in the walkthrough's vhost-user shape.

        `vhost_user=False` leaves out the NIC and (unless `hugepages`) its shared hugepage memory.
        `dirty_mib` makes the guest rewrite that much memory in a loop (`dirty_wait`: once
        `type_on_console(name, "VIRTNET-GO")`). `disk` (path, backing image) gives it a qcow2
        overlay it writes and reads back, checking checksums (VIRTNET-DISK-OK n=N). `gui` gives the guest
        a VGA display with a VNC server, and its init writes its lines on the VGA console too.
        """
        spec: dict[str, Any] = {
            "name": name,
            "cpu": {"count": vcpus, "sockets": 1, "cores": vcpus, "threads": 1},
            "memory": {"size": memory},
            "boot": {
                "kernel": str(self.lab.guest_dir / "vmlinuz"),
                "initrd": str(self.lab.guest_dir / "initrd.gz"),
                "cmdline": guest_cmdline(
                    ips=ips,
                    ping=ping,
                    dirty_mib=dirty_mib,
                    dirty_wait=dirty_wait,
                    disk=disk is not None,
                    vga=gui,
                ),
            },
            "console": {"type": "pty", "log": str(self.console_log(name))},
        }
        if vhost_user if hugepages is None else hugepages:
            spec["memory"].update(access="shared", allocation="immediate", hugepages={"page_size": "2MiB"})
        if vhost_user:
            nic = {"type": "vhostuser", "socket": str(self.socket(name)), "queues": queues}
            spec["nics"] = [{**nic, "port": f"{name}-p0", "bridge": bridge}]
        if disk is not None:
            spec["disks"] = [{"path": disk[0], "backing": disk[1]}]
        if gui:
            spec.update(video="vga", graphics={"type": "vnc"})
        if title:
            spec["title"] = title
        if pin or emulator:
            spec["cpu"]["pinning"] = {"vcpus": pin or {}, **({"emulator": emulator} if emulator else {})}
        path = self.workdir / f"{name}.toml"
        path.write_text(tomli_w.dumps(spec))
        return path

    def debian_spec(
        self,
        name: str,
        image: DebianImage,
        *,
        key: str,
        hostname: str,
        ssh_port: int | None = None,
        address: str | None = None,
        queues: int = 2,
        memory: str = "1GiB",
    ) -> Path:
        """A provisioned Debian guest: an overlay over the lab's base image, direct kernel boot,
        user 'tester' with `key`, and a user NIC forwarding 127.0.0.1:ssh_port to port 22 and/or a
        vhost-user NIC on br0 with a static `address`."""
        cmdline = image.cmdline
        nics: list[dict[str, Any]] = []
        if ssh_port is not None:
            nics.append({"type": "user", "forwards": [{"host_port": ssh_port, "guest_port": 22}]})
        memory_spec: dict[str, Any] = {"size": memory}
        if address is not None:
            nic = {"type": "vhostuser", "socket": str(self.socket(name)), "queues": queues}
            nics.append({**nic, "port": f"{name}-p0", "bridge": "br0", "address": address})
            memory_spec.update(access="shared", allocation="immediate", hugepages={"page_size": "2MiB"})
            cmdline += " pci=nomsi"  # QEMU 7.2 under TCG crashes on vhost-user with MSI-X (host.md)
        spec: dict[str, Any] = {
            "name": name,
            "cpu": {"count": 1},
            "memory": memory_spec,
            "boot": {"kernel": str(image.kernel), "initrd": str(image.initrd), "cmdline": cmdline},
            "disks": [{"path": str(self.workdir / f"{name}.qcow2"), "backing": str(image.base)}],
            "nics": nics,
            "console": {"type": "pty", "log": str(self.console_log(name))},
            "cloud_init": {
                "hostname": hostname,
                "users": [
                    {"name": "tester", "sudo": True, "shell": "/bin/bash", "ssh_authorized_keys": [key]}
                ],
            },
        }
        path = self.workdir / f"{name}.toml"
        path.write_text(tomli_w.dumps(spec))
        return path

    def lan_address(self, kind: str, octet: int) -> str:
        """A guest address on the lab's LAN: kind 'vhost' (10.78.N.0/24) or 'bridge' (10.79.N.0/24)."""
        state = self.lab.load()
        assert state is not None
        return perf_guest.lan_address(state.lan_addresses, kind, octet)

    def perf_spec(
        self, name: str, image: DebianImage, *, key: str, octet: int, spare_nic: bool = False
    ) -> Path:
        """The lab's profiling guest (virtnet/lab/perf_guest.py) on this host, user 'tester' with `key`."""
        state = self.lab.load()
        assert state is not None
        spec = perf_guest.perf_guest_spec(
            name,
            image,
            lan_bridge=state.lan_bridge,
            lan_addresses=state.lan_addresses,
            octet=octet,
            socket=str(self.socket(name)),
            disk=str(self.workdir / f"{name}.qcow2"),
            console_log=str(self.console_log(name)),
            keys=(key,),
            spare_nic=spare_nic,
        )
        path = self.workdir / f"{name}.toml"
        path.write_text(tomli_w.dumps(spec))
        return path

    def agent(self, name: str, command: str, **arguments: Any) -> Any:
        """A guest agent command through `virsh qemu-agent-command`, independent of virtnet."""
        request = {"execute": command, **({"arguments": arguments} if arguments else {})}
        out = self.virsh("qemu-agent-command", name, "--timeout", "30", json.dumps(request)).stdout
        return json.loads(out)["return"]

    def agent_exec(self, name: str, argv: list[str], timeout: float = 60.0) -> dict[str, Any]:
        """Run argv in the guest with guest-exec through virsh; the final guest-exec-status."""
        pid = self.agent(name, "guest-exec", path=argv[0], arg=argv[1:], **{"capture-output": True})["pid"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.agent(name, "guest-exec-status", pid=pid)
            if status["exited"]:
                for stream in ("out-data", "err-data"):
                    status[stream] = base64.b64decode(status.get(stream, "")).decode(errors="replace")
                return dict(status)
            time.sleep(0.2)
        raise AssertionError(f"{argv} did not finish in {name} within {timeout:g} s")

    def wait_console(self, name: str, marker: str, timeout: float = 120.0) -> str:
        """The console text once it contains `marker` (the guest's own words)."""
        log = self.console_log(name)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = log.read_text(errors="replace") if log.exists() else ""
            if marker in text:
                return text
            time.sleep(0.25)
        raise AssertionError(f"{name}: no {marker!r} on the console in {timeout:g} s:\n{text[-2000:]}")

    def type_on_console(self, name: str, line: str) -> None:
        """Type a line on the guest's serial console through `virsh console` (on a pty, as it needs)."""
        master, slave = os.openpty()
        try:
            virsh = subprocess.Popen(
                ["virsh", "-c", self.host.uri, "console", "--force", name],
                stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
            )  # fmt: skip
            time.sleep(1.0)  # virsh connects the stream before it reads what is typed
            os.write(master, line.encode() + b"\r")
            time.sleep(1.0)
            os.write(master, b"\x1d")  # Ctrl-]: virsh console leaves (it ignores SIGTERM in raw mode)
            try:
                virsh.wait(10)
            except subprocess.TimeoutExpired:
                virsh.kill()
                virsh.wait(10)
        finally:
            os.close(master)
            os.close(slave)

    def in_namespace(self, *argv: str) -> subprocess.CompletedProcess[str]:
        """A command in this host's mount namespace (its own /var/lib/libvirt)."""
        return _run([*nsenter(self.host.holder_pid), *argv], check=False)

    def ticks(self, name: str) -> list[int]:
        """The guest's console counter so far (VIRTNET-TICK n, once a second)."""
        log = self.console_log(name)
        text = log.read_text(errors="replace") if log.exists() else ""
        return [int(n) for n in re.findall(r"VIRTNET-TICK (\d+)", text)]

    def qemu_pid(self, name: str) -> int:
        pidfile = Path(f"/proc/{self.host.holder_pid}/root/run/libvirt/qemu/{name}.pid")
        return int(pidfile.read_text())


def hugepages_free() -> int:
    return meminfo()["HugePages_Free"]


def _run(cmd: list[str], *, check: bool, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """Run a command; one that outlives its timeout gets a Ctrl-C first, as a user would press.

    A SIGKILLed virtnet would leave its libvirt job running (a peer-to-peer migration goes on in
    libvirtd without its client) and every later test on the shared lab would meet it.
    """
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as run:
        try:
            out, err = run.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            run.send_signal(signal.SIGINT)
            try:
                out, err = run.communicate(timeout=INTERRUPTED_WAIT_S)
            except subprocess.TimeoutExpired:
                run.kill()
                out, err = run.communicate()
            raise AssertionError(
                f"{' '.join(cmd)} still ran after {timeout:g} s, then got Ctrl-C and exited "
                f"{run.returncode}:\n{out}\n{err}"
            ) from None
    if check and run.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {run.returncode}:\n{out}\n{err}")
    return subprocess.CompletedProcess(cmd, run.returncode, out, err)


@contextmanager
def libvirtd_stopped(host: LabHost) -> Iterator[None]:
    """The host's libvirtd really down (stopped by its PID), started again afterwards."""
    pidfile = Path(host.dir) / "libvirtd.pid"
    stop_pid(read_pid(pidfile))
    try:
        yield
    finally:
        run([*nsenter(host.holder_pid), "libvirtd", "-d", "--listen", "-p", str(pidfile)])
        libvirtd.wait_until_answering(host.uri, wait_for_pidfile(pidfile), Path(host.dir), 60)
