"""After a libvirtd restart cut a migration off: where the guest runs, and its ports made to match.

A libvirtd that restarts during a migration recovers the job its own way (the source's cancels an
outgoing job that had not switched and resumes the guest; the destination's drops an incoming
domain whose job is gone), and the connection virtnet watched the job through is dead, so the
job's own outcome says nothing. Here virtnet connects to both hosts again, waits until neither runs
a job on the guest, and believes what the hosts show: the guest's ports stay on the host where it
runs and go from the other. A guest running on both or on neither is reported and not touched.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass

from virtnet.errors import ConnectionFailed, MigrationFailed, OvsdbError, VirtnetError
from virtnet.ovs import vmports
from virtnet.ovs.connection import Ovsdb
from virtnet.spec.models import VMSpec
from virtnet.virt import hoststate
from virtnet.virt.guest import Guest
from virtnet.virt.host import Host

RECONNECT_S = 60.0
POLL_S = 1.0


class MigrationCutOff(MigrationFailed):
    """A libvirtd restarted during the migration; the message says where the guest runs now."""


def cut_off(source: Host, dest: Host) -> bool:
    """Whether either connection died under the job (a libvirtd restarted or went away)."""
    return not hoststate.connection_alive(source) or not hoststate.connection_alive(dest)


@dataclass(frozen=True)
class Side:
    """One end of the move: its libvirt URI, its OVS (None without ports) and the guest's spec there."""

    uri: str
    ovsdb: str | None
    spec: VMSpec | None


def settle(source: Side, dest: Side, name: str, uuid: str) -> MigrationCutOff:
    """Find where the guest runs once both libvirtds answer and no job runs; its ports go there."""
    deadline = time.monotonic() + RECONNECT_S
    with _reopen(source.uri, deadline) as source_host, _reopen(dest.uri, deadline) as dest_host:
        found = _wait_without_job(source_host, dest_host, name, deadline)
        running = [guest is not None and guest.state in ("running", "idle") for guest in found]
        where = f"libvirtd restarted during the migration of {name!r}; the guest now runs "
        if running[0] == running[1]:
            state = "on both hosts" if running[0] else "on neither host"
            return MigrationCutOff(
                f"{where}{state}; nothing was changed: check with `virtnet doctor` on {source.uri} "
                f"and {dest.uri}",
                uri=source.uri,
            )
        at = 0 if running[0] else 1
        here, there = (source, dest) if at == 0 else (dest, source)
        label = "source" if at == 0 else "destination"
        # Only the destination's copy: a paused source after a finished copy is libvirt's to settle.
        copy = _drop_incoming_copy(found[1]) if at == 0 else ""
        ports = _move_ports(here, there, uuid)
    return MigrationCutOff(f"{where}on the {label} {here.uri} only{ports}{copy}", uri=source.uri)


def _drop_incoming_copy(guest: Guest | None) -> str:
    """The other host's copy, when it is an incoming domain left paused: it never ran the guest."""
    if guest is None or hoststate.pause_reason(guest) not in ("migration", "starting-up"):
        return ""
    try:
        guest.destroy()
    except VirtnetError as err:
        return f"; its paused incoming copy on {guest.uri} stays ({err}): run `virtnet doctor --fix` there"
    return f"; destroyed its paused incoming copy on {guest.uri}"


@contextlib.contextmanager
def _reopen(uri: str, deadline: float) -> Iterator[Host]:
    while True:
        try:
            host = Host.open(uri)
            break
        except ConnectionFailed:
            if time.monotonic() > deadline:
                raise
            time.sleep(POLL_S)
    with host:
        yield host


def _wait_without_job(source: Host, dest: Host, name: str, deadline: float) -> list[Guest | None]:
    """The guest's domain on each host, once neither has a job on it (or at the deadline)."""
    while True:
        found = [host.find(name) for host in (source, dest)]
        busy = any(guest is not None and hoststate.has_job(guest) for guest in found)
        if not busy or time.monotonic() > deadline:
            return found
        time.sleep(POLL_S)


def _move_ports(here: Side, there: Side, uuid: str) -> str:
    """The guest's ports on the OVS where it runs (made again if undone), none on the other."""
    if here.spec is None or not here.ovsdb or not here.spec.ovs_nics:
        return ""
    notes = []
    try:
        with Ovsdb(here.ovsdb) as db:
            vmports.apply(db, here.spec, uuid)
        names = [p.name for p in vmports.planned_ports(here.spec, uuid)]
        notes.append(f", with its port(s) {', '.join(names)} there")
    except OvsdbError as err:
        notes.append(f"; its ports there could not be checked ({err}): run `virtnet doctor --fix` there")
    if there.ovsdb and there.ovsdb != here.ovsdb:
        try:
            with Ovsdb(there.ovsdb) as db:
                vmports.remove(db, uuid)
            notes.append(f" and none on {there.uri}")
        except OvsdbError as err:
            notes.append(f"; its ports on {there.uri} stay ({err}): run `virtnet doctor --fix` there")
    return "".join(notes)
