"""`make demo` replays the walkthrough on its own lab, and works twice in a row."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_walkthrough_demo_runs_twice() -> None:
    """The first run is the whole demo; the second leaves out the Debian guests' profiling (minutes
    of TCG boot) and shows that a lab comes up again where the first one was."""
    for profiling in ("yes", "no"):
        env = dict(
            os.environ,
            VIRTNET=str(Path(sys.executable).with_name("virtnet")),
            VIRTNET_DEMO_PROFILING=profiling,
        )
        done = subprocess.run(
            ["bash", str(ROOT / "cli" / "walkthrough.sh")],
            capture_output=True,
            text=True,
            timeout=2400 if profiling == "yes" else 600,
            check=False,
            env=env,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
        summary = done.stdout.split("Summary", 1)[1]
        rows = [line for line in summary.splitlines() if line.startswith("walkthrough-vm")]
        assert len(rows) == 2 and all(row.split()[-1] == "ok" and " running " in row for row in rows), summary
        moved = done.stdout.split("Live migration", 1)[1]
        assert "Migration status: completed" in moved and "in one boot: ok" in moved, moved
        assert any(line.split()[1:] == ["walkthrough-vm2", "running"] for line in moved.splitlines()), moved
        assert "lab is down" in done.stdout
        if profiling == "yes":
            table = done.stdout.split("The walkthrough's profiling table", 1)[1]
            assert "Debian guest image ready in" in done.stderr
            assert re.search(r"NIC 2 queues:\s+4 of 4 enabled in the guest", table), table
            rows = [line for line in table.splitlines() if line.startswith("NIC ") and "|" in line]
            kinds = [row.split("|")[0].strip() for row in rows]
            assert kinds == ["NIC 0 user/virtio", "NIC 1 bridge/virtio (qemu)", "NIC 2 vhost-user/OVS-DPDK"]
            assert "VM-VM throughput: vhost-user/OVS-DPDK / bridge/virtio (qemu) = " in table, table
            outage = r"network outage seen by walkthrough-deb1 \(ping every 10 ms\): longest gap"
            assert re.search(outage, table), table
        else:
            assert "profiling on Debian guests left out" in done.stdout
    assert not Path("/run/netns/virtnet-lab0").exists()
    assert not Path("/run/netns/virtnet-lab1").exists()
