"""Many hosts: a lab of three hosts over TLS, driven through a hosts file and `-H`/`--to`/`hosts`.

Every host is checked with virsh and ovs-vsctl through their own TLS connections (the lab CA's
client certificate), never with virtnet's view of itself.
"""

from __future__ import annotations

import ipaddress
import json
import re
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import E2E_ADDRESS, E2E_PREFIX
from lab_support import LabClient, libvirtd_stopped

from virtnet.lab import pki
from virtnet.lab.lab import Lab, LabHost
from virtnet.units import parse_cpuset

# The fleet lab sits beside the session's two-host lab: its own names and loopback addresses.
FLEET_PREFIX = f"{E2E_PREFIX}f"
FLEET_ADDRESS = str(ipaddress.IPv4Address(E2E_ADDRESS) + 4)
TIMEOUT_S = 30  # each host's time to answer `virtnet hosts` on a loaded 2-core machine
# Strings that sit in a busybox guest's memory (its init script, its console lines, its kernel).
PLAIN_MARKERS = (b"VIRTNET-TICK", b"VIRTNET-BOOTED", b"pci=nomsi")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    import os

    if os.geteuid() != 0:
        pytest.skip("end-to-end tests start daemons and namespaces: run as root (make test does)")
    lab = Lab(tmp_path_factory.mktemp("fleet"), prefix=FLEET_PREFIX, first_address=FLEET_ADDRESS)
    lab.up(hosts=3, hugepages_mib=1280)  # TLS, the lab's default; two 256 MiB guests moving at once, twice
    yield lab
    lab.down()


def _hosts(lab: Lab) -> list[LabHost]:
    state = lab.load()
    assert state is not None
    return state.hosts


def virtnet(
    lab: Lab, *args: str, check: bool = True, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "virtnet", "--hosts", str(lab.hosts_file), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and done.returncode != 0:
        raise AssertionError(
            f"virtnet {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        )
    return done


def virsh(host: LabHost, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """virsh over the host's qemu+tls:// URI, with the lab client's certificate."""
    assert host.uri.startswith("qemu+tls://")
    done = subprocess.run(["virsh", "-q", "-c", host.uri, *args], capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"virsh {' '.join(args)}: {done.stderr}")
    return done


def vsctl(host: LabHost, *args: str, pki_dir: Path | None = None) -> subprocess.CompletedProcess[str]:
    """ovs-vsctl over the host's ssl: remote with a client certificate (the lab's, unless `pki_dir`)."""
    files = pki_dir or host.client_pki
    assert host.ovsdb_tls_remote is not None
    return subprocess.run(
        [
            "ovs-vsctl",
            f"--db={host.ovsdb_tls_remote}",
            f"--private-key={files / 'clientkey.pem'}",
            f"--certificate={files / 'clientcert.pem'}",
            f"--ca-cert={files / 'cacert.pem'}",
            "--timeout=10",
            *args,
        ],
        capture_output=True,
        text=True,
        check=False,
    )


def _freepages(host: LabHost) -> dict[str, dict[str, int]]:
    """`virsh freepages --all` as {node: {'2048KiB': n, ...}}."""
    pages: dict[str, dict[str, int]] = {}
    node = ""
    for line in virsh(host, "freepages", "--all").stdout.splitlines():
        if m := re.match(r"Node (\d+):", line):
            node = m.group(1)
            pages[node] = {}
        elif (m := re.match(r"(\d+)KiB: (\d+)", line.strip())) and m.group(1) != "4":
            pages[node][f"{m.group(1)}KiB"] = int(m.group(2))  # hugepages only, as virtnet lists them
    return pages


def _vswitchd_version() -> str:
    """`ovs-vswitchd --version`'s 'Open vSwitch' line, last word (the DPDK build the lab runs)."""
    out = subprocess.run(
        ["/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk", "--version"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    (line,) = [line for line in out.splitlines() if "(Open vSwitch)" in line]
    return line.split()[-1]


def _fleet_rows(lab: Lab) -> dict[str, dict[str, Any]]:
    done = virtnet(lab, "hosts", "--json", "--timeout", str(TIMEOUT_S))
    return {row["name"]: row for row in json.loads(done.stdout)}


def test_fleet_view_agrees_with_virsh_and_ovs_vsctl_and_shows_a_down_host(fleet: Lab) -> None:
    hosts = _hosts(fleet)
    # The hugepage pool is the machine's: other labs change it. Compare while it holds still.
    for _attempt in range(5):
        before = {h.name: _freepages(h) for h in hosts}
        rows = _fleet_rows(fleet)
        if before == {h.name: _freepages(h) for h in hosts}:
            break
    else:
        pytest.fail("the machine's free hugepages kept changing; could not compare")
    for host in hosts:
        row = rows[host.name]
        assert row["reachable"] is True, row
        nodeinfo = dict(
            (key.strip(), value.strip())
            for key, _, value in (line.partition(":") for line in virsh(host, "nodeinfo").stdout.splitlines())
        )
        assert len(parse_cpuset(row["cpus_online"])) == int(nodeinfo["CPU(s)"])
        assert row["free_hugepages"] == before[host.name]
        assert sorted(row["cells"]) == sorted(before[host.name])  # one entry per NUMA node
        initialized = vsctl(host, "get", "Open_vSwitch", ".", "dpdk_initialized")
        assert initialized.returncode == 0, initialized.stderr
        assert initialized.stdout.strip() == "true"
        assert row["switch"]["dpdk_initialized"] is True
        dpdk = vsctl(host, "get", "Open_vSwitch", ".", "dpdk_version").stdout.strip().strip('"')
        assert row["switch"]["dpdk_version"] == dpdk
        # The lab records ovs_version as Debian's ovs-ctl does, from the switch binary's own word.
        ovs = vsctl(host, "get", "Open_vSwitch", ".", "ovs_version").stdout.strip().strip('"')
        assert row["switch"]["ovs_version"] == ovs == _vswitchd_version()
        assert row["switch"]["bridges"] == {"br0": "netdev"}
        assert sorted(row["running"]) == sorted(virsh(host, "list", "--name").stdout.split())

    down = hosts[2]
    with libvirtd_stopped(down):
        rows = _fleet_rows(fleet)
        assert virsh(down, "list", check=False).returncode != 0  # virsh agrees it is down
    assert rows[down.name]["reachable"] is False
    assert "cannot connect to libvirt" in rows[down.name]["error"]
    assert [rows[h.name]["reachable"] for h in hosts[:2]] == [True, True]


def test_lab_status_says_how_to_connect_and_virsh_and_ovs_vsctl_do_so(fleet: Lab) -> None:
    status = json.loads(
        subprocess.run(
            [sys.executable, "-m", "virtnet", "lab", "status", "--dir", str(fleet.base), "--json"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert status["hosts_file"] == str(fleet.hosts_file) and fleet.hosts_file.is_file()
    client = Path(status["client_pki"])
    for host in status["hosts"]:
        assert host["uri"].startswith("qemu+tls://")
        hostname = subprocess.run(["virsh", "-c", host["uri"], "hostname"], capture_output=True, text=True)
        assert hostname.returncode == 0, hostname.stderr
        assert hostname.stdout.strip() == host["name"]
        dpdk = subprocess.run(
            [
                "ovs-vsctl",
                f"--db={host['ovsdb_tls']}",
                f"--private-key={client / 'clientkey.pem'}",
                f"--certificate={client / 'clientcert.pem'}",
                f"--ca-cert={client / 'cacert.pem'}",
                "--timeout=10",
                "get",
                "Open_vSwitch",
                ".",
                "dpdk_initialized",
            ],
            capture_output=True,
            text=True,
        )
        assert (dpdk.returncode, dpdk.stdout.strip()) == (0, "true"), dpdk.stderr


def test_a_certificate_from_another_ca_is_refused(fleet: Lab, tmp_path: Path) -> None:
    host = _hosts(fleet)[0]
    foreign = pki.write_client(pki.create_authority("another CA"), tmp_path / "foreign")
    uri = host.uri.replace(str(host.client_pki), str(foreign))
    done = subprocess.run(
        [sys.executable, "-m", "virtnet", "-c", uri, "list"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 1
    (line,) = [line for line in done.stderr.splitlines() if line.startswith("virtnet: error:")]
    assert "Failed to verify peer's certificate" in line
    assert "the certificates do not match" in line
    refused = subprocess.run(["virsh", "-c", uri, "list"], capture_output=True, text=True, check=False)
    assert refused.returncode != 0
    assert vsctl(host, "get", "Open_vSwitch", ".", "dpdk_initialized", pki_dir=foreign).returncode != 0
    assert vsctl(host, "get", "Open_vSwitch", ".", "dpdk_initialized").returncode == 0  # the lab's own works


class LoopbackCapture:
    """Every TCP payload to or from `address` on `ports`, read off the loopback interface (AF_PACKET)."""

    def __init__(self, address: str, ports: range) -> None:
        self.address = socket.inet_aton(address)
        self.ports = ports
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(0x0003))
        self.sock.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)  # SO_RCVBUFFORCE: keep up under load
        self.sock.bind(("lo", 0))
        self.sock.settimeout(0.2)
        self.bytes = 0
        self.found: set[bytes] = set()
        self._tail = b""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> LoopbackCapture:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                frame = self.sock.recv(1 << 18)
            except TimeoutError:
                continue
            self._take(frame[14:])  # loopback frames carry a zeroed Ethernet header

    def _take(self, ip: bytes) -> None:
        if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 6:
            return
        header = (ip[0] & 0xF) * 4
        src, dst = ip[12:16], ip[16:20]
        sport, dport = struct.unpack("!HH", ip[header : header + 4])
        if not (
            (dst == self.address and dport in self.ports) or (src == self.address and sport in self.ports)
        ):
            return
        payload = ip[header + (ip[header + 12] >> 4) * 4 :]
        self.bytes += len(payload)
        window = self._tail + payload
        self.found |= {marker for marker in PLAIN_MARKERS if marker in window}
        self._tail = payload[-32:]


def _migration_ports(host: LabHost) -> range:
    first = 49152 + 64 * host.index  # as lab.py gives each host its migration_port_min..max
    return range(first, first + 64)


def test_tls_migration_with_to_carries_no_plain_memory(fleet: Lab, tmp_path: Path) -> None:
    a, b, c = _hosts(fleet)
    client_a = LabClient(fleet, a, tmp_path)
    client_b = LabClient(fleet, b, tmp_path)
    virtnet(fleet, "-H", a.name, "define", str(client_a.spec("tlsvm")))
    virtnet(fleet, "-H", a.name, "start", "tlsvm")
    client_a.wait_console("tlsvm", "VIRTNET-TICK 2")
    with LoopbackCapture(b.address, _migration_ports(b)) as capture:
        done = virtnet(fleet, "-H", a.name, "migrate", "tlsvm", "--to", b.name, "--unsafe", "--json")
    report = json.loads(done.stdout)
    assert "TLS" in report["flags"]
    assert capture.bytes > 8 << 20, "the capture saw no migration stream"  # 256 MiB guest, ~60 MiB sent
    assert capture.found == set()
    assert virsh(b, "domstate", "tlsvm").stdout.strip() == "running"
    assert "tlsvm" not in virsh(a, "list", "--all", "--name").stdout.split()
    assert "tlsvm-p0" in vsctl(b, "list-ports", "br0").stdout.split()
    assert "tlsvm-p0" not in vsctl(a, "list-ports", "br0").stdout.split()
    seen = max(client_b.ticks("tlsvm"))
    client_b.wait_console("tlsvm", f"VIRTNET-TICK {seen + 2}")
    assert client_b.console_log("tlsvm").read_text().count("VIRTNET-BOOTED") == 1  # the same boot

    # The control: the same capture sees guest memory when a migration does not ask for TLS.
    plain = client_a.spec("plainvm", vhost_user=False)
    virtnet(fleet, "-H", a.name, "define", str(plain))
    virtnet(fleet, "-H", a.name, "start", "plainvm")
    client_a.wait_console("plainvm", "VIRTNET-TICK 2")
    with LoopbackCapture(c.address, _migration_ports(c)) as capture:
        virsh(a, "migrate", "--live", "--p2p", "--persistent", "--undefinesource", "plainvm", c.uri)
    assert capture.found, f"no guest memory seen in {capture.bytes} plain bytes: the capture proves nothing"
    for host, name in ((b, "tlsvm"), (c, "plainvm")):
        virtnet(fleet, "-H", host.name, "stop", name, "--force")
        virtnet(fleet, "-H", host.name, "undefine", name)


@contextmanager
def free_hugepages_shown_as(host: LabHost, count: int, workdir: Path) -> Iterator[None]:
    """The host's libvirtd sees `count` free 2 MiB pages on node 0 (the kernel's pool is the machine's,
    shared by all lab hosts: a file bound over the sysfs counter in the host's mount namespace is
    what makes one host short of hugepages while the others are not)."""
    fake = workdir / f"{host.name}-free_hugepages"
    fake.write_text(f"{count}\n")
    target = "/sys/devices/system/node/node0/hugepages/hugepages-2048kB/free_hugepages"
    subprocess.run(
        ["nsenter", "-m", "-t", str(host.holder_pid), "mount", "--bind", str(fake), target], check=True
    )
    try:
        yield
    finally:
        subprocess.run(["nsenter", "-m", "-t", str(host.holder_pid), "umount", target], check=True)


@contextmanager
def pmd_cores(host: LabHost, mask: str) -> Iterator[None]:
    assert vsctl(host, "set", "Open_vSwitch", ".", f"other_config:pmd-cpu-mask={mask}").returncode == 0
    try:
        yield
    finally:
        assert vsctl(host, "remove", "Open_vSwitch", ".", "other_config", "pmd-cpu-mask").returncode == 0


def _state_everywhere(hosts: list[LabHost]) -> dict[str, tuple[list[str], list[str]]]:
    """Each host's domains (virsh) and br0 ports (ovs-vsctl), through their TLS connections."""
    return {
        h.name: (
            sorted(virsh(h, "list", "--all", "--name").stdout.split()),
            sorted(vsctl(h, "list-ports", "br0").stdout.split()),
        )
        for h in hosts
    }


def test_placement_refuses_short_hosts_picks_the_one_that_fits_and_replans_pins(
    fleet: Lab, tmp_path: Path
) -> None:
    a, b, c = _hosts(fleet)
    spec = LabClient(fleet, a, tmp_path).spec("placed", pin={"0": "1"})
    before = _state_everywhere([a, b, c])
    with (
        free_hugepages_shown_as(a, 3, tmp_path),
        pmd_cores(b, "0x3"),  # every CPU of b is a PMD core: none free for the pinned vCPU
        pmd_cores(c, "0x2"),  # CPU 1 is c's PMD core, CPU 0 free: the pin moves to 0
    ):
        dry = virtnet(fleet, "define", str(spec), "--host", "auto", "--dry-run")
        assert _state_everywhere([a, b, c]) == before  # the dry run changed nothing anywhere
        verdicts = {
            line.split(": ")[1]: line.split(": ", 2)[2]
            for line in dry.stderr.splitlines()
            if line.startswith("placement: ")
        }
        assert verdicts[a.name].startswith(
            "not enough hugepages: 128 2MiB pages needed on one node, node 0 has 3"
        )
        assert verdicts[b.name].startswith("CPUs 1 are taken")
        assert verdicts[c.name].startswith("chosen;")
        assert "pins re-planned 1->0" in verdicts[c.name]
        assert f"would define 'placed' on {c.uri}" in dry.stdout

        virtnet(fleet, "define", str(spec), "--host", "auto")
    after = _state_everywhere([a, b, c])
    assert after[a.name] == before[a.name] and after[b.name] == before[b.name]
    assert "placed" in after[c.name][0] and "placed-p0" in after[c.name][1]
    pins = virsh(c, "vcpupin", "placed", "--config").stdout.split()
    assert pins == ["0", "0"]  # vCPU 0 on host CPU 0, re-planned off c's PMD core
    socket = virsh(c, "dumpxml", "placed").stdout
    assert f"{c.vhost_dir}/placed.sock" in socket  # the chosen host's socket directory
    virtnet(fleet, "-H", c.name, "undefine", "placed")


def test_evacuate_moves_both_vms_with_their_ports_and_leaves_the_host_empty(
    fleet: Lab, tmp_path: Path
) -> None:
    a, b, c = _hosts(fleet)
    client = LabClient(fleet, a, tmp_path)
    for name in ("ev1", "ev2"):
        virtnet(fleet, "-H", a.name, "define", str(client.spec(name)))
        virtnet(fleet, "-H", a.name, "start", name)
    for name in ("ev1", "ev2"):
        client.wait_console(name, "VIRTNET-TICK 2")
    done = virtnet(fleet, "evacuate", a.name, "--parallel", "2", "--policy", "precopy", timeout=900)
    lines = done.stdout.splitlines()
    table = [line.split() for line in lines[[line.split()[:1] for line in lines].index(["VM"]) + 1 :]]
    moved = {row[0]: row[2] for row in table[:-1] if row[-1] == "moved"}
    assert sorted(moved) == ["ev1", "ev2"], done.stdout
    assert table[-1][:5] == ["2", "of", "2", "VMs", "moved"]
    by_name = {h.name: h for h in (b, c)}
    for name, dest_name in moved.items():
        dest = by_name[dest_name]
        assert virsh(dest, "domstate", name).stdout.strip() == "running"
        assert f"{name}-p0" in vsctl(dest, "list-ports", "br0").stdout.split()
        seen = max(client.ticks(name))
        client.wait_console(name, f"VIRTNET-TICK {seen + 2}")
        assert client.console_log(name).read_text().count("VIRTNET-BOOTED") == 1  # the same boot
    assert virsh(a, "list", "--all", "--name").stdout.split() == []
    assert [p for p in vsctl(a, "list-ports", "br0").stdout.split() if p != "lan0"] == []

    # migrate --to auto: not back to its own host, not to a (short of hugepages): to the third one
    here = by_name[moved["ev1"]]
    (there,) = [h for h in (b, c) if h is not here]
    with free_hugepages_shown_as(a, 3, tmp_path):
        auto = virtnet(fleet, "-H", here.name, "migrate", "ev1", "--to", "auto", "--policy", "precopy")
    assert f"placement: {there.name}: chosen;" in auto.stderr
    assert f"placement: {a.name}: not enough hugepages" in auto.stderr
    assert here.name not in auto.stderr  # the source is no candidate
    assert virsh(there, "domstate", "ev1").stdout.strip() == "running"
    assert "ev1-p0" in vsctl(there, "list-ports", "br0").stdout.split()
    assert "ev1-p0" not in vsctl(here, "list-ports", "br0").stdout.split()
    moved["ev1"] = there.name
    for name, dest_name in moved.items():
        virtnet(fleet, "-H", dest_name, "stop", name, "--force")
        virtnet(fleet, "-H", dest_name, "undefine", name)


def test_host_check_warns_about_tcp_without_auth_and_not_about_tls(fleet: Lab, lab0: LabClient) -> None:
    tcp = json.loads(lab0.virtnet("host", "check", "--json", check=False).stdout)
    (transport,) = [f for f in tcp if f["name"] == "transport"]
    assert transport["status"] == "warn" and "plain TCP that asked no credentials" in transport["detail"]
    assert lab0.host.uri.replace("+tcp://", "+tls://") in transport["fix"]
    tls = json.loads(
        virtnet(fleet, "-H", _hosts(fleet)[0].name, "host", "check", "--json", check=False).stdout
    )
    assert [f for f in tls if f["name"] == "transport"] == []
    assert [f["status"] for f in tls if f["name"] == "libvirt"] == ["ok"]
