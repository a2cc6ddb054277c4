"""The VM lock's policy: who holds it, when a holder is gone, refusing and waiting.

The store is libvirt's secrets driver, which the test driver lacks; here a dict stands in for it
(the same create-if-absent contract), and tests/e2e/test_faults.py uses the real libvirtd.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from dataclasses import asdict

import pytest
from support import TEST_URI, Records

from virtnet import vmlock
from virtnet.errors import VmLocked
from virtnet.virt.host import Host


@pytest.fixture
def host() -> Host:
    with Host.open(TEST_URI) as opened:
        yield opened


def dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_the_second_run_is_refused_naming_the_holder(records: Records, host: Host) -> None:
    with vmlock.held(host, "vm1", "define vm1.toml"):
        with pytest.raises(VmLocked) as refused, vmlock.held(host, "vm1", "migrate vm1 qemu+tcp://b/system"):
            pass
        message = str(refused.value)
        assert f"`virtnet define vm1.toml` (pid {os.getpid()} on {socket.gethostname()}, since " in message
        assert "--wait-lock" in message and "\n" not in message
        with vmlock.held(host, "vm2", "define vm2.toml"):  # another VM is not held
            pass
    assert records.by_key == {}  # released


def test_wait_lock_waits_for_the_holder(records: Records, host: Host) -> None:
    order = []
    holding = threading.Event()

    def first() -> None:
        with vmlock.held(host, "vm1", "define vm1.toml"):
            holding.set()
            time.sleep(0.3)
            order.append("first done")

    thread = threading.Thread(target=first)
    thread.start()
    holding.wait()
    with vmlock.held(host, "vm1", "define vm1.toml", wait=True):
        order.append("second holds")
    thread.join()
    assert order == ["first done", "second holds"]


def test_a_lock_left_by_a_dead_process_here_is_taken_over(records: Records, host: Host) -> None:
    gone = vmlock.Holder(socket.gethostname(), dead_pid(), 1, "define vm1.toml", "2026-01-01T00:00:00+00:00")
    records.create(host, "vm1", json.dumps(asdict(gone)))
    with vmlock.held(host, "vm1", "define vm1.toml"):
        holder = vmlock.Holder.parse(records.by_key["vm1"].description)
        assert holder is not None and holder.pid == os.getpid()


def test_a_reused_pid_does_not_keep_a_lock(records: Records, host: Host) -> None:
    # Our own PID, but another start time: the PID was reused, the holder is gone.
    me = vmlock.Holder.me("define vm1.toml")
    assert not me.is_gone()
    assert vmlock.Holder(me.machine, me.pid, me.started + 1, "x", "t").is_gone()


def test_a_holder_on_another_machine_is_never_taken_over(records: Records, host: Host) -> None:
    other = vmlock.Holder("elsewhere", dead_pid(), 1, "define vm1.toml", "2026-01-01T00:00:00+00:00")
    records.create(host, "vm1", json.dumps(asdict(other)))
    with (
        pytest.raises(VmLocked, match=r"on elsewhere, since .*secret-undefine uuid-1"),
        vmlock.held(host, "vm1", "define vm1.toml"),
    ):
        pass


def test_the_test_driver_runs_unlocked(host: Host) -> None:
    with vmlock.held(host, "vm1", "define"), vmlock.held(host, "vm1", "define"):
        pass  # each test:/// connection is its own host: nothing to lock out
