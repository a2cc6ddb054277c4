"""One live migration, in order, with nothing half-done, under the VM's lock on both hosts:

preflight on both hosts -> policy -> destination XML -> the guest's ports on the destination's OVS
(QEMU there will serve the sockets they connect to) -> the libvirt job, watched -> on success the
source's ports go and the report is stored on the destination; on failure the destination's ports
go and the guest keeps running on the source with its own.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from virtnet import faultpoint, vmlock
from virtnet.control import network
from virtnet.errors import (
    DomainNotFound,
    HypervisorError,
    InputError,
    MigrationAborted,
    MigrationFailed,
    OvsdbError,
    VirtnetError,
)
from virtnet.inventory import spec_of_xml
from virtnet.migration import aftermath, disks
from virtnet.migration.destination import Relocation, relocated_spec, relocated_xml, relocation
from virtnet.migration.plan import MigrationRequest, Plan, make_plan
from virtnet.migration.preflight import Sides, postcopy_unsafe, run_checks
from virtnet.migration.report import MIGRATION_NS, MIGRATION_PREFIX, MigrationReport, stats_fields
from virtnet.migration.steering import Ladder, Steering
from virtnet.ovs import vmports
from virtnet.ovs.connection import Ovsdb, default_remote
from virtnet.perf.endpoint import Endpoint, HostEndpoint
from virtnet.perf.probe import Outage, OutageProbe
from virtnet.spec.models import VMSpec
from virtnet.virt.guest import Guest
from virtnet.virt.host import Host
from virtnet.virt.migration import CompletedJobWatch, JobStats, MigrationJob, completed_stats
from virtnet.virt.storage import Volume

POLL_S = 0.25  # short enough to see most memory passes of a stalled job, which steering counts
CLOCK_LIMIT_S = 30.0  # how long the post-copy switch is watched for the guest running on the destination
# An abort early in a job can be refused or lost, and the job then runs on as if never asked (seen on
# libvirt 9.0: a --copy-storage move with --timeout 5, 5 s in, still in its disk copy, ran on for
# minutes); so an abort is asked again at this pace until the job ends.
ABORT_RETRY_S = 2.0
COMPLETED_EVENT_WAIT_S = 5.0  # libvirt sends the job-completed event as the job ends; it may lag the call


class Watcher(Protocol):
    """Where progress goes (the CLI's progress bar); every method is called from the main thread."""

    def sample(self, stats: JobStats) -> None: ...

    def note(self, message: str) -> None: ...


class _Quiet:
    def sample(self, stats: JobStats) -> None:
        pass

    def note(self, message: str) -> None:
        pass


@dataclass(frozen=True)
class Outcome:
    """A migration's plan (all a dry run gives) and, once it ran, its report."""

    plan: Plan
    checks: list[str]  # the pre-flight checks that passed
    moves: Relocation  # socket paths and host CPUs as they change on the destination
    dest_ports: list[str]  # ports made on the destination's OVS
    report: MigrationReport | None = None  # None for --dry-run
    dest_xml: str = ""
    cleanup_note: str = ""  # what became of the source's ports
    placement: tuple[str, ...] = ()  # with request.to: how the destination was chosen


@dataclass
class _JobResult:
    error: BaseException | None = None
    last: JobStats = field(default_factory=dict)
    switched: bool = False
    stopped_by: str | None = None  # "timeout" or "interrupt" when virtnet aborted the job
    wall_s: float = 0.0
    steering: Steering | None = None
    switch_pause_ms: int | None = None  # virtnet's clock around the post-copy switch
    completed: JobStats = field(default_factory=dict)  # the source's figures at the end (libvirt's event)
    abort_asked: float | None = None  # time.monotonic() of the last abort virtnet asked for
    abort_refusal: str | None = None  # libvirt's last answer to an abort it refused, said once


def migrate(
    source: Host,
    name: str,
    request: MigrationRequest,
    *,
    ovsdb: str | None = None,
    hosts_file: Path | None = None,
    dry_run: bool = False,
    watcher: Watcher | None = None,
    wait_lock: bool = False,
    holder: str | None = None,
) -> Outcome:
    """Live-migrate running domain `name` from `source` to request.dest_uri (or request.to).

    Peer to peer, with its OVS ports: they are made on the destination before the job and removed
    from the source after it; on failure the guest keeps running on the source with its own.

    Args:
        source: the libvirt host the guest runs on.
        name: the domain.
        request: every option of the move (validated here, all problems at once).
        ovsdb: the source's OVSDB remote (None: the default socket).
        hosts_file: where request.to is looked up (None: the default hosts file).
        dry_run: check and plan, change nothing (and take no lock).
        watcher: gets the job's progress (the CLI's progress bar); None: nothing is shown.
        wait_lock: wait while another virtnet run holds the VM, instead of raising VmLocked.
        holder: how the lock names this run to others (default "migrate NAME DEST").

    Raises:
        InputError (all contradictions of the request at once); DomainNotFound; VmLocked;
        PreflightError; MigrationFailed, MigrationAborted (the guest still runs on the source);
        OvsdbError; HypervisorError.
    """
    request.validate()
    placement: tuple[str, ...] = ()
    if request.to is not None:
        request, placement = _resolved(request, hosts_file, source.uri, name)
    if dry_run:
        return replace(_migrate_locked(source, name, request, ovsdb, True, watcher), placement=placement)
    with vmlock.held(source, name, holder or f"migrate {name} {request.dest_uri}", wait=wait_lock):
        return replace(_migrate_locked(source, name, request, ovsdb, False, watcher), placement=placement)


def _resolved(
    request: MigrationRequest, hosts_file: Path | None, source_uri: str, name: str
) -> tuple[MigrationRequest, tuple[str, ...]]:
    """--to HOST (or auto): the destination's URI, OVSDB, socket directory, CPUs and link, from the
    hosts file."""
    from virtnet.fleet.destination import resolve

    assert request.to is not None
    found = resolve(hosts_file, request.to, source_uri, name)
    resolved = replace(
        request,
        to=None,
        dest_uri=found.uri,
        dest_ovsdb=request.dest_ovsdb or found.ovsdb,
        dest_socket_dir=request.dest_socket_dir or found.socket_dir,
        dest_cpus=request.cpus or found.dest_cpus or None,
        link_mib_s=found.link_mib_s or request.link_mib_s,
    )
    return resolved, tuple(found.reasons)


def _migrate_locked(
    source: Host,
    name: str,
    request: MigrationRequest,
    ovsdb: str | None,
    dry_run: bool,
    watcher: Watcher | None,
) -> Outcome:
    watcher = watcher or _Quiet()
    guest = source.lookup(name)
    xml = guest.xml(secure=True)
    spec = spec_of_xml(xml)
    moves = relocation(spec, request.dest_socket_dir, request.cpus)
    dest_spec = relocated_spec(spec, moves) if spec is not None else None
    with _destination(request.dest_uri, name, lock=not dry_run) as dest:
        dest_remote = _dest_remote(request, dest)
        with _ovs(dest_spec, dest_remote) as dest_db:
            sides = Sides(source, guest, xml, dest, dest_spec, dest_db)
            try:
                outcome = _migrate(sides, request, moves, dry_run=dry_run, watcher=watcher)
            except VirtnetError:
                if not aftermath.cut_off(source, dest):
                    raise
                ends = (  # a libvirtd restarted under the job: believe what the hosts show now
                    aftermath.Side(source.uri, ovsdb or default_remote(), spec),
                    aftermath.Side(dest.uri, dest_remote or None, dest_spec),
                )
                raise aftermath.settle(*ends, guest.name, guest.uuid) from None
    if outcome.report is not None:
        note = _remove_source_ports(spec, guest.uuid, ovsdb or default_remote(), dest_remote)
        outcome = replace(outcome, cleanup_note=note)
    return outcome


def _migrate(
    sides: Sides, request: MigrationRequest, moves: Relocation, *, dry_run: bool, watcher: Watcher
) -> Outcome:
    source, guest, dest = sides.source, sides.guest, sides.dest
    dest_spec, dest_db = sides.dest_spec, sides.dest_db
    checks = run_checks(sides)
    copies = disks.plan_copies(source, dest, sides.xml) if request.copy_storage else []
    if request.copy_storage:
        checks.append(disks.describe(copies, dest))
    memory_mib = (sides.domain.memory_kib or 0) // 1024  # libvirt writes KiB
    plan = make_plan(request, guest, memory_mib=memory_mib, postcopy_unsafe=postcopy_unsafe(sides))
    dest_xml = relocated_xml(guest.xml(secure=True, migratable=True), moves, dest_spec)
    persist_xml = relocated_xml(guest.xml(inactive=True, secure=True, migratable=True), moves, dest_spec)
    ports = [p.name for p in vmports.planned_ports(dest_spec, guest.uuid)] if dest_db and dest_spec else []
    outcome = Outcome(plan, checks, moves, ports, dest_xml=dest_xml)
    if dry_run:
        return outcome
    net = None
    if dest_spec is not None:  # checked: pre-flight ran network.check() there a moment ago
        net = network.prepare(dest, dest_spec, guest.uuid, dest_db, checked=True)
    if ports:
        watcher.note(f"created port(s) {', '.join(ports)} on the destination's OVS")
    volumes: list[Volume] = []

    def undo() -> None:
        left = disks.remove(volumes)
        if left:
            watcher.note(f"could not delete on the destination: {', '.join(left)}")
        _undo(net, dest_db)

    try:
        volumes = disks.create(dest, copies)
        for volume in volumes:
            watcher.note(f"created {volume.path} on the destination for the disk copy")
        probe = _start_probe(sides, request, watcher)
    except BaseException:
        undo()  # nothing ran yet: what was made on the destination goes again
        raise
    try:
        with CompletedJobWatch(source.uri, guest.uuid) as completion:
            job = MigrationJob(guest)
            result = _run_job(job, dest, request.dest_uri, plan, dest_xml, persist_xml, watcher)
            if result.error is None:
                result.completed = completion.wait(COMPLETED_EVENT_WAIT_S)
    finally:
        seen = _stop_probe(probe, watcher)
    if result.error is None and not _landed(source, dest, guest.name):
        # libvirt 9.0 returns success from a peer-to-peer job aborted early; believe the hosts.
        result.error = MigrationAborted("the job ended with the guest still on the source", uri=source.uri)
    if result.error is not None:
        with _shielded(watcher):  # a Ctrl-C now would leave the destination's ports behind
            failure = _failed(result, guest, source, dest, undo)
        raise failure
    if result.stopped_by is not None:  # the abort came too late: say so, the move itself is sound
        watcher.note(
            f"the job completed before libvirt took the abort: {guest.name!r} moved to the destination"
        )
    dest_guest = dest.lookup(guest.name)
    report = _report(source, dest_guest, plan, result, seen)
    outcome = replace(outcome, report=report)
    try:
        dest_guest.set_metadata(MIGRATION_NS, MIGRATION_PREFIX, report.to_xml())
    except HypervisorError as err:  # the guest moved: a report that cannot be stored is no failure
        watcher.note(f"could not store the report in the domain's metadata: {err}")
    return outcome


@contextlib.contextmanager
def _destination(uri: str, name: str, *, lock: bool) -> Iterator[Host]:
    """The destination, with the VM locked there too: a define of the same name on it would meet
    the incoming domain (the source's lock is migrate's own, see virtnet/vmlock.py)."""
    fix = (
        "check that the destination's libvirtd runs and listens; "
        "nothing was changed, the guest still runs on the source"
    )
    with Host.open(uri, fix=fix, events=True) as dest:  # see CompletedJobWatch
        held = vmlock.held(dest, name, f"migrate {name} {uri}") if lock else contextlib.nullcontext()
        with held:
            yield dest


def _dest_remote(request: MigrationRequest, dest: Host) -> str:
    """The destination's OVS: --dest-ovsdb, or the default socket when the destination is this machine."""
    if request.dest_ovsdb:
        return request.dest_ovsdb
    if dest.is_local:
        return default_remote()
    return ""  # asked for only when the guest has ports there (see _ovs)


@contextlib.contextmanager
def _ovs(spec: VMSpec | None, remote: str) -> Iterator[Ovsdb | None]:
    if spec is None or not spec.ovs_nics:
        yield None
        return
    if not remote:
        raise InputError(
            "--dest-ovsdb: the guest has vhost-user ports on OVS and the destination is another machine; "
            "give its OVSDB, e.g. --dest-ovsdb tcp:HOST:6640"
        )
    with Ovsdb(remote) as db:
        yield db


def _run_job(
    job: MigrationJob,
    dest: Host,
    dest_uri: str,
    plan: Plan,
    dest_xml: str,
    persist_xml: str,
    watcher: Watcher,
) -> _JobResult:
    """Run the libvirt job in a worker thread and steer it from this one.

    The job blocks inside libvirt for its whole length; signals reach only the main thread, so the
    main thread polls (progress, steering, post-copy switch, timeout) and turns Ctrl-C into
    abortJob(). A second Ctrl-C while the abort winds down only says so: leaving then would leave
    the destination's half of the job behind.
    """
    steer = Steering(
        Ladder(
            downtime_ms=plan.options.max_downtime_ms or job.max_downtime_ms(),
            ceiling_ms=plan.downtime_ceiling_ms,
            throttle=plan.options.auto_converge,
            postcopy=plan.steer_postcopy or plan.postcopy_after is not None,
        )
    )
    result = _JobResult(steering=steer)

    finished = threading.Event()  # not Thread.is_alive(): a Ctrl-C inside join() can leave that False

    def work() -> None:
        # Signals for the main thread only: a SIGINT landing in this thread's libvirt call made it
        # return early, as if the migration had completed, while the job went on.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            job.run(dest_uri, plan.options, dest_xml=dest_xml, persist_xml=persist_xml)
        except BaseException as err:  # handed to the main thread
            result.error = err
        finally:
            finished.set()

    worker = threading.Thread(target=work, name="migration-job", daemon=True)
    started = time.monotonic()
    worker.start()
    try:
        while not finished.wait(POLL_S):
            _steer(job, dest, plan, result, watcher, time.monotonic() - started)
            faultpoint.reached("migrate:job-running")
    except KeyboardInterrupt:
        result.stopped_by = "interrupt"
        if result.switched:
            watcher.note("interrupted: the job is in post-copy, which cannot be aborted; it finishes first")
        else:
            watcher.note("interrupted: asking libvirt to abort the migration job")
        _wait_out(finished, watcher, job, result, abort=not result.switched)
    result.wall_s = time.monotonic() - started
    return result


def _wait_out(
    finished: threading.Event, watcher: Watcher, job: MigrationJob, result: _JobResult, *, abort: bool
) -> None:
    """Abort (unless post-copy runs), then wait for the job's end whatever the user presses.

    The first abort is asked inside the loop: libvirt's abortJob can block for a while, and a second
    Ctrl-C landing in it must be answered like any other, not end virtnet with the job still running.
    """
    while not finished.is_set():
        try:
            if abort and result.abort_asked is None:
                _abort(job, result, watcher)
            finished.wait(POLL_S)
            _abort_again(job, result, watcher)
        except KeyboardInterrupt:
            watcher.note(
                "the abort is in progress: waiting for libvirt to end the job on both hosts, "
                "so that nothing is left on the destination"
            )


def _landed(source: Host, dest: Host, name: str) -> bool:
    """Whether the guest runs on the destination and no longer on the source."""
    arrived = dest.find(name)
    left = source.find(name)
    return arrived is not None and arrived.is_active and (left is None or not left.is_active)


def _steer(
    job: MigrationJob, dest: Host, plan: Plan, result: _JobResult, watcher: Watcher, elapsed: float
) -> None:
    stats = job.stats()
    if stats is None:
        return
    if stats.get("data_total"):
        result.last = stats
        watcher.sample(stats)
    steer = result.steering
    assert steer is not None
    if not result.switched:
        seen = len(steer.steps)
        step = steer.observe(stats, elapsed)
        for noted in steer.steps[seen:]:
            watcher.note(f"steering: {noted.action}: {noted.reason}")
        if step is not None and step.action == "downtime" and step.downtime_ms is not None:
            try:
                job.set_max_downtime(step.downtime_ms)
            except HypervisorError as err:  # the job may just have ended
                watcher.note(f"could not raise the allowed downtime: {err}")
        elif step is not None and step.action == "postcopy":
            _switch_to_postcopy(job, dest, result, watcher, "by steering")
    iteration = int(stats.get("memory_iteration", 0))
    if not result.switched and plan.postcopy_after is not None and iteration >= plan.postcopy_after:
        why = f"after {iteration} pre-copy rounds"
        if _switch_to_postcopy(job, dest, result, watcher, why):
            steer.done("postcopy", f"switched to post-copy {why} (--postcopy-after or the policy)", elapsed)
    if plan.timeout_s is not None and elapsed >= plan.timeout_s and result.stopped_by is None:
        if plan.on_timeout == "postcopy" and not result.switched:
            why = f"--timeout {plan.timeout_s:g} s reached"
            if _switch_to_postcopy(job, dest, result, watcher, why):
                steer.done("postcopy", f"switched to post-copy: {why} (--on-timeout postcopy)", elapsed)
        elif not result.switched:
            result.stopped_by = "timeout"
            watcher.note(f"--timeout {plan.timeout_s:g} s reached: aborting the migration job")
            _abort(job, result, watcher)
    elif result.stopped_by == "timeout":
        _abort_again(job, result, watcher)


def _switch_to_postcopy(
    job: MigrationJob, dest: Host, result: _JobResult, watcher: Watcher, why: str
) -> bool:
    asked = time.monotonic()
    try:
        job.start_postcopy()
    except HypervisorError as err:
        watcher.note(f"post-copy switch refused ({err}); pre-copy goes on")
        return False
    result.switched = True
    result.switch_pause_ms = _clock_the_pause(dest, job.guest.name, asked)
    watcher.note(f"switched to post-copy {why}")
    return True


def _clock_the_pause(dest: Host, name: str, asked: float) -> int | None:
    """Milliseconds from asking for the switch until the guest runs on the destination.

    The guest stops on the source after the request and runs on the destination before it is seen
    running, so this bounds the post-copy pause from above; the report uses it only when libvirt
    hands over no figure of QEMU's.
    """
    deadline = asked + CLOCK_LIMIT_S
    while time.monotonic() < deadline:
        with contextlib.suppress(HypervisorError):
            arrived = dest.find(name)
            if arrived is not None and arrived.state == "running":
                return round((time.monotonic() - asked) * 1000)
        time.sleep(0.005)
    return None


@contextlib.contextmanager
def _shielded(watcher: Watcher) -> Iterator[None]:
    """Ctrl-C only says to wait while the destination is cleaned up (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def wait(_signum: int, _frame: object) -> None:
        watcher.note("cleaning up the destination after the abort: wait for it to finish")

    before = signal.signal(signal.SIGINT, wait)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


def _abort(job: MigrationJob, result: _JobResult, watcher: Watcher) -> None:
    result.abort_asked = time.monotonic()
    try:
        job.abort()
    except HypervisorError as err:  # the job may have finished, or not be abortable yet
        if str(err) != result.abort_refusal:  # each new answer once, not every retry
            result.abort_refusal = str(err)
            watcher.note(f"libvirt refused the abort ({err}); asking again every {ABORT_RETRY_S:g} s")


def _abort_again(job: MigrationJob, result: _JobResult, watcher: Watcher) -> None:
    """The job still runs after an abort: ask again (see ABORT_RETRY_S), never after the switch."""
    asked = result.abort_asked
    if asked is not None and not result.switched and time.monotonic() - asked >= ABORT_RETRY_S:
        _abort(job, result, watcher)


def _failed(
    result: _JobResult, guest: Guest, source: Host, dest: Host, undo: Callable[[], None]
) -> VirtnetError:
    err = result.error
    assert err is not None
    if not isinstance(err, HypervisorError):
        raise err  # a bug: keep its traceback
    if result.switched:
        # After the switch the guest's memory is split between the hosts: neither side may be
        # cleaned up. libvirt pauses both; post-copy recovery continues it.
        return MigrationFailed(
            f"migration of {guest.name!r} failed after the switch to post-copy: {err}; the guest is "
            f"paused on both hosts with its memory split between them; resume it with `virsh -c "
            f"{source.uri} migrate --postcopy --postcopy-resume --p2p {guest.name} {dest.uri}`",
            code=err.code,
            uri=source.uri,
        )
    undo()
    left = "still runs on the source with its ports" if guest.is_active else f"is {guest.state} on the source"
    how = {
        "timeout": "the --timeout was reached",
        "interrupt": "it was interrupted",
    }.get(result.stopped_by or "", "")
    cause = f"{how} ({err})" if how else str(err)
    cls = MigrationAborted if result.stopped_by or isinstance(err, MigrationAborted) else MigrationFailed
    return cls(
        f"migration of {guest.name!r} to {dest.uri} did not complete: {cause}; the guest {left}, "
        "and nothing of it is left on the destination",
        code=err.code,
        uri=source.uri,
    )


def _undo(change: network.NetworkChange | None, db: Ovsdb | None) -> None:
    if change is not None:
        network.undo(change, db)


def _start_probe(sides: Sides, request: MigrationRequest, watcher: Watcher) -> OutageProbe | None:
    """--probe: the peer starts pinging the guest before the job, so the gap is all in its replies."""
    if request.probe is None:
        return None
    from virtnet.perf.run import guest_endpoint

    if request.probe == "host":
        peer: Endpoint = HostEndpoint(request.probe_netns)
    else:  # a VM that stays where it is, on either host
        found = sides.source.find(request.probe) or sides.dest.find(request.probe)
        if found is None:
            raise DomainNotFound(
                f"--probe {request.probe}: no such domain on the source or the destination; "
                "name a running VM that can reach the guest, or 'host'"
            )
        peer = guest_endpoint(found)
    probe = OutageProbe(peer, guest_endpoint(sides.guest), request.probe_nic)
    probe.start()
    watcher.note(f"{peer.label} pings {probe.target} every 10 ms during the move")
    return probe


def _stop_probe(probe: OutageProbe | None, watcher: Watcher) -> Outage | None:
    if probe is None:
        return None
    try:
        return probe.stop()
    except VirtnetError as err:  # the move's outcome stands; only its outage figure is missing
        watcher.note(f"the outage probe failed: {err}")
        return None


def _report(
    source: Host, dest_guest: Guest, plan: Plan, result: _JobResult, seen: Outage | None = None
) -> MigrationReport:
    """The report from the first source of figures that has them all.

    1. the source's completed-job statistics, which libvirt hands over in its job-completed event:
       QEMU's own figures, downtime included, after a post-copy switch too;
    2. the destination's completed-job statistics (it keeps none after a post-copy switch);
    3. the last sample for pages and bytes, virtnet's clock for the total and for the pause around
       the post-copy switch.
    """
    stats, stats_from = result.completed, "source (libvirt's job-completed event: QEMU's figures)"
    if not stats.get("time_elapsed") or stats.get("downtime") is None:
        stats, stats_from = completed_stats(dest_guest), "destination (completed-job statistics)"
    values = stats_fields(stats)
    if not stats.get("time_elapsed") or stats.get("downtime") is None:
        stats_from = (
            "last sample; total and downtime by virtnet's clock (the pause: from asking for the "
            "post-copy switch until the destination ran the guest)"
        )
        values = stats_fields(result.last)
        values.update(total_ms=round(result.wall_s * 1000), downtime_ms=result.switch_pause_ms, setup_ms=None)
    steer = result.steering
    return MigrationReport(
        source=source.uri,
        destination=dest_guest.uri,
        policy=plan.choice.policy,
        reason=plan.choice.reason,
        dirty_rate_mib_s=None if plan.dirty_mib_s is None else round(plan.dirty_mib_s, 1),
        flags=" ".join(plan.options.flag_names()),
        finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
        stats_from=stats_from,
        postcopy_switched=result.switched,
        wall_ms=round(result.wall_s * 1000),
        outage_ms=seen.longest_gap_ms if seen else None,
        outage_lost_run_ms=seen.lost_run_ms if seen else None,
        outage_seen_by=seen.peer if seen else None,
        outage_lost=seen.sent - seen.received if seen else None,
        escalations=tuple(step.line() for step in steer.steps) if steer else (),
        max_downtime_ms=steer.downtime_ms if steer else None,
        **values,
    )


def _remove_source_ports(spec: VMSpec | None, uuid: str, remote: str, dest_remote: str) -> str:
    """The guest left: its ports on the source's OVS go, unless that OVS is the destination's too.

    The guest already runs on the destination, so a failure here is reported, not raised: `virtnet
    switch gc` on the source removes the ports later.
    """
    if spec is None or not spec.ovs_nics:
        return ""
    if remote == dest_remote:
        return f"source and destination share OVS at {remote}: ports kept"
    try:
        with Ovsdb(remote) as db:
            removed = vmports.remove(db, uuid)
    except OvsdbError as err:
        return f"could not remove the guest's ports from the source's OVS ({err}); run `virtnet switch gc`"
    if not removed:  # ports made by hand, without virtnet's external_ids, are not the guest's to remove
        return f"no port of the guest's on the source's OVS at {remote}"
    return f"removed port(s) {', '.join(removed)} from the source's OVS at {remote}"
