"""From what the user asked (MigrationRequest) to what runs (Plan): the policy plus explicit options."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from virtnet.errors import InputError, raise_all
from virtnet.migration import policy, steering
from virtnet.migration.policy import Choice, PolicyName, Situation
from virtnet.units import parse_cpuset
from virtnet.virt.guest import Guest
from virtnet.virt.migration import Compression, MigrationOptions, measure_dirty_rate

PolicyChoice = Literal["auto", "precopy", "multifd", "auto-converge", "postcopy"]
OnTimeout = Literal["abort", "postcopy"]
# Without --bandwidth the link is assumed to be 10 Gbit/s: the usual migration network.
DEFAULT_LINK_MIB_S = 1192.0
DIRTY_RATE_PERIOD_S = 1


POLICIES: tuple[PolicyChoice, ...] = ("auto", "precopy", "multifd", "auto-converge", "postcopy")
COMPRESSIONS: tuple[Compression, ...] = ("xbzrle",)
ON_TIMEOUT: tuple[OnTimeout, ...] = ("abort", "postcopy")


@dataclass(frozen=True)
class MigrationRequest:
    """Every option of one migration, declared once: the CLI fills it, the Python API takes it.

    problems() checks it whole (every contradiction at once), as values come from a command line
    or a script alike; make_plan turns it into the libvirt flags and parameters
    (virtnet.virt.migration.MigrationOptions, the flag table: what libvirt is told, not what the
    user asked) and the steering plan.
    """

    dest_uri: str = ""  # the destination's libvirt URI, or empty with `to`
    to: str | None = None  # a host of the hosts file, or 'auto'; resolved by control.migration.migrate
    policy: PolicyChoice = "auto"
    parallel: int | None = None
    auto_converge: bool = False
    postcopy: bool = False
    postcopy_after: int | None = None
    compress: Compression | None = None
    bandwidth_mib_s: int | None = None
    max_downtime_ms: int | None = None
    max_downtime_ceiling_ms: int | None = None  # how far steering may raise the allowed downtime
    copy_storage: bool = False
    unsafe: bool = False  # disks on storage both hosts see, which libvirt cannot tell
    timeout_s: float | None = None
    on_timeout: OnTimeout = "abort"
    link_mib_s: float = DEFAULT_LINK_MIB_S
    dest_socket_dir: Path | None = None
    # host CPUs on the destination for the pinned CPUs, in order; as a set or as text ("4-7,10")
    dest_cpus: frozenset[int] | str | None = None
    dest_ovsdb: str | None = None
    probe: str | None = None  # a VM on the source host, or 'host', that pings the guest during the move
    probe_netns: str | None = None  # where 'host' is (a lab host's network namespace)
    probe_nic: int | None = None  # the guest's NIC the probe pings (default: its first not a user NIC)

    def problems(self) -> list[InputError]:
        """Every value out of range and every contradiction between the options."""
        found = []
        if self.to is not None and self.dest_uri:
            found.append(
                InputError(f"--to {self.to} and the destination URI {self.dest_uri}: give one of them")
            )
        elif self.to is None and not self.dest_uri:
            found.append(InputError("give the destination: a libvirt URI, or --to HOST from the hosts file"))
        for option, value, allowed in (
            ("--policy", self.policy, POLICIES),
            ("--compress", self.compress, (None, *COMPRESSIONS)),
            ("--on-timeout", self.on_timeout, ON_TIMEOUT),
        ):
            if value not in allowed:
                choices = ", ".join(choice for choice in allowed if choice)
                found.append(InputError(f"{option} {value}: choose one of {choices}"))
        if self.dest_ovsdb is not None:
            from virtnet.ovs import remote

            wrong = remote.problem(self.dest_ovsdb)
            if wrong:
                found.append(InputError(f"--dest-ovsdb: {wrong}"))
        if isinstance(self.dest_cpus, str):
            try:
                parse_cpuset(self.dest_cpus)
            except ValueError as err:
                found.append(InputError(f"--dest-cpus: {err}"))
        if self.on_timeout == "postcopy" and self.timeout_s is None:
            found.append(InputError("--on-timeout postcopy: give --timeout SECONDS too"))
        ceiling, start = self.max_downtime_ceiling_ms, self.max_downtime_ms
        if ceiling is not None and start is not None and ceiling < start:
            found.append(
                InputError(
                    f"--max-downtime-ceiling {ceiling}: below --max-downtime {start}; "
                    f"give a ceiling of at least {start} ms (equal: no ramp)"
                )
            )
        if self.parallel is not None and self.compress is not None:
            found.append(
                InputError(
                    "--parallel with --compress xbzrle: QEMU's multifd channels do not use xbzrle; choose one"
                )
            )
        return found

    def validate(self) -> None:
        """Refuse contradictory options, all of them at once, before anything is read or measured."""
        raise_all(self.problems())

    @property
    def cpus(self) -> frozenset[int] | None:
        """dest_cpus as a set (validate() first: text that is no CPU list raises ValueError)."""
        return parse_cpuset(self.dest_cpus) if isinstance(self.dest_cpus, str) else self.dest_cpus

    @property
    def wants_postcopy(self) -> bool:
        """Whether the user asked for post-copy in any form."""
        return (
            self.policy == "postcopy"
            or self.postcopy
            or self.postcopy_after is not None
            or self.on_timeout == "postcopy"
        )


@dataclass(frozen=True)
class Plan:
    choice: Choice
    options: MigrationOptions
    dirty_mib_s: float | None = None
    postcopy_after: int | None = None  # switch to post-copy once this many rounds are done
    timeout_s: float | None = None
    on_timeout: OnTimeout = "abort"
    # Steering (steering.py): how far it may raise the allowed downtime, and whether post-copy was
    # armed for it alone (so that it can switch when the passes stop shrinking).
    downtime_ceiling_ms: int = steering.DEFAULT_CEILING_MS
    steer_postcopy: bool = False


def make_plan(
    request: MigrationRequest, guest: Guest, *, memory_mib: int, postcopy_unsafe: str | None
) -> Plan:
    if request.wants_postcopy and postcopy_unsafe is not None:
        raise InputError(
            f"--postcopy: post-copy is unsafe for {guest.name!r}: {postcopy_unsafe}; "
            "or migrate without post-copy (--policy auto-converge)"
        )
    dirty = None
    if request.policy == "auto":
        dirty = measure_dirty_rate(guest, DIRTY_RATE_PERIOD_S)
        capped = request.bandwidth_mib_s is not None
        link = float(request.bandwidth_mib_s) if capped else request.link_mib_s  # type: ignore[arg-type]
        choice = policy.choose(Situation(dirty, link, capped, memory_mib, postcopy_unsafe))
    else:
        choice = policy.explicit(_policy_name(request.policy))
    postcopy_after = request.postcopy_after
    if postcopy_after is None:
        postcopy_after = choice.postcopy_after
    if postcopy_after is None and request.postcopy and request.on_timeout != "postcopy":
        postcopy_after = policy.POSTCOPY_AFTER_ROUNDS  # --postcopy alone: switch after a few rounds
    parallel = request.parallel or choice.parallel
    asked = postcopy_after is not None or request.on_timeout == "postcopy"
    # Policy auto arms post-copy for steering's last rung wherever it is safe. Not with multifd
    # (QEMU 7.2 refuses the pair) nor with --copy-storage (the disks' mirror must finish first).
    steer_postcopy = (
        not asked
        and request.policy == "auto"
        and postcopy_unsafe is None
        and not parallel
        and not request.copy_storage
    )
    ceiling = request.max_downtime_ceiling_ms
    if ceiling is None:
        ceiling = max(steering.DEFAULT_CEILING_MS, request.max_downtime_ms or 0)
    options = MigrationOptions(
        parallel=parallel,
        auto_converge=request.auto_converge or choice.auto_converge,
        postcopy=asked or steer_postcopy,
        compress=request.compress,
        bandwidth_mib_s=request.bandwidth_mib_s,
        max_downtime_ms=request.max_downtime_ms,
        copy_storage=request.copy_storage,
        unsafe=request.unsafe,
        # Hosts that talk TLS to each other carry the guest's memory over TLS too.
        tls=urlsplit(request.dest_uri).scheme.endswith("+tls"),
    )
    return Plan(
        choice=choice,
        options=options,
        dirty_mib_s=dirty,
        postcopy_after=postcopy_after,
        timeout_s=request.timeout_s,
        on_timeout=request.on_timeout,
        downtime_ceiling_ms=ceiling,
        steer_postcopy=steer_postcopy,
    )


def _policy_name(name: PolicyChoice) -> PolicyName:
    assert name != "auto"
    return name
