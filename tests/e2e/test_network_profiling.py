"""`virtnet perf` on real Debian guests in the lab: the walkthrough's paths, its queues, and the
outage a peer sees while a guest moves.

Checked independently: the guests' own NIC and per-queue counters, `ethtool -l` and the udev rule
read through `virsh qemu-agent-command`, `ps` in the guest for the iperf3 server, `ovs-vsctl` for
the ports, `virsh metadata` for the stored report.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from lab_support import LabClient
from test_debian_guest import READY_S, WAIT

from virtnet.lab.debian_image import DebianImage
from virtnet.migration.report import MIGRATION_NS

PERF_WAIT = 240  # a perf run on two TCG guests: iperf3 for its seconds, ping, agent round trips


def counters(lab: LabClient, name: str, nic: str) -> dict[str, int]:
    """The guest's own counters for `nic`: bytes each way, and packets per queue (`ethtool -S`)."""
    found = {}
    for counter in ("tx_bytes", "rx_bytes"):
        done = lab.agent_exec(name, ["cat", f"/sys/class/net/{nic}/statistics/{counter}"])
        found[counter] = int(done["out-data"])
    stats = lab.agent_exec(name, ["ethtool", "-S", nic])["out-data"]
    for direction, queue, count in re.findall(r"(rx|tx)_queue_(\d+)_packets: (\d+)", stats):
        found[f"{direction}{queue}"] = int(count)
    return found


def perf_json(lab: LabClient, *args: str) -> dict[str, Any]:
    done = lab.virtnet("perf", *args, "--json", timeout=PERF_WAIT)
    data: dict[str, Any] = json.loads(done.stdout)
    return data


def test_perf_paths_queues_and_the_outage_of_a_move(
    lab0: LabClient, lab1: LabClient, debian_image: DebianImage, ssh_key: tuple[Path, str]
) -> None:
    _, public = ssh_key
    lab0.virtnet("define", str(lab0.perf_spec("perf-a", debian_image, key=public, octet=11, spare_nic=True)))
    lab0.virtnet("define", str(lab0.perf_spec("perf-b", debian_image, key=public, octet=12)))
    for name in ("perf-a", "perf-b"):
        lab0.virtnet("start", name)
    for name in ("perf-a", "perf-b"):
        lab0.virtnet("wait", name, "--for", "cloud-init", "--timeout", READY_S, timeout=WAIT)
    a_vhost, b_vhost = lab0.lan_address("vhost", 11), lab0.lan_address("vhost", 12)

    # The provisioning enabled all 4 queue pairs of the vhost-user NIC on a 2-vCPU guest, where
    # Linux alone enables 2: the walkthrough's `ethtool -L eth2 combined 4`, by a udev rule.
    channels = lab0.agent_exec("perf-a", ["ethtool", "-l", "eth2"])["out-data"]
    current = channels.split("Current hardware settings:")[1]
    assert re.search(r"Combined:\s+4", current), channels
    rule = lab0.agent_exec("perf-a", ["cat", "/etc/udev/rules.d/75-virtnet-queues.rules"])["out-data"]
    assert "combined 4" in rule
    shown = lab0.virtnet("show", "perf-a").stdout
    assert re.search(r"NIC 2 queues:\s+4 of 4 enabled in the guest, OVS num_of_vrings 8", shown), shown
    assert re.search(r"NIC 1:\s+bridge \S+ \(virtio, QEMU userspace backend\)", shown), shown

    # VM-VM over vhost-user with 8 streams: the figures match what the guests' NICs counted.
    a_before, b_before = counters(lab0, "perf-a", "eth2"), counters(lab0, "perf-b", "eth2")
    vm_vm = perf_json(lab0, "perf-a", "perf-b", "--nic", "2", "--streams", "8", "--seconds", "5")
    a_after, b_after = counters(lab0, "perf-a", "eth2"), counters(lab0, "perf-b", "eth2")
    assert (vm_vm["path"], vm_vm["nic_kind"], vm_vm["guest_nic"]) == ("VM-VM", "vhost-user/OVS-DPDK", "eth2")
    assert (vm_vm["src_address"], vm_vm["dst_address"]) == (a_vhost.split("/")[0], b_vhost.split("/")[0])
    sent = vm_vm["throughput"]
    assert (
        sent["streams"] == 8 and sent["receiver_bps"] > 0 and sent["sender_bps"] >= sent["receiver_bps"] * 0.5
    )
    tx = a_after["tx_bytes"] - a_before["tx_bytes"]
    rx = b_after["rx_bytes"] - b_before["rx_bytes"]
    # Headers and pings ride along; nothing else uses the NIC, so the counts are close to iperf3's.
    assert sent["bytes_received"] <= tx <= 1.3 * sent["bytes_sent"] + 2_000_000
    assert sent["bytes_received"] <= rx <= 1.3 * sent["bytes_sent"] + 2_000_000
    assert vm_vm["nic_bytes"] <= tx and vm_vm["warnings"] == []
    rtt = vm_vm["rtt"]
    assert rtt["transmitted"] == 10 and rtt["received"] == 10
    assert 0 < rtt["min_ms"] <= rtt["avg_ms"] <= rtt["max_ms"]
    busy = [q for q in range(4) if a_after[f"tx{q}"] > a_before[f"tx{q}"]]
    assert len(busy) > 1, (a_before, a_after)  # the guest's own counters: more than one queue sent
    assert sum(1 for q in vm_vm["queues"] if q["packets"] > 0) > 1
    # The iperf3 server is gone from perf-b (it served its one test, or perf killed it).
    procs = lab0.agent_exec("perf-b", ["ps", "-eo", "comm"])["out-data"].split()
    assert "iperf3" not in procs

    # VM-host: the host side of the vhost-user NIC is br0 in the lab host's namespace.
    vm_host = perf_json(
        lab0, "perf-a", "host", "--nic", "2", "--host-netns", lab0.host.netns, "--seconds", "3"
    )
    assert (vm_host["path"], vm_host["dst_address"]) == ("VM-host", lab0.host.lan_addresses[0].split("/")[0])
    assert vm_host["throughput"]["receiver_bps"] > 0 and vm_host["nic_share"] >= 0.9

    # VM-LAN: across the wire to the other lab host's br0.
    vm_lan = perf_json(lab0, "perf-a", "lan", "--nic", "2", "--lan-netns", lab1.host.netns, "--seconds", "3")
    assert (vm_lan["path"], vm_lan["dst_address"]) == ("VM-LAN", lab1.host.lan_addresses[0].split("/")[0])
    assert vm_lan["throughput"]["receiver_bps"] > 0 and vm_lan["nic_share"] >= 0.9

    # Paths that do not exist are refused in one line with the fix, exit 2.
    user = lab0.virtnet("perf", "perf-a", "perf-b", "--nic", "0", check=False)
    assert user.returncode == 2 and "user network isolates each guest" in user.stderr
    assert len(user.stderr.strip().splitlines()) == 1
    bare = lab0.virtnet("perf", "perf-a", "host", "--nic", "3", check=False)
    assert bare.returncode == 2 and "has no IPv4 address in the guest" in bare.stderr
    assert "nics[3].address" in bare.stderr

    # perf-b moves to the other host while perf-a pings it every 10 ms over the LAN.
    moved = lab0.virtnet(
        "migrate",
        "perf-b",
        lab1.host.uri,
        "--dest-ovsdb",
        lab1.host.ovsdb,
        "--dest-socket-dir",
        str(lab1.host.vhost_dir),
        "--probe",
        "perf-a",
        "--probe-nic",
        "2",
        "--unsafe",
        "--json",
        timeout=600,
    )
    report = json.loads(moved.stdout)["report"]
    assert report["outage_seen_by"] == "perf-a" and report["outage_ms"] is not None
    assert report["downtime_ms"] is not None
    stored = lab1.virsh("metadata", "perf-b", MIGRATION_NS).stdout
    assert f"<outage-ms>{report['outage_ms']}</outage-ms>" in stored
    assert "perf-b-p0" in lab1.vsctl("list-ports", "br0").split()
    assert "perf-b-p0" not in lab0.vsctl("list-ports", "br0").split()
    # Afterwards perf-a on host A reaches perf-b on host B over the LAN.
    ping = lab0.agent_exec("perf-a", ["ping", "-c", "3", "-W", "5", b_vhost.split("/")[0]])
    assert ping["exitcode"] == 0, ping
