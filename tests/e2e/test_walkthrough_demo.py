"""`make demo` replays the walkthrough on its own lab, and works twice in a row."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_walkthrough_demo_runs_twice() -> None:
    env = dict(os.environ, VIRTNET=str(Path(sys.executable).with_name("virtnet")))
    for _ in range(2):
        done = subprocess.run(
            ["bash", str(ROOT / "cli" / "walkthrough.sh")],
            capture_output=True,
            text=True,
            timeout=600,
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
    assert not Path("/run/netns/virtnet-lab0").exists()
    assert not Path("/run/netns/virtnet-lab1").exists()
