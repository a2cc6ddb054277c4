"""One measured path: iperf3 from one end to the other, bound to the NIC named, then ping.

The walkthrough's numbers could not say which NIC carried them (its vhost VM also had a user NIC).
Here the path is chosen on purpose: the client binds to the named NIC's address and aims at the
other end's address in that NIC's subnet, and the NIC's own byte counters in the guest, read before
and after, show that the traffic crossed it.
"""

from __future__ import annotations

import contextlib
import ipaddress
import time
from dataclasses import dataclass

from virtnet.errors import GuestCommandTimeout, PathUnavailable, PerfFailed
from virtnet.perf.endpoint import Endpoint, GuestEndpoint, GuestNicInfo, HostEndpoint, Output, Process
from virtnet.perf.tools import Rtt, Throughput, iperf3_client, ping_summary, queue_packets

# QEMU's user network: the guest is 10.0.2.15 and reaches the host's loopback as 10.0.2.2.
SLIRP_HOST = ipaddress.IPv4Interface("10.0.2.2/24")
HOST_LOOPBACK = ipaddress.IPv4Interface("127.0.0.1/8")
CONNECT_TRIES_S = 15.0  # the server needs a moment to listen, longer in a TCG guest
# Below this share of iperf3's bytes on the NIC's own counters, the traffic took another way.
PATH_SHARE_MIN = 0.9


@dataclass(frozen=True)
class PerfOptions:
    streams: int = 4
    seconds: int = 10
    reverse: bool = False  # the server sends (iperf3 -R): DST to SRC
    ping_count: int = 10
    ping_interval_s: float = 0.2
    port: int = 5201


@dataclass(frozen=True)
class QueueShare:
    queue: int
    packets: int


@dataclass(frozen=True)
class PathResult:
    """One row of the walkthrough's table, with what proves which path it was."""

    src: str
    dst: str
    path: str  # VM-VM, VM-host, VM-LAN
    nic: int
    nic_kind: str
    guest_nic: str
    src_address: str
    dst_address: str
    throughput: Throughput
    rtt: Rtt
    nic_bytes: int  # bytes the measured NIC's counters moved in iperf3's direction
    queues: list[QueueShare] | None  # per-queue packets of a multi-queue NIC, in that direction
    options: PerfOptions

    @property
    def nic_share(self) -> float:
        """The NIC's bytes against what the receiver got (what was still in socket buffers at the end
        of a short test never crossed any NIC)."""
        received = self.throughput.bytes_received
        return self.nic_bytes / received if received else 0.0

    @property
    def warnings(self) -> list[str]:
        found = []
        if self.nic_share < PATH_SHARE_MIN:
            found.append(
                f"only {self.nic_share:.0%} of iperf3's bytes crossed {self.guest_nic}: traffic took "
                "another path (two NICs on one subnet?)"
            )
        if self.rtt.received == 0:
            found.append(f"no ping came back from {self.dst_address}")
        return found


@dataclass(frozen=True)
class Route:
    """Who is client and server, at which addresses, and the NIC measured."""

    client: Endpoint
    server: Endpoint
    client_bind: str
    server_bind: str
    target: str  # what the client aims at (10.0.2.2 for a user NIC's host, else server_bind)
    vm: GuestEndpoint
    nic: GuestNicInfo
    vm_is_client: bool


def route(src: Endpoint, dst: Endpoint, nic_index: int | None) -> Route:
    """The addresses of a path from src to dst through the named NIC of the VM end (SRC if both are VMs)."""
    if isinstance(src, GuestEndpoint):
        vm, other, vm_is_client = src, dst, True
    elif isinstance(dst, GuestEndpoint):
        vm, other, vm_is_client = dst, src, False
    else:
        raise PathUnavailable("SRC and DST are both the host: name at least one VM")
    nic = vm.nic(nic_index)
    vm_address = str(nic.address.ip)
    if nic.is_user:
        if not vm_is_client:
            raise PathUnavailable(
                f"{vm.label}'s NIC {nic.index} is a user NIC: nothing outside can connect to it but its "
                "port forwards; measure from the VM with --reverse for the other direction"
            )
        if isinstance(other, HostEndpoint) and other.netns is None:
            # QEMU itself connects to this machine's loopback for the guest's 10.0.2.2.
            return Route(vm, other, vm_address, str(HOST_LOOPBACK.ip), str(SLIRP_HOST.ip), vm, nic, True)
        if isinstance(other, GuestEndpoint):
            raise PathUnavailable(
                f"{vm.label}'s NIC {nic.index} is a user NIC: QEMU's user network isolates each guest; "
                "measure it against 'host' or 'lan', or name another NIC with --nic"
            )
        # Anything else a user NIC reaches through QEMU's NAT, from this machine's own network.
        addresses = other.addresses()
        if not addresses:
            raise PathUnavailable(f"{other.label} has no IPv4 address to measure against")
        target = addresses[0]
        direct = next((a for a in vm.addresses() if a != nic.address and target.ip in a.network), None)
        if direct is not None:
            raise PathUnavailable(
                f"{vm.label} reaches {target.ip} directly through its NIC with {direct}, so traffic from "
                f"the user NIC would not go through QEMU's NAT; measure the user NIC against 'host'"
            )
        return Route(vm, other, vm_address, str(target.ip), str(target.ip), vm, nic, True)
    network = nic.address.network
    peer = next((a for a in other.addresses() if a.ip in network and a.ip != nic.address.ip), None)
    if peer is None:
        raise PathUnavailable(
            f"{other.label} has no address in {network}, the subnet of {vm.label}'s NIC {nic.index} "
            f"({nic.name} {nic.address}): that path does not exist; name another NIC with --nic"
        )
    peer_address = str(peer.ip)
    if vm_is_client:
        return Route(vm, other, vm_address, peer_address, peer_address, vm, nic, True)
    return Route(other, vm, peer_address, vm_address, vm_address, vm, nic, False)


def measure(
    src: Endpoint, dst: Endpoint, path: str, options: PerfOptions, nic_index: int | None = None
) -> PathResult:
    """iperf3 then ping from src to dst; the iperf3 server on dst is gone afterwards, whatever happens."""
    way = route(src, dst, nic_index)
    vm_sends = way.vm_is_client != options.reverse
    counter = "tx_bytes" if vm_sends else "rx_bytes"
    bytes_before = _nic_counter(way.vm, way.nic, counter)
    queues_before = _queues(way.vm, way.nic) if way.nic.queues > 1 else None
    throughput = _iperf3(way, options)
    nic_bytes = _nic_counter(way.vm, way.nic, counter) - bytes_before
    shares = None
    if queues_before is not None:
        after = _queues(way.vm, way.nic)
        direction = "tx" if vm_sends else "rx"
        shares = [
            QueueShare(queue, after.get((direction, queue), 0) - before)
            for (d, queue), before in sorted(queues_before.items())
            if d == direction
        ]
    rtt = _ping(way, options)
    return PathResult(
        src=src.label,
        dst=dst.label,
        path=path,
        nic=way.nic.index,
        nic_kind=way.nic.kind,
        guest_nic=way.nic.name,
        src_address=way.client_bind,
        dst_address=way.target,
        throughput=throughput,
        rtt=rtt,
        nic_bytes=nic_bytes,
        queues=shares,
        options=options,
    )


def _iperf3(way: Route, options: PerfOptions) -> Throughput:
    server_argv = ["iperf3", "-s", "-1", "-J", "-B", way.server_bind, "-p", str(options.port)]
    client_argv = ["iperf3", "-c", way.target, "-B", way.client_bind, "-p", str(options.port), "-J"]
    client_argv += ["-P", str(options.streams), "-t", str(options.seconds)]
    if options.reverse:
        client_argv.append("-R")
    server = way.server.start(server_argv)
    try:
        done = _connect(way.client, client_argv, options)
        result = iperf3_client(done.stdout, way.client.label)
        server.wait(30)  # -1: the server ends with its one test
        return result
    finally:
        _stop(server)


def _connect(client: Endpoint, argv: list[str], options: PerfOptions) -> Output:
    """Run the client, again while the server is not yet listening."""
    deadline = time.monotonic() + CONNECT_TRIES_S
    limit = options.seconds + 60
    while True:
        try:
            done = client.run(argv, timeout_s=limit)
        except GuestCommandTimeout:
            raise PerfFailed(
                f"iperf3 on {client.label} did not finish within {limit} s (killed): the path carries "
                "nothing, or a firewall drops it"
            ) from None
        refused = b"unable to connect" in done.stdout or b"Connection refused" in done.stdout
        if not refused or time.monotonic() > deadline:
            return done
        time.sleep(0.5)


def _stop(server: Process) -> None:
    # The server ends by itself after its one test; kill covers every way this can have failed.
    with contextlib.suppress(Exception):
        server.kill()


def _ping(way: Route, options: PerfOptions) -> Rtt:
    argv = ["ping", "-q", "-n", "-c", str(options.ping_count), "-i", f"{options.ping_interval_s:g}"]
    argv += ["-W", "2", "-I", way.client_bind, way.target]
    timeout = options.ping_count * options.ping_interval_s + 30
    done = way.client.run(argv, timeout_s=timeout)
    return ping_summary(done.stdout, way.client.label)


def _nic_counter(vm: GuestEndpoint, nic: GuestNicInfo, counter: str) -> int:
    done = vm.run(["cat", f"/sys/class/net/{nic.name}/statistics/{counter}"], timeout_s=30)
    try:
        return int(done.stdout.strip())
    except ValueError:
        raise PerfFailed(
            f"cannot read {nic.name}'s {counter} in {vm.label}: {done.stderr.decode().strip()}"
        ) from None


def _queues(vm: GuestEndpoint, nic: GuestNicInfo) -> dict[tuple[str, int], int]:
    done = vm.run(["ethtool", "-S", nic.name], timeout_s=30)
    return queue_packets(done.stdout) if done.exit_code == 0 else {}
