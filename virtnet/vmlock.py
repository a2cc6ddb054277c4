"""One virtnet run at a time per VM, across every machine that talks to its libvirt host.

Design: the lock lives on the libvirt host, as a lock record that libvirtd creates atomically
(virtnet/virt/lockrecords.py), keyed by the domain's name, so it covers a define of a domain that
does not exist yet as well as a migration of one that does. A local lock file would not stop a
second machine; domain metadata cannot be created-if-absent atomically. The record says who holds
it: machine, PID, the process's start time, command and since when.

A holder killed with SIGKILL leaves its record behind. A record whose holder ran on this machine
and is gone (no such PID, a zombie, or a PID reused by a later process) is stale: the next run
takes it over (removing that record by its UUID only, so two runs taking over at once still end
with one holder). A holder on another machine cannot be checked from here: the refusal says how to
remove its record once the user knows that run is gone. `virtnet doctor` lists every lock record.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from virtnet.errors import HypervisorError, VmLocked
from virtnet.virt import lockrecords
from virtnet.virt.host import Host

log = logging.getLogger(__name__)

POLL_S = 0.5


@dataclass(frozen=True)
class Holder:
    """Who holds a VM's lock."""

    machine: str
    pid: int
    started: int  # the process's start time in clock ticks since boot (/proc/PID/stat field 22)
    command: str
    since: str

    @classmethod
    def me(cls, command: str) -> Holder:
        pid = os.getpid()
        return cls(
            socket.gethostname(),
            pid,
            _start_ticks(pid) or 0,
            command,
            datetime.now(UTC).isoformat(timespec="seconds"),
        )

    @classmethod
    def parse(cls, description: str) -> Holder | None:
        try:
            data = json.loads(description)
            return cls(**{key: data[key] for key in ("machine", "pid", "started", "command", "since")})
        except (ValueError, TypeError, KeyError):
            return None

    def describe(self) -> str:
        return f"`virtnet {self.command}` (pid {self.pid} on {self.machine}, since {self.since})"

    def is_gone(self) -> bool:
        """Whether this holder ran on this machine and no longer does; False when it is elsewhere."""
        if self.machine != socket.gethostname():
            return False
        return _start_ticks(self.pid) != self.started


@dataclass(frozen=True)
class HeldLock:
    """A lock record as found on a host."""

    name: str
    uuid: str
    holder: Holder | None

    @property
    def stale(self) -> bool:
        return self.holder is not None and self.holder.is_gone()


@contextmanager
def held(host: Host, name: str, command: str, *, wait: bool = False) -> Iterator[None]:
    """Hold VM `name`'s lock on `host` for the block; refuse, or `wait`, while another run holds it."""
    me = Holder.me(command)
    uuid = _acquire(host, name, me, wait=wait)
    try:
        yield
    finally:
        if uuid is not None:
            _release(host, uuid)


def locks(host: Host) -> list[HeldLock]:
    """Every VM lock on the host, with its holder."""
    return [HeldLock(r.key, r.uuid, Holder.parse(r.description)) for r in lockrecords.all_records(host)]


def release(host: Host, lock: HeldLock) -> bool:
    """Remove one lock record (doctor --fix, for a stale one)."""
    return lockrecords.remove(host, lock.uuid)


def _release(host: Host, uuid: str) -> None:
    """Remove our record, through a new connection when libvirtd restarted under the old one."""
    try:
        lockrecords.remove(host, uuid)
        return
    except HypervisorError:
        pass
    try:
        with Host.open(host.uri) as fresh:
            lockrecords.remove(fresh, uuid)
    except HypervisorError as err:  # our PID dies with us: the next run here takes the lock over
        log.warning("could not remove the lock record %s on %s: %s", uuid, host.uri, err)


def _acquire(host: Host, name: str, me: Holder, *, wait: bool) -> str | None:
    description = json.dumps(asdict(me), sort_keys=True)
    waited = False
    while True:
        try:
            uuid = lockrecords.create(host, name, description)
        except lockrecords.LockRecordsUnsupported:
            # The test driver: each connection is its own private host, nothing to lock out.
            log.info("libvirt at %s keeps no lock records; %s runs unlocked", host.uri, name)
            return None
        if uuid is not None:
            return uuid
        record = lockrecords.find(host, name)
        if record is None:
            continue  # released between our attempt and the look-up
        holder = Holder.parse(record.description)
        if holder is not None and holder.is_gone():
            log.warning("taking over the lock on %s left by %s, which is gone", name, holder.describe())
            lockrecords.remove(host, record.uuid)
            continue
        if not wait:
            who = holder.describe() if holder else f"an unreadable lock record ({record.description!r})"
            raise VmLocked(
                f"VM {name!r} on {host.uri} is held by {who}; wait for it with --wait-lock, or, if that run "
                f"is gone, remove its lock with `virsh -c {host.uri} secret-undefine {record.uuid}`"
            )
        if not waited:
            who = holder.describe() if holder else "another run"
            log.warning("VM %s is held by %s: waiting", name, who)
            waited = True
        time.sleep(POLL_S)


def _start_ticks(pid: int) -> int | None:
    """A live process's start time, None for no such process or a zombie (PID 1 here reaps late)."""
    try:
        stat = open(f"/proc/{pid}/stat").read()  # noqa: SIM115 - one read
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])
