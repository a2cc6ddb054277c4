"""What `virtnet doctor` reads from libvirt beyond a domain's XML: pause reasons, jobs, volumes."""

from __future__ import annotations

import libvirt

from virtnet.domxml.domain import Domain
from virtnet.virt.errors import libvirt_errors, translate
from virtnet.virt.guest import Guest
from virtnet.virt.host import Host
from virtnet.virt.storage import VolumeInfo, described

_PAUSE_REASONS = {
    libvirt.VIR_DOMAIN_PAUSED_MIGRATION: "migration",
    libvirt.VIR_DOMAIN_PAUSED_POSTCOPY: "postcopy",
    libvirt.VIR_DOMAIN_PAUSED_POSTCOPY_FAILED: "postcopy-failed",
    libvirt.VIR_DOMAIN_PAUSED_STARTING_UP: "starting-up",
    libvirt.VIR_DOMAIN_PAUSED_USER: "user",
}


def pause_reason(guest: Guest) -> str | None:
    """Why the domain is paused ('migration', 'postcopy-failed', ...), None when it is not paused."""
    with libvirt_errors(guest.uri):
        state, reason = guest.domain.state()
    if state != libvirt.VIR_DOMAIN_PAUSED:
        return None
    return _PAUSE_REASONS.get(reason, "other")


def has_job(guest: Guest) -> bool:
    """Whether a job (a migration, on either side) runs on the domain now."""
    if not guest.is_active:
        return False  # libvirt refuses to report jobs of a domain that is not running
    try:
        return int(guest.domain.jobInfo()[0]) != libvirt.VIR_DOMAIN_JOB_NONE
    except libvirt.libvirtError as err:
        if err.get_error_code() == libvirt.VIR_ERR_NO_SUPPORT:
            return False  # the test driver runs no jobs
        if err.get_error_code() == libvirt.VIR_ERR_OPERATION_UNSUPPORTED:
            return True  # "statistics are available only on the source host": an incoming job runs
        raise translate(err, guest.uri) from None


def volumes(host: Host) -> list[VolumeInfo]:
    """Every volume in the host's active storage pools."""
    with libvirt_errors(host.uri):
        pools = host.conn.listAllStoragePools(libvirt.VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE)
        found = [described(vol) for pool in pools for vol in pool.listAllVolumes(0)]
    return sorted(found, key=lambda v: v.path)


def disk_paths(xml: str) -> set[str]:
    """The files a domain's disks use, from its XML."""
    domain = Domain.parse(xml)
    disks = domain.devices.disks if domain.devices is not None else []
    return {disk.source_file for disk in disks if disk.source_file}


def connection_alive(host: Host) -> bool:
    """Whether the connection still reaches libvirtd (False after libvirtd restarted under it)."""
    try:
        return bool(host.conn.isAlive())
    except libvirt.libvirtError:
        return False
