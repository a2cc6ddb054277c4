"""The only package that imports libvirt: host connection, guests, storage, virt type."""

from typing import TYPE_CHECKING

from virtnet.lazy import lazy_exports

if TYPE_CHECKING:
    from virtnet.virt.guest import Guest
    from virtnet.virt.host import Host, default_uri

__all__ = ["Guest", "Host", "default_uri"]
# virtnet.virt.virttype and kvm_probe need no libvirt (`virtnet xml` uses them): only these do.
__getattr__ = lazy_exports(
    __name__, {"Guest": "virtnet.virt.guest", "Host": "virtnet.virt.host", "default_uri": "virtnet.virt.host"}
)
