"""virtnet's OVSDB layer against a real, throwaway ovsdb-server; checked with ovs-vsctl.

No ovs-vswitchd runs here: where a test needs the state vswitchd reports (dpdk_initialized,
iface_types), it writes those columns with ovs-vsctl, as vswitchd itself would.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support import OvsdbServer, vhost_vm_spec

from virtnet.errors import InputError, OvsdbError, OvsdbTransactionFailed, OvsdbUnreachable, SwitchNotReady
from virtnet.ovs import remote as remote_check
from virtnet.ovs import switch, vmports
from virtnet.ovs.commands import (
    DeletePort,
    EnsureBridge,
    EnsureVhostUserPort,
    SetOtherConfig,
    VhostUserPort,
    find,
)
from virtnet.ovs.connection import Ovsdb
from virtnet.ovs.transaction import Transaction

VM_UUID = "0b0e1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d"


def commit(db: Ovsdb, *commands: object) -> bool:
    txn = Transaction(db)
    for command in commands:
        txn.add(command)  # type: ignore[arg-type]
    return txn.commit()


def port(name: str, bridge: str = "br0", **kw: object) -> VhostUserPort:
    return VhostUserPort(bridge=bridge, name=name, socket=f"/run/vhost/{name}.sock", **kw)  # type: ignore[arg-type]


def vsctl_json(server: OvsdbServer, table: str, record: str, column: str) -> str:
    return server.vsctl("get", table, record, column)


@pytest.fixture
def db(ovsdb_server: OvsdbServer) -> Ovsdb:
    with Ovsdb(ovsdb_server.remote) as connection:
        commit(connection, EnsureBridge("br0"))
        yield connection


def dpdk_ready(server: OvsdbServer) -> None:
    """What ovs-vswitchd-dpdk writes once DPDK is up."""
    server.vsctl(
        "set",
        "Open_vSwitch",
        ".",
        "dpdk_initialized=true",
        "iface_types=[dpdkvhostuserclient,dpdkvhostuser,dpdk,internal,system]",
    )


def observe(db: Ovsdb, seen: Callable[[], bool]) -> None:
    """Run the replica until it shows a change made by ovs-vsctl: sync() alone may return before
    the update is on the socket (seen once on a loaded machine)."""
    db.run_until(seen, "show the change", timeout_s=10)


def bridge(db: Ovsdb) -> Any:
    return next(b for b in db.rows("Bridge") if b.name == "br0")


def test_unreachable_server_names_the_remote_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(OvsdbUnreachable, match=r"cannot reach ovsdb-server at unix:.*nothing\.sock.*--ovsdb"):
        Ovsdb(f"unix:{tmp_path}/nothing.sock", timeout_s=2)


@pytest.mark.parametrize(
    "remote",
    ["unix:/run/openvswitch/db.sock", "tcp:127.0.0.1:6640", "ssl:[::1]:6640", "tcp:ovs-b.example:6640"],
)
def test_remotes_a_client_connects_to_pass_the_check(remote: str) -> None:
    assert remote_check.problem(remote) is None


def test_a_malformed_remote_never_reaches_python_ovs() -> None:
    """python-ovs would fail on it with 'Address family not supported': an input error instead."""
    with pytest.raises(InputError, match=r"^OVSDB remote: 'garbage' is not an OVSDB remote; use unix:PATH"):
        Ovsdb("garbage")


def test_a_database_without_a_needed_column_is_named_not_asserted(tmp_path: Path) -> None:
    """A server whose schema predates columns virtnet replicates (an old Open vSwitch) gets one
    error naming every missing column, not python-ovs's bare AssertionError."""
    schema = json.loads(Path(OvsdbServer.SCHEMA).read_text())
    del schema["tables"]["Interface"]["columns"]["mtu_request"]
    del schema["tables"]["Open_vSwitch"]["columns"]["dpdk_version"]
    old = tmp_path / "old.ovsschema"
    old.write_text(json.dumps(schema))
    server = OvsdbServer(tmp_path)
    server.SCHEMA = str(old)
    server.start()
    try:
        with pytest.raises(OvsdbError) as caught:
            Ovsdb(server.remote, timeout_s=5)
    finally:
        server.stop()
    assert str(caught.value) == (
        f"the Open_vSwitch database at {server.remote} (schema {schema['version']}) has no "
        "Open_vSwitch:dpdk_version, Interface:mtu_request; "
        "upgrade Open vSwitch there to a release that has them"
    )


def test_bridge_is_created_like_add_br_and_setup_is_idempotent(db: Ovsdb, ovsdb_server: OvsdbServer) -> None:
    assert ovsdb_server.vsctl("br-exists", "br0") == ""
    assert vsctl_json(ovsdb_server, "Bridge", "br0", "datapath_type") == "netdev"
    assert ovsdb_server.vsctl("get", "Interface", "br0", "type") == "internal"
    assert commit(db, EnsureBridge("br0")) is False  # nothing to change
    ovsdb_server.vsctl("set", "Bridge", "br0", "datapath_type=system")
    observe(db, lambda: bridge(db).datapath_type == "system")
    assert commit(db, EnsureBridge("br0")) is True
    assert vsctl_json(ovsdb_server, "Bridge", "br0", "datapath_type") == "netdev"


def test_other_config_is_set_and_unchanged_values_are_not_rewritten(
    db: Ovsdb, ovsdb_server: OvsdbServer
) -> None:
    assert commit(db, SetOtherConfig({"dpdk-init": "true", "pmd-cpu-mask": "0x6"})) is True
    assert ovsdb_server.vsctl("get", "Open_vSwitch", ".", "other_config:pmd-cpu-mask") == '"0x6"'
    assert commit(db, SetOtherConfig({"pmd-cpu-mask": "0x6"})) is False


def test_vhost_user_port_is_created_updated_and_left_alone(db: Ovsdb, ovsdb_server: OvsdbServer) -> None:
    want = port("vhu0", n_rxq=2, mtu=9000, external_ids={"vm-name": "vm1"})
    assert commit(db, EnsureVhostUserPort(want)) is True
    assert ovsdb_server.vsctl("list-ports", "br0") == "vhu0"
    assert ovsdb_server.vsctl("get", "Interface", "vhu0", "type") == "dpdkvhostuserclient"
    assert (
        ovsdb_server.vsctl("get", "Interface", "vhu0", "options:vhost-server-path")
        == '"/run/vhost/vhu0.sock"'
    )
    assert ovsdb_server.vsctl("get", "Interface", "vhu0", "options:n_rxq") == '"2"'
    assert ovsdb_server.vsctl("get", "Interface", "vhu0", "mtu_request") == "9000"
    assert ovsdb_server.vsctl("get", "Interface", "vhu0", "external_ids:vm-name") == "vm1"
    assert commit(db, EnsureVhostUserPort(want)) is False  # same spec, same port: nothing changes
    bigger = EnsureVhostUserPort(port("vhu0", n_rxq=4, external_ids={"vm-name": "vm1"}))
    assert commit(db, bigger) is True
    assert bigger.before is not None and bigger.before.options["n_rxq"] == "2"
    assert ovsdb_server.vsctl("get", "Interface", "vhu0", "options:n_rxq") == '"4"'
    assert ovsdb_server.vsctl("get", "Interface", "vhu0", "mtu_request") == "[]"


def test_a_failing_command_aborts_the_whole_transaction(db: Ovsdb, ovsdb_server: OvsdbServer) -> None:
    ovsdb_server.vsctl("add-br", "br1", "--", "add-port", "br1", "taken")
    db.run_until(lambda: find(db, "Port", "taken") is not None, "see the new port")
    with pytest.raises(OvsdbError, match="'taken' already exists on bridge 'br1'"):
        commit(db, EnsureVhostUserPort(port("fresh")), EnsureVhostUserPort(port("taken")))
    assert ovsdb_server.vsctl("list-ports", "br0") == ""
    with pytest.raises(OvsdbError, match="bridge 'nope' does not exist"):
        commit(db, EnsureVhostUserPort(port("p", bridge="nope")))


def test_a_transaction_the_server_rejects_raises_and_changes_nothing(
    db: Ovsdb, ovsdb_server: OvsdbServer
) -> None:
    # A second client whose replica has not seen a port yet tries to create it again: the server's
    # unique index on Interface names rejects the whole transaction.
    with Ovsdb(ovsdb_server.remote) as stale:
        commit(db, EnsureVhostUserPort(port("dup", n_rxq=2)))
        with pytest.raises(OvsdbTransactionFailed, match=r"constraint violation.*nothing was changed"):
            commit(stale, EnsureVhostUserPort(port("other")), EnsureVhostUserPort(port("dup")))
        assert ovsdb_server.vsctl("list-ports", "br0") == "dup"
        assert ovsdb_server.vsctl("get", "Interface", "dup", "options:n_rxq") == '"2"'
        stale.sync()
        assert commit(stale, EnsureVhostUserPort(port("other"))) is True  # still usable


def test_delete_port(db: Ovsdb, ovsdb_server: OvsdbServer) -> None:
    commit(db, EnsureVhostUserPort(port("a")), EnsureVhostUserPort(port("b")))
    commit(db, DeletePort("a"), DeletePort("absent"))
    assert ovsdb_server.vsctl("list-ports", "br0") == "b"
    assert ovsdb_server.vsctl("--columns=name", "find", "Interface", "name=a") == ""
    with pytest.raises(OvsdbError, match="does not exist"):
        commit(db, DeletePort("absent", if_exists=False))


def test_reconnects_after_ovsdb_server_restarts(db: Ovsdb, ovsdb_server: OvsdbServer) -> None:
    commit(db, EnsureVhostUserPort(port("before")))
    ovsdb_server.stop()
    ovsdb_server.start(create=False)  # same database file, new process
    assert commit(db, EnsureVhostUserPort(port("after"))) is True
    assert ovsdb_server.vsctl("list-ports", "br0").split() == ["after", "before"]


def test_vm_ports_carry_os_vif_external_ids(db: Ovsdb, ovsdb_server: OvsdbServer) -> None:
    change = vmports.apply(db, vhost_vm_spec(), VM_UUID)
    assert change.changed
    ids = ovsdb_server.vsctl("get", "Interface", "vm1-p0", "external_ids")
    assert f'vm-uuid="{VM_UUID}"' in ids and "vm-name=vm1" in ids
    assert "attached-mac=" in ids and "iface-id=" in ids
    assert ovsdb_server.vsctl("get", "Interface", "vm1-p0", "options:n_rxq") == '"2"'
    assert vmports.apply(db, vhost_vm_spec(), VM_UUID).changed is False


def test_apply_drops_ports_of_removed_nics_and_rollback_restores_everything(
    db: Ovsdb, ovsdb_server: OvsdbServer
) -> None:
    two_nics = [
        {"type": "vhostuser", "socket": "/run/vhost/a.sock", "queues": 2, "port": "vm1-a"},
        {"type": "vhostuser", "socket": "/run/vhost/b.sock", "port": "vm1-b"},
    ]
    vmports.apply(db, vhost_vm_spec(nics=two_nics), VM_UUID)
    before = ovsdb_server.vsctl("--format=json", "list", "Interface")
    one_changed_nic = [
        {"type": "vhostuser", "socket": "/run/vhost/a.sock", "queues": 1, "port": "vm1-a"},
        {"type": "vhostuser", "socket": "/run/vhost/c.sock", "port": "vm1-c"},
    ]
    change = vmports.apply(db, vhost_vm_spec(nics=one_changed_nic), VM_UUID)
    assert sorted(ovsdb_server.vsctl("list-ports", "br0").split()) == ["vm1-a", "vm1-c"]
    vmports.rollback(db, change)
    assert sorted(ovsdb_server.vsctl("list-ports", "br0").split()) == ["vm1-a", "vm1-b"]
    after = ovsdb_server.vsctl("--format=json", "list", "Interface")
    assert _config(before) == _config(after)


def _config(listing: str) -> list[object]:
    """Interface rows without the UUIDs a recreated row gets anew."""
    table = json.loads(listing)
    keep = [table["headings"].index(c) for c in ("name", "type", "options", "external_ids", "mtu_request")]
    return sorted(([row[i] for i in keep] for row in table["data"]), key=str)


def test_orphans_are_ports_whose_vm_is_gone(db: Ovsdb, ovsdb_server: OvsdbServer) -> None:
    vmports.apply(db, vhost_vm_spec(), VM_UUID)
    other = "11111111-2222-4333-8444-555555555555"
    vmports.apply(
        db, vhost_vm_spec(name="vm2", nics=[{"type": "vhostuser", "socket": "/run/vhost/x.sock"}]), other
    )
    ovsdb_server.vsctl("add-port", "br0", "unrelated")  # no vm-uuid: never an orphan
    assert [p.name for p in vmports.orphans(db, {VM_UUID})] == ["vm2-vhu0"]
    assert vmports.remove(db, other) == ["vm2-vhu0"]
    assert sorted(ovsdb_server.vsctl("list-ports", "br0").split()) == ["unrelated", "vm1-p0"]


def test_switch_checks_refuse_what_the_switch_cannot_carry(db: Ovsdb, ovsdb_server: OvsdbServer) -> None:
    spec = vhost_vm_spec(cpu={"count": 2, "pinning": {"vcpus": {"0": "3", "1": "2"}, "emulator": "4"}})
    with pytest.raises(SwitchNotReady, match=r"DPDK is not initialised.*virtnet switch setup"):
        switch.check_can_carry(db, spec)
    dpdk_ready(ovsdb_server)
    ovsdb_server.vsctl("set", "Bridge", "br0", "datapath_type=system")
    observe(db, lambda: bridge(db).datapath_type == "system")
    with pytest.raises(SwitchNotReady, match=r"nics\[0\].bridge: bridge 'br0' has datapath_type 'system'"):
        switch.check_can_carry(db, spec)
    ovsdb_server.vsctl("set", "Bridge", "br0", "datapath_type=netdev")
    ovsdb_server.vsctl("set", "Open_vSwitch", ".", "other_config:pmd-cpu-mask=0x6")
    observe(db, lambda: db.root().other_config.get("pmd-cpu-mask") == "0x6")
    with pytest.raises(
        SwitchNotReady, match=r"cpu.pinning.vcpus.1: host CPU 2 is an OVS PMD core \(pmd-cpu-mask=0x6\)"
    ):
        switch.check_can_carry(db, spec)
    ovsdb_server.vsctl(
        "set", "Open_vSwitch", ".", "other_config:pmd-cpu-mask=0x2", "other_config:dpdk-lcore-mask=0x10"
    )
    observe(db, lambda: db.root().other_config.get("dpdk-lcore-mask") == "0x10")
    with pytest.raises(SwitchNotReady, match=r"cpu.pinning.emulator: host CPU 4 is an OVS DPDK lcore core"):
        switch.check_can_carry(db, spec)
    ovsdb_server.vsctl("set", "Open_vSwitch", ".", "other_config:dpdk-lcore-mask=0x1")
    observe(db, lambda: db.root().other_config.get("dpdk-lcore-mask") == "0x1")
    switch.check_can_carry(db, spec)
    missing = vhost_vm_spec(nics=[{"type": "vhostuser", "socket": "/run/vhost/q.sock", "bridge": "br9"}])
    with pytest.raises(SwitchNotReady, match="bridge 'br9' does not exist"):
        switch.check_can_carry(db, missing)
    ovsdb_server.vsctl("set", "Open_vSwitch", ".", "iface_types=[internal,system]")
    observe(db, lambda: "dpdkvhostuserclient" not in db.root().iface_types)
    with pytest.raises(SwitchNotReady, match="does not support dpdkvhostuserclient"):
        switch.check_can_carry(db, spec)


def test_describe_lists_bridges_ports_and_their_vms(db: Ovsdb, ovsdb_server: OvsdbServer) -> None:
    dpdk_ready(ovsdb_server)
    ovsdb_server.vsctl("set", "Open_vSwitch", ".", "other_config:pmd-cpu-mask=0x6")
    vmports.apply(db, vhost_vm_spec(), VM_UUID)
    db.sync()
    info = switch.describe(db)
    assert info["dpdk_initialized"] is True and info["pmd_cpus"] == "1-2"
    (bridge,) = info["bridges"]
    ports = {p["name"]: p for p in bridge["ports"]}
    assert ports["vm1-p0"]["vm"] == "vm1" and ports["vm1-p0"]["n_rxq"] == "2"
    assert ports["vm1-p0"]["vhost"] is None  # no ovs-vswitchd has reported on the socket
    assert ports["br0"]["type"] == "internal"
    # What OVS leaves after ovs-vswitchd restarts: the port reconnected, link_state not refreshed.
    ovsdb_server.vsctl(
        "set", "Interface", "vm1-p0", "status:status=connected", "status:mode=client", "link_state=down"
    )
    observe(db, lambda: bool(next(i for i in db.rows("Interface") if i.name == "vm1-p0").status))
    ports = {p["name"]: p for p in switch.describe(db)["bridges"][0]["ports"]}
    assert ports["vm1-p0"]["vhost"] == "connected" and ports["vm1-p0"]["link_state"] == "down"
    assert ports["br0"]["vhost"] is None  # not a vhost-user port
