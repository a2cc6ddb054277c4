"""virt-install option combinations whose --print-xml output virtnet must adopt without losing a thing.

The XML each writes is stored in tests/data/virtinst/NAME.xml; `pytest tests/e2e/test_foreign_domains.py
--update-golden` writes it again with the lab's libvirtd (virt-install needs a real QEMU driver).
Each touches something virtnet owns: hugepages, NUMA, cputune, vhost-user, graphics, disks, serial.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

DATA = Path(__file__).parent / "data" / "virtinst"
IMAGES = "/var/tmp/virtnet-virtinst"  # disk paths the XML names (virt-install does not create them)
_COMMON = ("--virt-type", "qemu", "--import", "--noautoconsole")
_NO_OS = ("--osinfo", "detect=on,require=off")
_SHARED = ("--memorybacking", "access.mode=shared")

CASES: dict[str, tuple[str, ...]] = {
    "plain": ("--memory", "256", "--vcpus", "1", "--disk", "none", "--network", "none", "--graphics", "none"),
    "hugepages": (
        "--memory", "256", "--memorybacking", "hugepages=on", "--disk", "none", "--graphics", "none",
    ),
    "hugepages-1g": (
        "--memory", "1024", "--memorybacking", "hugepages=on,hugepages.page0.size=1,hugepages.page0.unit=G",
        "--disk", "none", "--network", "none", "--graphics", "none",
    ),
    "hugepages-shared-immediate": (
        "--memory", "512",
        "--memorybacking", "hugepages=on,access.mode=shared,allocation.mode=immediate",
        "--disk", "none", "--network", "none", "--graphics", "none",
    ),
    "numa-two-cells": (
        "--memory", "512", "--vcpus", "4",
        "--cpu", "cell0.cpus=0-1,cell0.memory=262144,cell1.cpus=2-3,cell1.memory=262144",
        "--disk", "none", "--network", "none", "--graphics", "none",
    ),
    "numa-shared": (
        "--memory", "256", "--vcpus", "2", "--memorybacking", "hugepages=on,access.mode=shared",
        "--cpu", "numa.cell0.cpus=0-1,numa.cell0.memory=262144,numa.cell0.memAccess=shared",
        "--disk", "none", "--network", "none", "--graphics", "none",
    ),
    "cputune-vcpupin": (
        "--memory", "256", "--vcpus", "2",
        "--cputune", "vcpupin0.vcpu=0,vcpupin0.cpuset=0,vcpupin1.vcpu=1,vcpupin1.cpuset=1",
        "--disk", "none", "--network", "none", "--graphics", "none",
    ),
    "cputune-emulatorpin": (
        "--memory", "256", "--vcpus", "2",
        "--cputune",
        "vcpupin0.vcpu=0,vcpupin0.cpuset=1,vcpupin1.vcpu=1,vcpupin1.cpuset=1,emulatorpin.cpuset=0",
        "--disk", "none", "--network", "none", "--graphics", "none",
    ),
    "cputune-iothreadpin": (
        "--memory", "256", "--vcpus", "2,cpuset=1", "--iothreads", "1",
        "--cputune", "iothreadpin0.iothread=1,iothreadpin0.cpuset=0",
        "--disk", "none", "--network", "none", "--graphics", "none",
    ),
    "topology": (
        "--memory", "256", "--vcpus", "4,sockets=1,cores=2,threads=2",
        "--disk", "none", "--network", "none", "--graphics", "none",
    ),
    "cpu-maximum": (
        "--memory", "256", "--cpu", "maximum", "--disk", "none", "--network", "none", "--graphics", "none",
    ),
    "vhostuser": (
        "--memory", "256", *_SHARED,
        "--network",
        "type=vhostuser,source.type=unix,source.path=/run/vnt/vhu0.sock,source.mode=server,model=virtio",
        "--disk", "none", "--graphics", "none",
    ),
    "vhostuser-queues-hugepages": (
        "--memory", "512", "--vcpus", "2", "--memorybacking", "hugepages=on,access.mode=shared",
        "--network",
        "type=vhostuser,source.type=unix,source.path=/run/vnt/vhu1.sock,source.mode=client,model=virtio,"
        "driver.queues=2,mtu.size=9000",
        "--disk", "none", "--graphics", "none",
    ),
    "bridge-nic": (
        "--memory", "256", "--network", "bridge=br0,model=virtio", "--disk", "none", "--graphics", "none",
    ),
    "user-nic-e1000": (
        "--memory", "256", "--network", "user,model=e1000", "--disk", "none", "--graphics", "none",
    ),
    "libvirt-network": (
        "--memory", "256", "--network", "network=default", "--disk", "none", "--graphics", "none",
    ),
    "vnc-loopback": (
        "--memory", "256", "--graphics", "vnc,listen=127.0.0.1", "--disk", "none", "--network", "none",
    ),
    "vnc-port-password": (
        "--memory", "256", "--graphics", "vnc,port=5905,listen=127.0.0.1,password=vnc-pw-1",
        "--disk", "none", "--network", "none",
    ),
    "spice-qxl": (
        "--memory", "256", "--graphics", "spice,listen=127.0.0.1", "--video", "qxl",
        "--disk", "none", "--network", "none",
    ),
    "virtio-disks": (
        "--memory", "256",
        "--disk", f"path={IMAGES}/a.qcow2,format=qcow2,bus=virtio",
        "--disk", f"path={IMAGES}/b.img,format=raw,bus=virtio,cache=none",
        "--network", "none", "--graphics", "none",
    ),
    "cdrom-boot": (
        "--memory", "256",
        "--disk", f"path={IMAGES}/c.qcow2,format=qcow2,bus=virtio",
        "--disk", f"path={IMAGES}/install.iso,device=cdrom,bus=sata",
        "--boot", "cdrom,hd", "--network", "none", "--graphics", "none",
    ),
    "ide-disk-q35": (
        "--memory", "256", "--machine", "q35",
        "--disk", f"path={IMAGES}/d.qcow2,format=qcow2,bus=sata",
        "--network", "none", "--graphics", "none",
    ),
    "serial-file": (
        "--memory", "256", "--serial", "file,path=/var/tmp/vnt-serial.log",
        "--disk", "none", "--network", "none", "--graphics", "none",
    ),
    "serial-pty-log": (
        "--memory", "256", "--serial", "pty,log.file=/var/tmp/vnt-serial-pty.log",
        "--disk", "none", "--network", "none", "--graphics", "none",
    ),
    "kernel-boot": (
        "--memory", "256",
        "--boot", "kernel=/var/tmp/vmlinuz,initrd=/var/tmp/initrd.img,kernel_args=console=ttyS0",
        "--disk", "none", "--network", "none", "--graphics", "none",
    ),
    "osinfo-metadata": (  # virt-install's own <metadata> (libosinfo) must survive beside virtnet's
        "--memory", "512", "--osinfo", "debian11",
        "--disk", "none", "--network", "none", "--graphics", "none",
    ),
    "extras": (
        "--memory", "256", "--sound", "ich6", "--video", "vga", "--graphics", "vnc,listen=127.0.0.1",
        "--watchdog", "i6300esb", "--rng", "/dev/urandom",
        "--channel", "unix,target.type=virtio,name=org.qemu.guest_agent.0",
        "--disk", "none", "--network", "none",
    ),
}  # fmt: skip


def make_images() -> None:
    """The images the cases name: virt-install looks at them (and makes a pool of their directory)."""
    Path(IMAGES).mkdir(exist_ok=True)
    for name in ("a.qcow2", "c.qcow2", "d.qcow2"):
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", f"{IMAGES}/{name}", "16M"], check=True)
    for name in ("b.img", "install.iso"):
        Path(IMAGES, name).write_bytes(bytes(1024 * 1024))


def print_xml(uri: str, name: str) -> str:
    """What `virt-install --print-xml` writes for the case `name`, against the libvirt at `uri`."""
    os = () if "--osinfo" in CASES[name] else _NO_OS
    argv = [
        "virt-install",
        "--connect",
        uri,
        "--print-xml",
        "--name",
        f"vi-{name}",
        *_COMMON,
        *os,
        *CASES[name],
    ]
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout
