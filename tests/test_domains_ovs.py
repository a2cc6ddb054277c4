"""VMs and their OVS ports together: libvirt's test driver plus a real ovsdb-server."""

from __future__ import annotations

import json
from typing import Any

import libvirt
import pytest
from support import TEST_URI, OvsdbServer, vhost_vm_spec
from typer.testing import CliRunner

from virtnet.cli import app
from virtnet.control import domains
from virtnet.errors import DomainExists, OvsdbError, SwitchNotReady
from virtnet.virt.host import Host


@pytest.fixture
def host(testdriver: libvirt.virConnect) -> Host:
    with Host.open(TEST_URI) as opened:
        yield opened


def ports(server: OvsdbServer) -> list[str]:
    return server.vsctl("list-ports", "br0").split()


def test_define_creates_the_port_with_the_domains_uuid(
    host: Host, switch: OvsdbServer, testdriver: libvirt.virConnect
) -> None:
    result = domains.define(host, vhost_vm_spec(), ovsdb=switch.remote)
    uuid = testdriver.lookupByName("vm1").UUIDString()
    assert ports(switch) == ["vm1-p0"]
    assert switch.vsctl("get", "Interface", "vm1-p0", "external_ids:vm-uuid") == f'"{uuid}"'
    assert result.ports_changed
    again = domains.define(host, vhost_vm_spec(), ovsdb=switch.remote)
    assert again.redefined and not again.ports_changed  # same spec: nothing changes


def test_undefine_removes_the_ports(host: Host, switch: OvsdbServer) -> None:
    domains.define(host, vhost_vm_spec(), ovsdb=switch.remote)
    assert domains.undefine(host, "vm1", ovsdb=switch.remote).ports == ("vm1-p0",)
    assert ports(switch) == []
    assert host.find("vm1") is None


def test_a_refused_define_takes_its_ports_back(
    host: Host, switch: OvsdbServer, testdriver: libvirt.virConnect
) -> None:
    clash = testdriver.lookupByName("test").UUIDString()
    with pytest.raises(DomainExists):
        domains.define(host, vhost_vm_spec(uuid=clash), ovsdb=switch.remote)
    assert ports(switch) == []
    assert host.find("vm1") is None


def test_a_failed_port_transaction_defines_nothing(host: Host, switch: OvsdbServer) -> None:
    switch.vsctl("add-br", "br1", "--", "add-port", "br1", "vm1-p0")
    with pytest.raises(OvsdbError, match="already exists on bridge 'br1'"):
        domains.define(host, vhost_vm_spec(), ovsdb=switch.remote)
    assert host.find("vm1") is None


def test_a_switch_that_cannot_carry_the_vm_defines_nothing(host: Host, switch: OvsdbServer) -> None:
    switch.vsctl("set", "Open_vSwitch", ".", "other_config:pmd-cpu-mask=0x2")
    with pytest.raises(SwitchNotReady, match="PMD core"):
        domains.define(
            host, vhost_vm_spec(cpu={"count": 2, "pinning": {"vcpus": {"0": "1"}}}), ovsdb=switch.remote
        )
    switch.vsctl("set", "Open_vSwitch", ".", "dpdk_initialized=false")
    with pytest.raises(SwitchNotReady, match="DPDK is not initialised"):
        domains.define(host, vhost_vm_spec(), ovsdb=switch.remote)
    assert host.find("vm1") is None and ports(switch) == []


def test_start_puts_back_a_port_someone_deleted(host: Host, switch: OvsdbServer) -> None:
    domains.define(host, vhost_vm_spec(), ovsdb=switch.remote)
    switch.vsctl("del-port", "br0", "vm1-p0")
    domains.start(host, "vm1", ovsdb=switch.remote)
    assert ports(switch) == ["vm1-p0"]


def test_start_refuses_when_dpdk_went_away(host: Host, switch: OvsdbServer) -> None:
    domains.define(host, vhost_vm_spec(), ovsdb=switch.remote)
    switch.vsctl("set", "Open_vSwitch", ".", "dpdk_initialized=false")
    with pytest.raises(SwitchNotReady):
        domains.start(host, "vm1", ovsdb=switch.remote)
    assert not host.lookup("vm1").is_active


def test_nics_for_another_backend_need_no_switch(host: Host) -> None:
    spec = vhost_vm_spec(nics=[{"type": "vhostuser", "socket": "/run/vhost/vpp.sock", "ovs": False}])
    domains.define(host, spec, ovsdb="unix:/nonexistent/db.sock")
    assert host.find("vm1") is not None


def test_switch_cli_show_and_gc(host: Host, switch: OvsdbServer, testdriver: libvirt.virConnect) -> None:
    runner = CliRunner()
    base = ["-c", TEST_URI, "--ovsdb", switch.remote]
    domains.define(host, vhost_vm_spec(), ovsdb=switch.remote)
    domains.define(
        host,
        vhost_vm_spec(name="vm2", nics=[{"type": "vhostuser", "socket": "/run/vhost/vm2.sock"}]),
        ovsdb=switch.remote,
    )
    shown = json.loads(runner.invoke(app, [*base, "switch", "show", "--json"]).stdout)
    by_name = {p["name"]: p for p in shown["bridges"][0]["ports"]}
    assert by_name["vm1-p0"]["vm"] == "vm1" and by_name["vm2-vhu0"]["vm"] == "vm2"
    text = runner.invoke(app, [*base, "switch", "show"]).stdout
    assert "vm1-p0" in text and "vm vm1" in text and "DPDK" in text
    assert " vm vm1 vhost - n_rxq 2 " in text  # no ovs-vswitchd here to report on the socket

    testdriver.lookupByName("vm2").undefine()  # gone behind virtnet's back: its port is orphaned
    dry = runner.invoke(app, [*base, "switch", "gc", "--dry-run"])
    assert dry.exit_code == 0 and "would remove vm2-vhu0" in dry.stdout
    assert sorted(ports(switch)) == ["vm1-p0", "vm2-vhu0"]
    done = runner.invoke(app, [*base, "switch", "gc"])
    assert "removed vm2-vhu0" in done.stdout
    assert ports(switch) == ["vm1-p0"]
    assert "no orphaned ports" in runner.invoke(app, [*base, "switch", "gc"]).stdout


def test_unreachable_ovsdb_is_one_line_exit_1(tmp_path: Any, testdriver: libvirt.virConnect) -> None:
    spec = tmp_path / "vm.toml"
    spec.write_text(
        'name = "vm1"\n[cpu]\ncount = 1\n[memory]\nsize = "1GiB"\naccess = "shared"\n'
        '[[nics]]\ntype = "vhostuser"\nsocket = "/run/vhost/a.sock"\n'
    )
    result = CliRunner().invoke(
        app, ["-c", TEST_URI, "--ovsdb", "unix:/nonexistent/db.sock", "define", str(spec)]
    )
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "--ovsdb" in result.stderr
    assert "vm1" not in [d.name() for d in testdriver.listAllDomains(0)]


def test_source_cleanup_names_the_ports_it_removed_and_says_when_there_were_none(
    host: Host, switch: OvsdbServer, testdriver: libvirt.virConnect
) -> None:
    from virtnet.control.migration import _remove_source_ports

    spec = vhost_vm_spec()
    domains.define(host, spec, ovsdb=switch.remote)
    uuid = testdriver.lookupByName("vm1").UUIDString()
    other = "unix:/nonexistent-destination.sock"
    assert _remove_source_ports(spec, uuid, switch.remote, other) == (
        f"removed port(s) vm1-p0 from the source's OVS at {switch.remote}"
    )
    assert ports(switch) == []
    # A port made by hand carries no vm-uuid: nothing of the guest's is left to remove.
    switch.vsctl("add-port", "br0", "vm1-p0", "--", "set", "Interface", "vm1-p0", "type=dpdkvhostuserclient")
    assert _remove_source_ports(spec, uuid, switch.remote, other) == (
        f"no port of the guest's on the source's OVS at {switch.remote}"
    )
    assert ports(switch) == ["vm1-p0"]
