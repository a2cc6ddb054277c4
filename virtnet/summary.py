"""A spec, and a domain's whole report, in a few human lines, for `virtnet show`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from virtnet.spec.derived import nic_mac, vcpu_sockets_cores_threads, vhost_port_name
from virtnet.spec.models import BridgeNic, VhostUserNic, VMSpec
from virtnet.units import KIB, format_cpuset, format_size

if TYPE_CHECKING:
    from virtnet.control.report import DomainReport


def describe_spec(spec: VMSpec, backends: dict[str, str | None] | None = None) -> list[tuple[str, str]]:
    """Label and value rows; `backends` maps a NIC's MAC to its XML's <driver name>, when known."""
    rows = [("vCPUs", _vcpus(spec)), ("Memory", _memory(spec))]
    pinning = spec.cpu.pinning
    if pinning is not None:
        pins = [f"{vcpu}->{format_cpuset(cpus)}" for vcpu, cpus in sorted(pinning.vcpus.items())]
        if pinning.emulator is not None:
            pins.append(f"emulator->{format_cpuset(pinning.emulator)}")
        rows.append(("Pinning", ", ".join(pins)))
    for i, cell in enumerate(spec.numa):
        rows.append((f"NUMA {i}", f"vCPUs {format_cpuset(cell.cpus)}, {format_size(cell.memory)}"))
    for i, disk in enumerate(spec.disks):
        detail = f"{disk.device} {disk.path} ({disk.effective_format}, {disk.effective_bus}"
        detail += f", cache {disk.cache})" if disk.cache else ")"
        rows.append((f"Disk {i}", detail))
    for i in range(len(spec.nics)):
        rows.append((f"NIC {i}", _nic(spec, i, (backends or {}).get(nic_mac(spec, i)))))
    if spec.graphics is not None:
        rows.append(("Graphics", f"{spec.graphics.type} on {spec.graphics.listen}"))
    return rows


def _vcpus(spec: VMSpec) -> str:
    topology = vcpu_sockets_cores_threads(spec)
    if topology is None:
        return str(spec.cpu.count)
    sockets, cores, threads = topology
    return f"{spec.cpu.count} ({sockets} socket x {cores} cores x {threads} thread)"


def _memory(spec: VMSpec) -> str:
    memory = spec.memory
    parts = [format_size(memory.size)]
    if memory.hugepages is not None:
        parts.append(f"on {format_size(memory.hugepages.page_size)} hugepages")
    if memory.access:
        parts.append(memory.access)
    if memory.allocation == "immediate":
        parts.append("preallocated")
    return ", ".join(parts)


def _backend(nic: BridgeNic, rendered: str | None) -> str:
    """Which backend moves the NIC's packets, as the domain XML says (what libvirt was told)."""
    if rendered is not None:
        return {"vhost": "vhost-net backend", "qemu": "QEMU userspace backend"}.get(rendered, rendered)
    return "libvirt's choice of backend" if nic.model == "virtio" else "QEMU's emulation"


def _nic(spec: VMSpec, index: int, backend: str | None = None) -> str:
    nic = spec.nics[index]
    mac = nic_mac(spec, index)
    if isinstance(nic, VhostUserNic):
        return (
            f"vhost-user {nic.socket} ({nic.mode}), {nic.queues} queue(s), mac {mac}, "
            f"OVS {nic.bridge}/{vhost_port_name(spec, index)}"
        )
    if isinstance(nic, BridgeNic):
        queues = f", {nic.queues} queue(s)" if nic.model == "virtio" else ""
        return f"bridge {nic.bridge} ({nic.model}, {_backend(nic, backend)}){queues}, mac {mac}"
    forwards = ", ".join(f"{f.protocol} {f.host_address}:{f.host_port}->{f.guest_port}" for f in nic.forwards)
    return f"user ({nic.model}), mac {mac}" + (f", forwards {forwards}" if forwards else "")


def report_rows(report: DomainReport) -> list[tuple[str, str]]:
    """`virtnet show`'s label and value rows for one domain."""
    state, spec, inside, vrings, migration = (
        report.state,
        report.spec,
        report.guest,
        report.vrings,
        report.last_migration,
    )
    rows = [
        ("Name", state.name),
        ("UUID", state.uuid),
        ("State", state.state),
        ("Type", state.virt_type),
        ("Managed", "by virtnet" if spec else "no (not defined by virtnet)"),
    ]
    rows += (
        describe_spec(spec, report.backends)
        if spec
        else [
            ("vCPUs", str(state.vcpus)),
            ("Memory", format_size(state.memory_kib * KIB)),
        ]
    )
    if inside is not None:
        rows.append(("Guest OS", inside.os or "?"))
        rows.append(("Hostname", inside.hostname or "?"))
        for nic in inside.nics:
            which = f"NIC {nic['nic']}" if nic["nic"] is not None else "NIC -"
            addresses = ", ".join(nic["addresses"]) or "no address"
            rows.append(
                (f"{which} in guest", f"{nic['name']} {nic['mac'] or ''} {addresses}".replace("  ", " "))
            )
            if nic["queues"]:
                queues = nic["queues"]
                ovs = (vrings or {}).get(nic["nic"])
                beside = f", OVS num_of_vrings {ovs}" if ovs is not None else ""
                rows.append(
                    (
                        f"{which} queues",
                        f"{queues['enabled']} of {queues['max']} enabled in the guest{beside}",
                    )
                )
    elif state.id is not None and spec is not None and spec.agent:
        rows.append(("Guest agent", "not answering (booting, or qemu-guest-agent not running)"))
    if migration:
        rows.append(
            (
                "Last migration",
                f"{migration.finished_at} from {migration.source}: {migration.policy}, total "
                f"{migration.total_ms} ms, downtime {migration.downtime_ms} ms",
            )
        )
    return rows
