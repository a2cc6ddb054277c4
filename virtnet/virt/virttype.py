"""Which domain type a VM gets: kvm where the host offers it, else qemu (TCG)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Literal, cast

from virtnet.errors import InputError

if TYPE_CHECKING:
    from virtnet.virt.host import Host  # `virtnet xml` resolves without libvirt

ResolvedVirtType = Literal["kvm", "qemu"]
ENV_OVERRIDE = "VIRTNET_VIRT_TYPE"


def resolve_virt_type(requested: str, host: Host | None, override: str | None = None) -> ResolvedVirtType:
    """The override (flag, then $VIRTNET_VIRT_TYPE) wins; 'auto' asks the host, or /dev/kvm locally."""
    forced = override or os.environ.get(ENV_OVERRIDE)
    if forced:
        if forced not in ("kvm", "qemu"):
            source = "--virt-type" if override else f"${ENV_OVERRIDE}"
            raise InputError(f"{source}: {forced!r} is not a virt type; use 'kvm' or 'qemu'")
        return cast(ResolvedVirtType, forced)
    if requested in ("kvm", "qemu"):
        return cast(ResolvedVirtType, requested)
    if host is None:
        return "kvm" if _local_kvm_usable() else "qemu"
    return "kvm" if host.domain_capabilities_xml("kvm") is not None else "qemu"


def _local_kvm_usable() -> bool:
    try:
        fd = os.open("/dev/kvm", os.O_RDWR)
    except OSError:
        return False
    os.close(fd)
    return True
