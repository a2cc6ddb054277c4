"""`make demo` keeps working: the demo script runs to its end, twice in a row."""

from __future__ import annotations

import subprocess
import sys

from support import ROOT


def test_demo_runs_twice() -> None:
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, str(ROOT / "cli" / "demo_testdriver.py")],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert "6 walkthrough VMs rendered, validated by libvirt and defined" in done.stdout
        assert "centos-mq        shut off" not in done.stdout  # the summary lists UUIDs, not a stub
        assert done.stdout.count("Defined domain") == 6
