"""Rules that relate several fields of a spec. Each raises a SpecError naming the field and the fix."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass

from virtnet.errors import SpecError
from virtnet.spec.derived import nic_mac, seed_path, vcpu_sockets_cores_threads, vhost_port_name
from virtnet.spec.models import BridgeNic, UserNic, VhostUserNic, VMSpec
from virtnet.spec.types import parse_hostname
from virtnet.units import GIB, MIB, format_cpuset, format_size

SUPPORTED_PAGE_SIZES = (2 * MIB, GIB)


@dataclass(frozen=True)
class SpecWarning:
    """Legal but probably not what the user wants; printed, never fatal."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


Check = Callable[[VMSpec], Iterator[SpecError | SpecWarning]]


def repeats(keys: Iterable[Hashable]) -> Iterator[tuple[int, int]]:
    """(index, index of its first occurrence) for each key seen before, in order."""
    first: dict[Hashable, int] = {}
    for i, key in enumerate(keys):
        if key in first:
            yield i, first[key]
        else:
            first[key] = i


def check_topology(spec: VMSpec) -> Iterator[SpecError]:
    topology = vcpu_sockets_cores_threads(spec)
    if topology is None:
        return
    sockets, cores, threads = topology
    if sockets * cores * threads != spec.cpu.count:
        yield SpecError(
            "cpu",
            f"sockets x cores x threads = {sockets} x {cores} x {threads} = "
            f"{sockets * cores * threads}, but count is {spec.cpu.count}",
            "make their product equal cpu.count",
        )


def check_hugepages(spec: VMSpec) -> Iterator[SpecError]:
    pages = spec.memory.hugepages
    if pages is None:
        return
    if pages.page_size not in SUPPORTED_PAGE_SIZES:
        yield SpecError(
            "memory.hugepages.page_size",
            f"{format_size(pages.page_size)} is not an x86_64 hugepage size",
            "use '2MiB' or '1GiB'",
        )
        return
    if spec.memory.size % pages.page_size:
        yield SpecError(
            "memory.size",
            f"{format_size(spec.memory.size)} is not a multiple of the "
            f"{format_size(pages.page_size)} hugepage size",
            f"round it to a multiple of {format_size(pages.page_size)}",
        )
    for i, cell in enumerate(spec.numa):
        if cell.memory % pages.page_size:
            yield SpecError(
                f"numa[{i}].memory",
                f"{format_size(cell.memory)} is not a multiple of the "
                f"{format_size(pages.page_size)} hugepage size",
                f"round it to a multiple of {format_size(pages.page_size)}",
            )


def check_cpu_mode(spec: VMSpec) -> Iterator[SpecError]:
    if spec.virt_type == "qemu" and spec.cpu.mode == "host-passthrough":
        yield SpecError(
            "cpu.mode",
            "host-passthrough needs KVM, but virt_type is 'qemu' (TCG)",
            "use mode 'auto' or 'maximum', or virt_type 'kvm'",
        )


def check_numa(spec: VMSpec) -> Iterator[SpecError]:
    if not spec.numa:
        return
    total = sum(cell.memory for cell in spec.numa)
    if total != spec.memory.size:
        yield SpecError(
            "numa",
            f"the cells add up to {format_size(total)}, but memory.size is {format_size(spec.memory.size)}",
            "make the cells' memory add up to memory.size",
        )
    seen: set[int] = set()
    valid = set(range(spec.cpu.count))
    for i, cell in enumerate(spec.numa):
        if not cell.cpus <= valid:
            yield SpecError(
                f"numa[{i}].cpus",
                f"vCPUs {format_cpuset(cell.cpus - valid)} do not exist (the VM has {spec.cpu.count})",
                f"use vCPUs 0-{spec.cpu.count - 1}",
            )
        if cell.cpus & seen:
            yield SpecError(
                f"numa[{i}].cpus",
                f"vCPUs {format_cpuset(cell.cpus & seen)} are already in another cell",
                "give each vCPU to one cell only",
            )
        seen |= cell.cpus
    if valid - seen:
        yield SpecError(
            "numa",
            f"vCPUs {format_cpuset(valid - seen)} are in no cell",
            "list every vCPU in exactly one cell",
        )


def check_pinning(spec: VMSpec) -> Iterator[SpecError]:
    pinning = spec.cpu.pinning
    if pinning is None:
        return
    for vcpu in sorted(pinning.vcpus):
        if vcpu >= spec.cpu.count:
            yield SpecError(
                f"cpu.pinning.vcpus.{vcpu}",
                f"vCPU {vcpu} does not exist (the VM has {spec.cpu.count})",
                f"pin vCPUs 0-{spec.cpu.count - 1} only",
            )


def check_vhost_user(spec: VMSpec) -> Iterator[SpecError | SpecWarning]:
    if not spec.vhost_user_nics:
        return
    shared = spec.memory.access == "shared" or (
        bool(spec.numa) and all((cell.access or spec.memory.access) == "shared" for cell in spec.numa)
    )
    if not shared:
        first = next(i for i, nic in enumerate(spec.nics) if isinstance(nic, VhostUserNic))
        yield SpecError(
            f"nics[{first}]",
            "vhost-user needs guest memory the switch can map, but memory is not shared",
            "set memory.access = 'shared' (with memory.hugepages for OVS-DPDK)",
        )
    sockets: dict[str, int] = {}
    ports: dict[str, int] = {}
    for i, nic in enumerate(spec.nics):
        if not isinstance(nic, VhostUserNic):
            continue
        if nic.socket in sockets:
            yield SpecError(
                f"nics[{i}].socket",
                f"{nic.socket} is already used by nics[{sockets[nic.socket]}]",
                "give each vhost-user NIC its own socket",
            )
        sockets.setdefault(nic.socket, i)
        port = vhost_port_name(spec, i)
        if port in ports:
            yield SpecError(
                f"nics[{i}].port",
                f"OVS port {port!r} is already used by nics[{ports[port]}]",
                "give each vhost-user NIC its own port",
            )
        ports.setdefault(port, i)


def check_queues(spec: VMSpec) -> Iterator[SpecError | SpecWarning]:
    for i, queued in spec.multiqueue_nics:
        if isinstance(queued, BridgeNic) and queued.model != "virtio":
            yield SpecError(
                f"nics[{i}].queues",
                f"{queued.queues} queues on a {queued.model} NIC: only virtio has several queue pairs",
                "set model = 'virtio', or remove queues",
            )
        elif queued.queues > spec.cpu.count and spec.cloud_init is None:
            # Legal (the walkthrough's multi-queue VM has 4 queues on 2 vCPUs), but the guest starts
            # with one queue pair per vCPU and needs ethtool to use the rest; provisioning does that.
            yield SpecWarning(
                f"nics[{i}].queues",
                f"{queued.queues} queues on {spec.cpu.count} vCPUs: the guest enables {spec.cpu.count} "
                f"queue pairs until `ethtool -L <nic> combined {queued.queues}`; add [cloud_init] to have "
                f"the guest do that at every boot, or set queues = {spec.cpu.count}",
            )
    for i, nic in enumerate(spec.nics):
        if isinstance(nic, BridgeNic) and nic.backend == "vhost" and nic.model != "virtio":
            yield SpecError(
                f"nics[{i}].backend",
                f"vhost-net drives virtio NICs only, and this one is {nic.model}",
                "set model = 'virtio', or backend = 'qemu'",
            )


def check_macs(spec: VMSpec) -> Iterator[SpecError]:
    macs = [nic_mac(spec, i) for i in range(len(spec.nics))]
    for i, first in repeats(macs):
        yield SpecError(
            f"nics[{i}].mac",
            f"{macs[i]} is already the MAC of nics[{first}]",
            "give each NIC its own MAC, or leave mac out to derive one",
        )


def check_forwards(spec: VMSpec) -> Iterator[SpecError]:
    seen: dict[tuple[str, str, int], str] = {}
    for i, nic in enumerate(spec.nics):
        if not isinstance(nic, UserNic):
            continue
        for j, fwd in enumerate(nic.forwards):
            key = (fwd.protocol, str(fwd.host_address), fwd.host_port)
            where = f"nics[{i}].forwards[{j}]"
            if key in seen:
                yield SpecError(
                    f"{where}.host_port",
                    f"{fwd.protocol} {fwd.host_address}:{fwd.host_port} is already forwarded by {seen[key]}",
                    "use another host_port",
                )
            seen.setdefault(key, where)


def check_disks(spec: VMSpec) -> Iterator[SpecError]:
    seen: dict[str, int] = {}
    for i, disk in enumerate(spec.disks):
        if disk.path in seen:
            yield SpecError(
                f"disks[{i}].path",
                f"{disk.path} is already disks[{seen[disk.path]}]",
                "attach each image once",
            )
        seen.setdefault(disk.path, i)
        if disk.device == "cdrom" and disk.size is not None:
            yield SpecError(f"disks[{i}].size", "a cdrom cannot be created with a size", "remove size")
        if disk.device == "cdrom" and disk.format == "qcow2":
            yield SpecError(f"disks[{i}].format", "install media are raw ISO images", "remove format")
        if disk.device == "cdrom" and disk.bus == "virtio":
            yield SpecError(f"disks[{i}].bus", "a cdrom cannot sit on virtio", "use bus 'sata' or 'ide'")
        if disk.backing is not None:
            if disk.device == "cdrom":
                yield SpecError(f"disks[{i}].backing", "a cdrom has no backing image", "remove backing")
            elif disk.effective_format != "qcow2":
                yield SpecError(
                    f"disks[{i}].format", "an overlay over a backing image is qcow2", "remove format"
                )
            if disk.backing == disk.path:
                yield SpecError(
                    f"disks[{i}].backing",
                    "is the disk itself",
                    "name the base image the overlay at path starts from",
                )
    seed = seed_path(spec)
    if seed is not None and seed in seen:
        yield SpecError(
            "cloud_init.seed",
            f"{seed} is already disks[{seen[seed]}]",
            "give the seed a path of its own with cloud_init.seed",
        )


def check_boot(spec: VMSpec) -> Iterator[SpecError]:
    boot = spec.boot
    if boot is None:
        return
    if boot.kernel is None and (boot.initrd or boot.cmdline):
        yield SpecError("boot.kernel", "initrd and cmdline need a kernel to boot", "add boot.kernel")
    if boot.kernel and boot.order:
        yield SpecError("boot.order", "direct kernel boot ignores the boot order", "remove boot.order")
    if "cdrom" in boot.order and not any(d.device == "cdrom" for d in spec.disks):
        yield SpecError(
            "boot.order", "boots from a cdrom the VM does not have", "add a disk with device 'cdrom'"
        )


def check_console(spec: VMSpec) -> Iterator[SpecError]:
    if spec.console.type == "file" and spec.console.log is None:
        yield SpecError(
            "console.log", "a file console needs the file to write to", "add console.log = '/path'"
        )


def check_guest_network(spec: VMSpec) -> Iterator[SpecError]:
    for i, nic in enumerate(spec.nics):
        given = [name for name in ("address", "gateway", "dns") if getattr(nic, name)]
        if given and spec.cloud_init is None:
            yield SpecError(
                f"nics[{i}].{given[0]}",
                "guest addresses are applied by cloud-init at first boot, but the spec has no [cloud_init]",
                "add a [cloud_init] table (it may be empty)",
            )
        if nic.gateway is None:
            continue
        if nic.address is None or nic.address == "dhcp":
            yield SpecError(
                f"nics[{i}].gateway",
                "a gateway needs a static address (DHCP brings its own)",
                f"set nics[{i}].address = '10.0.0.2/24', or remove gateway",
            )
        elif nic.gateway not in ipaddress.IPv4Interface(nic.address).network:
            network = ipaddress.IPv4Interface(nic.address).network
            yield SpecError(
                f"nics[{i}].gateway",
                f"{nic.gateway} is outside {network}, the network of address {nic.address}",
                f"use a gateway inside {network}",
            )
        elif str(nic.gateway) == nic.address.split("/")[0]:
            yield SpecError(
                f"nics[{i}].gateway", f"{nic.gateway} is the NIC's own address", "use the router's address"
            )


def check_cloud_init(spec: VMSpec) -> Iterator[SpecError | SpecWarning]:
    provisioning = spec.cloud_init
    if provisioning is None:
        return
    if provisioning.user_data is not None:
        mixed = [name for name in ("users", "runcmd", "write_files") if getattr(provisioning, name)]
        if mixed:
            yield SpecError(
                f"cloud_init.{mixed[0]}",
                "user_data is passed to cloud-init as it is, so this cannot be added to it",
                "put it in the user_data file, or remove user_data",
            )
    if provisioning.hostname is None:
        try:
            parse_hostname(spec.name)
        except ValueError:
            yield SpecError(
                "cloud_init.hostname",
                f"the VM name {spec.name!r} is not a hostname, and the guest's hostname defaults to it",
                "set cloud_init.hostname, e.g. 'web-1'",
            )
    users = provisioning.users
    for i, first in repeats(user.name for user in users):
        yield SpecError(
            f"cloud_init.users[{i}].name",
            f"{users[i].name!r} is already cloud_init.users[{first}]",
            "list each user once",
        )
    files = provisioning.write_files
    for i, first in repeats(item.path for item in files):
        yield SpecError(
            f"cloud_init.write_files[{i}].path",
            f"{files[i].path} is already written by cloud_init.write_files[{first}]",
            "write each file once",
        )
    can_log_in = any(user.ssh_authorized_keys or user.password_hash for user in provisioning.users)
    if not provisioning.default_user and provisioning.user_data is None and not can_log_in:
        yield SpecWarning(
            "cloud_init.users",
            "no user can log in (default_user is false and no user has a key or password); "
            "add ssh_authorized_keys to a user if that is not intended",
        )


CHECKS: tuple[Check, ...] = (
    check_topology,
    check_cpu_mode,
    check_hugepages,
    check_numa,
    check_pinning,
    check_vhost_user,
    check_queues,
    check_macs,
    check_forwards,
    check_disks,
    check_boot,
    check_console,
    check_guest_network,
    check_cloud_init,
)


def find_problems(spec: VMSpec) -> list[SpecError]:
    """Every cross-field error of the spec, in a stable order."""
    return [found for check in CHECKS for found in check(spec) if isinstance(found, SpecError)]


def find_warnings(spec: VMSpec) -> list[SpecWarning]:
    """Every cross-field warning of the spec, in a stable order."""
    return [found for check in CHECKS for found in check(spec) if isinstance(found, SpecWarning)]
