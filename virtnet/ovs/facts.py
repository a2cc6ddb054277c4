"""What one host's Open vSwitch offers VMs: versions, DPDK, its reserved cores, its bridges."""

from __future__ import annotations

from dataclasses import dataclass

from virtnet.ovs.connection import Ovsdb
from virtnet.units import mask_to_cpuset


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
    # The Open_vSwitch row read here, not through switch.dpdk_state: that module loads the spec
    # models, which the fleet view does not need.
    with Ovsdb(remote, timeout_s=timeout_s) as db:
        root = db.root()
        config = dict(root.other_config)
        bridges = {b.name: b.datapath_type or "system" for b in db.rows("Bridge")}
        return SwitchFacts(
            ovs_version=root.ovs_version[0] if root.ovs_version else "",
            dpdk_version=root.dpdk_version[0] if root.dpdk_version else "",
            dpdk_initialized=bool(root.dpdk_initialized),
            pmd_cpus=_cpus(config.get("pmd-cpu-mask")),
            lcore_cpus=_cpus(config.get("dpdk-lcore-mask")),
            bridges=bridges,
        )


def _cpus(mask: str | None) -> frozenset[int]:
    """A mask's CPUs; none for an unset or unreadable mask (as switch.DpdkState.cpus)."""
    try:
        return mask_to_cpuset(mask) if mask else frozenset()
    except ValueError:
        return frozenset()
