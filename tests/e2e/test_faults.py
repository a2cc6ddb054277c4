"""Faults a real host throws, under real daemons: the switch, its database and libvirtd restart,
virtnet is killed half-way, and two runs reach for one VM.

Each test stops virtnet at a named point (VIRTNET_STOP_AT, virtnet/faultpoint.py) or kills a daemon
by its PID, then checks with virsh, ovs-vsctl and the guests' consoles that nothing was lost: the
guest is the same boot (one VIRTNET-BOOTED, the same QEMU PID, its tick counter going on) and its
ports are exactly where its domain is.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import tomli_w
from lab_support import LabClient, libvirtd_stopped

from virtnet.lab import switch
from virtnet.lab.guest_image import iperf_intervals
from virtnet.lab.process import alive, read_pid, stop_pid

PING_INTERVAL_S = 0.1  # the guest's `ping -i` (virtnet.pingloop)
# Long enough that the kill, the restart and TCP's retransmission back-off all fall inside the run.
IPERF_SECONDS = 20
STATUS_REFRESH_S = 30  # how long ovs-vswitchd may take to write a reconnected port's status


def pingloop_spec(host: LabClient, name: str, ip: str, peer: str, iperf: str = "") -> Path:
    path = host.spec(name, ips=(ip,))
    spec = tomllib.loads(path.read_text())
    spec["boot"]["cmdline"] += f" virtnet.pingloop={peer}" + (f" virtnet.iperf={iperf}" if iperf else "")
    path.write_text(tomli_w.dumps(spec))
    return path


def reply_seqs(host: LabClient, name: str) -> list[int]:
    text = host.console_log(name).read_text(errors="replace")
    return [int(n) for n in re.findall(r"VIRTNET-PINGLOOP 64 bytes from [\d.]+: seq=(\d+)", text)]


def wait_replies(host: LabClient, name: str, count: int, after: int = -1, timeout: float = 180) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seqs = reply_seqs(host, name)
        if len([s for s in seqs if s > after]) >= count:
            return seqs
        time.sleep(0.5)
    raise AssertionError(f"{name}: fewer than {count} ping replies after seq {after} in {timeout:g} s")


def wait_connected(host: LabClient, port: str) -> None:
    """Until the port's vhost-user connection reads 'connected'. ovs-vswitchd writes that column on
    its own schedule: once it still said 'disconnected' while the guest's pings came through."""
    deadline = time.monotonic() + STATUS_REFRESH_S
    while host.vsctl("get", "Interface", port, "status:status") != "connected":
        assert time.monotonic() < deadline, f"{port} did not reconnect to QEMU's vhost-user socket"
        time.sleep(0.5)


def boots(host: LabClient, name: str) -> int:
    return host.console_log(name).read_text(errors="replace").count("VIRTNET-BOOTED")


def virtnet_process(host: LabClient, *args: str, stop_at: str | None = None) -> subprocess.Popen[str]:
    env = dict(os.environ)
    if stop_at:
        env["VIRTNET_STOP_AT"] = stop_at
    argv = [sys.executable, "-m", "virtnet", "-c", host.host.uri, "--ovsdb", host.host.ovsdb, *args]
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_stopped(process: subprocess.Popen[str], timeout: float = 120) -> None:
    """Until the run stopped itself at its fault point (state T in /proc)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        state = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if state == "T":
            return
        time.sleep(0.1)
    raise AssertionError(f"virtnet did not reach its fault point in {timeout:g} s")


def lock_records(host: LabClient) -> str:
    return host.virsh("secret-list").stdout


def findings(host: LabClient) -> list[dict[str, object]]:
    found = json.loads(host.virtnet("doctor", "--json").stdout)["findings"]
    return sorted(found, key=lambda finding: (finding["kind"], finding["subject"]))


def left_by_others(before: list[dict[str, object]]) -> list[dict[str, object]]:
    """What doctor --fix leaves of what it found before a test: the lab is shared, and earlier tests
    keep what a user would keep (the overlays of undefined guests, listed but never deleted)."""
    return [finding for finding in before if not finding["fixable"]]


def test_guests_ping_and_iperf3_on_through_a_vswitchd_kill_with_no_virtnet_command(lab0: LabClient) -> None:
    # sw1 serves iperf3 before sw0 starts, so sw0's one client run starts at once (no RETRY line).
    lab0.virtnet("define", str(pingloop_spec(lab0, "sw1", "10.77.5.2/24", "10.77.5.1", iperf="server")))
    lab0.virtnet("start", "sw1")
    lab0.wait_console("sw1", "VIRTNET-IPERF-SERVER up")
    client = f"client:10.77.5.2:{IPERF_SECONDS}"
    lab0.virtnet("define", str(pingloop_spec(lab0, "sw0", "10.77.5.1/24", "10.77.5.2", iperf=client)))
    lab0.virtnet("start", "sw0")
    lab0.wait_console("sw0", "VIRTNET-IPERF-START")
    # 3 s of replies after iperf3 started: it has connected and sends when the switch dies.
    wait_replies(lab0, "sw0", 30, after=max(reply_seqs(lab0, "sw0"), default=-1))
    wait_replies(lab0, "sw1", 10)
    qemu = {name: lab0.qemu_pid(name) for name in ("sw0", "sw1")}
    ovs_dir, host = lab0.host.ovs_dir, lab0.host

    vswitchd = read_pid(ovs_dir / "ovs-vswitchd.pid")
    assert vswitchd is not None
    assert "VIRTNET-IPERF-OK" not in lab0.console_log("sw0").read_text()  # iperf3 runs across the kill
    os.kill(vswitchd, signal.SIGKILL)
    while alive(vswitchd):
        time.sleep(0.05)
    last = {name: max(reply_seqs(lab0, name)) for name in ("sw0", "sw1")}
    assert host.holder_pid is not None
    switch.start_vswitchd(ovs_dir, host.holder_pid, host.netns)

    # No virtnet command from here on: the dpdkvhostuserclient ports reconnect to QEMU's sockets.
    for name in ("sw0", "sw1"):
        wait_replies(lab0, name, 20, after=last[name])
        text = lab0.console_log(name).read_text(errors="replace")
        found = re.findall(r"seq=(\d+) ttl=\d+ time=([\d.]+) ms", text)
        arrivals = sorted(int(seq) * PING_INTERVAL_S + float(ms) / 1000 for seq, ms in found)
        silence = max(b - a for a, b in itertools.pairwise(arrivals))  # measured in bench/faults.py
        print(f"{name}: {silence:.2f} s without a ping reply over the vswitchd restart")
        # OVS 3.1 leaves link_state 'down' in the database after the restart although the port
        # carries the replies above; the vhost-user connection's own status says what happened.
        wait_connected(lab0, f"{name}-p0")
    # `switch show` reports that connection beside the stale link_state.
    shown = json.loads(lab0.virtnet("switch", "show", "--json").stdout)
    vhost = {p["name"]: p["vhost"] for b in shown["bridges"] for p in b["ports"] if p["vm"]}
    assert vhost == {"sw0-p0": "connected", "sw1-p0": "connected"}
    # The one iperf3 run that was going at the kill ends well: its TCP connection lived through the
    # restart, and its last seconds (after the restart) carry traffic again.
    text = lab0.wait_console("sw0", "VIRTNET-IPERF-OK", timeout=IPERF_SECONDS + 180)
    assert "VIRTNET-IPERF-RETRY" not in text and text.count("VIRTNET-IPERF-START") == 1
    seconds = iperf_intervals(text)
    print("sw0 iperf3 Mbit/s per second:", " ".join(f"{rate:.0f}" for _s, _e, rate in seconds))
    assert seconds[-1][1] >= IPERF_SECONDS - 1 and seconds[-1][2] > 0  # to its end, sending
    for name in ("sw0", "sw1"):
        assert lab0.qemu_pid(name) == qemu[name] and boots(lab0, name) == 1  # the same boot
    assert lab0.vm_ports() == ["sw0-p0", "sw1-p0"]


def test_ovsdb_server_restarted_during_define_the_define_completes(lab0: LabClient) -> None:
    run = virtnet_process(lab0, "define", str(lab0.spec("db0")), stop_at="define:before-ports")
    wait_stopped(run)  # connected to ovsdb-server, ports not yet made
    ovs_dir = lab0.host.ovs_dir
    stop_pid(read_pid(ovs_dir / "ovsdb-server.pid"))
    switch.start_ovsdb_server(ovs_dir)
    run.send_signal(signal.SIGCONT)
    _out, err = run.communicate(timeout=120)
    assert run.returncode == 0, err
    uuid = lab0.virsh("domuuid", "db0").stdout.strip()
    assert lab0.vm_ports() == ["db0-p0"]
    assert lab0.vsctl("get", "Interface", "db0-p0", "external_ids:vm-uuid") == f'"{uuid}"'


def test_ovsdb_server_gone_during_define_leaves_nothing(lab0: LabClient) -> None:
    run = virtnet_process(lab0, "define", str(lab0.spec("db1")), stop_at="define:before-ports")
    wait_stopped(run)
    ovs_dir = lab0.host.ovs_dir
    stop_pid(read_pid(ovs_dir / "ovsdb-server.pid"))
    try:
        run.send_signal(signal.SIGCONT)
        _out, err = run.communicate(timeout=120)
    finally:
        switch.start_ovsdb_server(ovs_dir)
    assert run.returncode == 1
    assert len(err.splitlines()) == 1 and err.startswith("virtnet: error: "), err
    assert "db1" not in lab0.virsh("list", "--all", "--name").stdout.split()
    assert lab0.vm_ports() == []
    assert "virtnet-lock:db1" not in lock_records(lab0)


def test_guests_run_on_through_a_libvirtd_restart(lab0: LabClient) -> None:
    lab0.virtnet("define", str(lab0.spec("lv0", vhost_user=False)))
    lab0.virtnet("start", "lv0")
    lab0.wait_console("lv0", "VIRTNET-TICK 2")
    qemu = lab0.qemu_pid("lv0")
    with libvirtd_stopped(lab0.host):
        ticks = lab0.ticks("lv0")
        lab0.wait_console("lv0", f"VIRTNET-TICK {ticks[-1] + 2}")  # the guest runs without libvirtd
    assert lab0.qemu_pid("lv0") == qemu and boots(lab0, "lv0") == 1
    assert "lv0" in lab0.virtnet("list").stdout
    assert "running" in lab0.virtnet("show", "lv0").stdout
    follow = virtnet_process(lab0, "console", "lv0", "--log")
    try:
        seen = ""
        assert follow.stdout is not None
        while "VIRTNET-TICK" not in seen:
            line = follow.stdout.readline()
            assert line, follow.stderr.read() if follow.stderr else ""
            seen += line
    finally:
        follow.send_signal(signal.SIGINT)
        follow.communicate(timeout=30)
    assert lab0.virsh("domstate", "lv0").stdout.strip() == "running"


def test_a_define_killed_after_its_ports_is_repaired_by_doctor(lab0: LabClient) -> None:
    before = findings(lab0)
    run = virtnet_process(lab0, "define", str(lab0.spec("kd0")), stop_at="define:after-ports")
    wait_stopped(run)
    run.kill()
    run.communicate()
    assert "kd0" not in lab0.virsh("list", "--all", "--name").stdout.split()
    assert lab0.vm_ports() == ["kd0-p0"]  # the port without its VM
    assert "virtnet-lock:kd0" in lock_records(lab0)  # the lock of a run that is gone

    listed = lab0.virtnet("doctor")
    lines = listed.stdout.splitlines()
    assert any(line.startswith("orphan-port kd0-p0: ") for line in lines), listed.stdout
    assert any(line.startswith("stale-lock kd0: ") for line in lines), listed.stdout
    assert lab0.vm_ports() == ["kd0-p0"]  # a dry run changes nothing

    fixed = lab0.virtnet("doctor", "--fix").stdout.splitlines()
    assert "fixed: deleted OVS port kd0-p0" in fixed
    assert any(line.startswith("fixed: removed the stale lock on kd0") for line in fixed)
    assert lab0.vm_ports() == []
    assert "virtnet-lock:kd0" not in lock_records(lab0)
    assert findings(lab0) == left_by_others(before)


def test_a_vm_whose_ports_were_lost_gets_them_back_from_doctor(lab0: LabClient) -> None:
    lab0.virtnet("define", str(lab0.spec("wp0")))
    uuid = lab0.virsh("domuuid", "wp0").stdout.strip()
    lab0.vsctl("del-port", "br0", "wp0-p0")  # as a reinstalled host's empty database
    assert "missing-ports wp0: " in lab0.virtnet("doctor").stdout
    assert "fixed: created OVS port(s) wp0-p0 for wp0" in lab0.virtnet("doctor", "--fix").stdout
    assert lab0.vsctl("get", "Interface", "wp0-p0", "external_ids:vm-uuid") == f'"{uuid}"'


def reinstall_switch(client: LabClient) -> None:
    """Wipe the host's OVS database as a reinstall does, and redo only what its admin's set-up does.

    Both daemons stop (by PID); the lab starts them on a fresh conf.db made by ovsdb-tool from the
    schema and sets DPDK up and br0 again, as it did at `up`; the LAN's wire (lan0) is the host's own
    uplink. Nothing of virtnet's is recreated here: that is doctor's job.
    """
    client.lab.reinstall_switch(client.host.name)


def test_after_the_ovs_database_is_wiped_doctor_recreates_every_vms_ports(lab0: LabClient) -> None:
    for name in ("rw0", "rw1"):
        lab0.virtnet("define", str(lab0.spec(name)))
    lab0.virtnet("start", "rw0")
    lab0.wait_console("rw0", "VIRTNET-BOOTED")
    qemu = lab0.qemu_pid("rw0")
    uuids = {name: lab0.virsh("domuuid", name).stdout.strip() for name in ("rw0", "rw1")}
    database = lab0.vsctl("get", "Open_vSwitch", ".", "_uuid")

    reinstall_switch(lab0)
    assert lab0.vsctl("get", "Open_vSwitch", ".", "_uuid") != database  # another database, not a restart
    assert lab0.vm_ports() == []  # it has br0 and nothing of virtnet's
    listed = lab0.virtnet("doctor").stdout.splitlines()
    for name in ("rw0", "rw1"):
        assert any(line.startswith(f"missing-ports {name}: ") for line in listed), listed

    fixed = lab0.virtnet("doctor", "--fix").stdout.splitlines()
    for name in ("rw0", "rw1"):
        assert f"fixed: created OVS port(s) {name}-p0 for {name}" in fixed, fixed
        assert lab0.vsctl("get", "Interface", f"{name}-p0", "external_ids:vm-uuid") == f'"{uuids[name]}"'
        assert lab0.vsctl("get", "Interface", f"{name}-p0", "type") == "dpdkvhostuserclient"
    assert lab0.vm_ports() == ["rw0-p0", "rw1-p0"]
    # The running guest's QEMU still serves its socket: the recreated client port connects to it.
    wait_connected(lab0, "rw0-p0")
    assert lab0.qemu_pid("rw0") == qemu and boots(lab0, "rw0") == 1  # the same boot
    assert not any(line.startswith("missing-ports") for line in lab0.virtnet("doctor").stdout.splitlines())


def test_a_second_define_of_one_spec_is_refused_or_waits(lab0: LabClient) -> None:
    spec = str(lab0.spec("lk0"))
    first = virtnet_process(lab0, "define", spec, stop_at="define:after-ports")
    wait_stopped(first)
    assert "virtnet-lock:lk0" in lock_records(lab0)  # the lock lives on the libvirt host

    refused = lab0.virtnet("define", spec, check=False)
    assert refused.returncode == 1
    [line] = refused.stderr.splitlines()
    assert f"VM 'lk0' on {lab0.host.uri} is held by `virtnet define {spec}` (pid {first.pid} on " in line

    waiting = virtnet_process(lab0, "define", spec, "--wait-lock")
    time.sleep(2)
    assert waiting.poll() is None  # waits while the first holds the VM
    first.send_signal(signal.SIGCONT)
    assert first.wait(timeout=120) == 0
    out, err = waiting.communicate(timeout=120)
    assert waiting.returncode == 0, err
    assert out.startswith("Updated domain 'lk0'")  # after the first's define, not beside it
    assert lab0.virsh("list", "--all", "--name").stdout.split().count("lk0") == 1
    assert lab0.vm_ports() == ["lk0-p0"]
    assert "virtnet-lock:lk0" not in lock_records(lab0)


def test_a_migration_killed_mid_job_is_locked_then_cleaned_up_by_doctor(
    lab0: LabClient, lab1: LabClient
) -> None:
    a, b = lab0, lab1
    before = findings(a)
    spec = str(a.spec("mk0", ips=("10.77.6.1/24",), dirty_mib=32))
    a.virtnet("define", spec)
    a.virtnet("start", "mk0")
    a.wait_console("mk0", "passes=1")
    qemu = a.qemu_pid("mk0")
    # 1 MiB/s against 32 MiB rewritten in a loop: the job cannot converge, it runs until aborted.
    move = virtnet_process(
        a, "migrate", "mk0", b.host.uri, "--dest-ovsdb", b.host.ovsdb, "--dest-socket-dir",
        str(b.host.vhost_dir), "--policy", "precopy", "--bandwidth", "1", stop_at="migrate:job-running",
    )  # fmt: skip
    wait_stopped(move)
    assert b.virsh("domstate", "mk0").stdout.strip() == "paused"  # the incoming domain on B
    assert b.vm_ports() == ["mk0-p0"]

    # Two runs on one VM: a define and a second migration are refused, naming the migration; so
    # is a define of the same name on B, where the incoming domain is.
    for host, second in (
        (a, ["define", spec]),
        (a, ["migrate", "mk0", b.host.uri, "--dest-ovsdb", b.host.ovsdb]),
        (b, ["define", str(b.spec("mk0", ips=("10.77.6.1/24",)))]),
    ):
        refused = host.virtnet(*second, check=False)
        assert refused.returncode == 1
        [line] = refused.stderr.splitlines()
        assert f"is held by `virtnet migrate mk0 {b.host.uri}` (pid {move.pid} on " in line

    move.kill()  # virtnet dies; libvirtd goes on with the peer-to-peer job
    move.communicate()
    found = a.virtnet("doctor").stdout
    unwatched = "unwatched-migration mk0: a migration job runs, but its `virtnet migrate"
    assert any(line.startswith(unwatched) for line in found.splitlines()), found
    fixed = a.virtnet("doctor", "--fix").stdout.splitlines()
    assert "fixed: aborted the unwatched migration job of mk0; it keeps running here" in fixed

    # The guest runs exactly once, on A, the same boot, with its port there; B lets go of it.
    for _ in range(240):
        if "mk0" not in b.virsh("list", "--all", "--name").stdout.split():
            break
        time.sleep(0.5)
    assert "mk0" not in b.virsh("list", "--all", "--name").stdout.split()
    assert a.virsh("domstate", "mk0").stdout.strip() == "running"
    assert a.qemu_pid("mk0") == qemu and boots(a, "mk0") == 1
    ticks = a.ticks("mk0")
    a.wait_console("mk0", f"VIRTNET-TICK {ticks[-1] + 2} ")
    assert a.vm_ports() == ["mk0-p0"]
    assert "virtnet-lock:mk0" not in lock_records(a)
    assert findings(a) == left_by_others(before)

    # B kept the port it made for the guest that never arrived.
    assert "orphan-port mk0-p0: " in b.virtnet("doctor").stdout
    assert "virtnet-lock:mk0" in lock_records(b)  # the killed run held the VM on B too
    assert "fixed: deleted OVS port mk0-p0" in b.virtnet("doctor", "--fix").stdout.splitlines()
    assert b.vm_ports() == []
    assert "virtnet-lock:mk0" not in lock_records(b)


def test_libvirtd_restarted_during_a_migration_leaves_the_guest_once_with_its_ports(
    lab0: LabClient, lab1: LabClient
) -> None:
    a, b = lab0, lab1
    a.virtnet("define", str(a.spec("mr0", ips=("10.77.7.1/24",), dirty_mib=32)))
    a.virtnet("start", "mr0")
    a.wait_console("mr0", "passes=1")
    qemu = a.qemu_pid("mr0")
    # 1 MiB/s against 32 MiB rewritten in a loop: the job cannot converge, so it cannot have
    # switched to B when A's libvirtd restarts; A's libvirtd then cancels it and B drops its copy.
    move = virtnet_process(
        a, "migrate", "mr0", b.host.uri, "--dest-ovsdb", b.host.ovsdb, "--dest-socket-dir",
        str(b.host.vhost_dir), "--policy", "precopy", "--bandwidth", "1",
    )  # fmt: skip
    for _ in range(240):
        if "mr0" in b.virsh("list", "--all", "--name").stdout.split():
            break
        time.sleep(0.5)
    assert b.vm_ports() == ["mr0-p0"]
    with libvirtd_stopped(a.host):
        pass  # stopped by its PID and started again
    _out, err = move.communicate(timeout=300)
    assert move.returncode == 1
    line = err.splitlines()[-1]  # after the progress bar's lines
    # B's incoming copy goes by itself or, if B still keeps it paused, virtnet destroys it.
    assert line.startswith(
        f"virtnet: error: libvirtd restarted during the migration of 'mr0'; the guest now runs on the "
        f"source {a.host.uri} only, with its port(s) mr0-p0 there and none on {b.host.uri}"
    ), line
    assert a.virsh("domstate", "mr0").stdout.strip() == "running"
    assert "mr0" not in b.virsh("list", "--all", "--name").stdout.split()
    assert a.qemu_pid("mr0") == qemu and boots(a, "mr0") == 1
    ticks = a.ticks("mr0")
    a.wait_console("mr0", f"VIRTNET-TICK {ticks[-1] + 2} ")
    assert a.vm_ports() == ["mr0-p0"] and b.vm_ports() == []
    assert "virtnet-lock:mr0" not in lock_records(a)
