"""The fleet view: `virtnet hosts --json` against the same facts gathered with sequential virsh calls.

What a user would otherwise run, per host: `virsh nodeinfo`, `virsh freepages --all`, `virsh version`,
`virsh list --all --name` and `virsh list --name`, `virsh vcpupin DOMAIN` for every running domain
(its pins), and `ovs-vsctl get Open_vSwitch . dpdk_initialized dpdk_version other_config`. virtnet reads
all hosts at once, each in a thread, with a fixed number of libvirt calls per host plus one XMLDesc
per running domain.

Two parts:
  (1) hosts: a hosts file of real hosts (e.g. a lab's: `virtnet lab up --hosts 3` writes
      <lab>/hosts.toml) with `--hosts-file`; every host's facts, both ways.
  (2) hosts x domains on libvirt's test driver (no daemon: every `test:///FILE` connection loads the
      file, in the client process): 1, 3 and 8 hosts with 1 or 50 running pinned domains each, and
      one host with 200;
      no OVS (its remote is a socket that does not exist, for both tools: one failed connect each).

Each measurement is the median wall time of `--runs` whole processes, the tools alternating. Prints
seconds and the ratio sequential/virtnet. From the repository root:

    .venv/bin/python bench/fleet.py [--hosts-file /tmp/lab/hosts.toml] [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

VIRTNET = [sys.executable, "-m", "virtnet"]
NO_OVSDB = "unix:/nonexistent/virtnet-bench/db.sock"
# (hosts, running domains per host): growth with hosts at few domains, with domains at one host, and
# both; the sequential side of 8 x 200 alone would take a quarter of an hour here.
CASES = ((1, 1), (3, 1), (8, 1), (1, 50), (1, 200), (3, 50), (8, 50))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hosts-file", type=Path, help="a hosts file of real hosts (part 1)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"{'case':<34} {'virtnet s':>10} {'sequential s':>13} {'ratio':>7}")
    if args.hosts_file:
        hosts = tomllib.loads(args.hosts_file.read_text())["host"]
        _row(f"{len(hosts)} real hosts", args.hosts_file, hosts, args.runs)
    with tempfile.TemporaryDirectory(prefix="virtnet-bench-fleet-") as tmp:
        for n_hosts, n_domains in CASES:
            node = Path(tmp) / f"node-{n_domains}.xml"
            if not node.exists():
                node.write_text(_test_node(n_domains))
            hosts = [{"name": f"t{i}", "uri": f"test://{node}", "ovsdb": NO_OVSDB} for i in range(n_hosts)]
            hosts_file = Path(tmp) / f"hosts-{n_hosts}-{n_domains}.toml"
            hosts_file.write_text(_hosts_toml(hosts))
            _row(f"test driver: {n_hosts} hosts x {n_domains} domains", hosts_file, hosts, args.runs)


def _row(label: str, hosts_file: Path, hosts: list[dict[str, Any]], runs: int) -> None:
    ours: list[float] = []
    theirs: list[float] = []
    for run in range(runs):
        order = [(ours, lambda: _virtnet(hosts_file)), (theirs, lambda: _sequential(hosts))]
        for times, measure in order if run % 2 == 0 else reversed(order):
            times.append(measure())
    a, b = statistics.median(ours), statistics.median(theirs)
    print(f"{label:<34} {a:>10.2f} {b:>13.2f} {b / a:>7.1f}x", flush=True)


def _virtnet(hosts_file: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run([*VIRTNET, "--hosts", str(hosts_file), "hosts", "--json", "--timeout", "120"],
                          capture_output=True, text=True, check=False)  # fmt: skip
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"virtnet hosts failed: {done.stderr}")
    return elapsed


def _sequential(hosts: list[dict[str, Any]]) -> float:
    started = time.perf_counter()
    for host in hosts:
        uri = host["uri"]
        for args in (["nodeinfo"], ["freepages", "--all"], ["version"], ["list", "--all", "--name"]):
            _virsh(uri, *args)
        for name in _virsh(uri, "list", "--name").split():
            _virsh(uri, "vcpupin", name)
        _vsctl(host)
    return time.perf_counter() - started


def _virsh(uri: str, *args: str) -> str:
    return subprocess.run(
        ["virsh", "-q", "-c", uri, *args], capture_output=True, text=True, check=False
    ).stdout


def _vsctl(host: dict[str, Any]) -> None:
    tls = host.get("ovsdb_tls") or {}
    options = (
        [f"--private-key={tls['key']}", f"--certificate={tls['cert']}", f"--ca-cert={tls['ca']}"]
        if tls
        else []
    )
    subprocess.run(
        ["ovs-vsctl", f"--db={host['ovsdb']}", *options, "--timeout=5", "--no-wait",
         "get", "Open_vSwitch", ".", "dpdk_initialized", "dpdk_version", "other_config"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip


def _hosts_toml(hosts: list[dict[str, Any]]) -> str:
    return "".join(
        f'[[host]]\nname = "{h["name"]}"\nuri = "{h["uri"]}"\novsdb = "{h["ovsdb"]}"\n\n' for h in hosts
    )


def _test_node(n_domains: int) -> str:
    """A test-driver node: 8 CPUs in 2 cells, `n_domains` running 1-vCPU domains, each pinned."""
    domains = "".join(
        f"<domain type='test'><name>d{i}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>"
        f"<cputune><vcpupin vcpu='0' cpuset='{i % 8}'/></cputune><os><type>hvm</type></os></domain>"
        for i in range(n_domains)
    )
    return (
        "<node><cpu><nodes>2</nodes><sockets>1</sockets><cores>4</cores><threads>1</threads>"
        "<active>8</active><mhz>2000</mhz></cpu><memory>16777216</memory>"
        f"{domains}</node>"
    )


if __name__ == "__main__":
    main()
