"""Which domain type a VM gets: kvm where KVM really runs guests, else qemu (TCG)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, cast

from virtnet.errors import InputError
from virtnet.virt import kvm_probe

if TYPE_CHECKING:
    from virtnet.virt.host import Host  # `virtnet xml` resolves without libvirt

ResolvedVirtType = Literal["kvm", "qemu"]
ENV_OVERRIDE = "VIRTNET_VIRT_TYPE"


@dataclass(frozen=True)
class VirtTypeChoice:
    virt_type: ResolvedVirtType
    reason: str


def override_problem(override: str | None) -> InputError | None:
    """What is wrong with --virt-type (or $VIRTNET_VIRT_TYPE), if anything: checkable before the spec."""
    forced = override or os.environ.get(ENV_OVERRIDE)
    if forced and forced not in ("kvm", "qemu"):
        source = "--virt-type" if override else f"${ENV_OVERRIDE}"
        return InputError(f"{source}: {forced!r} is not a virt type; use 'kvm' or 'qemu'")
    return None


def resolve_virt_type(requested: str, host: Host | None, override: str | None = None) -> VirtTypeChoice:
    """The override (flag, then $VIRTNET_VIRT_TYPE) wins, then the spec; 'auto' asks the machine."""
    forced = override or os.environ.get(ENV_OVERRIDE)
    if forced:
        problem = override_problem(override)
        if problem is not None:
            raise problem
        source = "--virt-type" if override else f"${ENV_OVERRIDE}"
        return VirtTypeChoice(cast(ResolvedVirtType, forced), f"set by {source}")
    if requested in ("kvm", "qemu"):
        return VirtTypeChoice(cast(ResolvedVirtType, requested), "set by the spec")
    if host is not None and host.domain_capabilities_xml("kvm") is None:
        return VirtTypeChoice("qemu", "the host offers no KVM")
    if host is not None and not host.is_local:
        return VirtTypeChoice("kvm", "the remote host offers KVM")
    return _local_choice()


def _local_choice() -> VirtTypeChoice:
    """On this machine: the KVM probe's verdict, run once when a kernel to boot is at hand."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return VirtTypeChoice("qemu", "/dev/kvm is missing or not accessible")
    verdict = kvm_probe.cached_verdict()
    if verdict is None:
        kernel = kvm_probe.probe_kernel()
        if kernel is None:
            return VirtTypeChoice("kvm", "/dev/kvm is usable (not probed: no kernel to boot)")
        verdict = kvm_probe.probe(kernel)
    return VirtTypeChoice("kvm" if verdict.usable else "qemu", f"KVM probe: {verdict.reason}")
