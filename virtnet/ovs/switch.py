"""The DPDK switch: set-up as the walkthrough's ovs-simple-start.sh does it, state, and the checks
that refuse a VM the switch cannot carry."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from virtnet.errors import SwitchNotReady
from virtnet.ovs.commands import VHOST_USER_CLIENT, EnsureBridge, SetOtherConfig, find
from virtnet.ovs.connection import Ovsdb
from virtnet.ovs.transaction import Transaction
from virtnet.spec.derived import pinned_cpusets
from virtnet.spec.models import VhostUserNic, VMSpec
from virtnet.units import cpuset_to_mask, format_cpuset, mask_to_cpuset

DPDK_INIT_TIMEOUT_S = 30.0
# DPDK options that ovs-vswitchd reads once, when it initialises DPDK.
POSTCOPY_KEY = "vhost-postcopy-support"
READ_AT_INIT = ("dpdk-socket-mem", "dpdk-socket-limit", "dpdk-extra", "dpdk-lcore-mask", POSTCOPY_KEY)


@dataclass(frozen=True)
class SwitchSettings:
    bridge: str = "br0"
    pmd_cpus: frozenset[int] | None = None
    lcore_cpus: frozenset[int] | None = None
    socket_mem_mib: int | None = None
    extra: str | None = None
    # vhost-user post-copy: OVS handles the page faults of guest memory that has not arrived yet.
    # OVS documents that it cannot be combined with ovs-vswitchd's --mlockall.
    postcopy: bool = False

    def other_config(self) -> dict[str, str]:
        values = {"dpdk-init": "true"}
        if self.pmd_cpus is not None:
            values["pmd-cpu-mask"] = cpuset_to_mask(self.pmd_cpus)
        if self.lcore_cpus is not None:
            values["dpdk-lcore-mask"] = cpuset_to_mask(self.lcore_cpus)
        if self.socket_mem_mib is not None:
            # The limit keeps DPDK from growing into the guests' hugepages on demand.
            values["dpdk-socket-mem"] = str(self.socket_mem_mib)
            values["dpdk-socket-limit"] = str(self.socket_mem_mib)
        if self.extra is not None:
            values["dpdk-extra"] = self.extra
        if self.postcopy:
            values[POSTCOPY_KEY] = "true"
        return values


@dataclass(frozen=True)
class DpdkState:
    initialized: bool
    version: str
    ovs_version: str
    iface_types: frozenset[str]
    other_config: dict[str, str]

    def cpus(self, key: str) -> frozenset[int]:
        """The CPUs of a mask in other_config (pmd-cpu-mask, dpdk-lcore-mask); empty when unset."""
        mask = self.other_config.get(key)
        try:
            return mask_to_cpuset(mask) if mask else frozenset()
        except ValueError:
            return frozenset()


@dataclass
class SetupReport:
    changed: list[str] = field(default_factory=list)
    needs_restart: list[str] = field(default_factory=list)
    state: DpdkState | None = None


def dpdk_state(db: Ovsdb) -> DpdkState:
    root = db.root()
    return DpdkState(
        initialized=bool(root.dpdk_initialized),
        version=(root.dpdk_version[0] if root.dpdk_version else ""),
        ovs_version=(root.ovs_version[0] if root.ovs_version else ""),
        iface_types=frozenset(root.iface_types),
        other_config=dict(root.other_config),
    )


def setup(db: Ovsdb, settings: SwitchSettings) -> SetupReport:
    """Configure DPDK and the netdev bridge in one transaction, then wait for DPDK to be up."""
    before = dpdk_state(db)
    wanted = settings.other_config()
    report = SetupReport(changed=[f"{k}={v}" for k, v in wanted.items() if before.other_config.get(k) != v])
    if before.initialized:
        report.needs_restart = [
            key for key in READ_AT_INIT if key in wanted and before.other_config.get(key) != wanted[key]
        ]
    bridge = find(db, "Bridge", settings.bridge)
    if bridge is None or bridge.datapath_type != "netdev":
        report.changed.append(f"bridge {settings.bridge} datapath_type=netdev")
    txn = Transaction(db, wait_vswitchd=True)
    txn.add(SetOtherConfig(wanted))
    txn.add(EnsureBridge(settings.bridge, "netdev"))
    txn.commit()
    db.run_until(
        lambda: bool(db.root().dpdk_initialized), "report dpdk_initialized=true", DPDK_INIT_TIMEOUT_S
    )
    report.state = dpdk_state(db)
    if VHOST_USER_CLIENT not in report.state.iface_types:
        raise SwitchNotReady(
            f"ovs-vswitchd at {db.remote} offers no {VHOST_USER_CLIENT} ports; "
            "install openvswitch-switch-dpdk and run its ovs-vswitchd-dpdk"
        )
    return report


def check_can_carry(db: Ovsdb, spec: VMSpec) -> None:
    """Refuse, with the fix, a VM whose vhost-user NICs or pinning this switch cannot serve."""
    if not spec.ovs_nics:
        return
    state = dpdk_state(db)
    fix = "run `virtnet switch setup`"
    if not state.initialized:
        raise SwitchNotReady(f"DPDK is not initialised in ovs-vswitchd at {db.remote}; {fix}")
    if VHOST_USER_CLIENT not in state.iface_types:
        raise SwitchNotReady(
            f"ovs-vswitchd at {db.remote} does not support {VHOST_USER_CLIENT} ports; "
            "install openvswitch-switch-dpdk and run its ovs-vswitchd-dpdk"
        )
    for i, nic in enumerate(spec.nics):
        if not isinstance(nic, VhostUserNic) or not nic.ovs:
            continue
        bridge = find(db, "Bridge", nic.bridge)
        if bridge is None:
            raise SwitchNotReady(
                f"nics[{i}].bridge: bridge {nic.bridge!r} does not exist at {db.remote}; "
                f"run `virtnet switch setup --bridge {nic.bridge}`"
            )
        if bridge.datapath_type != "netdev":
            raise SwitchNotReady(
                f"nics[{i}].bridge: bridge {nic.bridge!r} has datapath_type "
                f"{bridge.datapath_type or 'system'!r}, but vhost-user needs 'netdev'; "
                f"run `virtnet switch setup --bridge {nic.bridge}`"
            )
    check_pinning(state, spec)


def check_pinning(state: DpdkState, spec: VMSpec) -> None:
    """vCPU and emulator pins must stay off OVS's PMD and lcore cores (the walkthrough's taskset rule)."""
    reserved = {
        "PMD": ("pmd-cpu-mask", state.cpus("pmd-cpu-mask")),
        "DPDK lcore": ("dpdk-lcore-mask", state.cpus("dpdk-lcore-mask")),
    }
    for path, cpus in pinned_cpusets(spec):
        for role, (key, taken) in reserved.items():
            clash = cpus & taken
            if clash:
                raise SwitchNotReady(
                    f"{path}: host CPU {format_cpuset(clash)} is an OVS {role} core "
                    f"({key}={state.other_config[key]}); pin to other CPUs, or move OVS with "
                    f"`virtnet switch setup --{'pmd-cpus' if role == 'PMD' else 'lcore'} ...`"
                )


def describe(db: Ovsdb) -> dict[str, Any]:
    """The switch as `virtnet switch show` prints it: DPDK state, masks, bridges and their ports."""
    state = dpdk_state(db)
    config = state.other_config
    bridges = []
    for bridge in sorted(db.rows("Bridge"), key=lambda b: b.name):
        ports = []
        for port in sorted(bridge.ports, key=lambda p: p.name):
            iface = port.interfaces[0] if port.interfaces else None
            if iface is None:
                continue
            socket = iface.options.get("vhost-server-path")
            ports.append(
                {
                    "name": port.name,
                    "type": iface.type or "system",
                    "vm": iface.external_ids.get("vm-name"),
                    "vm_uuid": iface.external_ids.get("vm-uuid"),
                    "socket": socket,
                    "n_rxq": iface.options.get("n_rxq"),
                    "vrings": iface.status.get("num_of_vrings"),
                    # A vhost-user port's own word on its socket: OVS can leave link_state 'down'
                    # after ovs-vswitchd restarts while the reconnected port carries traffic.
                    "vhost": iface.status.get("status") if socket else None,
                    "link_state": iface.link_state[0] if iface.link_state else None,
                    "ofport": iface.ofport[0] if iface.ofport else None,
                    "error": iface.error[0] if iface.error else None,
                }
            )
        bridges.append(
            {"name": bridge.name, "datapath_type": bridge.datapath_type or "system", "ports": ports}
        )
    return {
        "remote": db.remote,
        "ovs_version": state.ovs_version,
        "dpdk_initialized": state.initialized,
        "dpdk_version": state.version,
        "pmd_cpus": _cpus_or_none(state, "pmd-cpu-mask"),
        "lcore_cpus": _cpus_or_none(state, "dpdk-lcore-mask"),
        "socket_mem": config.get("dpdk-socket-mem"),
        "socket_limit": config.get("dpdk-socket-limit"),
        "extra": config.get("dpdk-extra"),
        "vhost_user_client": VHOST_USER_CLIENT in state.iface_types,
        "bridges": bridges,
    }


def _cpus_or_none(state: DpdkState, key: str) -> str | None:
    cpus = state.cpus(key)
    return format_cpuset(cpus) if cpus else None
