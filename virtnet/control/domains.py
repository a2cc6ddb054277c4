"""A domain's life on one host: define (or plan it), start, stop, undefine; each with nothing left
half-done on failure, and each under the VM's lock (virtnet/vmlock.py), so a script using these
functions and a `virtnet` command never act on one VM at once.

define = resolve -> render -> validate -> seed -> switch checks, socket directories, OVS ports
-> disks -> seed volume -> define; when libvirt refuses the domain, the disks, seed and ports it
made or changed are taken back.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from virtnet import faultpoint, vmlock
from virtnet.cloudinit import Seed, build_seed
from virtnet.control import network
from virtnet.domxml import Domain, HostChoices, render_domain, validate_domain
from virtnet.domxml.designer import ForwardStyle
from virtnet.domxml.update import Update, update_domain
from virtnet.errors import (
    DomainConfigRejected,
    DomainExists,
    HypervisorError,
    InvalidDomainState,
    OvsdbError,
    StorageError,
)
from virtnet.hostcheck.machine import Machine
from virtnet.hostcheck.resources import require_resources
from virtnet.inventory import spec_of
from virtnet.ovs import vmports
from virtnet.ovs.commands import PortSnapshot
from virtnet.ovs.connection import Ovsdb, default_remote
from virtnet.spec.derived import seed_path
from virtnet.spec.models import VMSpec
from virtnet.virt.guest import Guest
from virtnet.virt.host import Host
from virtnet.virt.storage import Volume, delete_volume, ensure_volume, read_volume, write_volume
from virtnet.virt.virttype import resolve_virt_type

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DefineResult:
    """What define did."""

    guest: Guest
    virt_type: str
    virt_type_reason: str
    forward_style: ForwardStyle | None  # how port forwards were expressed, None without forwards
    redefined: bool
    created_disks: tuple[str, ...] = ()
    ports: tuple[vmports.VhostUserPort, ...] = ()  # the VM's ports on OVS, as define left them
    ports_changed: bool = False
    seed: SeedWrite | None = None
    removed_seed: str | None = None  # the seed of a provisioning the spec no longer has
    warnings: tuple[str, ...] = ()
    overrides: tuple[str, ...] = ()  # fields changed outside virtnet that the spec set back


@dataclass(frozen=True)
class SeedWrite:
    """What define did with the seed volume: 'created', 'replaced' (new instance-id) or 'unchanged'."""

    path: str
    instance_id: str
    action: str
    previous: bytes | None = field(default=None, repr=False)  # to put back if the define fails


@dataclass(frozen=True)
class UndefineResult:
    """What undefine removed besides the domain."""

    ports: tuple[str, ...]
    seed: str | None  # the seed volume removed with the domain


# A seed is a few hundred KiB; anything far larger at its path is not one of ours to read back.
_SEED_LIMIT = 16 * 1024 * 1024


def define(
    host: Host,
    spec: VMSpec,
    *,
    virt_type: str | None = None,
    ovsdb: str | None = None,
    wait_lock: bool = False,
    holder: str | None = None,
) -> DefineResult:
    """Define `spec` on `host`, or update the domain virtnet defined from it before.

    A redefine reads the domain's persistent XML, changes only what the spec owns and keeps the
    rest (devices added with virsh, addresses, unknown elements).

    Args:
        host: the libvirt host.
        spec: the VM (virtnet.spec.load_spec_file, or built in code).
        virt_type: kvm or qemu, overriding the spec's (None: the spec's, else what the host can run).
        ovsdb: the OVSDB remote for vhost-user ports (None: the default socket).
        wait_lock: wait while another virtnet run holds the VM, instead of raising VmLocked.
        holder: how the lock names this run to others (default "define NAME").

    Raises:
        InputError, SpecError: the spec or the override; DomainExists: a domain of that name that
        virtnet did not define; VmLocked; ResourceError; OvsdbError; StorageError;
        DomainConfigRejected and other HypervisorErrors. Nothing is left half-done.
    """
    with vmlock.held(host, spec.name, holder or f"define {spec.name}", wait=wait_lock):
        return _define(host, spec, virt_type=virt_type, ovsdb=ovsdb)


def _define(host: Host, spec: VMSpec, *, virt_type: str | None, ovsdb: str | None) -> DefineResult:
    existing = _domain_to_update(host, spec)
    uuid = existing.guest.uuid if existing else (str(spec.uuid) if spec.uuid else network.new_uuid())
    virt = resolve_virt_type(spec.virt_type, host, virt_type)
    choices = HostChoices(
        virt_type=virt.virt_type, forward_style="passt", uuid=uuid, vhost_net=host.has_vhost_net
    )
    # Render and validate both forms before touching anything: a bug shows before a port is made.
    domains = {style: render_domain(spec, _with_style(choices, style)) for style in _forward_styles(spec)}
    for domain in domains.values():
        validate_domain(domain)
    updates: dict[ForwardStyle, Update] = {}
    if existing is not None:  # read, edit, write: what virsh added to the domain stays
        updates = {
            style: _updated(existing, domain, _with_style(choices, style))
            for style, domain in domains.items()
        }
        domains = {style: update.domain for style, update in updates.items()}
    seed = build_seed(spec)  # a bad user-data file stops us here, before anything exists
    _require_resources(host, spec, running=existing is not None and existing.guest.is_active)
    with _switch(spec, ovsdb) as db:
        faultpoint.reached("define:before-ports")
        net = network.prepare(host, spec, uuid, db)
        faultpoint.reached("define:after-ports")
        try:
            created = _ensure_disks(host, spec)
            try:
                written = _write_seed(host, spec, seed)
                try:
                    guest, style = _define_first_accepted(host, domains)
                except BaseException:
                    _restore_seed(host, written)
                    raise
            except BaseException:
                _delete(created)
                raise
        except BaseException:
            network.undo(net, db)
            raise
    old_seed = seed_path(existing.spec) if existing else None
    removed_seed = None
    if old_seed and old_seed != seed_path(spec) and delete_volume(host, old_seed):
        removed_seed = old_seed
    return DefineResult(
        guest=guest,
        virt_type=choices.virt_type,
        virt_type_reason=virt.reason,
        forward_style=style if spec.has_port_forwards else None,
        redefined=existing is not None,
        created_disks=tuple(volume.path for volume in created),
        ports=tuple(vmports.planned_ports(spec, guest.uuid)),
        ports_changed=bool(net.ports and net.ports.changed),
        seed=written,
        removed_seed=removed_seed,
        warnings=seed.warnings if seed else (),
        overrides=tuple(str(override) for override in updates[style].overrides) if updates else (),
    )


@dataclass(frozen=True)
class DefinePlan:
    """What define would do, for --dry-run: the XML before and after, the OVS rows, the seed."""

    xml: str
    seed: Seed | None
    redefines: bool
    virt_type_reason: str
    current_xml: str | None = None  # the persistent XML now, None for a new domain
    overrides: tuple[str, ...] = ()
    ports_before: list[PortSnapshot] = field(default_factory=list)
    ports_after: list[PortSnapshot] = field(default_factory=list)
    ports_read: bool = False  # whether OVS was read (ports_before is what it holds)


def plan_define(
    host: Host, spec: VMSpec, *, virt_type: str | None = None, ovsdb: str | None = None
) -> DefinePlan:
    """Everything define would do, changing nothing (`virtnet define --dry-run`).

    The forward style is the first one define tries. OVS is read when reachable (ports_read says
    whether it was). Takes no lock: it changes nothing.

    Raises:
        as define does for what it reads (DomainExists, SpecError, HypervisorError ...).
    """
    existing = _domain_to_update(host, spec)
    uuid = existing.guest.uuid if existing else (str(spec.uuid) if spec.uuid else None)
    virt = resolve_virt_type(spec.virt_type, host, virt_type)
    style = _forward_styles(spec)[0]
    if existing is not None and Domain.parse(existing.xml).qemu_commandline is not None:
        style = "qemu-args"  # this libvirt took QEMU's hostfwd before: the diff shows what define will do
    choices = HostChoices(
        virt_type=virt.virt_type, forward_style=style, uuid=uuid, vhost_net=host.has_vhost_net
    )
    domain = render_domain(spec, choices)
    validate_domain(domain)
    overrides: tuple[str, ...] = ()
    if existing is not None:
        update = _updated(existing, domain, choices)
        domain, overrides = update.domain, tuple(str(override) for override in update.overrides)
    vm_uuid = uuid or "(uuid)"
    before: list[PortSnapshot] = []
    read = False
    if spec.ovs_nics:
        with contextlib.suppress(OvsdbError), Ovsdb(ovsdb or default_remote(), timeout_s=2.0) as db:
            before, read = vmports.port_rows(db, spec, vm_uuid), True
    return DefinePlan(
        domain.to_xml(),
        build_seed(spec),
        existing is not None,
        virt.reason,
        current_xml=Domain.parse(existing.xml).to_xml() if existing else None,  # printed alike
        overrides=overrides,
        ports_before=before,
        ports_after=vmports.planned_rows(spec, vm_uuid),
        ports_read=read,
    )


def start(
    host: Host, name: str, *, ovsdb: str | None = None, wait_lock: bool = False, holder: str | None = None
) -> Guest:
    """Start a defined domain; for a virtnet VM, check resources and the switch and restore its ports.

    Args:
        host: the libvirt host.
        name: the domain.
        ovsdb: the OVSDB remote for its vhost-user ports (None: the default socket).
        wait_lock: wait while another virtnet run holds the VM, instead of raising VmLocked.
        holder: how the lock names this run to others (default "start NAME").

    Raises:
        DomainNotFound; InvalidDomainState (already running); VmLocked; ResourceError; OvsdbError;
        HypervisorError.
    """
    with vmlock.held(host, name, holder or f"start {name}", wait=wait_lock):
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


def stop(
    host: Host,
    name: str,
    *,
    force: bool = False,
    timeout_s: float = 60.0,
    wait_lock: bool = False,
    holder: str | None = None,
) -> Guest:
    """Shut the guest down through ACPI and wait until it is off, or power it off at once with force.

    Args:
        force: power off at once (virsh destroy) instead of an ACPI shutdown.
        timeout_s: how long to wait for an ACPI shutdown.
        wait_lock, holder: as for start (default holder "stop NAME").

    Raises:
        DomainNotFound; InvalidDomainState (not off within timeout_s); VmLocked; HypervisorError.
    """
    with vmlock.held(host, name, holder or f"stop {name}", wait=wait_lock):
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


def undefine(
    host: Host, name: str, *, ovsdb: str | None = None, wait_lock: bool = False, holder: str | None = None
) -> UndefineResult:
    """Remove a stopped domain, its OVS ports and its cloud-init seed (disk images stay).

    Args:
        ovsdb: the OVSDB remote holding its ports (None: the default socket).
        wait_lock, holder: as for start (default holder "undefine NAME").

    Raises:
        DomainNotFound; InvalidDomainState (running); VmLocked; OvsdbError; HypervisorError.
    """
    with vmlock.held(host, name, holder or f"undefine {name}", wait=wait_lock):
        guest = host.lookup(name)
        if guest.is_active:
            raise InvalidDomainState(
                f"domain {name!r} is running; stop it first (virtnet stop {name})", uri=host.uri
            )
        spec = spec_of(guest)
        uuid = guest.uuid
        with _switch(spec, ovsdb) as db:  # connect first: an unreachable switch stops us before anything
            guest.undefine()
            ports = vmports.remove(db, uuid) if db is not None else []
        seed = seed_path(spec) if spec else None
        return UndefineResult(ports=tuple(ports), seed=seed if seed and delete_volume(host, seed) else None)


def gc_ports(host: Host, *, ovsdb: str | None = None, dry_run: bool = False) -> list[vmports.VmPort]:
    """Ports whose vm-uuid matches no domain on the host; removed unless dry_run.

    Raises:
        OvsdbError, HypervisorError.
    """
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


@dataclass(frozen=True)
class _Existing:
    """The domain a spec redefines, with the spec it was defined from."""

    guest: Guest
    spec: VMSpec
    xml: str  # its persistent XML, secure: what a redefine edits


def _updated(existing: _Existing, rendered: Domain, choices: HostChoices) -> Update:
    return update_domain(existing.xml, existing.spec, rendered, choices)


def _domain_to_update(host: Host, spec: VMSpec) -> _Existing | None:
    """The domain this spec redefines (its UUID is kept); refuse to take over one virtnet did not make."""
    existing = host.find(spec.name)
    if existing is None:
        return None
    stored = spec_of(existing)
    if stored is None:
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
    return _Existing(existing, stored, existing.xml(inactive=True, secure=True))


def _forward_styles(spec: VMSpec) -> tuple[ForwardStyle, ...]:
    """Forms to try, best first: libvirt's own <portForward> (passt), then QEMU's hostfwd."""
    return ("passt", "qemu-args") if spec.has_port_forwards else ("qemu-args",)


def _with_style(choices: HostChoices, style: ForwardStyle) -> HostChoices:
    return replace(choices, forward_style=style)


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
                volume = ensure_volume(
                    host, disk.path, disk.size, disk.effective_format, backing=disk.backing
                )
            except StorageError as err:
                if disk.backing is not None:
                    raise StorageError(
                        f"disks[{i}]: {err}; fix backing, or move the existing image out of the way",
                        uri=host.uri,
                    ) from None
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


def _write_seed(host: Host, spec: VMSpec, seed: Seed | None) -> SeedWrite | None:
    """Upload the seed ISO through the storage API, unless the host already has this instance-id."""
    if seed is None:
        return None
    from virtnet.cloudinit.iso import read_seed_files, seed_iso

    path = seed_path(spec)
    assert path is not None
    files = seed.files()
    try:
        previous = read_volume(host, path, _SEED_LIMIT)
        if previous is not None and read_seed_files(previous, files) == files:
            return SeedWrite(path, seed.instance_id, "unchanged")
        write_volume(host, path, seed_iso(files))
    except HypervisorError as err:
        raise StorageError(
            f"cloud_init.seed: cannot write the seed {path} on {host.uri}: {err}; "
            "choose a directory libvirt can use with cloud_init.seed",
            uri=host.uri,
        ) from None
    return SeedWrite(path, seed.instance_id, "created" if previous is None else "replaced", previous)


def _restore_seed(host: Host, written: SeedWrite | None) -> None:
    """After a refused define: the seed as it was before (or none, as there was none)."""
    if written is None or written.action == "unchanged":
        return
    try:
        if written.previous is None:
            delete_volume(host, written.path)
        else:
            write_volume(host, written.path, written.previous)
    except StorageError as err:
        log.warning("could not restore the seed %s after a failed define: %s", written.path, err)
