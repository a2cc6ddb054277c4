"""Orchestration: each user action as one function, with nothing left half-done on failure.

define = resolve -> render -> validate -> switch checks, socket directories, OVS ports -> disks
-> define; when libvirt refuses the domain, the disks and ports it made are taken back.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

from virtnet import network
from virtnet.domxml import Domain, HostChoices, render_domain, validate_domain
from virtnet.domxml.designer import ForwardStyle
from virtnet.errors import DomainConfigRejected, DomainExists, InvalidDomainState, StorageError
from virtnet.hostcheck.machine import Machine
from virtnet.hostcheck.resources import require_resources
from virtnet.inventory import DomainView, spec_of, view
from virtnet.ovs import vmports
from virtnet.ovs.connection import Ovsdb, default_remote
from virtnet.spec.models import VMSpec
from virtnet.virt.guest import Guest
from virtnet.virt.host import Host
from virtnet.virt.storage import Volume, ensure_volume
from virtnet.virt.virttype import resolve_virt_type

log = logging.getLogger(__name__)


@dataclass
class DefineResult:
    guest: Guest
    virt_type: str
    virt_type_reason: str
    forward_style: ForwardStyle | None  # how port forwards were expressed, None without forwards
    redefined: bool
    created_disks: list[str] = field(default_factory=list)
    ports_changed: bool = False


def define(
    host: Host, spec: VMSpec, *, virt_type: str | None = None, ovsdb: str | None = None
) -> DefineResult:
    """Define `spec` on `host`, or update the domain virtnet defined from it before."""
    existing = _domain_to_update(host, spec)
    uuid = existing.uuid if existing else (str(spec.uuid) if spec.uuid else network.new_uuid())
    virt = resolve_virt_type(spec.virt_type, host, virt_type)
    choices = HostChoices(virt_type=virt.virt_type, forward_style="passt", uuid=uuid)
    # Render and validate both forms before touching anything: a bug shows before a port is made.
    domains = {style: render_domain(spec, _with_style(choices, style)) for style in _forward_styles(spec)}
    for domain in domains.values():
        validate_domain(domain)
    _require_resources(host, spec, running=existing is not None and existing.is_active)
    with _switch(spec, ovsdb) as db:
        net = network.prepare(host, spec, uuid, db)
        try:
            created = _ensure_disks(host, spec)
            try:
                guest, style = _define_first_accepted(host, domains)
            except BaseException:
                _delete(created)
                raise
        except BaseException:
            network.undo(net, db)
            raise
    return DefineResult(
        guest=guest,
        virt_type=choices.virt_type,
        virt_type_reason=virt.reason,
        forward_style=style if spec.has_port_forwards else None,
        redefined=existing is not None,
        created_disks=[volume.path for volume in created],
        ports_changed=bool(net.ports and net.ports.changed),
    )


def start(host: Host, name: str, *, ovsdb: str | None = None) -> Guest:
    """Start a domain; for a virtnet VM, check the switch and restore its ports first."""
    guest = host.lookup(name)
    if guest.is_active:
        raise InvalidDomainState(f"domain {name!r} is already running", uri=host.uri)
    spec = spec_of(guest)
    if spec is not None:
        _require_resources(host, spec, running=False)
        with _switch(spec, ovsdb) as db:
            network.prepare(host, spec, guest.uuid, db)
    guest.start()
    return guest


def stop(host: Host, name: str, *, force: bool = False, timeout_s: float = 60.0) -> Guest:
    """Shut the guest down through ACPI, or power it off at once with force."""
    guest = host.lookup(name)
    if force:
        guest.destroy()
    elif not guest.shutdown(timeout_s):
        raise InvalidDomainState(
            f"domain {name!r} did not power off within {timeout_s:g} s (does its OS handle ACPI?); "
            "wait longer with --timeout or power it off with --force",
            uri=host.uri,
        )
    return guest


def undefine(host: Host, name: str, *, ovsdb: str | None = None) -> list[str]:
    """Remove a stopped domain and its OVS ports; return the ports removed."""
    guest = host.lookup(name)
    if guest.is_active:
        raise InvalidDomainState(
            f"domain {name!r} is running; stop it first (virtnet stop {name})", uri=host.uri
        )
    spec = spec_of(guest)
    uuid = guest.uuid
    with _switch(spec, ovsdb) as db:  # connect first: an unreachable switch stops us before anything
        guest.undefine()
        return vmports.remove(db, uuid) if db is not None else []


def gc_ports(host: Host, *, ovsdb: str | None = None, dry_run: bool = False) -> list[vmports.VmPort]:
    """Ports whose vm-uuid matches no domain on the host; removed unless dry_run."""
    live = {guest.uuid for guest in host.guests()}
    with Ovsdb(ovsdb or default_remote()) as db:
        stale = vmports.orphans(db, live)
        if not dry_run:
            vmports.delete(db, [port.name for port in stale])
    return stale


def _require_resources(host: Host, spec: VMSpec, *, running: bool) -> None:
    """Free hugepages and existing CPUs, checked as `virtnet host check --spec` does.

    A running domain already holds its pages; a remote host's machine is not ours to read.
    """
    if running or not host.runs_qemu_here:
        return
    require_resources(Machine(), spec)


@contextlib.contextmanager
def _switch(spec: VMSpec | None, ovsdb: str | None) -> Iterator[Ovsdb | None]:
    """A connection to OVS when the VM has ports there, else None."""
    if spec is None or not spec.ovs_nics:
        yield None
        return
    with Ovsdb(ovsdb or default_remote()) as db:
        yield db


def list_domains(host: Host, *, include_inactive: bool = False) -> list[DomainView]:
    views = [view(guest) for guest in host.guests()]
    return [v for v in views if include_inactive or v.id is not None]


def _domain_to_update(host: Host, spec: VMSpec) -> Guest | None:
    """The domain this spec redefines (its UUID is kept); refuse to take over one virtnet did not make."""
    existing = host.find(spec.name)
    if existing is None:
        return None
    if spec_of(existing) is None:
        raise DomainExists(
            f"domain {spec.name!r} exists on {host.uri} and virtnet did not define it; "
            "choose another name, or remove it with `virsh undefine`",
            uri=host.uri,
        )
    if spec.uuid is not None and str(spec.uuid) != existing.uuid:
        raise DomainExists(
            f"domain {spec.name!r} exists with UUID {existing.uuid}, but the spec asks for {spec.uuid}; "
            "remove uuid from the spec or undefine the old domain",
            uri=host.uri,
        )
    return existing


def _forward_styles(spec: VMSpec) -> tuple[ForwardStyle, ...]:
    """Forms to try, best first: libvirt's own <portForward> (passt), then QEMU's hostfwd."""
    return ("passt", "qemu-args") if spec.has_port_forwards else ("qemu-args",)


def _with_style(choices: HostChoices, style: ForwardStyle) -> HostChoices:
    return HostChoices(virt_type=choices.virt_type, forward_style=style, uuid=choices.uuid)


def _define_first_accepted(host: Host, domains: dict[ForwardStyle, Domain]) -> tuple[Guest, ForwardStyle]:
    """Define the first form the connected libvirt accepts (libvirt 9.0 refuses the passt backend)."""
    styles = list(domains)
    for style, domain in domains.items():
        try:
            return host.define(domain.to_xml()), style
        except DomainConfigRejected as err:
            if style == "passt" and "passt" in str(err) and style != styles[-1]:
                log.info(
                    "libvirt at %s refuses the passt backend; forwarding ports with QEMU's hostfwd", host.uri
                )
                continue
            raise
    raise AssertionError("unreachable: the last style re-raises")


def _ensure_disks(host: Host, spec: VMSpec) -> list[Volume]:
    created: list[Volume] = []
    try:
        for i, disk in enumerate(spec.disks):
            try:
                volume = ensure_volume(host, disk.path, disk.size, disk.effective_format)
            except StorageError as err:
                hint = "" if disk.size or disk.device == "cdrom" else " or add size = '10GiB' to create it"
                raise StorageError(f"disks[{i}].path: {err}; fix the path{hint}", uri=host.uri) from None
            if volume is not None:
                created.append(volume)
    except BaseException:
        _delete(created)
        raise
    return created


def _delete(volumes: list[Volume]) -> None:
    for volume in volumes:
        try:
            volume.delete()
        except StorageError as err:
            log.warning("could not delete %s after a failed define: %s", volume.path, err)
