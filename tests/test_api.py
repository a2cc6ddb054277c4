"""The Python API (virtnet.control) used the way a script uses it.

On libvirt's test driver and a real throwaway ovsdb-server. What each call did is checked through
libvirt-python's own connection to the test driver (the same process: test:///default lives in it)
and through ovs-vsctl, not through virtnet's view of the domain.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator

import libvirt
import pytest
from lxml import etree
from support import TEST_URI, OvsdbServer, Records, vhost_vm_spec

from virtnet import control, vmlock
from virtnet.errors import InputError, InvalidDomainState, VmLocked
from virtnet.virt import lockrecords
from virtnet.virt.host import Host


@pytest.fixture
def host(testdriver: libvirt.virConnect) -> Iterator[Host]:
    with Host.open(TEST_URI) as opened:
        yield opened


def ports(server: OvsdbServer) -> list[str]:
    return server.vsctl("list-ports", "br0").split()


def test_a_script_defines_starts_shows_stops_and_undefines(
    host: Host, switch: OvsdbServer, testdriver: libvirt.virConnect, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = vhost_vm_spec()
    plan = control.plan_define(host, spec, ovsdb=switch.remote)
    assert "vm1" not in [dom.name() for dom in testdriver.listAllDomains(0)] and ports(switch) == []
    assert [row.name for row in plan.ports_after] == ["vm1-p0"] and not plan.redefines

    defined = control.define(host, spec, ovsdb=switch.remote)
    dom = testdriver.lookupByName("vm1")
    assert defined.guest.uuid == dom.UUIDString() and not defined.redefined
    assert [port.name for port in defined.ports] == ports(switch) == ["vm1-p0"]
    assert switch.vsctl("get", "Interface", "vm1-p0", "external_ids:vm-uuid") == f'"{dom.UUIDString()}"'
    assert etree.fromstring(dom.XMLDesc(0)).find("devices/interface").get("type") == "vhostuser"

    control.start(host, "vm1", ovsdb=switch.remote)
    assert dom.isActive()

    report = control.show(host, "vm1", ovsdb=switch.remote)
    dom = testdriver.lookupByName("vm1")  # a virDomain keeps the id it had when looked up
    assert (report.state.name, report.state.uuid, report.state.id) == ("vm1", dom.UUIDString(), dom.ID())
    assert report.xml == dom.XMLDesc(0)
    assert report.spec is not None and report.spec.memory.size == spec.memory.size
    assert report.last_migration is None and report.guest is None  # the test driver has no agent

    control.stop(host, "vm1", force=True)
    assert not dom.isActive()
    removed = control.undefine(host, "vm1", ovsdb=switch.remote)
    assert removed.ports == ("vm1-p0",) and ports(switch) == []
    assert "vm1" not in [d.name() for d in testdriver.listAllDomains(0)]
    assert capsys.readouterr() == ("", "")  # the library prints nothing


def test_list_gives_what_libvirt_has(host: Host, testdriver: libvirt.virConnect) -> None:
    control.define(host, vhost_vm_spec(nics=[]))
    listed = {view.name: view for view in control.list_domains(host, include_inactive=True)}
    libvirt_has = {dom.name(): dom for dom in testdriver.listAllDomains(0)}
    assert set(listed) == set(libvirt_has)
    assert listed["vm1"].managed and not listed["test"].managed
    assert listed["test"].id == libvirt_has["test"].ID()


def test_a_stop_refused_is_a_virtnet_error(host: Host) -> None:
    control.define(host, vhost_vm_spec(nics=[]))
    with pytest.raises(InvalidDomainState):
        control.undefine(host, "test")  # running: stop it first


def test_migration_options_report_every_problem_at_once() -> None:
    request = control.MigrationRequest(
        dest_uri="qemu+tcp://b/system",
        to="auto",
        policy="fast",  # type: ignore[arg-type]
        compress="zstd",  # type: ignore[arg-type]
        dest_cpus="3-1",
        on_timeout="postcopy",
    )
    found = [str(problem) for problem in request.problems()]
    assert len(found) == 5, found
    for word, line in zip(["--to", "--policy", "--compress", "--dest-cpus", "--timeout"], found, strict=True):
        assert word in line
    with pytest.raises(InputError):
        request.validate()
    assert control.MigrationRequest(dest_uri="x", dest_cpus="4-5").cpus == frozenset({4, 5})


def test_a_migration_dry_run_runs_the_pre_flight_checks(host: Host, testdriver: libvirt.virConnect) -> None:
    with pytest.raises(InputError, match="is the same host as"):
        control.migrate(host, "test", control.MigrationRequest(dest_uri=TEST_URI), dry_run=True)
    assert testdriver.lookupByName("test").isActive()


def test_every_name_is_the_function_even_after_its_module_loaded() -> None:
    import importlib
    import pkgutil

    for module in pkgutil.iter_modules(control.__path__, "virtnet.control."):
        importlib.import_module(module.name)  # a submodule named like a function would shadow it
    for name in control.__all__:
        assert not isinstance(getattr(control, name), type(control)), name


def test_result_objects_are_frozen() -> None:
    for result in (
        control.DefineResult,
        control.DefinePlan,
        control.UndefineResult,
        control.DomainReport,
        control.Outcome,
        control.Adoption,
        control.MigrationRequest,
    ):
        assert dataclasses.is_dataclass(result) and result.__dataclass_params__.frozen, result  # type: ignore[attr-defined]


# --- the VM lock: a script is kept out of a VM another virtnet run holds, as the CLI is ----------

MIGRATE_NOWHERE = control.MigrationRequest(dest_uri="qemu+tcp://127.0.0.1:1/system")

# (call, the domain it locks, whether vm1 runs first, what libvirt must still show afterwards)
LOCKED_CALLS: dict[str, tuple[Callable[[Host], object], str, bool, Callable[[libvirt.virConnect], bool]]] = {
    "define": (
        lambda h: control.define(h, vhost_vm_spec(nics=[], memory={"size": "512MiB"})),
        "vm1",
        False,
        lambda c: c.lookupByName("vm1").maxMemory() == 1024 * 1024,
    ),
    "start": (
        lambda h: control.start(h, "vm1"),
        "vm1",
        False,
        lambda c: not c.lookupByName("vm1").isActive(),
    ),
    "stop": (
        lambda h: control.stop(h, "vm1", force=True),
        "vm1",
        True,
        lambda c: c.lookupByName("vm1").isActive(),
    ),
    "undefine": (
        lambda h: control.undefine(h, "vm1"),
        "vm1",
        False,
        lambda c: c.lookupByName("vm1").isPersistent(),
    ),
    # Refused before the destination is dialled: unreachable, it would raise HypervisorError instead.
    "migrate": (
        lambda h: control.migrate(h, "vm1", MIGRATE_NOWHERE),
        "vm1",
        True,
        lambda c: c.lookupByName("vm1").isActive(),
    ),
    "adopt": (
        lambda h: control.adopt(h, "test"),
        "test",
        False,
        lambda c: b"virtnet" not in c.lookupByName("test").XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE).encode(),
    ),
}


@pytest.mark.parametrize("what", list(LOCKED_CALLS))
def test_each_change_is_refused_while_another_run_holds_the_vm(
    what: str, records: Records, host: Host, testdriver: libvirt.virConnect
) -> None:
    call, name, running, unchanged = LOCKED_CALLS[what]
    control.define(host, vhost_vm_spec(nics=[]))
    if running:
        control.start(host, "vm1")
    with vmlock.held(host, name, "define other.toml"), pytest.raises(VmLocked) as refused:
        call(host)
    assert "define other.toml" in str(refused.value)
    assert unchanged(testdriver)
    assert records.by_key == {}  # every lock given back


def test_the_lock_is_taken_and_given_back_by_each_call(records: Records, host: Host) -> None:
    seen: list[list[str]] = []
    real_create = lockrecords.create

    def create(h: Host, key: str, description: str) -> str | None:
        seen.append([key, description])
        return real_create(h, key, description)

    lockrecords.create = create  # type: ignore[assignment]  # records' fixture puts the fake back
    control.define(host, vhost_vm_spec(nics=[]))
    control.start(host, "vm1")
    control.stop(host, "vm1", force=True)
    control.undefine(host, "vm1")
    commands = [description for _key, description in seen]
    for verb in ("define vm1", "start vm1", "stop vm1", "undefine vm1"):
        assert any(verb in command for command in commands), (verb, commands)
    assert records.by_key == {}


def test_wait_lock_waits_for_the_other_run(
    records: Records, host: Host, testdriver: libvirt.virConnect
) -> None:
    control.define(host, vhost_vm_spec(nics=[]))
    holding, release = threading.Event(), threading.Event()

    def other_run() -> None:
        with vmlock.held(host, "vm1", "define other.toml"):
            holding.set()
            release.wait(30)

    other = threading.Thread(target=other_run)
    other.start()
    assert holding.wait(30)
    threading.Timer(0.2, release.set).start()
    control.start(host, "vm1", wait_lock=True)
    assert release.is_set()  # it could only start once the other run let go
    assert testdriver.lookupByName("vm1").isActive()
    other.join(30)
