"""The walkthrough's profiling table measured by `virtnet perf`, against the same measurement by hand,
and the network outage of a migration against QEMU's downtime.

On a lab of its own (two libvirt hosts with OVS-DPDK on 127.0.0.70/.71, joined by the lab's LAN)
this starts two Debian profiling guests on host 0 (virtnet/lab/perf_guest.py: a user NIC, a Linux
bridge NIC and a 4-queue vhost-user NIC each) and, once cloud-init is done:

  1. ``virtnet perf --matrix`` (iperf3 -P 4 -t 10, ping -c 10): user/virtio vs Linux bridge/virtio
     vs vhost-user/OVS-DPDK on VM-VM, VM-host and VM-LAN, with the ratios vhost-user / best virtio.
     Goal on this machine: vhost-user >= 1.1x the best virtio NIC on VM-VM throughput (the
     walkthrough's 2.21/1.99).
  2. The VM-VM vhost-user path by hand, as users measure today: `iperf3 -s` and `iperf3 -c` started
     in the guests with `virsh qemu-agent-command guest-exec` (no virtnet), --runs times each way
     alternately; virtnet's figure / the hand-run figure says whether virtnet's measurement adds or
     loses anything (it should be ~1.0).
  3. Guest B moves to host 1 while guest A pings it every 10 ms over the LAN (``migrate --probe``),
     then back: the outage A saw against QEMU's downtime. Goal: outage <= 2x downtime.

Guests run under TCG here and OVS's PMD busy-polls one of the two cores, so absolute numbers mean
little; ratios taken in the same run do. Needs root. From the repository root:

    .venv/bin/python bench/network.py [--runs 3] [--seconds 10]
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import tomli_w

from virtnet.lab import perf_guest
from virtnet.lab.lab import Lab, LabHost, LabState

ROOT = Path(__file__).resolve().parent.parent
PYTHON = ROOT / ".venv" / "bin" / "python"
LAB_PREFIX = "vnbnet"
LAB_ADDRESS = "127.0.0.70"  # other labs on this machine use .2, .20/.21, .30, .40/.41, .50/.51, .60, .90
READY_TIMEOUT_S = 1200
GUESTS = ("bench-a", "bench-b")


def virtnet(host: LabHost, *args: str, timeout: float = READY_TIMEOUT_S + 60) -> str:
    argv = [str(PYTHON), "-m", "virtnet", "-c", host.uri, "--ovsdb", host.ovsdb, *args]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"virtnet {' '.join(args)}: exit {done.returncode}: {done.stderr.strip()}")
    return done.stdout


def agent(host: LabHost, name: str, command: str, **arguments: Any) -> Any:
    request = {"execute": command, **({"arguments": arguments} if arguments else {})}
    argv = ["virsh", "-q", "-c", host.uri, "qemu-agent-command", name, "--timeout", "30", json.dumps(request)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True)
    return json.loads(done.stdout)["return"]


def by_hand(host: LabHost, client: str, server: str, target: str, bind: str, seconds: int) -> float:
    """The user's way: iperf3 server and client through virsh's agent commands; receiver's bits/s."""
    server_pid = agent(host, server, "guest-exec", path="iperf3", arg=["-s", "-1", "-B", target])["pid"]
    time.sleep(2)  # what a user does: start the server, wait, start the client
    argv = ["-c", target, "-B", bind, "-P", "4", "-t", str(seconds), "-J"]
    pid = agent(host, client, "guest-exec", path="iperf3", arg=argv, **{"capture-output": True})["pid"]
    deadline = time.monotonic() + seconds + 120
    while time.monotonic() < deadline:
        status = agent(host, client, "guest-exec-status", pid=pid)
        if status["exited"]:
            report = json.loads(base64.b64decode(status.get("out-data", "")))
            for _ in range(30):
                if agent(host, server, "guest-exec-status", pid=server_pid)["exited"]:
                    break
                time.sleep(1)
            return float(report["end"]["sum_received"]["bits_per_second"])
        time.sleep(0.5)
    raise RuntimeError("iperf3 by hand did not finish")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3, help="VM-VM runs of each tool, alternating")
    parser.add_argument("--seconds", type=int, default=10, help="iperf3 -t")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="virtnet-bench-net-"))
    lab = Lab(workdir / "lab", prefix=LAB_PREFIX, first_address=LAB_ADDRESS)
    print(f"lab in {workdir}: 2 hosts, building or reusing the Debian image ...", flush=True)
    state: LabState = lab.up(hosts=2, hugepages_mib=2560)
    try:
        started = time.monotonic()
        image = lab.provide_debian()
        print(f"Debian image ready in {time.monotonic() - started:.1f} s", flush=True)
        a, b = state.hosts
        for octet, name in enumerate(GUESTS, start=11):
            spec = perf_guest.perf_guest_spec(
                name,
                image,
                lan_bridge=state.lan_bridge,
                lan_addresses=state.lan_addresses,
                octet=octet,
                socket=str(a.vhost_dir / f"{name}.sock"),
                disk=str(workdir / f"{name}.qcow2"),
                console_log=str(workdir / f"{name}.console.log"),
            )
            path = workdir / f"{name}.toml"
            path.write_text(tomli_w.dumps(spec))
            virtnet(a, "define", str(path))
            virtnet(a, "start", name)
        started = time.monotonic()
        for name in GUESTS:
            virtnet(a, "wait", name, "--for", "cloud-init", "--timeout", str(READY_TIMEOUT_S))
        print(f"both guests provisioned {time.monotonic() - started:.0f} s after start", flush=True)

        print("\n== 1. virtnet perf --matrix ==", flush=True)
        matrix = json.loads(
            virtnet(
                a,
                "perf",
                "--matrix",
                *GUESTS,
                "--host-netns",
                a.netns,
                "--lan-netns",
                b.netns,
                "--seconds",
                str(args.seconds),
                "--json",
            )
        )
        for cell in matrix["cells"]:
            result = cell["result"]
            if result is None:
                print(f"NIC {cell['nic']} {cell['nic_kind']:<26} {cell['path']:<8} n/a: {cell['reason']}")
                continue
            print(
                f"NIC {cell['nic']} {cell['nic_kind']:<26} {cell['path']:<8} "
                f"{result['throughput']['receiver_bps'] / 1e6:8.1f} Mbit/s  "
                f"rtt avg {result['rtt']['avg_ms']} ms"
            )

        print("== 2. VM-VM vhost-user: virtnet perf against iperf3 by hand (virsh guest-exec) ==", flush=True)
        src = perf_guest.lan_address(state.lan_addresses, "vhost", 11).split("/")[0]
        dst = perf_guest.lan_address(state.lan_addresses, "vhost", 12).split("/")[0]
        ours, hand = [], []
        for run in range(args.runs):
            out = json.loads(
                virtnet(a, "perf", *GUESTS, "--nic", "2", "--seconds", str(args.seconds), "--json")
            )
            ours.append(out["throughput"]["receiver_bps"])
            hand.append(by_hand(a, GUESTS[0], GUESTS[1], dst, src, args.seconds))
            print(
                f"run {run + 1}: virtnet {ours[-1] / 1e6:.1f} Mbit/s, by hand {hand[-1] / 1e6:.1f} Mbit/s",
                flush=True,
            )
        ratio_hand = statistics.median(ours) / statistics.median(hand)
        print(f"median: virtnet / by hand = {ratio_hand:.2f}x", flush=True)

        print("\n== 3. migration outage seen by a peer, against QEMU's downtime ==", flush=True)
        moves = []
        for nic, (src_host, dst_host) in ((2, (a, b)), (1, (b, a))):
            out = json.loads(
                virtnet(
                    src_host,
                    "migrate",
                    GUESTS[1],
                    dst_host.uri,
                    "--dest-ovsdb",
                    dst_host.ovsdb,
                    "--dest-socket-dir",
                    str(dst_host.vhost_dir),
                    "--probe",
                    GUESTS[0],
                    "--probe-nic",
                    str(nic),
                    "--unsafe",
                    "--json",
                    timeout=900,
                )
            )["report"]
            moves.append((nic, out))
            print(
                f"NIC {nic} {src_host.name} -> {dst_host.name}: downtime {out['downtime_ms']} ms, longest "
                f"gap {out['outage_ms']} ms ({out['outage_lost_run_ms']} ms of pings lost in a row), "
                f"{out['outage_lost']} replies missing",
                flush=True,
            )

        print("\n== summary ==")
        vm_vm = next(
            (r for r in matrix["ratios"] if r["path"] == "VM-VM" and r["metric"] == "throughput"), None
        )
        if vm_vm:
            met = "met" if vm_vm["value"] >= 1.1 else "MISSED"
            print(
                f"VM-VM throughput vhost-user / {vm_vm['versus']}: {vm_vm['value']:.2f}x "
                f"(goal >= 1.1x: {met})"
            )
        for ratio in matrix["ratios"]:
            print(
                f"  {ratio['path']} {ratio['metric']}: {ratio['kind']} / {ratio['versus']} "
                f"= {ratio['value']:.2f}x"
            )
        print(f"virtnet perf / iperf3 by hand (VM-VM vhost-user, median of {args.runs}): {ratio_hand:.2f}x")
        for nic, out in moves:
            if out["downtime_ms"] and out["outage_ms"] is not None:
                gap = out["outage_ms"] / out["downtime_ms"]
                lost = (out["outage_lost_run_ms"] or 0) / out["downtime_ms"]
                met = "met" if gap <= 2 else "MISSED"
                print(
                    f"migration NIC {nic}: outage / downtime = {gap:.2f}x by the longest gap (goal <= 2x: "
                    f"{met}), {lost:.2f}x by pings lost in a row"
                )
        return 0
    finally:
        lab.down()


if __name__ == "__main__":
    sys.exit(main())
