"""Placement: which host of the fleet can run a VM spec, why, and why not each other one.

A host fits when (1) its libvirtd answers, (2) one NUMA node has the spec's hugepages free — or,
for a spec with NUMA cells, each cell's hugepages and vCPUs fit on a node, (3) its free CPUs
(online, not pinned by a running VM, not OVS's PMD or lcore cores) can take the vCPUs — the spec's
own pins where those are free, else as many free CPUs of the hugepages' node(s), and (4) for
vhost-user NICs, its OVS has DPDK initialised and each bridge with the netdev datapath.

Cells: the spec does not bind a guest cell to a host node, so each cell goes where it fits, on a
node no other cell took when one has room (the guest's topology then mirrors the host's), else
beside another cell; the verdict names each cell's node.

Of the hosts that fit, the one with the most free hugepages on its node wins (then most free CPUs):
the most room left for the next VM, and the fewest pins to move.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from virtnet.errors import InputError
from virtnet.fleet.hostsfile import HostEntry, load_hosts
from virtnet.fleet.remote import remember_tls
from virtnet.fleet.view import HostRow, gather
from virtnet.spec.derived import pinned_cpusets
from virtnet.spec.models import VMSpec
from virtnet.units import KIB, format_cpuset, format_size

# A decision, not a glance: a host gets longer than the fleet view's default to answer (a libvirtd's
# first call after it starts probes QEMU, seconds on a loaded machine), before it counts as down.
TIMEOUT_S = 30.0


class NoHostFits(InputError):
    """No host of the fleet can take the VM; `details` says why for each host."""


@dataclass
class Verdict:
    entry: HostEntry
    fits: bool
    reasons: list[str] = field(default_factory=list)  # why it fits, or why not
    node: int | None = None
    free_pages: int = 0
    free_cpus: int = 0
    # The spec's pinned host CPUs, in order, and where they go on this host (same when they are free).
    cpus: dict[int, int] = field(default_factory=dict)
    socket_dir: Path | None = None
    # Hugepages the VM takes on each node (one node, or one per cell): what a planned move reserves.
    pages_by_node: dict[int, int] = field(default_factory=dict)
    cells: dict[int, int] = field(default_factory=dict)  # the spec's NUMA cell -> this host's node

    @property
    def host(self) -> str:
        return self.entry.name

    @property
    def dest_cpus(self) -> frozenset[int] | None:
        return frozenset(self.cpus.values()) if self.cpus else None

    @property
    def replanned(self) -> bool:
        return any(a != b for a, b in self.cpus.items())

    def line(self) -> str:
        return f"{self.host}: {'; '.join(self.reasons)}"


@dataclass
class Placement:
    chosen: Verdict | None
    verdicts: list[Verdict]

    @property
    def rejected(self) -> list[Verdict]:
        return [v for v in self.verdicts if v is not self.chosen]

    def require(self, name: str) -> Verdict:
        if self.chosen is None:
            err = NoHostFits(f"{name}: no host fits")
            err.details = tuple(v.line() for v in self.verdicts)
            raise err
        return self.chosen


def place_from_file(
    hosts_file: Path | None, spec: VMSpec, choice: str, *, exclude: tuple[str, ...] = ()
) -> Placement:
    """--host auto: every host of the file; --host NAME: that host only (to hear why it does not fit)."""
    hosts = load_hosts(hosts_file)
    entries = list(hosts) if choice == "auto" else [hosts.get(choice)]
    placement = place(spec, gather(entries, timeout_s=TIMEOUT_S), exclude=exclude)
    if placement.chosen is not None:
        remember_tls(placement.chosen.entry)
    return placement


def placed_spec(spec: VMSpec, verdict: Verdict) -> VMSpec:
    """The spec as it runs on the chosen host: its socket directory, its re-planned pins."""
    from virtnet.migration.destination import relocated_spec, relocation

    if not verdict.replanned and verdict.socket_dir is None:
        return spec
    return relocated_spec(spec, relocation(spec, verdict.socket_dir, verdict.dest_cpus))


def place(spec: VMSpec, rows: list[HostRow], *, exclude: tuple[str, ...] = ()) -> Placement:
    """Judge every host for `spec` and choose one (or none)."""
    verdicts = [judge(spec, row) for row in rows if row.entry.name not in exclude]
    fitting = [v for v in verdicts if v.fits]
    chosen = max(fitting, key=lambda v: (v.free_pages, v.free_cpus), default=None)
    if chosen is not None:
        chosen.reasons.insert(0, "chosen")
        for other in fitting:
            if other is not chosen:
                other.reasons.insert(
                    0, f"fits, but {chosen.host} has more room ({chosen.free_pages} free pages on its node)"
                )
    return Placement(chosen, verdicts)


def judge(spec: VMSpec, row: HostRow) -> Verdict:
    verdict = Verdict(row.entry, fits=False, socket_dir=row.entry.socket_dir)
    facts = row.facts
    if facts is None:
        verdict.reasons.append(f"down ({row.error})")
        return verdict
    problems: list[str] = []
    nodes = sorted(facts.cell_cpus) or [0]
    hugepages = spec.memory.hugepages
    free_cpus = row.free_cpus()
    if spec.numa:
        _cells(verdict, spec, facts.cell_cpus, facts.free_pages, free_cpus, problems)
    elif hugepages is not None:
        kib = hugepages.page_size // KIB
        needed = spec.memory.size // hugepages.page_size
        free = {node: facts.free_pages.get(node, {}).get(kib, 0) for node in nodes}
        roomy = [node for node in nodes if free[node] >= needed]
        size = format_size(hugepages.page_size)
        pins_node = _node_of(facts.cell_cpus, min(_pinned(spec))) if _pinned(spec) else None
        if roomy:
            # The pins' node when it has room (no pin to move off it), else the roomiest.
            verdict.node = pins_node if pins_node in roomy else max(roomy, key=lambda n: free[n])
            verdict.free_pages = free[verdict.node]
            verdict.pages_by_node = {verdict.node: needed}
            verdict.reasons.append(
                f"node {verdict.node} has {verdict.free_pages} free {size} pages (needs {needed})"
            )
        else:
            best = max(nodes, key=lambda n: free[n])
            problems.append(
                f"not enough hugepages: {needed} {size} pages needed on one node, "
                f"node {best} has {free[best]}"
            )
    verdict.free_cpus = len(free_cpus)
    pinned = _pinned(spec)
    if pinned:
        _pins(verdict, facts.cell_cpus, free_cpus, pinned, problems)
    elif spec.numa:
        pass  # each cell's vCPUs were counted on its node
    elif len(free_cpus) < spec.cpu.count:
        problems.append(f"{len(free_cpus)} free CPUs for {spec.cpu.count} vCPUs")
    else:
        verdict.reasons.append(
            f"{len(free_cpus)} free CPUs ({format_cpuset(free_cpus)}) for {spec.cpu.count} vCPUs"
        )
    if spec.ovs_nics:
        problems += _switch_problems(spec, row)
    if problems:
        verdict.reasons = problems
        return verdict
    verdict.fits = True
    return verdict


def _cells(
    verdict: Verdict,
    spec: VMSpec,
    cell_cpus: dict[int, frozenset[int]],
    free_pages: dict[int, dict[int, int]],
    free_cpus: frozenset[int],
    problems: list[str],
) -> None:
    """Put each of the spec's NUMA cells on a host node with its hugepages and vCPUs free.

    The largest cells first (first-fit decreasing); a node no other cell took is preferred, then the
    one with the most free pages. vCPUs count here only when the spec does not pin them (pins say
    where they run; _pins checks those).
    """
    hugepages = spec.memory.hugepages
    kib = hugepages.page_size // KIB if hugepages else 0
    nodes = sorted(cell_cpus) or [0]
    pages_left = {node: free_pages.get(node, {}).get(kib, 0) if hugepages else 0 for node in nodes}
    count_cpus = not _pinned(spec)
    cpus_left = {node: len(free_cpus & cell_cpus.get(node, free_cpus)) for node in nodes}
    size = format_size(hugepages.page_size) if hugepages else ""
    placed: dict[int, str] = {}
    order = sorted(range(len(spec.numa)), key=lambda i: (-spec.numa[i].memory, i))
    for index in order:
        cell = spec.numa[index]
        pages = cell.memory // hugepages.page_size if hugepages else 0
        vcpus = len(cell.cpus) if count_cpus else 0
        fitting = [n for n in nodes if pages_left[n] >= pages and cpus_left[n] >= vcpus]
        if not fitting:
            problems.append(_cell_problem(index, pages, vcpus, size, nodes, pages_left, cpus_left))
            continue
        taken = set(verdict.cells.values())
        node = max(fitting, key=lambda n: (n not in taken, pages_left[n], cpus_left[n], -n))
        verdict.cells[index] = node
        pages_left[node] -= pages
        cpus_left[node] -= vcpus
        if pages:
            verdict.pages_by_node[node] = verdict.pages_by_node.get(node, 0) + pages
        what = [f"{pages} {size} pages"] if pages else []
        what += [f"{vcpus} vCPUs"] if vcpus else []
        placed[index] = f"numa[{index}] on node {node}" + (f" ({', '.join(what)})" if what else "")
    if problems:
        return
    verdict.node = verdict.cells[0]
    # The room the VM leaves on the tightest node it uses: what ranks this host against others.
    verdict.free_pages = min(pages_left[n] for n in set(verdict.cells.values()))
    verdict.reasons.append(
        "; ".join(placed[index] for index in sorted(placed))
        + " (the spec binds no cell to a host node: each goes where it fits)"
    )


def _cell_problem(
    index: int,
    pages: int,
    vcpus: int,
    size: str,
    nodes: list[int],
    pages_left: dict[int, int],
    cpus_left: dict[int, int],
) -> str:
    wants = [f"{pages} {size} pages"] if pages else []
    wants += [f"{vcpus} free CPUs"] if vcpus else []
    has = ", ".join(
        f"node {n} has "
        + " and ".join(
            ([f"{pages_left[n]} pages"] if pages else []) + ([f"{cpus_left[n]} CPUs"] if vcpus else [])
        )
        for n in nodes
    )
    if pages and all(pages_left[n] < pages for n in nodes):
        kind = "not enough hugepages"
    elif vcpus and all(cpus_left[n] < vcpus for n in nodes):
        kind = "not enough free CPUs"
    else:
        kind = "no node has both the hugepages and the free CPUs"
    return f"{kind} for numa[{index}]: {' and '.join(wants)} needed on one node; {has}"


def _pins(
    verdict: Verdict,
    cell_cpus: dict[int, frozenset[int]],
    free_cpus: frozenset[int],
    pinned: list[int],
    problems: list[str],
) -> None:
    """Keep the spec's pins where they are free here; else re-plan them on free CPUs of one node."""
    taken = [cpu for cpu in pinned if cpu not in free_cpus]
    if not taken:
        verdict.cpus = {cpu: cpu for cpu in pinned}
        verdict.reasons.append(f"pinned CPUs {format_cpuset(frozenset(pinned))} are free")
        return
    if verdict.cells:  # the nodes the spec's NUMA cells went to
        used = sorted(set(verdict.cells.values()))
        pool = sorted(cpu for cpu in free_cpus if any(cpu in cell_cpus.get(n, free_cpus) for n in used))
        where = f"node{'s' if len(used) > 1 else ''} {','.join(map(str, used))}"
    else:
        node = verdict.node if verdict.node is not None else _node_of(cell_cpus, pinned[0])
        pool = sorted(free_cpus & cell_cpus.get(node, free_cpus)) if node is not None else sorted(free_cpus)
        where = f"node {node}" if node is not None else "this host"
    if len(pool) < len(pinned):
        problems.append(
            f"CPUs {format_cpuset(frozenset(taken))} are taken (VM pins or OVS PMD/lcore cores) and "
            f"{where} has {len(pool)} free CPUs ({format_cpuset(frozenset(pool)) or 'none'}) "
            f"for the {len(pinned)} pinned"
        )
        return
    verdict.cpus = dict(zip(pinned, pool, strict=False))
    verdict.reasons.append(
        f"CPUs {format_cpuset(frozenset(taken))} are taken here: pins re-planned "
        + ", ".join(f"{a}->{b}" for a, b in verdict.cpus.items())
        + f" on free CPUs of {where}"
    )


def _pinned(spec: VMSpec) -> list[int]:
    return sorted(set().union(*(cpus for _path, cpus in pinned_cpusets(spec))))


def _node_of(cell_cpus: dict[int, frozenset[int]], cpu: int) -> int | None:
    return next((node for node, cpus in cell_cpus.items() if cpu in cpus), None)


def _switch_problems(spec: VMSpec, row: HostRow) -> list[str]:
    switch = row.switch
    if switch is None:
        return [f"OVS out of reach ({row.switch_error})"]
    if not switch.dpdk_initialized:
        return ["OVS has DPDK not initialised"]
    problems = []
    for bridge in sorted({nic.bridge for nic in spec.ovs_nics}):
        kind = switch.bridges.get(bridge)
        if kind is None:
            problems.append(f"OVS has no bridge {bridge}")
        elif kind != "netdev":
            problems.append(f"OVS bridge {bridge} has datapath {kind}, not netdev")
    return problems
