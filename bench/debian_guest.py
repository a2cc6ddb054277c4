"""A provisioned Debian guest's first boot, and what `virtnet wait` adds to the moment it was ready.

On a lab of its own (one libvirt host on 127.0.0.60, ``virtnet.lab``) this takes the lab's Debian
image (timing a cache hit; with ``--cold`` also a build into an empty cache) and, ``--runs`` times,
defines a fresh provisioned guest (an overlay over the base image, user 'bench' with a key made
here, a user NIC forwarding 127.0.0.1:10162 to port 22) and starts it. From the moment `virtnet
start` returns, three pollers run side by side:

  (probe)   a tight loop that reads sshd's banner every 0.2 s: the moment ssh became possible;
  (virtnet) ``virtnet wait NAME --for ssh`` and then ``--for cloud-init``;
  (loop)    what users script today (the recipes' ``until ssh ... true; do sleep 2; done``): the
            system ssh with a 3 s connect timeout, every 2 s, until it logs in.

Prints per run the seconds from start to each, the overhead of virtnet and of the loop over the
probe, and the medians; the ratio loop overhead / virtnet overhead. Guests run under TCG here, so the
boot itself is slow; the overheads are what the tools add.

Needs root (the lab starts daemons and namespaces). From the repository root:

    .venv/bin/python bench/debian_guest.py [--runs 3] [--cold]
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import tomli_w

from virtnet.lab.debian_image import DebianImage, build_debian_image
from virtnet.lab.lab import Lab

ROOT = Path(__file__).resolve().parent.parent
PYTHON = ROOT / ".venv" / "bin" / "python"
LAB_PREFIX = "vnbdeb"
LAB_ADDRESS = "127.0.0.60"  # other labs on this machine use .2, .20/.21, .30, .40/.41, .50/.51, .90
SSH_PORT = 10162
READY_TIMEOUT_S = 900


def virtnet(uri: str, *args: str, timeout: float = READY_TIMEOUT_S + 60) -> subprocess.CompletedProcess[str]:
    argv = [str(PYTHON), "-m", "virtnet", "-c", uri, *args]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: exit {done.returncode}: {done.stderr.strip()}")
    return done


def banner_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", SSH_PORT), timeout=0.5) as conn:
            conn.settimeout(0.5)
            return conn.recv(64).startswith(b"SSH-")
    except OSError:
        return False


def ssh_loop(key: Path, known_hosts: Path, stop: threading.Event) -> float | None:
    """The scripted way: try to log in every 2 s; the time it first worked."""
    argv = ["ssh", "-p", str(SSH_PORT), "-i", str(key), "-o", "BatchMode=yes", "-o", "ConnectTimeout=3"]
    argv += ["-o", f"UserKnownHostsFile={known_hosts}", "-o", "StrictHostKeyChecking=accept-new"]
    argv += ["bench@127.0.0.1", "true"]
    while not stop.is_set():
        if subprocess.run(argv, capture_output=True, timeout=60, check=False).returncode == 0:
            return time.monotonic()
        time.sleep(2)
    return None


def one_run(lab: Lab, uri: str, image: DebianImage, workdir: Path, key: Path, run: int) -> dict[str, float]:
    name = f"bench{run}"
    spec = {
        "name": name,
        "cpu": {"count": 1},
        "memory": {"size": "1GiB"},
        "boot": {"kernel": str(image.kernel), "initrd": str(image.initrd), "cmdline": image.cmdline},
        "disks": [{"path": str(workdir / f"{name}.qcow2"), "backing": str(image.base)}],
        "nics": [{"type": "user", "forwards": [{"host_port": SSH_PORT, "guest_port": 22}]}],
        "console": {"type": "pty", "log": str(workdir / f"{name}.console.log")},
        "cloud_init": {
            "users": [{"name": "bench", "ssh_authorized_keys": [key.with_suffix(".pub").read_text().strip()]}]
        },
    }
    path = workdir / f"{name}.toml"
    path.write_text(tomli_w.dumps(spec))
    virtnet(uri, "define", str(path))
    virtnet(uri, "start", name)
    started = time.monotonic()
    times: dict[str, float] = {}
    stop = threading.Event()

    def probe() -> None:
        while not stop.is_set() and not banner_answers():
            time.sleep(0.2)
        times.setdefault("probe", time.monotonic())

    def loop() -> None:
        found = ssh_loop(key, workdir / f"{name}.known_hosts", stop)
        if found is not None:
            times["loop"] = found

    threads = [threading.Thread(target=probe), threading.Thread(target=loop)]
    for thread in threads:
        thread.start()
    try:
        virtnet(uri, "wait", name, "--for", "ssh", "--timeout", str(READY_TIMEOUT_S))
        times["virtnet"] = time.monotonic()
        virtnet(uri, "wait", name, "--for", "cloud-init", "--timeout", str(READY_TIMEOUT_S))
        times["cloud-init"] = time.monotonic()
        deadline = time.monotonic() + 120
        while "loop" not in times and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        virtnet(uri, "stop", name, "--force", timeout=120)
        virtnet(uri, "undefine", name, timeout=120)
    return {what: at - started for what, at in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cold", action="store_true", help="also time a build into an empty cache")
    args = parser.parse_args()

    if args.cold:
        cold_dir = Path(tempfile.mkdtemp(prefix="virtnet-bench-cache-"))
        try:
            began = time.monotonic()
            build_debian_image(cold_dir)
            print(f"image build, cold: {time.monotonic() - began:.1f} s")
        finally:
            shutil.rmtree(cold_dir, ignore_errors=True)
    build_debian_image()  # make sure the default cache has it
    began = time.perf_counter()
    image = build_debian_image()
    print(f"image build, cached: {(time.perf_counter() - began) * 1000:.1f} ms")

    workdir = Path(tempfile.mkdtemp(prefix="virtnet-bench-debian-"))
    key = workdir / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    lab = Lab(workdir / "lab", prefix=LAB_PREFIX, first_address=LAB_ADDRESS)
    state = lab.up(hosts=1, hugepages_mib=0)
    uri = state.hosts[0].uri
    rows = []
    try:
        for run in range(args.runs):
            row = one_run(lab, uri, image, workdir, key, run)
            rows.append(row)
            loop = row.get("loop", float("nan"))
            print(
                f"run {run}: ssh ready {row['probe']:.1f} s, virtnet wait {row['virtnet']:.1f} s "
                f"(+{row['virtnet'] - row['probe']:.2f}), ssh loop {loop:.1f} s "
                f"(+{loop - row['probe']:.2f}), cloud-init done {row['cloud-init']:.1f} s"
            )
    finally:
        lab.down()
        shutil.rmtree(workdir, ignore_errors=True)
    relative = ("virtnet", "loop")  # measured as overheads over the moment sshd answered
    med = {
        what: statistics.median(r[what] - (r["probe"] if what in relative else 0) for r in rows if what in r)
        for what in ("probe", "virtnet", "loop", "cloud-init")
    }
    print(
        f"median: first boot to ssh ready {med['probe']:.1f} s, to cloud-init done {med['cloud-init']:.1f} s"
    )
    print(
        f"median overhead over the moment ssh answered: virtnet wait {med['virtnet']:.2f} s, "
        f"ssh loop {med['loop']:.2f} s"
    )
    if med["virtnet"] > 0:
        print(f"ratio (ssh loop / virtnet wait overhead): {med['loop'] / med['virtnet']:.1f}x")


if __name__ == "__main__":
    sys.exit(main())
