"""The outage two guests see when ovs-vswitchd is killed (SIGKILL) and started again under them.

On a lab of its own (one libvirt host with OVS-DPDK, ``virtnet.lab``) this defines and starts two
busybox test guests with a vhost-user NIC each on the lab's br0 (``virtnet define``/``start``), each
pinging the other every 0.1 s (``virtnet.pingloop``; every reply is a console line with its seq=N).
Then, ``--runs`` times: SIGKILL ovs-vswitchd by its PID, start it again as the lab does, and wait
until both guests have 20 more replies. No virtnet command runs between the kill and the replies:
the dpdkvhostuserclient ports reconnect to QEMU's sockets by themselves. Meanwhile fa0 runs one
iperf3 client against fa1's server (``virtnet.iperf``) that spans every run; fa1 sends (iperf3 -R),
so each second's figure is what arrived at fa0.

Prints per run and guest: the longest time between two replies' arrivals (the outage the guest
saw; a reply to seq N arrives at N x 0.1 s plus its round trip), how long the new ovs-vswitchd
took until DPDK was initialised, and whether the guest is still the same boot (same QEMU PID, one
VIRTNET-BOOTED); then the median outage, and iperf3's throughput in each second of its run, with
its lowest and highest second against the median (what a restart does to a TCP stream). There is
no other tool to compare against: the figure is the price of a switch restart.

Needs root; takes a few minutes. From the repository root:

    .venv/bin/python bench/faults.py [--runs 3] [--prefix vnfault] [--address 127.0.0.60]
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import tomli_w

from virtnet.lab import switch
from virtnet.lab.guest_image import guest_cmdline, iperf_intervals
from virtnet.lab.lab import Lab, LabHost
from virtnet.lab.process import alive, read_pid

ROOT = Path(__file__).resolve().parent.parent
PYTHON = ROOT / ".venv" / "bin" / "python"
INTERVAL_S = 0.1
# fa1 first: its iperf3 server listens before fa0's client starts.
GUESTS = (("fa1", "10.77.9.2/24", "10.77.9.1"), ("fa0", "10.77.9.1/24", "10.77.9.2"))
IPERF = {"fa1": "server", "fa0": "client:10.77.9.2:{seconds}"}
SECONDS_PER_RUN = 15  # a restart, 20 ping replies and TCP's back-off fit in it on this machine
REPLY = re.compile(r"VIRTNET-PINGLOOP 64 bytes from [\d.]+: seq=(\d+) ttl=\d+ time=([\d.]+) ms")


def run(argv: list[str], timeout: float = 180) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.strip()}")
    return done.stdout


def virtnet(host: LabHost, *args: str) -> str:
    return run([str(PYTHON), "-m", "virtnet", "-c", host.uri, "--ovsdb", host.ovsdb, *args])


def spec(lab: Lab, host: LabHost, workdir: Path, name: str, ip: str, peer: str, iperf: str) -> Path:
    data = {
        "name": name,
        "cpu": {"count": 1},
        "memory": {
            "size": "256MiB",
            "access": "shared",
            "allocation": "immediate",
            "hugepages": {"page_size": "2MiB"},
        },
        "boot": {
            "kernel": str(lab.guest_dir / "vmlinuz"),
            "initrd": str(lab.guest_dir / "initrd.gz"),
            "cmdline": guest_cmdline(ips=(ip,), iperf=iperf) + f" virtnet.pingloop={peer}",
        },
        "console": {"type": "pty", "log": str(workdir / f"{name}.log")},
        "nics": [
            {
                "type": "vhostuser",
                "socket": str(host.vhost_dir / f"{name}.sock"),
                "port": f"{name}-p0",
                "bridge": "br0",
            }
        ],
    }
    path = workdir / f"{name}.toml"
    path.write_text(tomli_w.dumps(data))
    return path


def replies(log: Path) -> list[tuple[int, float]]:
    """(seq, round trip in s) of each reply so far."""
    text = log.read_text(errors="replace") if log.exists() else ""
    return [(int(seq), float(ms) / 1000) for seq, ms in REPLY.findall(text)]


def seqs(log: Path) -> list[int]:
    return [seq for seq, _ in replies(log)]


def longest_silence(found: list[tuple[int, float]]) -> float:
    """The longest time between two replies' arrivals: ping sends seq N at N x 0.1 s, so a reply
    arrives at N x 0.1 s + its round trip. Packets the guest queued while the switch was away are
    carried late, not lost (the vrings keep them): a gap in seq numbers alone would miss that."""
    arrivals = sorted(seq * INTERVAL_S + rtt for seq, rtt in found)
    return max(b - a for a, b in itertools.pairwise(arrivals))


def wait_replies(log: Path, count: int, after: int, timeout: float = 240) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = seqs(log)
        if len([s for s in found if s > after]) >= count:
            return found
        time.sleep(0.2)
    raise RuntimeError(f"{log.name}: no {count} replies after seq {after} within {timeout:g} s")


def wait_console(log: Path, marker: str, timeout: float = 240) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace") if log.exists() else ""
        if marker in text:
            return text
        time.sleep(0.2)
    raise RuntimeError(f"{log.name}: no {marker!r} within {timeout:g} s")


def report_iperf(console: str, restarts: int) -> None:
    """iperf3's throughput in each second, and the seconds a restart cost it."""
    if "VIRTNET-IPERF-RETRY" in console:
        raise RuntimeError("iperf3 was restarted by the guest: its run did not span the restarts")
    seconds = iperf_intervals(console)
    rates = [rate for _start, _end, rate in seconds]
    median = statistics.median(rates)
    low_start, low_end, low = min(seconds, key=lambda second: second[2])
    high_start, high_end, high = max(seconds, key=lambda second: second[2])
    print("iperf3 Mbit/s per second: " + " ".join(f"{rate:.0f}" for rate in rates))
    print(
        f"iperf3 over {restarts} restarts, one TCP connection throughout: median {median:.0f} Mbit/s, "
        f"lowest second {low_start:.0f}-{low_end:.0f} s {low:.0f} Mbit/s ({low / median:.0%} of the median), "
        f"highest {high_start:.0f}-{high_end:.0f} s {high:.0f} Mbit/s (what waited in the vrings comes late)"
    )


def qemu_pid(host: LabHost, name: str) -> int:
    return int(Path(f"/proc/{host.holder_pid}/root/run/libvirt/qemu/{name}.pid").read_text())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--prefix", default="vnfault")
    parser.add_argument("--address", default="127.0.0.60")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/faults.py starts a lab: run it as root", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="virtnet-faults-") as tmp:
        workdir = Path(tmp)
        lab = Lab(workdir / "lab", prefix=args.prefix, first_address=args.address)
        state = lab.up(hosts=1, hugepages_mib=1024)
        try:
            host = state.hosts[0]
            assert host.holder_pid is not None
            logs = {name: workdir / f"{name}.log" for name, _, _ in GUESTS}
            iperf_s = SECONDS_PER_RUN * (args.runs + 1)
            for name, ip, peer in GUESTS:
                iperf = IPERF[name].format(seconds=iperf_s)
                virtnet(host, "define", str(spec(lab, host, workdir, name, ip, peer, iperf)))
                virtnet(host, "start", name)
                marker = "VIRTNET-IPERF-SERVER up" if iperf == "server" else "VIRTNET-IPERF-START"
                wait_console(logs[name], marker)
            for log in logs.values():
                wait_replies(log, 10, -1)
            # 3 s of replies after fa0's iperf3 started: it has connected and streams at the first kill.
            wait_replies(logs["fa0"], 30, max(seqs(logs["fa0"])))
            pids = {name: qemu_pid(host, name) for name in logs}
            outages: list[float] = []
            for attempt in range(1, args.runs + 1):
                vswitchd = read_pid(host.ovs_dir / "ovs-vswitchd.pid")
                assert vswitchd is not None
                last = {name: max(seqs(log)) for name, log in logs.items()}
                os.kill(vswitchd, signal.SIGKILL)
                while alive(vswitchd):
                    time.sleep(0.01)
                started = time.monotonic()
                switch.start_vswitchd(host.ovs_dir, host.holder_pid, host.netns)
                dpdk_s = time.monotonic() - started
                for name, log in logs.items():
                    wait_replies(log, 20, last[name])
                    outage = longest_silence([r for r in replies(log) if r[0] >= last[name]])
                    outages.append(outage)
                    same = qemu_pid(host, name) == pids[name]
                    boots = log.read_text(errors="replace").count("VIRTNET-BOOTED")
                    print(
                        f"run {attempt} {name}: outage {outage:.2f} s (longest time without a ping reply), "
                        f"new vswitchd ready in {dpdk_s:.2f} s, same boot: {same and boots == 1}"
                    )
            print(f"median outage over {len(outages)} guest-runs: {statistics.median(outages):.1f} s")
            report_iperf(wait_console(logs["fa0"], "VIRTNET-IPERF-OK", timeout=iperf_s + 180), args.runs)
        finally:
            lab.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
