"""Disk images through libvirt's storage API, so they are made on the libvirt host, local or not."""

from __future__ import annotations

import contextlib
import hashlib
import posixpath
from dataclasses import dataclass

import libvirt
from lxml import etree

from virtnet.errors import StorageError
from virtnet.virt.errors import libvirt_errors
from virtnet.virt.host import Host
from virtnet.virt.streams import aborted_on_error, receive_all, send_all


class Volume:
    """A volume virtnet created, kept so that a failed define can delete it again."""

    def __init__(self, vol: libvirt.virStorageVol, uri: str) -> None:
        self._vol = vol
        self.uri = uri
        self.path = str(vol.path())

    def delete(self) -> None:
        with libvirt_errors(self.uri):
            self._vol.delete(0)


def ensure_volume(
    host: Host, path: str, capacity_bytes: int | None, fmt: str, *, backing: str | None = None
) -> Volume | None:
    """Make sure an image exists at `path` on the libvirt host.

    Returns the Volume when this call created it (so a failed define can delete it), None when it
    was already there. Without a capacity (or a backing image to take it from) a missing image is an
    error. With `backing` the image is a qcow2 overlay of it, as `qemu-img create -b` makes one: the
    base stays read-only and shared by every overlay.
    """
    directory, name = posixpath.split(path)
    pool = _pool_for_directory(host, directory, build=capacity_bytes is not None or backing is not None)
    existing = _lookup(pool, name) if pool is not None else None
    if existing is not None:
        if backing is not None:
            _require_backing(existing, path, backing, host.uri)
        return None
    base = _backing_volume(host, backing) if backing is not None else None
    if capacity_bytes is None and base is None:
        raise StorageError(f"{path} does not exist on {host.uri}", uri=host.uri)
    assert pool is not None
    vol = etree.Element("volume")
    etree.SubElement(vol, "name").text = name
    capacity = capacity_bytes if capacity_bytes is not None else base.capacity if base else 0
    etree.SubElement(vol, "capacity", unit="bytes").text = str(capacity)
    etree.SubElement(vol, "allocation", unit="bytes").text = "0"
    etree.SubElement(etree.SubElement(vol, "target"), "format", type=fmt)
    if base is not None:
        store = etree.SubElement(vol, "backingStore")
        etree.SubElement(store, "path").text = base.path
        etree.SubElement(store, "format", type=base.format)
    with libvirt_errors(host.uri):
        created = pool.createXML(etree.tostring(vol, encoding="unicode"), 0)
    return Volume(created, host.uri)


@dataclass(frozen=True)
class _Base:
    """A backing image as libvirt sees it: its path, format and virtual size."""

    path: str
    format: str
    capacity: int


def _backing_volume(host: Host, path: str) -> _Base:
    directory, name = posixpath.split(path)
    pool = _pool_for_directory(host, directory, build=False)
    vol = _lookup(pool, name) if pool is not None else None
    if vol is None:
        raise StorageError(f"the backing image {path} does not exist on {host.uri}", uri=host.uri)
    with libvirt_errors(host.uri):
        root = etree.fromstring(vol.XMLDesc(0))
        capacity = vol.info()[1]
    fmt = str(root.xpath("string(target/format/@type)")) or "raw"
    if fmt not in ("qcow2", "raw"):
        raise StorageError(f"the backing image {path} is {fmt}, not qcow2 or raw", uri=host.uri)
    return _Base(path, fmt, int(capacity))


def _require_backing(vol: libvirt.virStorageVol, path: str, backing: str, uri: str) -> None:
    """An existing overlay must already sit on the base the spec names: never rebase a user's disk."""
    with libvirt_errors(uri):
        found = etree.fromstring(vol.XMLDesc(0)).findtext("backingStore/path")
    if found is None or posixpath.normpath(found) != posixpath.normpath(backing):
        raise StorageError(
            f"{path} exists on {uri} with backing image {found or '(none)'}, not {backing}",
            uri=uri,
        )


def read_volume(host: Host, path: str, limit_bytes: int) -> bytes | None:
    """A small volume's content through the storage API (works on a remote host).

    None when there is no volume at `path`, or when it is larger than `limit_bytes` (not ours to read).
    """
    vol = _find_volume(host, path)
    if vol is None:
        return None
    with libvirt_errors(host.uri):
        size = int(vol.info()[1])
        if size > limit_bytes:
            return None
        with aborted_on_error(host.conn.newStream(0)) as stream:
            vol.download(stream, 0, size, 0)
            return receive_all(stream)


def write_volume(host: Host, path: str, data: bytes) -> Volume:
    """Create (or replace) a raw volume holding `data`, uploaded through the storage API.

    Replacing deletes and re-creates it: a QEMU that has the old file open keeps reading the old
    content until its next start, never a half-written one.
    """
    directory, name = posixpath.split(path)
    pool = _pool_for_directory(host, directory, build=True)
    assert pool is not None
    with libvirt_errors(host.uri):
        old = _lookup(pool, name)
        if old is not None:
            old.delete(0)
        vol_xml = etree.Element("volume")
        etree.SubElement(vol_xml, "name").text = name
        etree.SubElement(vol_xml, "capacity", unit="bytes").text = str(len(data))
        etree.SubElement(etree.SubElement(vol_xml, "target"), "format", type="raw")
        vol = pool.createXML(etree.tostring(vol_xml, encoding="unicode"), 0)
        try:
            with aborted_on_error(host.conn.newStream(0)) as stream:
                vol.upload(stream, 0, len(data), 0)
                send_all(stream, data)
        except BaseException:
            with contextlib.suppress(libvirt.libvirtError):
                vol.delete(0)
            raise
    return Volume(vol, host.uri)


def delete_volume(host: Host, path: str) -> bool:
    """Delete the volume at `path`; False when there was none."""
    vol = _find_volume(host, path)
    if vol is None:
        return False
    with libvirt_errors(host.uri):
        vol.delete(0)
    return True


def _find_volume(host: Host, path: str) -> libvirt.virStorageVol | None:
    directory, name = posixpath.split(path)
    pool = _pool_for_directory(host, directory, build=False)
    return _lookup(pool, name) if pool is not None else None


def _pool_for_directory(host: Host, directory: str, *, build: bool) -> libvirt.virStoragePool | None:
    """An active pool whose target is `directory`, else a transient dir pool made for it.

    A transient pool leaves nothing in libvirt's configuration (virt-install defines a persistent
    one). With build the directory is created; without, a missing directory gives None.
    """
    with libvirt_errors(host.uri):
        for pool in host.conn.listAllStoragePools(libvirt.VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE):
            target = etree.fromstring(pool.XMLDesc(0)).findtext("target/path")
            if target and posixpath.normpath(target) == posixpath.normpath(directory):
                pool.refresh(0)
                return pool
    name = "virtnet-" + hashlib.sha256(directory.encode()).hexdigest()[:12]
    pool_xml = etree.Element("pool", type="dir")
    etree.SubElement(pool_xml, "name").text = name
    etree.SubElement(etree.SubElement(pool_xml, "target"), "path").text = directory
    xml = etree.tostring(pool_xml, encoding="unicode")
    try:
        return _create_pool(host, xml, build)
    except libvirt.libvirtError as err:
        if build:
            raise StorageError(
                f"cannot keep disk images in {directory} on {host.uri}: {err.get_error_message()}",
                uri=host.uri,
            ) from None
        return None  # the directory does not exist, so neither does the image


def _create_pool(host: Host, xml: str, build: bool) -> libvirt.virStoragePool:
    if not build:
        return host.conn.storagePoolCreateXML(xml, 0)
    try:
        return host.conn.storagePoolCreateXML(xml, libvirt.VIR_STORAGE_POOL_CREATE_WITH_BUILD)
    except libvirt.libvirtError as err:
        if err.get_error_code() != libvirt.VIR_ERR_INVALID_ARG:
            raise
        # Drivers without the build flag (the test driver) need no directory made.
        return host.conn.storagePoolCreateXML(xml, 0)


def _lookup(pool: libvirt.virStoragePool, name: str) -> libvirt.virStorageVol | None:
    try:
        return pool.storageVolLookupByName(name)
    except libvirt.libvirtError:
        return None


@dataclass(frozen=True)
class VolumeInfo:
    """An image as the storage API describes it."""

    path: str
    format: str
    capacity: int  # bytes
    backing: str | None  # the backing image's path, for an overlay


def volume_info(host: Host, path: str) -> VolumeInfo | None:
    """The volume at `path` on the libvirt host, None when there is none."""
    vol = _find_volume(host, path)
    if vol is None:
        return None
    with libvirt_errors(host.uri):
        return described(vol, path)


def described(vol: libvirt.virStorageVol, path: str | None = None) -> VolumeInfo:
    """A volume's format, capacity and backing image from the storage API; `path` as the caller
    named it, else libvirt's (libvirt errors raise: call it under libvirt_errors)."""
    root = etree.fromstring(vol.XMLDesc(0))
    fmt = str(root.xpath("string(target/format/@type)")) or "raw"
    return VolumeInfo(path or str(vol.path()), fmt, int(vol.info()[1]), root.findtext("backingStore/path"))
