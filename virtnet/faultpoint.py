"""Named points where an end-to-end test stops virtnet to throw a fault at a known moment.

With VIRTNET_STOP_AT=<point> in its environment, a run stops itself (SIGSTOP) on reaching that
point; the test sees the stopped state in /proc, restarts a daemon or wipes a database, and then
continues the run (SIGCONT) or kills it (SIGKILL). Without the variable a point costs one lookup.
Killing a process at a moment chosen by a timer would make the outcome, and so the test's
expectation, depend on the machine's load.
"""

from __future__ import annotations

import os
import signal

ENV = "VIRTNET_STOP_AT"
_passed: set[str] = set()


def reached(point: str) -> None:
    """Stop here once, when the environment names this point."""
    if os.environ.get(ENV) == point and point not in _passed:
        _passed.add(point)
        os.kill(os.getpid(), signal.SIGSTOP)
