"""What is inconsistent on one host after a fault, and the repair for each.

A run killed half-way, a switch whose database was wiped, or a migration whose virtnet died leaves
state that no single command owns: OVS ports whose VM is gone, VMs whose ports are gone, an
incoming domain left paused, a migration job nobody watches, a lock whose holder is dead, a seed
volume without its VM. examine() finds them; repair() fixes each one it can, one line per action.
What cannot be repaired safely (a post-copy guest split between hosts, an overlay that may hold the
user's data) is reported with the manual fix and left alone.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from dataclasses import dataclass, field

from virtnet import vmlock
from virtnet.errors import OvsdbError, VirtnetError
from virtnet.inventory import spec_of
from virtnet.ovs import vmports
from virtnet.ovs.connection import Ovsdb
from virtnet.spec.derived import seed_path
from virtnet.virt import hoststate
from virtnet.virt.guest import Guest
from virtnet.virt.host import Host
from virtnet.virt.migration import MigrationJob
from virtnet.virt.storage import delete_volume

SEED_SUFFIX = "-cidata.iso"


@dataclass
class Finding:
    kind: str  # orphan-port, missing-ports, paused-incoming, unwatched-migration, stale-lock, ...
    subject: str  # the port, VM, lock or volume it is about
    problem: str
    repair: str  # what --fix does, or the manual fix when `fixable` is False
    fixable: bool = True
    _fix: Callable[[], str] | None = field(default=None, repr=False, compare=False)

    def as_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "subject": self.subject,
            "problem": self.problem,
            "repair": self.repair,
            "fixable": self.fixable,
        }


@dataclass(frozen=True)
class Action:
    finding: Finding
    line: str
    ok: bool


def examine(host: Host, ovsdb: str | None) -> list[Finding]:
    """Every inconsistency found on the host (and its OVS, when `ovsdb` is given and answers)."""
    guests = host.guests()
    findings: list[Finding] = []
    locks = {lock.name: lock for lock in vmlock.locks(host)}
    findings += _domains(host, guests, locks)
    findings += _locks(host, guests, locks)
    if ovsdb:
        findings += _switch(guests, ovsdb)
    findings += _volumes(host, guests)
    return findings


def repair(findings: list[Finding]) -> list[Action]:
    """Fix every fixable finding, in order; one action each, failed ones included."""
    actions = []
    for finding in findings:
        if not finding.fixable or finding._fix is None:
            continue
        try:
            actions.append(Action(finding, finding._fix(), True))
        except VirtnetError as err:
            actions.append(Action(finding, f"could not {finding.repair}: {err}", False))
    return actions


def _domains(host: Host, guests: list[Guest], locks: dict[str, vmlock.HeldLock]) -> list[Finding]:
    found = []
    for guest in guests:
        reason = hoststate.pause_reason(guest)
        job = hoststate.has_job(guest)
        if reason == "postcopy-failed":
            found.append(
                Finding(
                    "postcopy-failed",
                    guest.name,
                    "paused after a failed post-copy migration: its memory is split between two hosts",
                    f"resume the migration from the source with `virsh migrate --postcopy --postcopy-resume "
                    f"--p2p {guest.name} DEST`",
                    fixable=False,
                )
            )
        elif reason == "migration" and not job and not guest.is_persistent:
            found.append(
                Finding(
                    "paused-incoming",
                    guest.name,
                    "an incoming migration's domain left paused with no job: the guest never switched here "
                    "and still runs on the source",
                    f"destroy the incoming copy of {guest.name}",
                    _fix=_destroy(guest),
                )
            )
        lock = locks.get(guest.name)
        if job and lock is not None and lock.stale and lock.holder is not None:
            found.append(
                Finding(
                    "unwatched-migration",
                    guest.name,
                    f"a migration job runs, but its {lock.holder.describe()} is gone: nobody steers or "
                    "cleans up after it",
                    f"abort the migration job of {guest.name} (the guest stays on this host) and remove "
                    "the dead run's lock",
                    _fix=_abort(host, guest, lock),
                )
            )
    return found


def _locks(host: Host, guests: list[Guest], locks: dict[str, vmlock.HeldLock]) -> list[Finding]:
    busy = {guest.name for guest in guests if hoststate.has_job(guest)}
    found = []
    for lock in locks.values():
        if not lock.stale or lock.name in busy or lock.holder is None:
            continue  # a job in flight keeps its lock until it is aborted (unwatched-migration)
        found.append(
            Finding(
                "stale-lock",
                lock.name,
                f"locked by {lock.holder.describe()}, which is gone",
                f"remove the lock record {lock.uuid}",
                _fix=lambda lock=lock: _released(host, lock),  # type: ignore[misc]
            )
        )
    return found


def _switch(guests: list[Guest], remote: str) -> list[Finding]:
    try:
        db = Ovsdb(remote)
    except OvsdbError as err:
        if not any((spec := spec_of(guest)) and spec.ovs_nics for guest in guests):
            return []  # no VM here uses OVS: a host without a switch is not inconsistent
        return [Finding("switch-unreachable", remote, str(err), "start ovsdb-server", fixable=False)]
    found = []
    with db:
        live = {guest.uuid: guest for guest in guests}
        for port in vmports.orphans(db, set(live)):
            found.append(
                Finding(
                    "orphan-port",
                    port.name,
                    f"OVS port on {port.bridge} for VM {port.vm_name or '?'} ({port.vm_uuid}), "
                    "which is not on this host",
                    f"delete port {port.name}",
                    _fix=lambda name=port.name: _deleted_port(remote, name),  # type: ignore[misc]
                )
            )
        present = {port.name for port in vmports.vm_ports(db)}
        for uuid, guest in live.items():
            spec = spec_of(guest)
            if spec is None or not spec.ovs_nics:
                continue
            missing = [p.name for p in vmports.planned_ports(spec, uuid) if p.name not in present]
            if missing:
                found.append(
                    Finding(
                        "missing-ports",
                        guest.name,
                        f"{guest.state} VM without its OVS port(s) {', '.join(missing)}",
                        f"create port(s) {', '.join(missing)} for {guest.name}",
                        _fix=lambda g=guest: _recreated_ports(remote, g),  # type: ignore[misc]
                    )
                )
    return found


def _volumes(host: Host, guests: list[Guest]) -> list[Finding]:
    used: set[str] = set()
    seeds: set[str] = set()
    for guest in guests:
        used |= hoststate.disk_paths(guest.xml(inactive=True))
        spec = spec_of(guest)
        seed = seed_path(spec) if spec else None
        if seed:
            seeds.add(seed)
    found = []
    every = hoststate.volumes(host)
    bases = {volume.backing for volume in every if volume.backing}
    for volume in every:
        if volume.path in used or volume.path in seeds:
            continue
        if volume.path.endswith(SEED_SUFFIX):
            name = posixpath.basename(volume.path)[: -len(SEED_SUFFIX)]
            found.append(
                Finding(
                    "orphan-seed",
                    volume.path,
                    f"cloud-init seed of VM {name!r}, which is not on this host",
                    f"delete {volume.path}",
                    _fix=lambda path=volume.path: _deleted_volume(host, path),  # type: ignore[misc]
                )
            )
        elif volume.backing and volume.path not in bases:
            found.append(
                Finding(
                    "orphan-overlay",
                    volume.path,
                    f"overlay over {volume.backing} that no domain uses (it may hold a guest's data)",
                    f"check it and delete it with `virsh vol-delete {volume.path}`",
                    fixable=False,
                )
            )
    return found


def _destroy(guest: Guest) -> Callable[[], str]:
    def fix() -> str:
        guest.destroy()
        return f"destroyed the paused incoming copy of {guest.name}"

    return fix


def _abort(host: Host, guest: Guest, lock: vmlock.HeldLock) -> Callable[[], str]:
    def fix() -> str:
        MigrationJob(guest).abort()
        vmlock.release(host, lock)
        return f"aborted the unwatched migration job of {guest.name}; it keeps running here"

    return fix


def _released(host: Host, lock: vmlock.HeldLock) -> str:
    vmlock.release(host, lock)
    return f"removed the stale lock on {lock.name} ({lock.uuid})"


def _deleted_port(remote: str, name: str) -> str:
    with Ovsdb(remote) as db:
        vmports.delete(db, [name])
    return f"deleted OVS port {name}"


def _recreated_ports(remote: str, guest: Guest) -> str:
    spec = spec_of(guest)
    assert spec is not None
    with Ovsdb(remote) as db:
        vmports.apply(db, spec, guest.uuid)
    names = ", ".join(p.name for p in vmports.planned_ports(spec, guest.uuid))
    return f"created OVS port(s) {names} for {guest.name}"


def _deleted_volume(host: Host, path: str) -> str:
    delete_volume(host, path)
    return f"deleted {path}"
