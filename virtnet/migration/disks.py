"""--copy-storage: the guest's disks made on the destination through its storage API, then copied.

libvirt's NBD copy (VIR_MIGRATE_NON_SHARED_DISK) mirrors each writable disk into an image that must
already exist on the destination. virtnet makes it there first, through the destination's own
storage API (so a remote host works as a lab host does): same path, format and size, and for a qcow2
overlay the same backing image when the destination has it (the copy fills the overlay either way).
A disk already at that path on the destination is refused: the copy would overwrite it. After a
failed or aborted move the images made here are deleted again.
"""

from __future__ import annotations

from dataclasses import dataclass

from virtnet.domxml import Domain
from virtnet.errors import HostNotReady, HypervisorError, StorageError
from virtnet.virt.host import Host
from virtnet.virt.storage import Volume, VolumeInfo, ensure_volume, volume_info


@dataclass(frozen=True)
class DiskCopy:
    """One disk to copy: as it is on the source, and the backing image the destination will use."""

    source: VolumeInfo
    backing: str | None


def plan_copies(source: Host, dest: Host, live_xml: str) -> list[DiskCopy]:
    """Every disk libvirt will copy, checked against both hosts; nothing is changed."""
    copies = []
    for path in writable_disks(live_xml):
        info = volume_info(source, path)
        if info is None:
            raise StorageError(
                f"--copy-storage: disk {path} is not a volume libvirt's storage API sees on {source.uri}; "
                "move it into a directory libvirt can list, or migrate with shared storage",
                uri=source.uri,
            )
        if volume_info(dest, path) is not None:
            raise HostNotReady(
                f"--copy-storage: {path} already exists on {dest.uri}, and the copy would overwrite it; "
                f"remove it there (virsh -c {dest.uri} vol-delete {path}) or migrate without --copy-storage"
            )
        backing = info.backing if info.backing and volume_info(dest, info.backing) is not None else None
        copies.append(DiskCopy(info, backing))
    return copies


def describe(copies: list[DiskCopy], dest: Host) -> str:
    """The pre-flight line for --dry-run."""
    if not copies:
        return "--copy-storage: the guest has no writable disk to copy"
    parts = []
    for copy in copies:
        on = f", overlay of {copy.backing}" if copy.backing else ""
        parts.append(f"{copy.source.path} ({copy.source.format}, {copy.source.capacity} bytes{on})")
    return f"disks to create on {dest.uri} and copy: {'; '.join(parts)}"


def create(dest: Host, copies: list[DiskCopy]) -> list[Volume]:
    """Make each image on the destination; on a failure, the ones made so far go again."""
    made: list[Volume] = []
    try:
        for copy in copies:
            source = copy.source
            volume = ensure_volume(dest, source.path, source.capacity, source.format, backing=copy.backing)
            if volume is not None:
                made.append(volume)
    except BaseException:
        remove(made)
        raise
    return made


def remove(volumes: list[Volume]) -> list[str]:
    """Delete the images made for a move that did not happen; what could not be deleted, with why."""
    left = []
    for volume in reversed(volumes):
        try:
            volume.delete()
        except HypervisorError as err:  # the move failed anyway: say what is left, do not hide why
            left.append(f"{volume.path} ({err})")
    return left


def writable_disks(live_xml: str) -> list[str]:
    """The file-backed disks libvirt copies: not cdroms, not read-only, not shared between hosts."""
    domain = Domain.parse(live_xml)
    disks = domain.devices.disks if domain.devices is not None else []
    return [
        disk.source_file
        for disk in disks
        if disk.device in (None, "disk") and disk.type == "file" and disk.source_file and not disk.readonly
    ]
