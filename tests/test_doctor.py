"""virtnet doctor on libvirt's test driver with a real ovsdb-server: findings, and --fix repairs."""

from __future__ import annotations

import json

import libvirt
import pytest
from support import TEST_URI, OvsdbServer, vhost_vm_spec
from typer.testing import CliRunner

from virtnet import doctor
from virtnet.cli import app
from virtnet.control import domains
from virtnet.virt.host import Host


@pytest.fixture
def switch(ovsdb_server: OvsdbServer) -> OvsdbServer:
    ovsdb_server.vsctl("add-br", "br0", "--", "set", "Bridge", "br0", "datapath_type=netdev")
    ovsdb_server.vsctl(
        "set", "Open_vSwitch", ".", "dpdk_initialized=true", "iface_types=[dpdkvhostuserclient,internal]"
    )
    return ovsdb_server


@pytest.fixture
def host(testdriver: libvirt.virConnect) -> Host:
    with Host.open(TEST_URI) as opened:
        yield opened


def test_a_consistent_host_has_no_findings(host: Host, switch: OvsdbServer) -> None:
    domains.define(host, vhost_vm_spec(), ovsdb=switch.remote)
    assert doctor.examine(host, switch.remote) == []


def test_a_port_without_its_vm_is_found_and_deleted_only_with_fix(host: Host, switch: OvsdbServer) -> None:
    switch.vsctl(
        "add-port", "br0", "ghost-p0", "--", "set", "Interface", "ghost-p0", "type=dpdkvhostuserclient",
        "external_ids:vm-uuid=0b0e7a4e-0000-4000-8000-000000000001", "external_ids:vm-name=ghost",
    )  # fmt: skip
    result = CliRunner().invoke(app, ["-c", TEST_URI, "--ovsdb", switch.remote, "doctor"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0].startswith("orphan-port ghost-p0: OVS port on br0 for VM ghost")
    assert "dry run: nothing was changed" in result.output
    assert switch.vsctl("list-ports", "br0").split() == ["ghost-p0"]  # a dry run by default

    fixed = CliRunner().invoke(app, ["-c", TEST_URI, "--ovsdb", switch.remote, "doctor", "--fix"])
    assert fixed.exit_code == 0, fixed.output
    assert "fixed: deleted OVS port ghost-p0" in fixed.output.splitlines()
    assert switch.vsctl("list-ports", "br0").split() == []


def test_a_vm_whose_ports_were_wiped_gets_them_back(host: Host, switch: OvsdbServer) -> None:
    domains.define(host, vhost_vm_spec(), ovsdb=switch.remote)
    uuid = host.lookup("vm1").uuid
    switch.vsctl("del-port", "br0", "vm1-p0")  # as after the OVS database was wiped
    result = CliRunner().invoke(app, ["-c", TEST_URI, "--ovsdb", switch.remote, "doctor", "--json"])
    data = json.loads(result.output)
    assert [(f["kind"], f["subject"], f["fixable"]) for f in data["findings"]] == [
        ("missing-ports", "vm1", True)
    ]
    assert data["actions"] == []
    fixed = CliRunner().invoke(app, ["-c", TEST_URI, "--ovsdb", switch.remote, "doctor", "--fix", "--json"])
    assert json.loads(fixed.output)["actions"] == [
        {"subject": "vm1", "line": "created OVS port(s) vm1-p0 for vm1", "ok": True}
    ]
    assert switch.vsctl("get", "Interface", "vm1-p0", "external_ids:vm-uuid") == f'"{uuid}"'
    assert doctor.examine(host, switch.remote) == []


def test_an_unreachable_switch_is_a_finding_only_when_a_vm_needs_it(
    host: Host, switch: OvsdbServer, tmp_path: object
) -> None:
    gone = "unix:/nonexistent/db.sock"
    assert doctor.examine(host, gone) == []
    domains.define(host, vhost_vm_spec(), ovsdb=switch.remote)
    [finding] = doctor.examine(host, gone)
    assert (finding.kind, finding.fixable) == ("switch-unreachable", False)


def test_a_seed_without_its_vm_is_deleted_and_an_unused_overlay_only_listed(
    host: Host, testdriver: libvirt.virConnect
) -> None:
    pool = testdriver.storagePoolLookupByName("default-pool")
    volumes = (("gone-cidata.iso", ""), ("base.qcow2", ""), ("over.qcow2", "/default-pool/base.qcow2"))
    for name, extra in volumes:
        backing = f"<backingStore><path>{extra}</path><format type='qcow2'/></backingStore>" if extra else ""
        pool.createXML(
            f"<volume><name>{name}</name><capacity>1048576</capacity>"
            f"<target><format type='raw'/></target>{backing}</volume>",
            0,
        )
    findings = doctor.examine(host, None)
    assert [(f.kind, f.subject, f.fixable) for f in findings] == [
        ("orphan-seed", "/default-pool/gone-cidata.iso", True),
        ("orphan-overlay", "/default-pool/over.qcow2", False),
    ]
    actions = doctor.repair(findings)
    assert [a.line for a in actions] == ["deleted /default-pool/gone-cidata.iso"]
    assert sorted(pool.listVolumes()) == ["base.qcow2", "over.qcow2"]
