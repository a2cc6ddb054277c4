"""The guest as the destination host must run it: what differs there, and nothing else.

The destination XML starts from the source's live, migratable XML (device addresses and whatever a
user changed with `virsh edit` must stay, or QEMU's migration stream will not match) and changes
only what virtnet owns and the destination needs: vhost-user socket paths, pinning cpusets, and
the spec in <metadata> that says both.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from virtnet.domxml import Domain
from virtnet.errors import InputError
from virtnet.spec.codec import dump_spec
from virtnet.spec.derived import pinned_cpusets
from virtnet.spec.models import VhostUserNic, VMSpec
from virtnet.units import format_cpuset, parse_cpuset


@dataclass(frozen=True)
class Relocation:
    """How paths and CPUs map from the source host to the destination host."""

    sockets: dict[str, str]  # source socket path -> destination socket path
    cpus: dict[int, int]  # source host CPU -> destination host CPU

    @property
    def empty(self) -> bool:
        return all(a == b for a, b in self.sockets.items()) and all(a == b for a, b in self.cpus.items())


def relocation(spec: VMSpec | None, socket_dir: Path | None, dest_cpus: frozenset[int] | None) -> Relocation:
    """Sockets move into socket_dir keeping their names; the pinned CPUs, in order, onto dest_cpus.

    Mapping CPU by CPU (not vCPU by vCPU) keeps the plan's shape: vCPUs that shared a core still
    share one, the emulator stays apart from the vCPUs if it was.
    """
    if spec is None:
        if socket_dir is not None or dest_cpus is not None:
            raise InputError(
                "--dest-socket-dir/--dest-cpus: the domain has no virtnet spec to relocate; "
                "migrate it without them"
            )
        return Relocation({}, {})
    sockets = {
        nic.socket: str(socket_dir / Path(nic.socket).name) if socket_dir else nic.socket
        for nic in spec.vhost_user_nics
    }
    used = sorted(set().union(*(cpus for _path, cpus in pinned_cpusets(spec))))
    if dest_cpus is None:
        return Relocation(sockets, {cpu: cpu for cpu in used})
    if not used:
        raise InputError("--dest-cpus: the guest is not pinned; migrate it without --dest-cpus")
    if len(dest_cpus) < len(used):
        raise InputError(
            f"--dest-cpus {format_cpuset(dest_cpus)}: the guest is pinned to {len(used)} host CPUs "
            f"({format_cpuset(frozenset(used))}); give at least {len(used)}"
        )
    return Relocation(sockets, dict(zip(used, sorted(dest_cpus), strict=False)))


def relocated_spec(spec: VMSpec, moves: Relocation) -> VMSpec:
    nics = [
        nic.replace(socket=moves.sockets[nic.socket]) if isinstance(nic, VhostUserNic) else nic
        for nic in spec.nics
    ]
    cpu = spec.cpu
    if cpu.pinning is not None:
        pins = cpu.pinning
        pinning = pins.replace(
            vcpus={vcpu: _map(cpus, moves) for vcpu, cpus in pins.vcpus.items()},
            emulator=_map(pins.emulator, moves) if pins.emulator is not None else None,
        )
        cpu = cpu.replace(pinning=pinning)
    return spec.replace(nics=nics, cpu=cpu)


def relocated_xml(xml: str, moves: Relocation, spec: VMSpec | None) -> str:
    """`xml` with the sockets and pins moved and, for a virtnet domain, the spec saying so."""
    domain = Domain.parse(xml)
    for interface in domain.devices.interfaces if domain.devices is not None else []:
        if interface.type == "vhostuser" and interface.source_path in moves.sockets:
            interface.source_path = moves.sockets[interface.source_path]
    if domain.cputune is not None:
        pins = [*domain.cputune.vcpupins, domain.cputune.emulatorpin]
        for pin in pins:
            if pin is not None and pin.cpuset:
                pin.cpuset = format_cpuset(_map(parse_cpuset(pin.cpuset), moves))
    if spec is not None and domain.metadata is not None and domain.metadata.virtnet is not None:
        domain.metadata.virtnet.spec_json = dump_spec(spec)
    return domain.to_xml()


def _map(cpus: frozenset[int], moves: Relocation) -> frozenset[int]:
    return frozenset(moves.cpus.get(cpu, cpu) for cpu in cpus)
