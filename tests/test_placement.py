"""Placement over hosts described by hand: hugepages per node, free CPUs, OVS, and re-planned pins."""

from __future__ import annotations

import pytest
from support import vhost_vm_spec

from virtnet.fleet.evacuate import Evacuation, Move, _reserve, summary
from virtnet.fleet.hostsfile import HostEntry
from virtnet.fleet.placement import place
from virtnet.fleet.view import HostRow
from virtnet.ovs.facts import SwitchFacts
from virtnet.spec import VMSpec
from virtnet.virt.facts import HostFacts, PinnedDomain

TWO_NODES = {0: frozenset({0, 1, 2, 3}), 1: frozenset({4, 5, 6, 7})}


def row(
    name: str,
    *,
    pages: dict[int, int],
    pmd: frozenset[int] = frozenset(),
    pinned: frozenset[int] = frozenset(),
    dpdk: bool = True,
) -> HostRow:
    facts = HostFacts(
        uri=f"qemu+tls://{name}/system",
        libvirt_version="9.0.0",
        qemu_version="7.2.0",
        online_cpus=frozenset(range(8)),
        cell_cpus=TWO_NODES,
        free_pages={node: {2048: n} for node, n in pages.items()},
        pinned=[PinnedDomain("other", pinned)] if pinned else [],
    )
    switch = SwitchFacts("3.1", "DPDK 22.11", dpdk, pmd, frozenset(), {"br0": "netdev"})
    return HostRow(HostEntry(name=name, uri=facts.uri), facts=facts, switch=switch, done=True)


def pinned_spec(cpus: dict[str, str]) -> VMSpec:
    return vhost_vm_spec(cpu={"count": len(cpus), "pinning": {"vcpus": cpus}})


def test_hugepages_must_fit_on_one_node() -> None:
    spec = vhost_vm_spec()  # 1 GiB of 2 MiB pages: 512
    split = row("split", pages={0: 300, 1: 300})  # 600 free, but no node has 512
    whole = row("whole", pages={0: 100, 1: 600})
    placement = place(spec, [split, whole])
    assert placement.chosen is not None and placement.chosen.host == "whole"
    assert placement.chosen.node == 1
    (rejected,) = placement.rejected
    assert rejected.reasons == ["not enough hugepages: 512 2MiB pages needed on one node, node 0 has 300"]


def test_pins_on_pmd_cores_are_replanned_on_the_same_node() -> None:
    spec = pinned_spec({"0": "2", "1": "3"})
    host = row("h", pages={0: 600, 1: 0}, pmd=frozenset({2}), pinned=frozenset({0}))
    placement = place(spec, [host])
    chosen = placement.chosen
    assert chosen is not None
    assert chosen.cpus == {2: 1, 3: 3}  # 2 is a PMD core, 0 another VM's: 1 and 3 are node 0's free ones
    assert chosen.replanned
    assert "pins re-planned 2->1, 3->3 on free CPUs of node 0" in chosen.line()


def test_no_free_cpus_on_the_node_and_no_dpdk_are_refused() -> None:
    spec = pinned_spec({"0": "1"})
    busy = row("busy", pages={0: 600, 1: 0}, pmd=frozenset({0, 1, 2, 3}))
    nodpdk = row("nodpdk", pages={0: 600, 1: 0}, dpdk=False)
    placement = place(spec, [busy, nodpdk])
    assert placement.chosen is None
    assert [v.line() for v in placement.verdicts] == [
        "busy: CPUs 1 are taken (VM pins or OVS PMD/lcore cores) and node 0 has 0 free CPUs (none) "
        "for the 1 pinned",
        "nodpdk: OVS has DPDK not initialised",
    ]


def test_a_down_host_is_rejected_with_its_reason() -> None:
    down = HostRow(HostEntry(name="d", uri="qemu+tls://d/system"), error="cannot connect", done=True)
    placement = place(vhost_vm_spec(), [down, row("up", pages={0: 600})])
    assert placement.chosen is not None and placement.chosen.host == "up"
    assert placement.rejected[0].line() == "d: down (cannot connect)"


def test_evacuation_plans_count_earlier_vms_against_their_host() -> None:
    spec = vhost_vm_spec()
    rows = [row("a", pages={0: 600, 1: 0}), row("b", pages={0: 550, 1: 0})]
    first = place(spec, rows).chosen
    assert first is not None and first.host == "a"
    _reserve(rows, first, spec)  # a keeps 88 free pages: the next VM goes to b
    second = place(spec, rows).chosen
    assert second is not None and second.host == "b"
    text = summary(Evacuation([Move("vm1", "src", "a", "precopy", 1200, 30, "moved")], interrupted=True))
    assert text.splitlines()[1].split() == ["vm1", "src", "a", "precopy", "1200", "ms", "30", "ms", "moved"]
    assert text.splitlines()[-1].startswith("1 of 1 VMs moved; interrupted")


def test_ctrl_c_lets_the_moves_in_flight_finish_and_starts_no_more(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C lands in the main thread (here: raised from the first completion's callback)."""
    import threading

    from virtnet.fleet import evacuate as evacuation

    release = threading.Event()

    def fake_move(_source: HostEntry, move: Move, _dest: HostEntry, _policy: str) -> None:
        if move.vm == "vm2":
            release.wait(10)  # still in flight when Ctrl-C comes
        move.result = "moved"

    monkeypatch.setattr(evacuation, "_move", fake_move)
    entry = HostEntry(name="dst", uri="qemu+tls://dst/system")
    moves = [Move(f"vm{i}", "src", "dst") for i in (1, 2, 3, 4)]
    interrupted = False

    def on_done(move: Move) -> None:
        nonlocal interrupted
        if not interrupted:
            interrupted = True
            release.set()
            raise KeyboardInterrupt

    done = evacuation.evacuate(
        HostEntry(name="src", uri="qemu+tls://src/system"), moves, {"dst": entry}, parallel=2, on_done=on_done
    )
    assert done.interrupted
    # vm1 finished (its completion was the interrupted moment), vm2 was in flight and finished too
    not_started = "not started (interrupted)"
    assert [m.result for m in done.moves] == ["moved", "moved", not_started, not_started]


def two_cell_spec(**cpu: object) -> VMSpec:
    """4 vCPUs in two guest cells: 768 MiB (384 pages) with vCPUs 0-2, 256 MiB (128 pages) with 3."""
    cells = [{"cpus": "0-2", "memory": "768MiB"}, {"cpus": "3", "memory": "256MiB"}]
    return vhost_vm_spec(cpu={"count": 4, **cpu}, numa=cells)


def test_each_numa_cell_goes_to_a_node_with_its_pages_and_cpus() -> None:
    # No node has all 512 pages, but node 1 takes the big cell (384) and node 0 the small one (128).
    split = row("split", pages={0: 200, 1: 400})
    placement = place(two_cell_spec(), [split])
    chosen = placement.chosen
    assert chosen is not None
    assert chosen.cells == {0: 1, 1: 0}
    assert chosen.pages_by_node == {1: 384, 0: 128}
    assert chosen.free_pages == 16  # node 1 keeps 16 pages: the tightest node the VM uses
    assert chosen.line() == (
        "split: chosen; numa[0] on node 1 (384 2MiB pages, 3 vCPUs); numa[1] on node 0 (128 2MiB pages, "
        "1 vCPUs) (the spec binds no cell to a host node: each goes where it fits)"
    )


def test_cells_prefer_distinct_nodes_and_share_one_when_only_one_has_room() -> None:
    roomy = place(two_cell_spec(), [row("roomy", pages={0: 600, 1: 600})]).chosen
    assert roomy is not None and sorted(roomy.cells.values()) == [0, 1]  # one node per cell
    one = place(two_cell_spec(), [row("one", pages={0: 0, 1: 600})]).chosen
    assert one is not None and one.cells == {0: 1, 1: 1}  # both on node 1, which holds all 512
    assert one.pages_by_node == {1: 512}


def test_a_cell_that_fits_no_node_is_refused_naming_the_cell() -> None:
    # The big cell needs 384 pages on one node: 300 + 300 is enough in sum, not on any node.
    short = row("short", pages={0: 300, 1: 300})
    # node 0's CPUs are all PMD cores: the 3-vCPU cell would need 3 free CPUs on node 1, which has 1
    busy = row("busy", pages={0: 600, 1: 600}, pmd=frozenset({0, 1, 2, 3, 5, 6, 7}))
    placement = place(two_cell_spec(), [short, busy])
    assert placement.chosen is None
    assert [v.line() for v in placement.verdicts] == [
        "short: not enough hugepages for numa[0]: 384 2MiB pages and 3 free CPUs needed on one node; "
        "node 0 has 300 pages and 4 CPUs, node 1 has 300 pages and 4 CPUs",
        "busy: not enough free CPUs for numa[0]: 384 2MiB pages and 3 free CPUs needed on one node; "
        "node 0 has 600 pages and 0 CPUs, node 1 has 600 pages and 1 CPUs",
    ]


def test_a_planned_move_reserves_each_cells_pages_on_its_node() -> None:
    spec = two_cell_spec()
    rows = [row("a", pages={0: 200, 1: 400})]
    first = place(spec, rows).chosen
    assert first is not None
    _reserve(rows, first, spec)
    facts = rows[0].facts
    assert facts is not None
    assert facts.free_pages == {0: {2048: 72}, 1: {2048: 16}}
    assert place(spec, rows).chosen is None  # the second copy of it no longer fits


def test_pinned_cells_replan_on_the_cells_nodes() -> None:
    # vCPUs pinned to CPUs 0-3 (node 0); node 0 is short of pages, so both cells go to node 1 and the
    # pins, taken by PMD cores, move to node 1's free CPUs.
    spec = two_cell_spec(pinning={"vcpus": {"0": "0", "1": "1", "2": "2", "3": "3"}})
    host = row("h", pages={0: 10, 1: 600}, pmd=frozenset({0, 1, 2, 3}))
    chosen = place(spec, [host]).chosen
    assert chosen is not None
    assert chosen.cells == {0: 1, 1: 1}
    assert chosen.cpus == {0: 4, 1: 5, 2: 6, 3: 7}
    assert "pins re-planned 0->4, 1->5, 2->6, 3->7 on free CPUs of node 1" in chosen.line()
