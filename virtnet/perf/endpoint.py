"""The two ends of a measurement: a guest (driven through its agent) or the host side of a bridge.

Both run programs the same way (iperf3, ping, ethtool, cat), so the measurement does not care which
end is which. A guest runs them with guest-exec through libvirt, so a guest on a remote host needs
nothing but libvirt's connection; the host side runs them here, in a network namespace if asked
(a lab host's, where its br0 lives).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import signal
import subprocess
from dataclasses import dataclass
from typing import Protocol

from virtnet.errors import GuestCommandTimeout, PathUnavailable, PerfFailed
from virtnet.spec.derived import nic_mac
from virtnet.spec.models import BridgeNic, UserNic, VhostUserNic, VMSpec
from virtnet.virt.agent import Agent, Running


@dataclass(frozen=True)
class Output:
    exit_code: int
    stdout: bytes
    stderr: bytes


class Process(Protocol):
    def wait(self, timeout_s: float) -> Output: ...

    def kill(self) -> None: ...

    def interrupt(self) -> None:
        """SIGINT: ask the program to end and report what it has (ping prints its summary)."""


@dataclass(frozen=True)
class GuestNicInfo:
    """The NIC a measurement is about: spec index, kind, guest name and IPv4 address."""

    index: int
    kind: str  # "vhost-user/OVS-DPDK", "bridge/virtio (qemu)", "user/virtio"
    is_user: bool
    queues: int
    name: str
    address: ipaddress.IPv4Interface


class Endpoint(Protocol):
    label: str

    def run(self, argv: list[str], timeout_s: float) -> Output: ...

    def start(self, argv: list[str]) -> Process: ...

    def addresses(self) -> list[ipaddress.IPv4Interface]: ...


class _GuestProcess:
    def __init__(self, running: Running) -> None:
        self.running = running

    def wait(self, timeout_s: float) -> Output:
        done = self.running.wait(timeout_s)
        return Output(done.exit_code, done.stdout, done.stderr)

    def kill(self) -> None:
        self.running.kill()

    def interrupt(self) -> None:
        self.running.kill("INT")


class GuestEndpoint:
    """A running guest with the agent; `spec` is the one stored in its domain."""

    def __init__(self, agent: Agent, spec: VMSpec, backends: dict[str, str | None]) -> None:
        self.agent = agent
        self.spec = spec
        self.backends = backends
        self.label = agent.guest.name

    def run(self, argv: list[str], timeout_s: float) -> Output:
        return self.start(argv).wait(timeout_s)

    def start(self, argv: list[str]) -> _GuestProcess:
        return _GuestProcess(self.agent.start(argv))

    def addresses(self) -> list[ipaddress.IPv4Interface]:
        return [address for nic in self.agent.nics() for address in _ipv4(nic.addresses)]

    def nic(self, index: int | None) -> GuestNicInfo:
        """NIC `index` of the spec (default: the first that is not a user NIC), as the guest sees it."""
        nics = self.spec.nics
        if not nics:
            raise PathUnavailable(f"{self.label} has no NIC to measure")
        if index is None:
            index = next((i for i, nic in enumerate(nics) if not isinstance(nic, UserNic)), 0)
        if not 0 <= index < len(nics):
            raise PathUnavailable(f"--nic {index}: {self.label} has NICs 0-{len(nics) - 1}; name one of them")
        mac = nic_mac(self.spec, index)
        seen = next((nic for nic in self.agent.nics() if nic.mac == mac), None)
        if seen is None:
            raise PathUnavailable(
                f"the guest agent of {self.label} lists no interface with NIC {index}'s MAC {mac}"
            )
        found = _ipv4(seen.addresses)
        if not found:
            raise PathUnavailable(
                f"NIC {index} of {self.label} ({seen.name}) has no IPv4 address in the guest; give it "
                f"nics[{index}].address = '10.0.0.2/24' in the spec (with [cloud_init]) and redefine"
            )
        nic = nics[index]
        return GuestNicInfo(
            index=index,
            kind=self.kind(index),
            is_user=isinstance(nic, UserNic),
            queues=nic.queues if isinstance(nic, VhostUserNic | BridgeNic) else 1,
            name=seen.name,
            address=found[0],
        )

    def kind(self, index: int) -> str:
        """The NIC's kind as the table names it, with the backend its domain XML gives a bridge NIC."""
        nic = self.spec.nics[index]
        if isinstance(nic, VhostUserNic):
            return "vhost-user/OVS-DPDK" if nic.ovs else "vhost-user"
        if isinstance(nic, BridgeNic):
            backend = self.backends.get(nic_mac(self.spec, index)) or "libvirt's choice"
            return f"bridge/{nic.model} ({backend})"
        return f"user/{nic.model}"


class _HostProcess:
    def __init__(self, argv: list[str]) -> None:
        self.program = argv[0]
        self.popen = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def wait(self, timeout_s: float) -> Output:
        try:
            out, err = self.popen.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            raise GuestCommandTimeout(f"{self.program} did not finish within {timeout_s:g} s") from None
        return Output(self.popen.returncode, out, err)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.popen.kill()
        self.popen.communicate()

    def interrupt(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.popen.send_signal(signal.SIGINT)


class HostEndpoint:
    """The host side: this machine's own network namespace, or a named one (a lab host's)."""

    def __init__(self, netns: str | None = None, label: str | None = None) -> None:
        self.netns = netns
        self.label = label or (f"host (netns {netns})" if netns else "host")

    def _argv(self, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.netns, *argv] if self.netns else argv

    def run(self, argv: list[str], timeout_s: float) -> Output:
        return self.start(argv).wait(timeout_s)

    def start(self, argv: list[str]) -> _HostProcess:
        try:
            return _HostProcess(self._argv(argv))
        except FileNotFoundError:
            raise PerfFailed(
                f"{argv[0]} is not installed on this host (Debian: apt install {argv[0]})"
            ) from None

    def addresses(self) -> list[ipaddress.IPv4Interface]:
        done = self.run(["ip", "-j", "-4", "addr", "show"], timeout_s=10)
        if done.exit_code != 0:
            raise PerfFailed(f"cannot list the addresses of {self.label}: {done.stderr.decode().strip()}")
        return [
            ipaddress.IPv4Interface(f"{info['local']}/{info['prefixlen']}")
            for link in json.loads(done.stdout or b"[]")
            for info in link.get("addr_info", [])
            if info.get("scope") == "global"
        ]


def _ipv4(addresses: tuple[str, ...]) -> list[ipaddress.IPv4Interface]:
    found = []
    for text in addresses:
        with contextlib.suppress(ValueError):
            found.append(ipaddress.IPv4Interface(text))
    return found
