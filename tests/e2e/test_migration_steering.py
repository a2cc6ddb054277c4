"""Migration steering, post-copy with vhost-user, and --copy-storage between the lab's two hosts.

The lab's switches start with vhost-user post-copy support (conftest.py). Results are read with
virsh, ovs-vsctl, ping from a host's namespace and the guest's own console, never with virtnet.
Busybox guests throughout: none of this needs a real OS.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from lab_support import LabClient
from lxml import etree
from test_live_migration import boot, migrate_args, names, wait_for

from virtnet.migration.report import MIGRATION_NS


def assert_every_figure(report: dict[str, Any]) -> None:
    """No report says 'unknown': total, downtime and transferred are numbers, whatever the path."""
    assert isinstance(report["total_ms"], int) and report["total_ms"] > 0, report
    assert isinstance(report["downtime_ms"], int) and report["downtime_ms"] >= 0, report
    assert isinstance(report["transferred_bytes"], int) and report["transferred_bytes"] > 0, report


def test_steering_escalates_when_the_guest_gets_busy_after_the_sample(
    lab0: LabClient, lab1: LabClient
) -> None:
    a, b = lab0, lab1
    # The guest fills 96 MiB once and then waits: virtnet's 1 s sample sees an idle guest.
    boot(a, "late", memory="256MiB", dirty_mib=96, dirty_wait=True, vhost_user=False, hugepages=False)
    a.wait_console("late", "VIRTNET-DIRTY-WAITING")
    run = subprocess.Popen(
        [sys.executable, "-m", "virtnet", "-c", a.host.uri, "--ovsdb", a.host.ovsdb,
         *migrate_args(a, b, "late", "--bandwidth", "16", "--json")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    # The sample is over once the job runs (B has the domain, paused for the incoming guest): only
    # now does the guest start rewriting its 96 MiB, faster than the 16 MiB/s link.
    wait_for(lambda: "late" in names(b) or run.poll() is not None, "the job running on B")
    a.type_on_console("late", "VIRTNET-GO")
    out, err = run.communicate(timeout=600)
    assert run.returncode == 0, err
    assert "VIRTNET-DIRTY-GO" in a.console_log("late").read_text()
    report = json.loads(out)["report"]
    assert report["policy"] == "precopy" and report["dirty_rate_mib_s"] < 8  # the sample read low
    steps = report["escalations"]
    assert any(": postcopy: " in step and "passes did not shrink" in step for step in steps), steps
    assert report["postcopy_switched"] is True
    assert_every_figure(report)
    assert b.virsh("domstate", "late").stdout.strip() == "running"
    assert "late" not in names(a)
    stored = etree.fromstring(b.virsh("metadata", "late", MIGRATION_NS).stdout.encode())
    assert [step.text for step in stored.find("escalations")] == steps
    # Still the same boot, still counting and dirtying on B.
    passes = max(int(p) for p in re.findall(r"passes=(\d+)", a.console_log("late").read_text()))
    wait_for(lambda: f"passes={passes + 1}" in a.console_log("late").read_text(), "a dirtying pass on B")
    assert a.console_log("late").read_text().count("VIRTNET-BOOTED") == 1


def test_a_vhost_user_guest_moves_with_post_copy_and_keeps_answering(
    lab0: LabClient, lab1: LabClient, tmp_path: Path
) -> None:
    a, b = lab0, lab1
    address = a.lan_address("vhost", 31)
    boot(a, "pcopy", ips=(address,), dirty_mib=32)
    replies = tmp_path / "ping.out"
    # A peer on the LAN: B's br0 pings the guest across the wire from A, then beside it on B.
    with replies.open("w") as out:
        pinger = subprocess.Popen(
            ["ip", "netns", "exec", b.host.netns, "ping", "-i", "0.05", "-W", "1", address.split("/")[0]],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:

        def answered() -> int:
            return len(re.findall(r"icmp_seq=\d+ ttl", replies.read_text()))

        wait_for(lambda: answered() >= 5, "the guest answering on A", timeout=60)
        done = a.virtnet(*migrate_args(a, b, "pcopy", "--policy", "postcopy", "--bandwidth", "16", "--json"))
        report = json.loads(done.stdout)["report"]
        after = answered()
        wait_for(lambda: answered() >= after + 20, "the guest answering on B after the move", timeout=60)
    finally:
        pinger.terminate()
        pinger.wait(10)
    assert report["postcopy_switched"] is True and "POSTCOPY" in report["flags"]
    assert_every_figure(report)
    assert b.virsh("domstate", "pcopy").stdout.strip() == "running"
    assert "pcopy-p0" in b.vm_ports() and "pcopy-p0" not in a.vm_ports()
    wait_for(lambda: b.vsctl("get", "Interface", "pcopy-p0", "link_state") == "up", "link up on B")
    assert b.vsctl("get", "Open_vSwitch", ".", "other_config:vhost-postcopy-support") == '"true"'


def disk_ok(client: LabClient, name: str) -> int:
    """The last count of chunks the guest wrote and read back right (0 before the first)."""
    text = client.console_log(name).read_text(errors="replace")
    assert "VIRTNET-DISK-BAD" not in text and "VIRTNET-DISK-FAIL" not in text, text[-2000:]
    counts = re.findall(r"VIRTNET-DISK-OK n=(\d+)", text)
    return int(counts[-1]) if counts else 0


def what_b_says(b: LabClient, name: str) -> str:
    """A guest gone quiet on B: its state with the reason, and the end of its QEMU log (the lab,
    and with it the log, is gone once the tests end)."""
    state = b.virsh("domstate", name, "--reason", check=False)
    log = Path(b.host.dir) / "log" / "qemu" / f"{name}.log"
    tail = log.read_text(errors="replace")[-2000:] if log.exists() else f"(no {log})"
    return f"B says {name} is {(state.stdout or state.stderr).strip()}; its QEMU log ends:\n{tail}"


def overlay_guest(client: LabClient, name: str, tmp_path: Path) -> str:
    """A guest whose disk is a qcow2 overlay in the host's own /var/lib/libvirt/images, over a base
    image both hosts see; it writes and checks the disk once a second."""
    base = tmp_path / "base.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(base), "64M"], check=True)
    disk = f"/var/lib/libvirt/images/{name}.qcow2"
    boot(client, name, disk=(disk, str(base)), vhost_user=False, hugepages=False)
    wait_for(lambda: disk_ok(client, name) >= 2, "the guest checking its disk", timeout=120)
    return disk


def test_copy_storage_moves_the_overlay_with_the_writes_made_during_the_move(
    lab0: LabClient, lab1: LabClient, tmp_path: Path
) -> None:
    a, b = lab0, lab1
    disk = overlay_guest(a, "carry", tmp_path)
    assert b.in_namespace("test", "-e", disk).returncode == 1  # B has its own, empty images directory
    before = disk_ok(a, "carry")
    done = a.virtnet(*migrate_args(a, b, "carry", "--copy-storage", "--bandwidth", "4", "--json"))
    moved = disk_ok(a, "carry")  # the console log follows the guest: written on A, and maybe on B
    assert moved > before, "no chunk was written during the move"
    report = json.loads(done.stdout)["report"]
    assert "NON_SHARED_DISK" in report["flags"]
    assert_every_figure(report)
    assert f"created {disk} on the destination" in done.stderr
    # B read every chunk back from its own copy, the ones written on A during the move included.
    try:
        wait_for(lambda: disk_ok(a, "carry") >= moved + 2, "the guest checking its disk on B", timeout=120)
    except AssertionError as quiet:  # once in CI, after a move that completed: keep what B knew
        raise AssertionError(f"{quiet}\n{what_b_says(b, 'carry')}") from None
    assert b.virsh("domstate", "carry").stdout.strip() == "running"
    source = etree.fromstring(b.virsh("dumpxml", "carry").stdout.encode()).xpath(
        "string(devices/disk/source/@file)"
    )
    assert source == disk
    assert b.virsh("vol-info", disk).returncode == 0  # a volume B's storage API knows
    info = json.loads(b.in_namespace("qemu-img", "info", "--force-share", "--output=json", disk).stdout)
    assert info["format"] == "qcow2"


def test_an_aborted_copy_storage_move_leaves_no_volume_on_the_destination(
    lab0: LabClient, lab1: LabClient, tmp_path: Path
) -> None:
    a, b = lab0, lab1
    disk = overlay_guest(a, "stays", tmp_path)
    result = a.virtnet(
        *migrate_args(a, b, "stays", "--copy-storage", "--bandwidth", "1", "--timeout", "5"), check=False
    )
    assert result.returncode == 1, result.stderr
    assert f"created {disk} on the destination" in result.stderr  # it was there during the move
    assert "did not complete: the --timeout was reached" in result.stderr
    assert b.in_namespace("test", "-e", disk).returncode == 1
    assert "stays" not in names(b)
    assert a.virsh("domstate", "stays").stdout.strip() == "running"
    checked = disk_ok(a, "stays")
    wait_for(lambda: disk_ok(a, "stays") > checked, "the guest still checking its disk on A")
