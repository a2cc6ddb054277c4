"""`virtnet perf`: one path, or the walkthrough's whole table (`--matrix`), on running guests.

The host side of a path is where the NIC's bridge has its address: this machine's own network
namespace on a plain host; in the lab, a vhost-user NIC's br0 lives in its lab host's namespace
(`--host-netns`), and the LAN's far end is another lab host's (`--lan-netns`).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass

from virtnet.errors import InputError, PathUnavailable, PerfFailed
from virtnet.perf.endpoint import Endpoint, GuestEndpoint, HostEndpoint
from virtnet.perf.measure import PathResult, PerfOptions, measure
from virtnet.spec.models import UserNic, VhostUserNic
from virtnet.virt.guest import Guest
from virtnet.virt.host import Host

HOST, LAN = "host", "lan"
PATHS = ("VM-VM", "VM-host", "VM-LAN")


def perf(
    uri: str | None,
    ends: list[str],
    options: PerfOptions,
    *,
    matrix: bool = False,
    nic: int | None = None,
    host_netns: str | None = None,
    lan_netns: str | None = None,
    dst_uri: str | None = None,
    progress: Callable[[str], None] = lambda _line: None,
) -> PathResult | Matrix:
    """`virtnet perf`: SRC DST as perf_path, or with matrix the VM (and its peer) as perf_matrix.

    Raises:
        InputError (ends or options that do not fit), PathUnavailable, PerfFailed, HypervisorError.
    """
    if matrix:
        if nic is not None or dst_uri is not None:
            raise InputError("--matrix measures every NIC on every path: leave out --nic and --dst-connect")
        return perf_matrix(uri, ends, options, host_netns=host_netns, lan_netns=lan_netns, progress=progress)
    if len(ends) != 2:
        raise InputError(f"perf takes SRC and DST ({len(ends)} given); or --matrix VM [PEER]")
    src, dst = ends
    return perf_path(
        uri, src, dst, options, nic=nic, host_netns=host_netns, lan_netns=lan_netns, dst_uri=dst_uri
    )


def perf_path(
    uri: str | None,
    src: str,
    dst: str,
    options: PerfOptions,
    *,
    nic: int | None = None,
    host_netns: str | None = None,
    lan_netns: str | None = None,
    dst_uri: str | None = None,
) -> PathResult:
    """Measure SRC -> DST. Each is a VM name, 'host' (the host side) or 'lan' (--lan-netns)."""
    if src == LAN:
        raise InputError("SRC 'lan': measure from a VM or 'host'; the LAN's end can only be DST")
    if src == dst:
        raise InputError(f"SRC and DST are both {src!r}: name two different ends")
    if dst == LAN and not lan_netns:
        raise InputError("DST 'lan' needs --lan-netns: the network namespace of the LAN's far end")
    with ExitStack() as stack:
        hosts = _Hosts(stack)
        source = _endpoint(hosts, src, uri, host_netns, lan_netns)
        target = _endpoint(hosts, dst, dst_uri or uri, host_netns, lan_netns)
        if dst == LAN or (dst_uri and dst_uri != uri):
            path = "VM-LAN"
        elif isinstance(source, GuestEndpoint) and isinstance(target, GuestEndpoint):
            path = "VM-VM"
        else:
            path = "VM-host"
        return measure(source, target, path, options, nic)


@dataclass(frozen=True)
class Cell:
    nic: int
    nic_kind: str
    path: str
    result: PathResult | None
    reason: str | None = None  # why there is no result


@dataclass(frozen=True)
class Ratio:
    path: str
    metric: str  # "throughput" or "rtt"
    kind: str
    versus: str
    value: float  # kind's figure / versus's; > 1 is better for throughput, < 1 for rtt


@dataclass(frozen=True)
class Matrix:
    vms: list[str]
    cells: list[Cell]
    ratios: list[Ratio]
    options: PerfOptions


def perf_matrix(
    uri: str | None,
    vms: list[str],
    options: PerfOptions,
    *,
    host_netns: str | None = None,
    lan_netns: str | None = None,
    progress: Callable[[str], None] = lambda _line: None,
) -> Matrix:
    """Every NIC of the first VM on every path: to the second VM, to the host side, to the LAN's end."""
    if not 1 <= len(vms) <= 2:
        raise InputError("--matrix takes one or two VMs: the measured one, and a peer on the same host")
    cells: list[Cell] = []
    with ExitStack() as stack:
        hosts = _Hosts(stack)
        first = _guest(hosts, vms[0], uri)
        peer = _guest(hosts, vms[1], uri) if len(vms) == 2 else None
        for index, nic in enumerate(first.spec.nics):
            kind = first.kind(index)
            is_user = isinstance(nic, UserNic)
            # A vhost-user NIC's host side is where its OVS bridge has its address; the others' is here.
            host_side = HostEndpoint(host_netns) if isinstance(nic, VhostUserNic) else HostEndpoint()
            targets: list[tuple[str, Endpoint | None, str | None]] = [
                (
                    "VM-VM",
                    None if is_user else peer,
                    "QEMU's user network isolates each guest"
                    if is_user
                    else "name a second VM on the same host",
                ),
                ("VM-host", host_side, None),
                (
                    "VM-LAN",
                    lan_endpoint(lan_netns) if lan_netns else None,
                    "give --lan-netns (another host's network namespace)",
                ),
            ]
            for path, target, missing in targets:
                if target is None:
                    cells.append(Cell(index, kind, path, None, missing))
                    continue
                progress(f"{vms[0]} NIC {index} ({kind}) {path} ...")
                try:
                    result = measure(first, target, path, options, index)
                except (PathUnavailable, PerfFailed) as err:
                    cells.append(Cell(index, kind, path, None, str(err)))
                else:
                    cells.append(Cell(index, kind, path, result))
    return Matrix(list(vms), cells, _ratios(cells), options)


def _ratios(cells: list[Cell]) -> list[Ratio]:
    """vhost-user against the best virtio NIC (user or Linux bridge) per path, as the walkthrough compares."""
    ratios = []
    for path in PATHS:
        measured = [c for c in cells if c.path == path and c.result is not None]
        vhost = [c for c in measured if c.nic_kind.startswith("vhost-user")]
        virtio = [c for c in measured if not c.nic_kind.startswith("vhost-user")]
        if not vhost or not virtio:
            continue
        ours = vhost[0].result
        assert ours is not None
        best = max(virtio, key=lambda c: c.result.throughput.receiver_bps if c.result else 0.0)
        assert best.result is not None
        if best.result.throughput.receiver_bps:
            value = ours.throughput.receiver_bps / best.result.throughput.receiver_bps
            ratios.append(Ratio(path, "throughput", vhost[0].nic_kind, best.nic_kind, value))
        fastest = min(virtio, key=lambda c: c.result.rtt.avg_ms if c.result and c.result.rtt.avg_ms else 1e9)
        if fastest.result and fastest.result.rtt.avg_ms and ours.rtt.avg_ms:
            ratios.append(
                Ratio(
                    path,
                    "rtt",
                    vhost[0].nic_kind,
                    fastest.nic_kind,
                    ours.rtt.avg_ms / fastest.result.rtt.avg_ms,
                )
            )
    return ratios


class _Hosts:
    """libvirt connections opened once per URI for the run."""

    def __init__(self, stack: ExitStack) -> None:
        self.stack = stack
        self.open: dict[str | None, Host] = {}

    def get(self, uri: str | None) -> Host:
        if uri not in self.open:
            self.open[uri] = self.stack.enter_context(Host.open(uri))
        return self.open[uri]


def lan_endpoint(netns: str) -> HostEndpoint:
    """The LAN's far end: another host's side, in its network namespace."""
    return HostEndpoint(netns, f"lan (netns {netns})")


def guest_endpoint(guest: Guest) -> GuestEndpoint:
    """A running virtnet guest with the agent, as one end of a measurement."""
    from virtnet.inventory import nic_backends, spec_of
    from virtnet.virt.agent import agent_of

    spec = spec_of(guest)
    if spec is None:
        raise InputError(f"{guest.name!r} was not defined by virtnet: its NICs have no spec to measure by")
    return GuestEndpoint(agent_of(guest), spec, nic_backends(guest))


def _endpoint(
    hosts: _Hosts, name: str, uri: str | None, host_netns: str | None, lan_netns: str | None
) -> Endpoint:
    if name == HOST:
        return HostEndpoint(host_netns)
    if name == LAN:
        assert lan_netns is not None  # perf_path refuses 'lan' without it
        return lan_endpoint(lan_netns)
    return _guest(hosts, name, uri)


def _guest(hosts: _Hosts, name: str, uri: str | None) -> GuestEndpoint:
    return guest_endpoint(hosts.get(uri).lookup(name))
