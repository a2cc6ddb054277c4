"""The lab's LAN: one Linux bridge on this machine that wires every lab host's OVS bridge together.

Each lab host's netdev bridge `br0` lives in the host's network namespace, an island on its own.
The LAN joins them: a veth pair per host, one end in the host's namespace as an OVS port on br0,
the other enslaved to the LAN bridge here, in this machine's own network namespace. The LAN bridge
is also where the lab's Linux bridge NICs (`type = "bridge"`) plug in: libvirtd creates their taps
in this namespace, the only one it runs in. So the walkthrough's three paths exist:

- VM-VM on one host (two guests on one br0),
- VM-host (a guest and the address of the bridge it is on: br0 in the host's namespace, or the
  LAN bridge for a Linux bridge NIC),
- VM-LAN (a guest on host A and a guest or br0 of host B, through A's br0, the wire and B's br0).

Two subnets share the wire, one per NIC kind, so a guest with a vhost-user and a Linux bridge NIC
has one route per NIC and the path measured is the one named: 10.78.N.0/24 for vhost-user NICs and
10.79.N.0/24 for Linux bridge NICs, N the last octet of the lab's first address (so the demo's lab
and the tests' do not share a subnet). Host i's br0 is .(i+1) in both, the LAN bridge here .254.
Nothing is routed anywhere else; the bridge has no uplink.
"""

from __future__ import annotations

import hashlib
import ipaddress
from pathlib import Path

from virtnet.lab import switch
from virtnet.lab.process import run

HOST_PORT = "lan0"  # the wire's end inside each host's namespace, an OVS port on br0
PREFIX_LEN = 24
BRIDGE_ADDRESS_INDEX = 254


def subnets(first_address: ipaddress.IPv4Address) -> tuple[ipaddress.IPv4Network, ipaddress.IPv4Network]:
    """The lab's LAN subnets (vhost-user NICs', Linux bridge NICs'), from its first loopback address."""
    octet = int(first_address) & 0xFF
    return tuple(ipaddress.IPv4Network(f"10.{second}.{octet}.0/{PREFIX_LEN}") for second in (78, 79))  # type: ignore[return-value]


def host_addresses(networks: tuple[ipaddress.IPv4Network, ...], index: int) -> list[str]:
    """Lab host `index`'s br0 addresses, with their prefix."""
    return [f"{network.network_address + index + 1}/{network.prefixlen}" for network in networks]


def bridge_addresses(networks: tuple[ipaddress.IPv4Network, ...]) -> list[str]:
    return [f"{network.network_address + BRIDGE_ADDRESS_INDEX}/{network.prefixlen}" for network in networks]


def ifname(prefix: str, suffix: str) -> str:
    """A Linux interface name for this lab: '<prefix>-<suffix>', or a hash of a prefix too long for that."""
    name = f"{prefix}-{suffix}"
    if len(name) <= 15:  # IFNAMSIZ - 1
        return name
    return f"vn{hashlib.sha256(prefix.encode()).hexdigest()[: 15 - 3 - len(suffix)]}-{suffix}"


def bridge_name(prefix: str) -> str:
    return ifname(prefix, "lan")


def create_bridge(name: str, addresses: list[str]) -> None:
    """The LAN bridge in this namespace, with its address, up (replacing a crashed lab's)."""
    if Path(f"/sys/class/net/{name}").exists():
        run(["ip", "link", "delete", name])
    run(["ip", "link", "add", name, "type", "bridge"])
    # No STP: a bridge without loops forwards at once instead of listening for 30 s.
    run(["ip", "link", "set", name, "type", "bridge", "stp_state", "0", "forward_delay", "0"])
    for address in addresses:
        run(["ip", "addr", "add", address, "dev", name])
    run(["ip", "link", "set", name, "up"])


def delete_bridge(name: str) -> None:
    if Path(f"/sys/class/net/{name}").exists():
        run(["ip", "link", "delete", name])


def attach_host(*, bridge: str, veth: str, netns: str, ovs_dir: Path, addresses: list[str]) -> None:
    """Wire one lab host to the LAN: veth `veth` here on `bridge`, its peer as port lan0 on br0 there.

    The host's br0 (OVS's internal port, a tap in the host's namespace) gets `addresses`.
    """
    if Path(f"/sys/class/net/{veth}").exists():
        run(["ip", "link", "delete", veth])
    run(["ip", "link", "add", veth, "type", "veth", "peer", "name", HOST_PORT, "netns", netns])
    # OVS's userspace datapath reads the veth with AF_PACKET and does not complete checksums that
    # the kernel leaves to a TX offload, so packets from this end would reach guests unchecksummed.
    for where, device in ((None, veth), (netns, HOST_PORT)):
        ip_prefix = ["ip", "netns", "exec", where] if where else []
        run([*ip_prefix, "ethtool", "-K", device, "tx", "off"])
    run(["ip", "link", "set", veth, "master", bridge, "up"])
    run(["ip", "-n", netns, "link", "set", HOST_PORT, "up"])
    switch.vsctl(ovs_dir, "--may-exist", "add-port", switch.BRIDGE, HOST_PORT, wait=True)
    for address in addresses:
        run(["ip", "-n", netns, "addr", "replace", address, "dev", switch.BRIDGE])
    run(["ip", "-n", netns, "link", "set", switch.BRIDGE, "up"])
