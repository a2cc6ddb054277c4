"""What one host's Open vSwitch offers VMs: versions, DPDK, its reserved cores, its bridges."""

from __future__ import annotations

from dataclasses import dataclass

from virtnet.ovs.connection import Ovsdb
from virtnet.ovs.switch import dpdk_state


@dataclass
class SwitchFacts:
    ovs_version: str
    dpdk_version: str
    dpdk_initialized: bool
    pmd_cpus: frozenset[int]
    lcore_cpus: frozenset[int]
    bridges: dict[str, str]  # name -> datapath_type

    def reserved_cpus(self) -> frozenset[int]:
        """Cores VMs must not be pinned to: the PMD threads' and DPDK's lcore."""
        return self.pmd_cpus | self.lcore_cpus


def switch_facts(remote: str, timeout_s: float) -> SwitchFacts:
    with Ovsdb(remote, timeout_s=timeout_s) as db:
        state = dpdk_state(db)
        bridges = {b.name: b.datapath_type or "system" for b in db.rows("Bridge")}
    return SwitchFacts(
        ovs_version=state.ovs_version,
        dpdk_version=state.version,
        dpdk_initialized=state.initialized,
        pmd_cpus=state.cpus("pmd-cpu-mask"),
        lcore_cpus=state.cpus("dpdk-lcore-mask"),
        bridges=bridges,
    )
