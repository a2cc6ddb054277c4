"""libvirt's migration API, and the one place where virtnet's options become VIR_MIGRATE_* flags.

Every migration is peer-to-peer and live: the source libvirtd connects to the destination's itself
and keeps the job going even if the client goes away (Nova's choice too), and the guest keeps
running while its memory is copied. The table below is what each option turns into.

| virtnet option      | libvirt                                                              |
|---------------------|----------------------------------------------------------------------|
| (always)            | VIR_MIGRATE_PEER2PEER, VIR_MIGRATE_LIVE                              |
| (always)            | VIR_MIGRATE_PERSIST_DEST, VIR_MIGRATE_UNDEFINE_SOURCE: the domain     |
|                     | moves, definition included, as `virsh migrate --persistent           |
|                     | --undefinesource` does                                               |
| (always)            | VIR_MIGRATE_ABORT_ON_ERROR: a disk I/O error during the move aborts  |
|                     | it instead of pausing the guest on the source                        |
| --parallel N        | VIR_MIGRATE_PARALLEL + VIR_MIGRATE_PARAM_PARALLEL_CONNECTIONS=N      |
|                     | (QEMU multifd: N streams, for links one CPU cannot fill)             |
| --auto-converge     | VIR_MIGRATE_AUTO_CONVERGE (QEMU throttles the vCPUs while pre-copy   |
|                     | does not converge)                                                   |
| --postcopy          | VIR_MIGRATE_POSTCOPY: allows the switch, which virDomainMigrate-     |
|                     | StartPostCopy makes (--postcopy-after ITER, --on-timeout postcopy)  |
| --compress xbzrle   | VIR_MIGRATE_COMPRESSED + VIR_MIGRATE_PARAM_COMPRESSION=xbzrle        |
| --bandwidth MiB/s   | VIR_MIGRATE_PARAM_BANDWIDTH, and with post-copy also                 |
|                     | VIR_MIGRATE_PARAM_BANDWIDTH_POSTCOPY (MiB/s: a cap for the whole job)|
| --max-downtime ms   | virDomainMigrateSetMaxDowntime before the job starts (there is no    |
|                     | parameter for it); steering raises it during the job, up to          |
|                     | --max-downtime-ceiling (virtnet/migration/steering.py)               |
| --copy-storage      | VIR_MIGRATE_NON_SHARED_DISK (copies the disks over NBD)              |
| --unsafe            | VIR_MIGRATE_UNSAFE: the user vouches that both hosts see the disks   |
|                     | (libvirt cannot tell for a local filesystem, e.g. the lab's hosts)   |
| a qemu+tls:// dest  | VIR_MIGRATE_TLS: QEMU's migration stream over TLS too (the hosts'    |
|                     | migrate_tls_x509_cert_dir), not only libvirt's control connection    |
| destination XML     | VIR_MIGRATE_PARAM_DEST_XML (live), VIR_MIGRATE_PARAM_PERSIST_XML     |
|                     | (the definition kept on the destination)                             |
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

import libvirt

from virtnet.errors import HypervisorError
from virtnet.virt.errors import libvirt_errors
from virtnet.virt.guest import Guest

Compression = Literal["xbzrle"]

# Fields of virDomainGetJobStats, named as libvirt's python binding returns them.
JobStats = dict[str, Any]


@dataclass(frozen=True)
class MigrationOptions:
    """How the memory moves; None and False leave libvirt's and QEMU's defaults."""

    parallel: int | None = None
    auto_converge: bool = False
    postcopy: bool = False
    compress: Compression | None = None
    bandwidth_mib_s: int | None = None
    max_downtime_ms: int | None = None
    copy_storage: bool = False
    unsafe: bool = False
    tls: bool = False

    def flag_names(self) -> list[str]:
        """The VIR_MIGRATE_* flags these options set, for --dry-run and the report."""
        flags = self.flags()
        return [name for name, value in _FLAG_VALUES.items() if flags & value]

    def flags(self) -> int:
        flags = (
            libvirt.VIR_MIGRATE_PEER2PEER
            | libvirt.VIR_MIGRATE_LIVE
            | libvirt.VIR_MIGRATE_PERSIST_DEST
            | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE
            | libvirt.VIR_MIGRATE_ABORT_ON_ERROR
        )
        if self.parallel:
            flags |= libvirt.VIR_MIGRATE_PARALLEL
        if self.auto_converge:
            flags |= libvirt.VIR_MIGRATE_AUTO_CONVERGE
        if self.postcopy:
            flags |= libvirt.VIR_MIGRATE_POSTCOPY
        if self.compress:
            flags |= libvirt.VIR_MIGRATE_COMPRESSED
        if self.copy_storage:
            flags |= libvirt.VIR_MIGRATE_NON_SHARED_DISK
        if self.unsafe:
            flags |= libvirt.VIR_MIGRATE_UNSAFE
        if self.tls:
            flags |= libvirt.VIR_MIGRATE_TLS
        return flags

    def params(self, *, dest_xml: str | None = None, persist_xml: str | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if self.parallel:
            params[libvirt.VIR_MIGRATE_PARAM_PARALLEL_CONNECTIONS] = self.parallel
        if self.compress:
            params[libvirt.VIR_MIGRATE_PARAM_COMPRESSION] = self.compress
        if self.bandwidth_mib_s:
            params[libvirt.VIR_MIGRATE_PARAM_BANDWIDTH] = self.bandwidth_mib_s
            if self.postcopy:  # post-copy has its own limit, unlimited unless set
                params[libvirt.VIR_MIGRATE_PARAM_BANDWIDTH_POSTCOPY] = self.bandwidth_mib_s
        if dest_xml is not None:
            params[libvirt.VIR_MIGRATE_PARAM_DEST_XML] = dest_xml
        if persist_xml is not None:
            params[libvirt.VIR_MIGRATE_PARAM_PERSIST_XML] = persist_xml
        return params


_FLAG_VALUES = {
    name: getattr(libvirt, f"VIR_MIGRATE_{name}")
    for name in (
        "PEER2PEER",
        "LIVE",
        "PERSIST_DEST",
        "UNDEFINE_SOURCE",
        "ABORT_ON_ERROR",
        "PARALLEL",
        "AUTO_CONVERGE",
        "POSTCOPY",
        "COMPRESSED",
        "NON_SHARED_DISK",
        "UNSAFE",
        "TLS",
    )
}


class MigrationJob:
    """The source side of one migration job: start it, watch it, steer it."""

    def __init__(self, guest: Guest) -> None:
        self.guest = guest
        self._dom = guest.domain

    def run(self, dest_uri: str, options: MigrationOptions, *, dest_xml: str, persist_xml: str) -> None:
        """Migrate and return when the guest runs on the destination; blocks for the whole job."""
        with libvirt_errors(self.guest.uri):
            if options.max_downtime_ms:
                self._dom.migrateSetMaxDowntime(options.max_downtime_ms, 0)
            self._dom.migrateToURI3(
                dest_uri, options.params(dest_xml=dest_xml, persist_xml=persist_xml), options.flags()
            )

    def stats(self) -> JobStats | None:
        """The running job's statistics; None when no job runs (not started yet, or over)."""
        try:
            stats = self._dom.jobStats(0)
        except libvirt.libvirtError:
            return None  # the domain left this host: the job is over
        if stats.get("type", libvirt.VIR_DOMAIN_JOB_NONE) == libvirt.VIR_DOMAIN_JOB_NONE:
            return None
        return dict(stats)

    def abort(self) -> None:
        with libvirt_errors(self.guest.uri):
            self._dom.abortJob()

    def start_postcopy(self) -> None:
        with libvirt_errors(self.guest.uri):
            self._dom.migrateStartPostCopy(0)

    def max_downtime_ms(self) -> int:
        """The allowed downtime QEMU works to (its own default, 300 ms, unless someone set it)."""
        with libvirt_errors(self.guest.uri):
            return int(self._dom.migrateGetMaxDowntime(0))

    def set_max_downtime(self, ms: int) -> None:
        """Allow a longer pause at the end; takes effect for the running job."""
        with libvirt_errors(self.guest.uri):
            self._dom.migrateSetMaxDowntime(ms, 0)


class CompletedJobWatch:
    """The source's statistics of the finished job, from libvirt's job-completed event.

    They are QEMU's own figures (downtime included) as the source saw them at the end, the only
    complete ones after a post-copy switch: the destination keeps none then, and the source domain
    is gone once the call returns. The event needs libvirt's event loop, so this opens a connection
    of its own with the loop running. libvirt wants the loop registered before the process's first
    connection (virEventRegisterImpl), so callers open theirs with `Host.open(..., events=True)`;
    two migrations that mixed connections opened before and after the loop's start hung in CI in
    a libvirt call that never returned, the guest running on untouched.
    """

    def __init__(self, uri: str, uuid: str) -> None:
        self.uri = uri
        self.uuid = uuid
        self.stats: JobStats = {}
        self._arrived = threading.Event()
        self._conn: libvirt.virConnect | None = None
        self._callback: int | None = None

    def __enter__(self) -> CompletedJobWatch:
        from virtnet.virt import events

        events.start()
        try:
            self._conn = libvirt.open(self.uri)
            dom = self._conn.lookupByUUIDString(self.uuid)
            self._callback = self._conn.domainEventRegisterAny(
                dom, libvirt.VIR_DOMAIN_EVENT_ID_JOB_COMPLETED, self._completed, None
            )
        except libvirt.libvirtError:
            pass  # no event, no figures from it: the report takes them from elsewhere
        return self

    def __exit__(
        self, _type: type[BaseException] | None, _value: BaseException | None, _tb: TracebackType | None
    ) -> None:
        if self._conn is None:
            return
        try:
            if self._callback is not None:
                self._conn.domainEventDeregisterAny(self._callback)
            self._conn.close()
        except libvirt.libvirtError:
            pass  # a connection that died with the job: nothing to release

    def _completed(self, _conn: object, _dom: object, params: dict[str, Any], _opaque: object) -> None:
        self.stats = dict(params)
        self._arrived.set()

    def wait(self, timeout_s: float) -> JobStats:
        """The statistics, waiting up to timeout_s for the event; {} when none came."""
        self._arrived.wait(timeout_s)
        return self.stats


def completed_stats(guest: Guest) -> JobStats:
    """The statistics of the guest's last completed job (read them on the destination)."""
    with libvirt_errors(guest.uri):
        return dict(guest.domain.jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED))


def measure_dirty_rate(guest: Guest, seconds: int = 1) -> float:
    """The guest's dirty rate in MiB/s, by QEMU's page sampling over `seconds`.

    Page sampling counts the distinct pages written per second of the period, so a guest that
    rewrites a small region fast reads lower over a long period: keep the period short. The
    dirty-bitmap mode crashed QEMU 7.2 under TCG and dirty-ring needs KVM (host.md).
    """
    dom = guest.domain
    with libvirt_errors(guest.uri):
        dom.startDirtyRateCalc(seconds, libvirt.VIR_DOMAIN_DIRTYRATE_MODE_PAGE_SAMPLING)
        conn = dom.connect()
        deadline = time.monotonic() + seconds + 10
        while time.monotonic() < deadline:
            time.sleep(min(0.25, seconds))
            ((_dom, stats),) = conn.domainListGetStats([dom], libvirt.VIR_DOMAIN_STATS_DIRTYRATE, 0)
            if stats.get("dirtyrate.calc_status") == libvirt.VIR_DOMAIN_DIRTYRATE_MEASURED:
                return float(stats.get("dirtyrate.megabytes_per_second", 0))
    raise HypervisorError(
        f"QEMU did not finish measuring the dirty rate of {guest.name!r} within {seconds + 10} s; "
        "choose a policy with --policy instead of auto",
        uri=guest.uri,
    )
