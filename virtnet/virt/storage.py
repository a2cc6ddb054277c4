"""Disk images through libvirt's storage API, so they are made on the libvirt host, local or not."""

from __future__ import annotations

import hashlib
import posixpath

import libvirt
from lxml import etree

from virtnet.errors import StorageError
from virtnet.virt.errors import libvirt_errors
from virtnet.virt.host import Host


class Volume:
    """A volume virtnet created, kept so that a failed define can delete it again."""

    def __init__(self, vol: libvirt.virStorageVol, uri: str) -> None:
        self._vol = vol
        self.uri = uri
        self.path = str(vol.path())

    def delete(self) -> None:
        with libvirt_errors(self.uri):
            self._vol.delete(0)


def ensure_volume(host: Host, path: str, capacity_bytes: int | None, fmt: str) -> Volume | None:
    """Make sure an image exists at `path` on the libvirt host.

    Returns the Volume when this call created it (so a failed define can delete it), None when it
    was already there. Without a capacity a missing image is an error.
    """
    directory, name = posixpath.split(path)
    pool = _pool_for_directory(host, directory, build=capacity_bytes is not None)
    if pool is not None and _lookup(pool, name) is not None:
        return None
    if capacity_bytes is None:
        raise StorageError(f"{path} does not exist on {host.uri}", uri=host.uri)
    assert pool is not None
    vol = etree.Element("volume")
    etree.SubElement(vol, "name").text = name
    etree.SubElement(vol, "capacity", unit="bytes").text = str(capacity_bytes)
    etree.SubElement(vol, "allocation", unit="bytes").text = "0"
    etree.SubElement(etree.SubElement(vol, "target"), "format", type=fmt)
    with libvirt_errors(host.uri):
        created = pool.createXML(etree.tostring(vol, encoding="unicode"), 0)
    return Volume(created, host.uri)


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
