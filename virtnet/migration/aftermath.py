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

from virtnet.errors import ConnectionFailed, MigrationFailed, OvsdbError
from virtnet.ovs import vmports
from virtnet.ovs.connection import Ovsdb
from virtnet.spec.models import VMSpec
from virtnet.virt import hoststate
from virtnet.virt.host import Host

RECONNECT_S = 120.0
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
        on_source, on_dest = _wait_without_job(source_host, dest_host, name, deadline)
    where = f"libvirtd restarted during the migration of {name!r}; the guest now runs "
    if on_source != on_dest:
        here, there, label = (source, dest, "source") if on_source else (dest, source, "destination")
        ports = _move_ports(here, there, uuid)
        return MigrationCutOff(f"{where}on the {label} {here.uri} only{ports}", uri=source.uri)
    state = "on both hosts" if on_source else "on neither host"
    return MigrationCutOff(
        f"{where}{state}; nothing was changed: check with `virtnet doctor` on {source.uri} and {dest.uri}",
        uri=source.uri,
    )


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


def _wait_without_job(source: Host, dest: Host, name: str, deadline: float) -> tuple[bool, bool]:
    """(runs on the source, runs on the destination), once neither side has a job on the guest."""
    while True:
        found = [host.find(name) for host in (source, dest)]
        busy = any(guest is not None and hoststate.has_job(guest) for guest in found)
        if not busy or time.monotonic() > deadline:
            break
        time.sleep(POLL_S)
    on_source, on_dest = (guest is not None and guest.is_active for guest in found)
    return on_source, on_dest


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
                removed = vmports.remove(db, uuid)
            if removed:
                notes.append(f"; removed port(s) {', '.join(removed)} from {there.uri}'s OVS")
        except OvsdbError as err:
            notes.append(f"; its ports on {there.uri} stay ({err}): run `virtnet doctor --fix` there")
    return "".join(notes)
