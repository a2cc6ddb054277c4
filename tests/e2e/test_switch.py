"""`virtnet switch` on the lab's real DPDK ovs-vswitchd, and the checks that refuse a VM."""

from __future__ import annotations

import json

from lab_support import LabClient


def test_setup_is_idempotent_and_makes_netdev_bridges(lab0: LabClient) -> None:
    first = lab0.virtnet("switch", "setup", "--bridge", "br-e2e")
    assert "bridge br-e2e datapath_type=netdev" in first.stdout and "initialised" in first.stdout
    assert lab0.vsctl("get", "Bridge", "br-e2e", "datapath_type") == "netdev"
    assert lab0.vsctl("get", "Open_vSwitch", ".", "dpdk_initialized") == "true"
    assert "dpdkvhostuserclient" in lab0.vsctl("get", "Open_vSwitch", ".", "iface_types")
    again = lab0.virtnet("switch", "setup", "--bridge", "br-e2e")
    assert "nothing changed" in again.stdout
    lab0.vsctl("del-br", "br-e2e")


def test_show_agrees_with_ovs_vsctl(lab0: LabClient) -> None:
    lab0.virtnet("define", str(lab0.spec("shown", queues=1)))
    info = json.loads(lab0.virtnet("switch", "show", "--json").stdout)
    assert info["dpdk_initialized"] is True
    assert info["dpdk_version"] in lab0.vsctl("get", "Open_vSwitch", ".", "dpdk_version")
    bridge = next(b for b in info["bridges"] if b["name"] == "br0")
    assert bridge["datapath_type"] == lab0.vsctl("get", "Bridge", "br0", "datapath_type")
    port = next(p for p in bridge["ports"] if p["name"] == "shown-p0")
    assert port["vm"] == "shown" and port["type"] == "dpdkvhostuserclient"
    assert port["ofport"] == int(lab0.vsctl("get", "Interface", "shown-p0", "ofport"))


def test_pinning_onto_a_pmd_core_is_refused_and_nothing_is_left(lab0: LabClient) -> None:
    lab0.virtnet("switch", "setup", "--pmd-cpus", "1")
    try:
        assert lab0.vsctl("get", "Open_vSwitch", ".", "other_config:pmd-cpu-mask") == '"0x2"'
        refused = lab0.virtnet("define", str(lab0.spec("pinned", pin={"0": "1"})), check=False)
        assert refused.returncode == 2
        assert "cpu.pinning.vcpus.0: host CPU 1 is an OVS PMD core" in refused.stderr
        assert refused.stderr.count("\n") == 1
        assert "pinned" not in lab0.virsh("list", "--all", "--name").stdout.split()
        assert lab0.vm_ports() == []
    finally:
        lab0.vsctl("remove", "Open_vSwitch", ".", "other_config", "pmd-cpu-mask")


def test_a_bridge_without_the_netdev_datapath_is_refused(lab0: LabClient) -> None:
    lab0.vsctl("add-br", "br-sys", "--", "set", "Bridge", "br-sys", "datapath_type=system")
    try:
        refused = lab0.virtnet("define", str(lab0.spec("sysbr", bridge="br-sys")), check=False)
        assert refused.returncode == 2
        assert "bridge 'br-sys' has datapath_type 'system'" in refused.stderr
        assert "sysbr" not in lab0.virsh("list", "--all", "--name").stdout.split()
        assert lab0.vsctl("list-ports", "br-sys") == ""
    finally:
        lab0.vsctl("del-br", "br-sys")


def test_setup_postcopy_sets_the_key_and_says_ovs_vswitchd_must_restart(lab0: LabClient) -> None:
    key = "vhost-postcopy-support"
    lab0.vsctl("remove", "Open_vSwitch", ".", "other_config", key)  # the lab started with it
    done = lab0.virtnet("switch", "setup", "--postcopy")
    assert f"set {key}=true" in done.stdout
    assert f"virtnet: warning: {key} applies when ovs-vswitchd restarts" in done.stderr
    assert lab0.vsctl("get", "Open_vSwitch", ".", f"other_config:{key}") == '"true"'
