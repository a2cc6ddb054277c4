"""Values the spec may leave out, derived deterministically so a re-render changes nothing."""

from __future__ import annotations

import hashlib
import posixpath
from pathlib import Path

from virtnet.spec.models import Nic, VhostUserNic, VMSpec


def nic_mac(spec: VMSpec, index: int) -> str:
    """The NIC's MAC: the spec's, or a stable one in QEMU's 52:54:00 range from the VM name."""
    nic = spec.nics[index]
    if nic.mac:
        return nic.mac
    digest = hashlib.sha256(f"{spec.name}/{index}".encode()).digest()
    return "52:54:00:" + ":".join(f"{b:02x}" for b in digest[:3])


def vhost_port_name(spec: VMSpec, index: int) -> str:
    """The OVS port for nics[index]: the spec's, or '<vm>-vhu<index>'."""
    nic: Nic = spec.nics[index]
    assert isinstance(nic, VhostUserNic)
    return nic.port or f"{spec.name}-vhu{index}"


def vcpu_sockets_cores_threads(spec: VMSpec) -> tuple[int, int, int] | None:
    """The topology to render, or None to leave it to the hypervisor (nothing given)."""
    cpu = spec.cpu
    if cpu.sockets is None and cpu.cores is None and cpu.threads is None:
        return None
    threads = cpu.threads or 1
    cores = cpu.cores or max(1, cpu.count // ((cpu.sockets or 1) * threads))
    sockets = cpu.sockets or max(1, cpu.count // (cores * threads))
    return sockets, cores, threads


def pinned_cpusets(spec: VMSpec) -> list[tuple[str, frozenset[int]]]:
    """Each pin of the spec as (field path, host CPUs): the vCPUs in order, then the emulator."""
    pinning = spec.cpu.pinning
    if pinning is None:
        return []
    pins = [(f"cpu.pinning.vcpus.{vcpu}", cpus) for vcpu, cpus in sorted(pinning.vcpus.items())]
    if pinning.emulator is not None:
        pins.append(("cpu.pinning.emulator", pinning.emulator))
    return pins


# Where a seed goes when the VM has no disk to put it beside: libvirt's default pool directory.
DEFAULT_IMAGE_DIR = "/var/lib/libvirt/images"


def socket_dirs(spec: VMSpec) -> list[Path]:
    """The directories of the spec's vhost-user sockets, each once, sorted."""
    return sorted({Path(nic.socket).parent for nic in spec.vhost_user_nics})


def seed_path(spec: VMSpec) -> str | None:
    """The NoCloud seed volume of a provisioned VM: the spec's, or '<first disk's dir>/<name>-cidata.iso'."""
    provisioning = spec.cloud_init
    if provisioning is None:
        return None
    if provisioning.seed:
        return provisioning.seed
    disks = [disk for disk in spec.disks if disk.device == "disk"]
    directory = posixpath.dirname(disks[0].path) if disks else DEFAULT_IMAGE_DIR
    return posixpath.join(directory, f"{spec.name}-cidata.iso")


def guest_hostname(spec: VMSpec) -> str:
    """The hostname cloud-init sets: the spec's, or the VM name."""
    provisioning = spec.cloud_init
    return provisioning.hostname if provisioning and provisioning.hostname else spec.name


def guest_nic_name(index: int) -> str:
    """The name cloud-init gives nics[index] in the guest (matched by MAC, so stable across boots)."""
    return f"eth{index}"
