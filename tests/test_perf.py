"""`virtnet perf` without guests: reading iperf3's and ping's reports, choosing the path, the table;
and the pieces it rests on: Linux bridge NICs, the queues provisioning, the lab's LAN names.

The measurements themselves run on real guests in tests/e2e/test_network_profiling.py.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import pytest
import yaml
from lxml import etree
from test_cli import virtnet
from test_provisioning import spec_dict

from virtnet.cloudinit import build_seed
from virtnet.domxml import HostChoices, render_domain, validate_domain
from virtnet.errors import PathUnavailable, PerfFailed
from virtnet.lab import lan
from virtnet.perf import display
from virtnet.perf.endpoint import GuestEndpoint, GuestNicInfo, HostEndpoint
from virtnet.perf.measure import PathResult, PerfOptions, QueueShare, route
from virtnet.perf.probe import outage
from virtnet.perf.run import Cell, Matrix, _ratios
from virtnet.perf.tools import Rtt, Throughput, combined_channels, iperf3_client, ping_summary, queue_packets
from virtnet.spec import VMSpec, spec_from_dict
from virtnet.spec.checks import find_problems, find_warnings

# Trimmed from a real `iperf3 -c ... -J -P 2 -t 1` run in the lab (iperf 3.12).
IPERF3_JSON = {
    "start": {"version": "iperf 3.12"},
    "end": {
        "streams": [{"sender": {}}, {"sender": {}}],
        "sum_sent": {
            "seconds": 1.000126,
            "bytes": 13918176,
            "bits_per_second": 111331380.2,
            "retransmits": 1516,
        },
        "sum_received": {"seconds": 1.023821, "bytes": 12452432, "bits_per_second": 97301633.8},
    },
}
PING_OK = b"""PING 10.78.40.2 (10.78.40.2) from 10.78.40.1 : 56(84) bytes of data.

--- 10.78.40.2 ping statistics ---
3 packets transmitted, 3 received, 0% packet loss, time 401ms
rtt min/avg/max/mdev = 0.757/2.577/6.059/2.462 ms
"""
PING_LOST = b"""--- 10.78.40.9 ping statistics ---
3 packets transmitted, 0 received, 100% packet loss, time 2040ms
"""
ETHTOOL_S = b"""NIC statistics:
     rx_queue_0_packets: 120
     rx_queue_0_bytes: 9000
     rx_queue_1_packets: 7
     tx_queue_0_packets: 300
     tx_queue_1_packets: 0
"""
ETHTOOL_L = b"""Channel parameters for eth2:
Pre-set maximums:
RX:		n/a
TX:		n/a
Other:		n/a
Combined:	4
Current hardware settings:
RX:		n/a
TX:		n/a
Other:		n/a
Combined:	4
"""


def test_iperf3_report_is_read_from_its_json() -> None:
    result = iperf3_client(json.dumps(IPERF3_JSON).encode(), "vm1")
    assert result.sender_bps == pytest.approx(111331380.2)
    assert result.receiver_bps == pytest.approx(97301633.8)
    assert (result.retransmits, result.streams, result.bytes_sent) == (1516, 2, 13918176)


@pytest.mark.parametrize(
    ("stdout", "words"),
    [
        (b'{"start": {}, "error": "unable to connect to server: Connection refused"}', "Connection refused"),
        (b"iperf3: error - unable to send control message", "printed no JSON"),
        (b'{"end": {}}', "no totals"),
    ],
)
def test_a_failed_iperf3_is_one_error_with_its_reason(stdout: bytes, words: str) -> None:
    with pytest.raises(PerfFailed, match=words):
        iperf3_client(stdout, "vm1")


def test_ping_summary_and_total_loss() -> None:
    ok = ping_summary(PING_OK, "vm1")
    assert (ok.transmitted, ok.received, ok.loss_pct) == (3, 3, 0.0)
    assert (ok.min_ms, ok.avg_ms, ok.max_ms, ok.mdev_ms) == (0.757, 2.577, 6.059, 2.462)
    lost = ping_summary(PING_LOST, "vm1")
    assert (lost.received, lost.loss_pct, lost.avg_ms) == (0, 100.0, None)
    with pytest.raises(PerfFailed, match="no summary"):
        ping_summary(b"ping: connect: Network is unreachable\n", "vm1")


def test_ethtool_queue_counters_and_channels() -> None:
    assert queue_packets(ETHTOOL_S) == {("rx", 0): 120, ("rx", 1): 7, ("tx", 0): 300, ("tx", 1): 0}
    assert combined_channels(ETHTOOL_L) == (4, 4)
    assert combined_channels(b"netlink error: Operation not supported\n") is None


# The path: fakes that answer like a guest's agent and a host's `ip addr`.


class FakeGuest(GuestEndpoint):
    def __init__(self, label: str, nics: dict[int, tuple[str, str, bool]]) -> None:
        self.label = label
        self._nics = nics  # index -> (guest name, address, is_user)

    def nic(self, index: int | None) -> GuestNicInfo:
        index = 0 if index is None else index
        name, address, is_user = self._nics[index]
        kind = "user/virtio" if is_user else "vhost-user/OVS-DPDK"
        return GuestNicInfo(index, kind, is_user, 1, name, ipaddress.IPv4Interface(address))

    def addresses(self) -> list[ipaddress.IPv4Interface]:
        return [ipaddress.IPv4Interface(address) for _, address, _ in self._nics.values()]


class FakeHost(HostEndpoint):
    def __init__(self, addresses: list[str], netns: str | None = None) -> None:
        super().__init__(netns)
        self._addresses = addresses

    def addresses(self) -> list[ipaddress.IPv4Interface]:
        return [ipaddress.IPv4Interface(a) for a in self._addresses]


VM1 = FakeGuest("vm1", {0: ("eth0", "10.0.2.15/24", True), 1: ("eth1", "10.78.2.11/24", False)})
VM2 = FakeGuest("vm2", {0: ("eth0", "10.0.2.15/24", True), 1: ("eth1", "10.78.2.12/24", False)})
VM3 = FakeGuest("vm3", {0: ("eth0", "10.0.2.15/24", True)})


def test_the_route_aims_at_the_other_end_in_the_nics_subnet() -> None:
    way = route(VM1, VM2, 1)
    assert (way.client_bind, way.server_bind, way.target, way.vm_is_client) == (
        "10.78.2.11",
        "10.78.2.12",
        "10.78.2.12",
        True,
    )
    host = FakeHost(["192.0.2.2/24", "10.78.2.1/24"], netns="lab0")
    back = route(host, VM1, 1)  # the host sends to the VM: the VM's NIC is still the one measured
    assert (back.client_bind, back.target, back.vm_is_client, back.nic.name) == (
        "10.78.2.1",
        "10.78.2.11",
        False,
        "eth1",
    )


def test_a_user_nic_reaches_the_host_as_10_0_2_2_and_the_lan_through_qemus_nat() -> None:
    way = route(VM1, FakeHost(["192.0.2.2/24"]), 0)
    assert (way.target, way.server_bind) == ("10.0.2.2", "127.0.0.1")
    lan_end = route(VM3, FakeHost(["10.78.2.2/24"], netns="lab1"), 0)
    assert (lan_end.target, lan_end.server_bind) == ("10.78.2.2", "10.78.2.2")
    # A guest with its own NIC in that subnet would send the user NIC's traffic there instead.
    with pytest.raises(PathUnavailable, match=r"directly through its NIC with 10\.78\.2\.11/24"):
        route(VM1, FakeHost(["10.78.2.2/24"], netns="lab1"), 0)
    with pytest.raises(PathUnavailable, match="user NIC: nothing outside can connect"):
        route(FakeHost(["192.0.2.2/24"]), VM1, 0)


def test_a_path_that_does_not_exist_is_refused_naming_the_subnet() -> None:
    with pytest.raises(PathUnavailable, match=r"no address in 10\.78\.2\.0/24"):
        route(VM1, FakeHost(["192.0.2.2/24"]), 1)
    with pytest.raises(PathUnavailable, match="user network isolates each guest"):
        route(VM1, VM2, 0)
    with pytest.raises(PathUnavailable, match="both the host"):
        route(FakeHost([]), FakeHost([]), None)
    assert PathUnavailable.exit_code == 2


def result(kind: str, path: str, mbit: float, rtt_ms: float, nic_bytes: int = 10**9) -> PathResult:
    throughput = Throughput(mbit * 1e6, mbit * 1e6, 0, 10**9, 10**9, 10.0, 4)
    rtt = Rtt(10, 10, 0.0, rtt_ms, rtt_ms, rtt_ms, 0.0)
    return PathResult(
        "vm1", "vm2", path, 1, kind, "eth1", "a", "b", throughput, rtt, nic_bytes, None, PerfOptions()
    )


def test_matrix_compares_vhost_user_with_the_best_virtio_nic_per_path() -> None:
    cells = [
        Cell(0, "user/virtio", "VM-host", result("user/virtio", "VM-host", 100, 2.0)),
        Cell(1, "bridge/virtio (qemu)", "VM-host", result("bridge/virtio (qemu)", "VM-host", 200, 1.0)),
        Cell(2, "vhost-user/OVS-DPDK", "VM-host", result("vhost-user/OVS-DPDK", "VM-host", 300, 0.5)),
        Cell(0, "user/virtio", "VM-VM", None, "QEMU's user network isolates each guest"),
    ]
    ratios = {(r.path, r.metric): r for r in _ratios(cells)}
    assert ratios[("VM-host", "throughput")].value == pytest.approx(1.5)
    assert ratios[("VM-host", "throughput")].versus == "bridge/virtio (qemu)"
    assert ratios[("VM-host", "rtt")].value == pytest.approx(0.5)
    assert ("VM-VM", "throughput") not in ratios  # nothing measured there to compare
    text = "\n".join(display.matrix_lines(Matrix(["vm1", "vm2"], cells, _ratios(cells), PerfOptions())))
    assert "300.0 Mbit/s" in text and "n/a: NIC 0 VM-VM: QEMU's user network isolates each guest" in text
    assert "VM-host throughput: vhost-user/OVS-DPDK / bridge/virtio (qemu) = 1.50x" in text


def test_a_path_whose_bytes_did_not_cross_the_nic_is_flagged() -> None:
    assert result("vhost-user/OVS-DPDK", "VM-VM", 100, 1.0).warnings == []
    stray = result("vhost-user/OVS-DPDK", "VM-VM", 100, 1.0, nic_bytes=10**6)
    assert "traffic took another path" in stray.warnings[0]
    shared = PathResult(**{**vars(stray), "queues": [QueueShare(0, 5), QueueShare(1, 0)]})
    assert any("1 of 2 queues carried traffic" in line for line in display.path_lines(shared))


# Linux bridge NICs and the queues provisioning.


def bridge_spec(**nic: Any) -> dict[str, Any]:
    return spec_dict(nics=[{"type": "bridge", "bridge": "br-lan", "address": "10.79.2.11/24", **nic}])


@pytest.mark.parametrize(("vhost_net", "driver"), [(True, "vhost"), (False, "qemu"), (None, None)])
def test_bridge_nic_says_which_backend_it_gets(vhost_net: bool | None, driver: str | None) -> None:
    spec = spec_from_dict(bridge_spec(queues=2))
    domain = render_domain(spec, HostChoices(virt_type="qemu", vhost_net=vhost_net))
    validate_domain(domain)
    iface = etree.fromstring(domain.to_xml().encode()).find("devices/interface")
    assert iface is not None
    assert (iface.get("type"), iface.find("source").get("bridge")) == ("bridge", "br-lan")  # type: ignore[union-attr]
    assert iface.find("driver").get("name") == driver  # type: ignore[union-attr]
    assert iface.find("driver").get("queues") == "2"  # type: ignore[union-attr]
    forced = spec_from_dict(bridge_spec(backend="qemu"))
    xml = render_domain(forced, HostChoices(virt_type="qemu", vhost_net=True)).to_xml()
    assert '<driver name="qemu"/>' in xml


@pytest.mark.parametrize(
    ("nic", "path", "words"),
    [
        ({"model": "e1000", "queues": 2}, "nics[0].queues", "only virtio"),
        ({"model": "e1000", "backend": "vhost"}, "nics[0].backend", "vhost-net drives virtio NICs only"),
    ],
)
def test_bridge_nic_mistakes_name_the_field(nic: dict[str, Any], path: str, words: str) -> None:
    problems = find_problems(VMSpec.parse(bridge_spec(**nic)))
    assert [p.path for p in problems] == [path] and words in str(problems[0])


def test_the_guest_enables_every_queue_pair_by_a_udev_rule_matched_by_mac() -> None:
    spec = spec_from_dict(bridge_spec(queues=4, mac="52:54:00:12:34:56"))
    seed = build_seed(spec)
    assert seed is not None
    data = yaml.safe_load(seed.user_data)
    rule = next(f for f in data["write_files"] if f["path"] == "/etc/udev/rules.d/75-virtnet-queues.rules")
    assert 'ATTR{address}=="52:54:00:12:34:56"' in rule["content"]
    assert 'RUN+="/usr/sbin/ethtool -L $name combined 4"' in rule["content"]
    assert data["runcmd"][0] == ["udevadm", "trigger", "--action=change", "--subsystem-match=net"]
    # A spec's own runcmd and write_files stay, after the rule.
    assert ["touch", "/run/provisioned"] in data["runcmd"]
    assert data["write_files"][-1]["path"] == "/etc/motd"
    single = yaml.safe_load(build_seed(spec_from_dict(bridge_spec())).user_data)  # type: ignore[union-attr]
    assert all("queues" not in f["path"] for f in single["write_files"])
    # No more a warning about ethtool: the provisioning does it (without [cloud_init] it warns).
    assert not [w for w in find_warnings(spec) if w.path == "nics[0].queues"]
    bare = spec_from_dict({**bridge_spec(queues=4, address=None), "cloud_init": None})
    assert [w.path for w in find_warnings(bare)] == ["nics[0].queues"]


# The lab's LAN.


def test_lan_names_fit_linux_and_subnets_follow_the_labs_address() -> None:
    assert lan.bridge_name("vnte2e") == "vnte2e-lan"
    long = lan.ifname("averyverylongpre", "h7")
    assert len(long) <= 15 and long == lan.ifname("averyverylongpre", "h7")
    assert long != lan.ifname("averyverylongprf", "h7")
    ovs, bridge = lan.subnets(ipaddress.IPv4Address("127.0.0.20"))
    assert (str(ovs), str(bridge)) == ("10.78.20.0/24", "10.79.20.0/24")
    assert lan.host_addresses((ovs, bridge), 1) == ["10.78.20.2/24", "10.79.20.2/24"]
    assert lan.bridge_addresses((ovs,)) == ["10.78.20.254/24"]


def test_perf_refuses_bad_ends_in_one_line() -> None:
    one = virtnet("-c", "test:///default", "perf", "vm1")
    assert one.exit_code == 2 and "perf takes SRC and DST (1 given)" in one.output
    mixed = virtnet("-c", "test:///default", "perf", "--matrix", "vm1", "--nic", "1")
    assert mixed.exit_code == 2 and "leave out --nic" in mixed.output
    lan_only = virtnet("-c", "test:///default", "perf", "test", "lan")
    assert lan_only.exit_code == 2 and "needs --lan-netns" in lan_only.output
    no_agent = virtnet("-c", "test:///default", "perf", "test", "host")
    assert no_agent.exit_code == 2 and "not defined by virtnet" in no_agent.output


# The outage probe: ping -D's timestamped replies during a migration.

PROBE = b"""PING 10.78.40.12 (10.78.40.12) from 10.78.40.11 : 56(84) bytes of data.
[1764500000.000000] 64 bytes from 10.78.40.12: icmp_seq=1 ttl=64 time=0.9 ms
[1764500000.010000] 64 bytes from 10.78.40.12: icmp_seq=2 ttl=64 time=0.8 ms
[1764500000.250000] 64 bytes from 10.78.40.12: icmp_seq=26 ttl=64 time=1.1 ms
[1764500000.260000] 64 bytes from 10.78.40.12: icmp_seq=27 ttl=64 time=0.9 ms
"""


def test_probe_reports_the_longest_gap_between_replies() -> None:
    seen = outage(PROBE, "vm1", "10.78.40.12", stopped_at=1764500000.3)
    assert (seen.longest_gap_ms, seen.sent, seen.received, seen.replied_after) == (240.0, 27, 4, True)
    assert seen.lost_run_ms == 240.0  # seq 2 -> 26: 24 send intervals
    # A guest that never answered again: the gap runs to the probe's end.
    gone = outage(PROBE, "vm1", "10.78.40.12", stopped_at=1764500005.26)
    assert (gone.longest_gap_ms, gone.replied_after, gone.lost_run_ms) == (5000.0, False, None)
    assert outage(b"", "vm1", "10.78.40.12", stopped_at=0.0).longest_gap_ms is None
