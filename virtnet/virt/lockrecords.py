"""Lock records kept by libvirtd itself: one secret object per lock, named by its usage.

Why a secret: libvirt refuses to define a second secret with the same usage (type and name) under
another UUID, and decides that under its secrets driver's own lock. Defining one is therefore an
atomic create-if-absent on the libvirt host, seen by every client of that libvirtd whichever
machine it runs on, and kept across a libvirtd restart (ephemeral='no'). Domain metadata would be
visible too, but setMetadata() is last-writer-wins: two runs could both read "free" and both write.
A lock record never has a value; its <description> says who holds it (`virsh secret-list` shows it).
"""

from __future__ import annotations

from dataclasses import dataclass

import libvirt
from lxml import etree

from virtnet.errors import HypervisorError
from virtnet.virt.errors import translate
from virtnet.virt.host import Host

USAGE_PREFIX = "virtnet-lock:"
# The TLS usage type is only looked up by UUID (from qemu.conf), never by name: a name with this
# prefix cannot be mistaken for a real TLS secret.
_USAGE = libvirt.VIR_SECRET_USAGE_TYPE_TLS


class LockRecordsUnsupported(HypervisorError):
    """The libvirt driver keeps no secrets (the test driver): it has no second client to lock out."""


@dataclass(frozen=True)
class LockRecord:
    key: str
    uuid: str
    description: str


def create(host: Host, key: str, description: str) -> str | None:
    """Define the record; its UUID, or None when the key is held already."""
    root = etree.Element("secret", ephemeral="no", private="yes")
    etree.SubElement(root, "description").text = description
    usage = etree.SubElement(root, "usage", type="tls")
    etree.SubElement(usage, "name").text = USAGE_PREFIX + key
    try:
        secret = host.conn.secretDefineXML(etree.tostring(root, encoding="unicode"), 0)
    except libvirt.libvirtError as err:
        if err.get_error_code() == libvirt.VIR_ERR_NO_SUPPORT:
            raise LockRecordsUnsupported(str(err), code=err.get_error_code(), uri=host.uri) from None
        if find(host, key) is not None:
            return None  # libvirt reports the usage clash as an internal error: the record tells
        raise translate(err, host.uri) from None
    return str(secret.UUIDString())


def find(host: Host, key: str) -> LockRecord | None:
    try:
        secret = host.conn.secretLookupByUsage(_USAGE, USAGE_PREFIX + key)
        return _record(secret)
    except libvirt.libvirtError as err:
        if err.get_error_code() in (libvirt.VIR_ERR_NO_SECRET, libvirt.VIR_ERR_NO_SUPPORT):
            return None
        raise translate(err, host.uri) from None


def remove(host: Host, uuid: str) -> bool:
    """Undefine the record with this UUID (only that one: a newer holder's record stays)."""
    try:
        host.conn.secretLookupByUUIDString(uuid).undefine()
    except libvirt.libvirtError as err:
        if err.get_error_code() == libvirt.VIR_ERR_NO_SECRET:
            return False
        raise translate(err, host.uri) from None
    return True


def all_records(host: Host) -> list[LockRecord]:
    """Every virtnet lock record on the host, sorted by key."""
    try:
        secrets = host.conn.listAllSecrets(0)
    except libvirt.libvirtError as err:
        if err.get_error_code() == libvirt.VIR_ERR_NO_SUPPORT:
            return []
        raise translate(err, host.uri) from None
    records = []
    for secret in secrets:
        try:
            if secret.usageType() == _USAGE and str(secret.usageID()).startswith(USAGE_PREFIX):
                records.append(_record(secret))
        except libvirt.libvirtError:
            continue  # removed while we listed
    return sorted(records, key=lambda r: r.key)


def _record(secret: libvirt.virSecret) -> LockRecord:
    root = etree.fromstring(secret.XMLDesc(0).encode())
    return LockRecord(
        key=str(secret.usageID())[len(USAGE_PREFIX) :],
        uuid=str(secret.UUIDString()),
        description=root.findtext("description") or "",
    )
