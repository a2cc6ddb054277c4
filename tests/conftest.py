"""Shared fixtures: example specs, and libvirt's test driver kept alive and clean between tests."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import libvirt
import pytest
from support import TEST_URI, OvsdbServer, Records


def pytest_configure(config: pytest.Config) -> None:
    """Ctrl-C works in the suite however it was started.

    The tests press Ctrl-C (SIGINT) on virtnet, in this process and in the ones it starts. A shell
    that runs the suite in the background (`make test &`) hands it SIGINT ignored, and an ignored
    signal stays ignored in every child; a handler does not (exec resets it to the default).
    """
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


# What a test needs, from the fixtures it uses: `pytest -m "not ovsdb"` runs without ovsdb-server.
_NEEDS = {"testdriver": "testdriver", "ovsdb_server": "ovsdb", "switch": "ovsdb", "lab": "lab"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for fixture, marker in _NEEDS.items():
            if fixture in getattr(item, "fixturenames", ()):
                item.add_marker(getattr(pytest.mark, marker))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true", help="rewrite xml/*.xml instead of comparing")


@pytest.fixture(autouse=True)
def _one_process_per_command() -> Iterator[None]:
    """Each test's CLI commands start without the OVSDB TLS files an earlier test's hosts left."""
    yield
    import sys

    remote = sys.modules.get("virtnet.fleet.remote")
    if remote is not None:
        remote.forget_tls()


@pytest.fixture(scope="session")
def _testdriver_keeper() -> Iterator[libvirt.virConnect]:
    # test:///default keeps its state only while some connection to it is open; holding one for the
    # session lets each CLI command open and close its own connection, as in real use.
    conn = libvirt.open(TEST_URI)
    yield conn
    conn.close()


@pytest.fixture
def testdriver(_testdriver_keeper: libvirt.virConnect) -> Iterator[libvirt.virConnect]:
    """The shared test driver, returned to its pristine state (only domain 'test') afterwards."""
    conn = _testdriver_keeper
    yield conn
    for dom in conn.listAllDomains(0):
        if dom.name() == "test":
            continue
        if dom.isActive():
            dom.destroy()
        if dom.isPersistent():
            dom.undefine()
    for pool in conn.listAllStoragePools(0):
        if pool.name().startswith("virtnet-"):
            for vol in pool.listAllVolumes(0):
                vol.delete(0)
            pool.destroy()
    for vol in conn.storagePoolLookupByName("default-pool").listAllVolumes(0):
        vol.delete(0)


@pytest.fixture
def ovsdb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OvsdbServer]:
    """A fresh ovsdb-server with an initialised Open_vSwitch database; killed afterwards."""
    server = OvsdbServer(tmp_path_factory.mktemp("ovsdb"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def switch(ovsdb_server: OvsdbServer) -> OvsdbServer:
    """The database as a running ovs-vswitchd-dpdk with bridge br0 leaves it."""
    ovsdb_server.vsctl("add-br", "br0", "--", "set", "Bridge", "br0", "datapath_type=netdev")
    ovsdb_server.vsctl(
        "set",
        "Open_vSwitch",
        ".",
        "dpdk_initialized=true",
        "iface_types=[dpdkvhostuserclient,dpdkvhostuser,internal,system]",
    )
    return ovsdb_server


@pytest.fixture
def records(monkeypatch: pytest.MonkeyPatch) -> Records:
    """VM locks in a dict (the test driver has no secrets driver to keep lock records in)."""
    from virtnet import vmlock
    from virtnet.virt import lockrecords

    store = Records()
    for name in ("create", "find", "remove"):
        monkeypatch.setattr(lockrecords, name, getattr(store, name))
    monkeypatch.setattr(vmlock, "POLL_S", 0.01)
    return store
