"""Whole-process time to render libvirt domain XML: virtnet vs virt-install.

For each example spec (examples/multiqueue-vm.toml, examples/install-vm.toml) this times

  (a) ``.venv/bin/virtnet xml <spec>``
  (b) ``virt-install --connect test:///default --print-xml --dry-run ...`` with arguments
      describing the same VM (no libvirt daemon needed: the test driver is in-process)

as complete processes (interpreter start-up and imports included): each command is run once
to warm caches, then ``--runs`` times, alternating which tool goes first in each round.
Every output must parse as XML with a <domain> root, so an error can't be timed by mistake.
Prints median and min wall time per tool per spec and the virt-install/virtnet median ratio.

Run from the repository root:

    .venv/bin/python bench/xml_render.py [--runs 15]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

ROOT = Path(__file__).resolve().parent.parent
VIRTNET = ROOT / ".venv" / "bin" / "virtnet"
VIRT_INSTALL = shutil.which("virt-install") or "/usr/bin/virt-install"
IMAGES = "/var/lib/libvirt/images"

# virt-install options shared by both example VMs.
COMMON: list[str] = [
    "--connect",
    "test:///default",
    "--print-xml",
    "--dry-run",
    "--vcpus",
    "2,sockets=1,cores=2,threads=1",
    "--memory",
    "4096",
    "--features",
    "acpi=on,apic=on,pae=off",
    "--disk",
    f"path={IMAGES}/centos_disk_0.qcow2,size=10,format=qcow2,"
    "driver.name=qemu,driver.type=qcow2,bus=virtio,cache=writethrough",
    "--serial",
    "pty",
    "--console",
    "pty,target.type=serial",
    "--graphics",
    "vnc,listen=127.0.0.1",
    "--video",
    "virtio",
    "--sound",
    "ich6,codec0.type=duplex",
    "--controller",
    "type=usb,model=qemu-xhci",
    "--input",
    "keyboard,bus=usb",
    "--input",
    "tablet,bus=usb",
    "--import",
    "--osinfo",
    "detect=off,require=off",
    # test:///default only offers <domain type="test"> on i686; set kvm / x86_64 by XPath.
    "--xml",
    "./@type=kvm",
    "--xml",
    "./os/type/@arch=x86_64",
]

VIRT_INSTALL_ARGS: dict[str, list[str]] = {
    "examples/multiqueue-vm.toml": [
        "--name",
        "centos-mq",
        "--metadata",
        "title=CentOS 8 with a 4-queue vhost-user NIC",
        "--cpu",
        "host-passthrough,numa.cell0.id=0,numa.cell0.cpus=0-1,"
        "numa.cell0.memory=4194304,numa.cell0.unit=KiB,numa.cell0.memAccess=shared",
        "--memorybacking",
        "hugepages=on,hugepages.page0.size=2048,hugepages.page0.unit=KiB,"
        "access.mode=shared,allocation.mode=immediate",
        "--cputune",
        "vcpupin0.vcpu=0,vcpupin0.cpuset=3,vcpupin1.vcpu=1,vcpupin1.cpuset=4,emulatorpin.cpuset=5-6",
        "--network",
        "type=vhostuser,source.type=unix,source.path=/run/virtnet/vhost/sock0,"
        "source.mode=server,model=virtio,driver.queues=4,mac=00:00:00:00:00:01",
        # --network has no portForward in virt-install 4.1: the user NIC with its host
        # forward goes on the QEMU command line, as virtnet renders it.
        "--qemu-commandline=-netdev user,id=virtnet-user0,hostfwd=tcp:127.0.0.1:10122-:22"
        " -device virtio-net-pci,netdev=virtnet-user0,id=virtnet-user0-nic",
        "--memballoon",
        "none",
        *COMMON,
    ],
    "examples/install-vm.toml": [
        "--name",
        "centos-install",
        "--metadata",
        "title=CentOS 8 installer,description=Walkthrough: install CentOS"
        " Stream 8 from the boot ISO onto a 10 GiB qcow2 disk",
        "--cpu",
        "host-passthrough",
        "--boot",
        "cdrom,hd",
        # virt-install rejects a cdrom path that does not exist; add an empty cdrom and
        # set its source by XPath.
        "--disk",
        "device=cdrom,bus=sata,driver.name=qemu,driver.type=raw",
        "--xml",
        f"./devices/disk[2]/source/@file={IMAGES}/CentOS-Stream-8-x86_64-latest-boot.iso",
        "--network",
        "user,model=virtio",
        *COMMON,
    ],
}

# Spec features virt-install cannot express as ordinary options with test:///default.
WORKAROUNDS: list[str] = [
    "virt_type=kvm, arch x86_64: test driver only has type 'test' on i686 -> --xml XPath",
    "install-vm cdrom ISO path: must exist for virt-install -> empty cdrom + --xml XPath",
    "multiqueue-vm user NIC hostfwd 10122->22: no --network portForward -> --qemu-commandline",
]
LEFT_OUT: list[str] = [
    "multiqueue-vm user NIC MAC (virtnet derives one; left to QEMU for virt-install)",
]


@dataclass
class Result:
    tool: str
    times: list[float]


def run(cmd: list[str]) -> float:
    """Run cmd once; return its wall time in seconds after checking it printed a <domain>."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT)
    elapsed = time.perf_counter() - start
    root = etree.fromstring(proc.stdout)
    if root.tag != "domain":
        raise ValueError(f"{cmd[0]}: root element is <{root.tag}>, not <domain>")
    return elapsed


def bench_spec(spec: str, runs: int) -> list[Result]:
    cmds = {
        "virtnet": [str(VIRTNET), "xml", spec],
        "virt-install": [VIRT_INSTALL, *VIRT_INSTALL_ARGS[spec]],
    }
    for cmd in cmds.values():
        run(cmd)  # warm-up (and sanity check)
    results = {tool: Result(tool, []) for tool in cmds}
    order = list(cmds)
    for i in range(runs):
        for tool in order if i % 2 == 0 else reversed(order):
            results[tool].times.append(run(cmds[tool]))
    return list(results.values())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="timed runs per tool (default 15)")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")

    print("virt-install features via workarounds:")
    for item in WORKAROUNDS:
        print(f"  - {item}")
    print("left out of virt-install's arguments:")
    for item in LEFT_OUT:
        print(f"  - {item}")
    print(f"\n{args.runs} runs per tool, wall time per whole process\n")
    print(f"{'spec':<20} {'tool':<13} {'median ms':>10} {'min ms':>9}")
    for spec in VIRT_INSTALL_ARGS:
        try:
            results = bench_spec(spec, args.runs)
        except subprocess.CalledProcessError as exc:
            err = exc.stderr.decode(errors="replace").strip()
            print(f"error: {spec}: {exc.cmd[0]} exited {exc.returncode}: {err}", file=sys.stderr)
            return 1
        except (OSError, etree.XMLSyntaxError, ValueError) as exc:
            print(f"error: {spec}: {exc}", file=sys.stderr)
            return 1
        medians = {}
        for res in results:
            medians[res.tool] = statistics.median(res.times)
            print(
                f"{Path(spec).stem:<20} {res.tool:<13} {medians[res.tool] * 1e3:>10.1f}"
                f" {min(res.times) * 1e3:>9.1f}"
            )
        ratio = medians["virt-install"] / medians["virtnet"]
        verdict = f"{ratio:.1f}x faster" if ratio >= 1 else f"{1 / ratio:.1f}x slower"
        print(f"{'':<20} virtnet is {verdict} (median ratio virt-install/virtnet {ratio:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
