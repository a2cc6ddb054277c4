"""The lab itself: up, crash, recover, down leaves nothing behind; the KVM probe's verdicts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from virtnet.errors import LabError
from virtnet.lab.hugepages import NR_HUGEPAGES
from virtnet.lab.lab import Lab
from virtnet.lab.process import alive, read_pid
from virtnet.virt import kvm_probe


def lab_pids(lab: Lab) -> list[int]:
    state = lab.load()
    assert state is not None
    pids = []
    for host in state.hosts:
        files = [
            Path(host.dir) / "libvirtd.pid",
            Path(host.dir) / "virtlogd.pid",
            host.ovs_dir / "ovsdb-server.pid",
            host.ovs_dir / "ovs-vswitchd.pid",
        ]
        pids += [pid for pid in map(read_pid, files) if pid] + [host.holder_pid or 0]
    return pids


def test_down_after_a_crash_stops_exactly_what_up_started(lab: Lab, tmp_path: Path) -> None:
    pool_before = int(NR_HUGEPAGES.read_text())
    crashy = Lab(tmp_path / "crashy", prefix="vntcrash", first_address="127.0.0.30")
    crashy.up(hosts=1, hugepages_mib=64)
    try:
        with pytest.raises(LabError, match="already up"):
            crashy.up(hosts=1)
        first = lab_pids(crashy)
        libvirtd = read_pid(Path(crashy.load().hosts[0].dir) / "libvirtd.pid")  # type: ignore[union-attr]
        os.kill(libvirtd, signal.SIGKILL)  # type: ignore[arg-type]
        deadline = time.monotonic() + 5
        while alive(libvirtd) and time.monotonic() < deadline:  # the kernel delivers SIGKILL async
            time.sleep(0.05)
        crashy.up(hosts=1, hugepages_mib=64)  # notices the dead daemon, clears up, starts again
        assert not any(alive(pid) for pid in first)
        second = lab_pids(crashy)
        assert all(alive(pid) for pid in second)
    finally:
        crashy.down()
    assert not any(alive(pid) for pid in second)
    assert not Path("/run/netns/vntcrash0").exists()
    assert int(NR_HUGEPAGES.read_text()) == pool_before
    assert lab.health(lab.load())[0].libvirtd  # type: ignore[arg-type]  # the session lab is untouched


def test_probe_recognises_a_guest_that_boots(lab: Lab) -> None:
    verdict = kvm_probe._boot(lab.guest_dir / "vmlinuz", 60, accel="tcg")
    assert verdict.usable, verdict.reason


def test_lab_records_the_probes_verdict(lab: Lab) -> None:
    state = lab.load()
    assert state is not None
    verdict = kvm_probe.cached_verdict()
    assert verdict is not None
    assert state.virt_type == ("kvm" if verdict.usable else "qemu")


def test_status_reports_each_host_as_the_real_clients_see_it(lab: Lab) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "virtnet", "lab", "status", "--dir", str(lab.base), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    status = json.loads(done.stdout)
    host = status["hosts"][0]
    assert host["libvirtd"] == "up" and host["ovs"] == "up"
    # The host is a host of its own: its hostname, and a DPDK switch answering on its socket.
    hostname = subprocess.run(
        ["virsh", "-c", host["uri"], "hostname"], capture_output=True, text=True, check=True
    )
    assert hostname.stdout.strip() == host["name"] == f"{lab.prefix}0"
    dpdk = subprocess.run(
        [
            "ovs-vsctl",
            f"--db={host['ovsdb']}",
            "--timeout=10",
            "get",
            "Open_vSwitch",
            ".",
            "dpdk_initialized",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert dpdk.stdout.strip() == "true"
    assert status["guests"]["virt_type"] == lab.load().virt_type  # type: ignore[union-attr]
