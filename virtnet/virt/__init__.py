"""The only package that imports libvirt: host connection, guests, storage, virt type."""

from virtnet.virt.guest import Guest
from virtnet.virt.host import Host, default_uri

__all__ = ["Guest", "Host", "default_uri"]
