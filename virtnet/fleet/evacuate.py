"""Evacuation: every running VM off a host (for maintenance), each placed and live-migrated.

Placement is planned up front for all VMs, with each planned VM's hugepages and pins counted
against its destination, so two VMs moving at once are not both given the last free node. Each
move is one `migrate` (peer to peer, with its OVS port): libvirt either finishes it or leaves the
VM running on the source, so no VM is ever half-moved. Moves run in worker threads, at most
`parallel` at a time; Ctrl-C (in the main thread) stops starting new ones, lets the ones in flight
finish, and the summary says what moved and what did not.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path

from virtnet.errors import InputError, VirtnetError
from virtnet.fleet.hostsfile import HostEntry, load_hosts
from virtnet.fleet.placement import TIMEOUT_S, Verdict, place
from virtnet.fleet.remote import remember_tls
from virtnet.fleet.view import HostRow, gather
from virtnet.virt.facts import PinnedDomain


@dataclass
class Move:
    vm: str
    source: str
    dest: str | None = None  # None: no host fits
    policy: str = ""
    total_ms: int | None = None
    downtime_ms: int | None = None
    result: str = "planned"  # planned, moved, failed: ..., stays: ..., not started (interrupted)
    verdict: Verdict | None = None
    why: str = ""  # the placement's reasons, for the dry run


@dataclass
class Evacuation:
    moves: list[Move]
    interrupted: bool = False


def plan(
    hosts_file: Path | None, source_name: str, to: list[str] | None
) -> tuple[HostEntry, list[Move], dict[str, HostEntry]]:
    """The source host, a placed Move per running VM, and the destination entries by name."""
    from virtnet.inventory import spec_of
    from virtnet.virt import events
    from virtnet.virt.host import Host

    events.start()  # before the first connection: the moves need libvirt's events (CompletedJobWatch)

    hosts = load_hosts(hosts_file)
    source = hosts.get(source_name)
    dests = [hosts.get(name) for name in to] if to else [e for e in hosts if e.name != source_name]
    if any(d.name == source_name for d in dests):
        raise InputError(f"--to {source_name}: that is the host being evacuated; name other hosts")
    if not dests:
        raise InputError(
            f"{hosts.path}: no host to evacuate {source_name} to; add hosts or name them with --to"
        )
    for entry in (source, *dests):
        remember_tls(entry)
    rows = gather(dests, timeout_s=TIMEOUT_S)
    moves = []
    with Host.open(source.uri, fix="check that libvirtd runs on the host to evacuate") as host:
        for guest in sorted((g for g in host.guests() if g.is_active), key=lambda g: g.name):
            spec = spec_of(guest)
            if spec is None:
                moves.append(Move(guest.name, source.name, result="stays: no virtnet spec to place it by"))
                continue
            placement = place(spec, rows)
            move = Move(guest.name, source.name, why="; ".join(v.line() for v in placement.verdicts))
            if placement.chosen is None:
                move.result = "stays: no host fits (" + " / ".join(v.line() for v in placement.verdicts) + ")"
            else:
                move.dest, move.verdict = placement.chosen.host, placement.chosen
                _reserve(rows, placement.chosen, spec)
            moves.append(move)
    return source, moves, {d.name: d for d in dests}


def _reserve(rows: list[HostRow], verdict: Verdict, spec: object) -> None:
    """Count a planned VM against its destination: its hugepages on the node, its pins."""
    from virtnet.spec.models import VMSpec

    assert isinstance(spec, VMSpec)
    row = next(r for r in rows if r.entry.name == verdict.host)
    facts = row.facts
    assert facts is not None
    pages = spec.memory.hugepages
    if pages is not None:
        kib = pages.page_size // 1024
        for node, count in verdict.pages_by_node.items():  # one node, or one per NUMA cell
            sizes = facts.free_pages.setdefault(node, {})
            sizes[kib] = sizes.get(kib, 0) - count
    if verdict.dest_cpus:
        facts.pinned.append(PinnedDomain(spec.name, verdict.dest_cpus))


def evacuate(
    source: HostEntry,
    moves: list[Move],
    dests: dict[str, HostEntry],
    *,
    parallel: int = 1,
    policy: str = "auto",
    on_done: Callable[[Move], None] = lambda _move: None,
) -> Evacuation:
    """Run the planned moves, `parallel` at a time; Ctrl-C lets the ones in flight finish."""
    todo = [m for m in moves if m.dest is not None]
    evacuation = Evacuation(moves)
    running: dict[Future[None], Move] = {}
    with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="evacuate") as pool:
        try:
            while todo or running:
                while todo and len(running) < parallel:
                    move = todo.pop(0)
                    move.result = "moving"
                    running[pool.submit(_move, source, move, dests[move.dest or ""], policy)] = move
                done, _ = wait(list(running), timeout=0.5, return_when=FIRST_COMPLETED)
                for future in done:
                    on_done(running.pop(future))
        except KeyboardInterrupt:
            evacuation.interrupted = True
            for move in todo:
                move.result = "not started (interrupted)"
            for future in list(running):
                _wait_ignoring_interrupts(future)
                on_done(running.pop(future))
    return evacuation


def _wait_ignoring_interrupts(future: Future[None]) -> None:
    """The move in flight finishes whatever happens: a second Ctrl-C does not abandon it half-way."""
    while True:
        try:
            future.result()
            return
        except KeyboardInterrupt:
            continue


def _move(source: HostEntry, move: Move, dest: HostEntry, policy: str) -> None:
    from virtnet.control.migration import migrate
    from virtnet.migration.plan import MigrationRequest
    from virtnet.virt.host import Host

    # Ctrl-C is the main thread's: it decides what stops, and this move finishes either way.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    verdict = move.verdict
    assert verdict is not None
    request = MigrationRequest(
        dest_uri=dest.uri,
        policy=policy,  # type: ignore[arg-type]
        dest_ovsdb=dest.ovsdb,
        dest_socket_dir=dest.socket_dir,
        dest_cpus=verdict.dest_cpus if verdict.replanned else None,
    )
    if dest.link_mib_s:
        request = replace(request, link_mib_s=dest.link_mib_s)
    try:
        with Host.open(source.uri) as host:
            outcome = migrate(host, move.vm, request, ovsdb=source.ovsdb)
    except VirtnetError as err:
        move.result = f"failed, still on {source.name}: {err}"
        return
    report = outcome.report
    assert report is not None
    move.policy = report.policy
    move.total_ms = report.total_ms
    move.downtime_ms = report.downtime_ms
    move.result = "moved"


def summary(evacuation: Evacuation) -> str:
    header = ("VM", "FROM", "TO", "POLICY", "TOTAL", "DOWNTIME", "RESULT")
    lines = [header] + [
        (
            m.vm,
            m.source,
            m.dest or "-",
            m.policy or "-",
            f"{m.total_ms} ms" if m.total_ms is not None else "-",
            f"{m.downtime_ms} ms" if m.downtime_ms is not None else "-",
            m.result,
        )
        for m in evacuation.moves
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    out = [
        "  ".join([*(c.ljust(w) for c, w in zip(line[:-1], widths, strict=True)), line[-1]]) for line in lines
    ]
    moved = sum(m.result == "moved" for m in evacuation.moves)
    tail = f"{moved} of {len(evacuation.moves)} VMs moved"
    if evacuation.interrupted:
        tail += "; interrupted: the moves in flight finished, the rest did not start"
    return "\n".join([*out, tail]) + "\n"


def dry_run_moves(moves: list[Move]) -> list[Move]:
    return [replace(m, result="would move" if m.dest else m.result) for m in moves]
