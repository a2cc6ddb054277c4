"""Live migration between the lab's two libvirt hosts, each with its own OVS-DPDK switch.

Results are read with virsh, ovs-vsctl and the guest's own console, never with virtnet.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from lab_support import LabClient, hugepages_free, libvirtd_stopped
from lxml import etree

from virtnet.lab.hugepages import NR_HUGEPAGES
from virtnet.migration.policy import CONVERGES_EASILY, NEVER_CONVERGES
from virtnet.migration.report import MIGRATION_NS

VIRSH_PATIENCE_S = 40  # how long `virsh migrate` with default flags gets to converge


def migrate_args(a: LabClient, b: LabClient, name: str, *extra: str) -> list[str]:
    return [
        "migrate",
        name,
        b.host.uri,
        "--dest-ovsdb",
        b.host.ovsdb,
        "--dest-socket-dir",
        str(b.host.vhost_dir),
        *extra,
    ]


def boot(client: LabClient, name: str, **spec: object) -> None:
    client.virtnet("define", str(client.spec(name, **spec)))
    client.virtnet("start", name)
    client.wait_console(name, "VIRTNET-TICK 2")


def wait_for(condition, what: str, timeout: float = 60.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"{what}: not within {timeout:g} s")


def ports(client: LabClient) -> list[str]:
    return client.vm_ports()


def names(client: LabClient) -> list[str]:
    return client.virsh("list", "--all", "--name").stdout.split()


def test_guest_moves_with_its_counter_its_port_and_its_definition(lab0: LabClient, lab1: LabClient) -> None:
    a, b = lab0, lab1
    boot(a, "mover", ips=("10.7.0.1/24",))
    uuid = a.virsh("domuuid", "mover").stdout.strip()
    before = a.ticks("mover")

    done = a.virtnet(*migrate_args(a, b, "mover", "--json"))
    report = json.loads(done.stdout)["report"]

    # Gone from A with its port; running and persistent on B.
    assert "mover" not in names(a)
    assert "mover-p0" not in ports(a)
    assert b.virsh("domstate", "mover").stdout.strip() == "running"
    info = b.virsh("dominfo", "mover").stdout
    assert "Persistent:     yes" in info and uuid in info
    # The guest did not reboot: its counter goes on past where it was, in one boot.
    last = before[-1]
    wait_for(lambda: max(a.ticks("mover")) >= last + 3, "the counter going on after the migration")
    assert a.console_log("mover").read_text().count("VIRTNET-BOOTED") == 1
    # Its port on B's OVS, the os-vif ids unchanged, the socket where B's QEMU serves it.
    assert "mover-p0" in ports(b)
    wait_for(lambda: b.vsctl("get", "Interface", "mover-p0", "link_state") == "up", "link up on B")
    assert b.vsctl("get", "Interface", "mover-p0", "external_ids:vm-uuid") == f'"{uuid}"'
    socket = str(b.host.vhost_dir / "mover.sock")
    assert b.vsctl("get", "Interface", "mover-p0", "options:vhost-server-path") == f'"{socket}"'
    xml = etree.fromstring(b.virsh("dumpxml", "mover").stdout.encode())
    assert xml.xpath("string(devices/interface/source/@path)") == socket
    inactive = etree.fromstring(b.virsh("dumpxml", "--inactive", "mover").stdout.encode())
    assert inactive.xpath("string(devices/interface/source/@path)") == socket
    # The report, in B's metadata, as virsh reads it.
    stored = etree.fromstring(b.virsh("metadata", "mover", MIGRATION_NS).stdout.encode())
    assert stored.findtext("policy") == report["policy"] == "precopy"
    assert int(stored.findtext("total-ms")) == report["total_ms"] > 0
    assert stored.findtext("downtime-ms") == str(report["downtime_ms"])
    assert stored.findtext("stats-from").startswith("source (libvirt's job-completed event")
    assert report["downtime_ms"] >= 0 and report["transferred_bytes"] > 0
    assert "Last migration:" in b.virtnet("show", "mover").stdout


def dirty_rate_mib_s(client: LabClient, name: str, dirty_mib: int) -> float:
    """How fast the guest rewrites its region, from its own console (passes per second of uptime).

    Under TCG this depends on the machine: 190 MiB/s where the issue was written, 55-60 MiB/s on
    another machine of the same kind, so the cap below is chosen from it, not hard-coded.
    """
    wait_for(lambda: "passes=3" in client.console_log(name).read_text(), "three passes of the loop", 120)
    ticks = re.findall(r"up=([\d.]+) passes=(\d+)", client.console_log(name).read_text())
    first = {int(p): float(up) for up, p in reversed(ticks)}  # the first tick of each pass count
    return dirty_mib * 2 / (first[3] - first[1])


def test_busy_guest_converges_where_virsh_defaults_do_not(lab0: LabClient, lab1: LabClient) -> None:
    """The issue's workload: 1 GiB guest rewriting 256 MiB, migration capped below its dirty rate
    (the issue's 100 MiB/s, or half the rate this machine's TCG guest reaches, if that is lower)."""
    a, b = lab0, lab1
    boot(a, "busy", memory="1GiB", dirty_mib=256, vhost_user=False, hugepages=False)
    rate = dirty_rate_mib_s(a, "busy", 256)
    cap = str(max(10, min(100, int(rate / 2))))

    virsh = subprocess.Popen(
        ["virsh", "-c", a.host.uri, "migrate", "--live", "--p2p", "--persistent", "--undefinesource",
         "--bandwidth", cap, "busy", b.host.uri],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        virsh.wait(VIRSH_PATIENCE_S)
    except subprocess.TimeoutExpired:
        a.virsh("domjobabort", "busy")
    _out, err = virsh.communicate(timeout=60)
    assert virsh.returncode != 0, "virsh migrate with default flags converged after all"
    assert "abort" in err.lower()
    assert a.virsh("domstate", "busy").stdout.strip() == "running"
    assert "busy" not in names(b)

    # ~30 s here (100 s in a full run); a job still running at the timeout gets a Ctrl-C (lab_support)
    done = a.virtnet(*migrate_args(a, b, "busy", "--bandwidth", cap, "--json"), timeout=300)
    report = json.loads(done.stdout)["report"]
    assert b.virsh("domstate", "busy").stdout.strip() == "running"
    assert "busy" not in names(a)
    assert report["total_ms"] > 0 and report["downtime_ms"] >= 0 and report["transferred_bytes"] > 0
    assert "dirty rate" in report["reason"]
    # Page sampling may read the guest lower than its console does (it counts distinct pages, and a
    # loaded machine slows the guest during the 1 s sample: 26 MiB/s against a 27 MiB/s cap once),
    # so the expected policy follows the rate the report says was sampled, against the cap.
    ratio = report["dirty_rate_mib_s"] / int(cap)
    expected = (
        "precopy" if ratio < CONVERGES_EASILY else "auto-converge" if ratio < NEVER_CONVERGES else "postcopy"
    )
    assert report["policy"] == expected, report
    stored = etree.fromstring(b.virsh("metadata", "busy", MIGRATION_NS).stdout.encode())
    assert stored.findtext("policy") == report["policy"]


# --- failures: a clear error, the guest still running on A with its port, nothing on B ------------


@pytest.fixture(scope="module")
def staying(tmp_path_factory: pytest.TempPathFactory, lab) -> Iterator[tuple[LabClient, LabClient]]:  # type: ignore[no-untyped-def]
    state = lab.load()
    workdir = tmp_path_factory.mktemp("staying")
    a, b = LabClient(lab, state.hosts[0], workdir), LabClient(lab, state.hosts[1], workdir)
    # 24 MiB of random data written once (the guest then waits for a VIRTNET-GO never typed, idle):
    # at the Ctrl-C tests' 2 MiB/s cap no job can finish before the interrupt, mostly-zero memory could.
    boot(a, "stay", ips=("10.8.0.1/24",), dirty_mib=24, dirty_wait=True)
    yield a, b
    for client in (a, b):  # on B too: a failed test may have let it move, and its hugepages with it
        client.virsh("destroy", "stay", check=False)
        client.virsh("undefine", "stay", check=False)
        for port in ports(client):
            client.vsctl("del-port", "br0", port)


def assert_nothing_happened(a: LabClient, b: LabClient, result: subprocess.CompletedProcess[str]) -> str:
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("virtnet: error: "), result.stderr
    assert a.virsh("domstate", "stay").stdout.strip() == "running"
    assert "stay-p0" in ports(a)
    wait_for(lambda: "stay" not in names(b), "no domain left on B", timeout=10)
    assert ports(b) == []
    before = max(a.ticks("stay"))
    wait_for(lambda: max(a.ticks("stay")) > before, "the guest still counting on A")
    return line


def test_destination_libvirtd_down(staying: tuple[LabClient, LabClient]) -> None:
    a, b = staying
    with libvirtd_stopped(b.host):
        result = a.virtnet(*migrate_args(a, b, "stay"), check=False)
    assert result.returncode == 1
    line = assert_nothing_happened(a, b, result)
    assert f"cannot connect to libvirt at {b.host.uri}" in line
    assert "the destination's libvirtd" in line


def test_name_taken_on_destination(staying: tuple[LabClient, LabClient], tmp_path: Path) -> None:
    a, b = staying
    other = tmp_path / "other.xml"
    other.write_text(
        "<domain type='qemu'><name>stay</name><memory unit='MiB'>64</memory>"
        "<os><type arch='x86_64'>hvm</type></os></domain>"
    )
    b.virsh("define", str(other))
    theirs = b.virsh("domuuid", "stay").stdout.strip()
    try:
        result = a.virtnet(*migrate_args(a, b, "stay"), check=False)
        assert result.returncode == 2
        assert "a domain named 'stay' already exists on" in result.stderr
        assert b.virsh("domuuid", "stay").stdout.strip() == theirs  # theirs, untouched
        assert ports(b) == []
    finally:
        b.virsh("undefine", "stay")
    assert_nothing_happened(a, b, result)


def test_not_enough_hugepages_on_destination(staying: tuple[LabClient, LabClient]) -> None:
    a, b = staying
    # The lab's hosts share this machine's pool: shrink it until 64 pages are free, fewer than the
    # guest's 128.
    total = int(NR_HUGEPAGES.read_text())
    NR_HUGEPAGES.write_text(str(total - hugepages_free() + 64))
    try:
        result = a.virtnet(*migrate_args(a, b, "stay"), check=False)
    finally:
        NR_HUGEPAGES.write_text(str(total))
    assert result.returncode == 2
    line = assert_nothing_happened(a, b, result)
    assert "free hugepages of 2048 KiB, the guest needs 128" in line


def test_timeout_aborts_and_leaves_nothing(staying: tuple[LabClient, LabClient]) -> None:
    a, b = staying
    result = a.virtnet(
        *migrate_args(a, b, "stay", "--policy", "precopy", "--bandwidth", "2", "--timeout", "3"), check=False
    )
    assert result.returncode == 1
    line = assert_nothing_happened(a, b, result)
    assert "did not complete: the --timeout was reached" in line


def test_ctrl_c_twice_aborts_and_leaves_nothing(staying: tuple[LabClient, LabClient]) -> None:
    """The first Ctrl-C asks libvirt to abort; a second one, while that winds down, only says so."""
    a, b = staying
    command = [sys.executable, "-m", "virtnet", "-c", a.host.uri, "--ovsdb", a.host.ovsdb]
    run = subprocess.Popen(
        [*command, *migrate_args(a, b, "stay", "--policy", "precopy", "--bandwidth", "2")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    # Interrupt once the job runs: B's QEMU is up (the domain exists there, paused for incoming).
    wait_for(lambda: "stay" in names(b) or run.poll() is not None, "the job running on B")
    time.sleep(1)
    run.send_signal(signal.SIGINT)
    time.sleep(0.1)
    run.send_signal(signal.SIGINT)
    out, err = run.communicate(timeout=120)
    result = subprocess.CompletedProcess(run.args, run.returncode, out, err)
    assert run.returncode == 1, err
    line = assert_nothing_happened(a, b, result)
    assert "did not complete: it was interrupted" in line
    assert "Traceback" not in err
