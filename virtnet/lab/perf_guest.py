"""The lab's profiling guest: a Debian spec with each of the walkthrough's NIC kinds on the lab's LAN.

NIC 0 is a user NIC (QEMU's NAT, the walkthrough's virtio VM), NIC 1 a Linux bridge NIC on the
LAN bridge (10.79.N.0/24), NIC 2 a 4-queue vhost-user NIC on br0 (10.78.N.0/24), with more queues
than its 2 vCPUs so that only the provisioning's `ethtool -L` enables them all. The end-to-end tests
and bench/network.py measure these; cli/specs/walkthrough-deb*.toml are the same guests written out.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from virtnet.lab.debian_image import DebianImage

VCPUS = 2
QUEUES = 4
MEMORY = "512MiB"
# Two NICs on one wire in different subnets: answer ARP only for the NIC's own address, so each
# subnet's traffic stays on its NIC (Linux by default answers on any of them).
MULTIHOMED_SYSCTL = "net.ipv4.conf.all.arp_ignore = 1\nnet.ipv4.conf.all.arp_announce = 2\n"


def lan_address(lan_addresses: list[str], kind: str, octet: int) -> str:
    """A guest address on the lab's LAN: kind 'vhost' (the first subnet) or 'bridge' (the second)."""
    network = ipaddress.IPv4Interface(lan_addresses[0 if kind == "vhost" else 1]).network
    return f"{network.network_address + octet}/{network.prefixlen}"


def perf_guest_spec(
    name: str,
    image: DebianImage,
    *,
    lan_bridge: str,
    lan_addresses: list[str],
    octet: int,
    socket: str,
    disk: str,
    console_log: str,
    keys: tuple[str, ...] = (),
    spare_nic: bool = False,
) -> dict[str, Any]:
    """The spec as a dict (for tomli_w); `spare_nic` adds a bridge NIC without an address."""
    vhost = {
        "type": "vhostuser",
        "socket": socket,
        "queues": QUEUES,
        "port": f"{name}-p0",
        "bridge": "br0",
        "address": lan_address(lan_addresses, "vhost", octet),
    }
    bridge = {"type": "bridge", "bridge": lan_bridge, "address": lan_address(lan_addresses, "bridge", octet)}
    nics: list[dict[str, Any]] = [{"type": "user"}, bridge, vhost]
    if spare_nic:
        nics.append({"type": "bridge", "bridge": lan_bridge})
    users = [{"name": "tester", "sudo": True, "shell": "/bin/bash", "ssh_authorized_keys": list(keys)}]
    return {
        "name": name,
        "cpu": {"count": VCPUS},
        "memory": {
            "size": MEMORY,
            "access": "shared",
            "allocation": "immediate",
            "hugepages": {"page_size": "2MiB"},
        },
        # pci=nomsi: QEMU 7.2 under TCG crashes on vhost-user with MSI-X (host.md).
        "boot": {
            "kernel": str(image.kernel),
            "initrd": str(image.initrd),
            "cmdline": f"{image.cmdline} pci=nomsi",
        },
        "disks": [{"path": disk, "backing": str(image.base)}],
        "nics": nics,
        "console": {"type": "pty", "log": console_log},
        "cloud_init": {
            "hostname": name,
            "users": users if keys else [],
            "write_files": [{"path": "/etc/sysctl.d/90-multihomed.conf", "content": MULTIHOMED_SYSCTL}],
            "runcmd": [["sysctl", "--system"]],
        },
    }
