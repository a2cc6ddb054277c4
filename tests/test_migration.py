"""Migration without hosts: flags, the policy, the plan, the destination XML and the report.

The migrations themselves run in tests/e2e/test_live_migration.py between two real libvirt hosts.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import libvirt
import pytest
from lxml import etree
from support import TEST_URI, vhost_vm_spec
from test_cli import virtnet

from virtnet.domxml import HostChoices, render_domain
from virtnet.errors import InputError
from virtnet.migration import disks
from virtnet.migration import plan as plan_module
from virtnet.migration.destination import relocated_spec, relocated_xml, relocation
from virtnet.migration.plan import MigrationRequest, make_plan
from virtnet.migration.policy import Situation, choose
from virtnet.migration.report import MIGRATION_NS, MigrationReport, stats_fields
from virtnet.spec.codec import load_spec
from virtnet.virt.host import Host
from virtnet.virt.migration import MigrationOptions

ALWAYS = {"PEER2PEER", "LIVE", "PERSIST_DEST", "UNDEFINE_SOURCE", "ABORT_ON_ERROR"}


# --- flags and params: the one documented mapping ------------------------------------------------


def test_every_migration_is_p2p_live_and_moves_the_definition() -> None:
    options = MigrationOptions()
    assert set(options.flag_names()) == ALWAYS
    assert options.params() == {}


@pytest.mark.parametrize(
    ("options", "flag", "params"),
    [
        (MigrationOptions(parallel=4), "PARALLEL", {libvirt.VIR_MIGRATE_PARAM_PARALLEL_CONNECTIONS: 4}),
        (MigrationOptions(auto_converge=True), "AUTO_CONVERGE", {}),
        (MigrationOptions(postcopy=True), "POSTCOPY", {}),
        (
            MigrationOptions(compress="xbzrle"),
            "COMPRESSED",
            {libvirt.VIR_MIGRATE_PARAM_COMPRESSION: "xbzrle"},
        ),
        (MigrationOptions(copy_storage=True), "NON_SHARED_DISK", {}),
        (MigrationOptions(bandwidth_mib_s=100), None, {libvirt.VIR_MIGRATE_PARAM_BANDWIDTH: 100}),
    ],
)
def test_each_option_maps_to_its_flag_and_param(
    options: MigrationOptions, flag: str | None, params: dict[str, object]
) -> None:
    assert set(options.flag_names()) == ALWAYS | ({flag} if flag else set())
    assert options.params() == params


def test_the_bandwidth_cap_holds_after_the_post_copy_switch_too() -> None:
    assert MigrationOptions(bandwidth_mib_s=100, postcopy=True).params() == {
        libvirt.VIR_MIGRATE_PARAM_BANDWIDTH: 100,
        libvirt.VIR_MIGRATE_PARAM_BANDWIDTH_POSTCOPY: 100,
    }


def test_destination_xml_goes_as_live_and_persistent_params() -> None:
    params = MigrationOptions().params(dest_xml="<live/>", persist_xml="<config/>")
    assert params[libvirt.VIR_MIGRATE_PARAM_DEST_XML] == "<live/>"
    assert params[libvirt.VIR_MIGRATE_PARAM_PERSIST_XML] == "<config/>"


# --- policy --------------------------------------------------------------------------------------


def situation(dirty: float, link: float = 100, *, capped: bool = True, memory: int = 1024, unsafe=None):
    return Situation(dirty, link, capped, memory, unsafe)


@pytest.mark.parametrize(
    ("s", "policy"),
    [
        (situation(5), "precopy"),
        (situation(5, 1192, capped=False, memory=8192), "multifd"),
        (situation(5, 100, capped=True, memory=8192), "precopy"),  # a capped link gains no speed
        (situation(70), "auto-converge"),
        (situation(190), "postcopy"),
        (situation(190, unsafe="vhost-user without post-copy support"), "auto-converge"),
    ],
)
def test_policy_follows_the_dirty_rate_against_the_link(s: Situation, policy: str) -> None:
    choice = choose(s)
    assert choice.policy == policy
    assert f"dirty rate {s.dirty_mib_s:.0f} MiB/s" in choice.reason


@pytest.mark.parametrize(("dirty", "net"), [(2, False), (20, True), (45, True)])
def test_a_converging_guest_keeps_auto_converge_in_reserve_unless_idle(dirty: float, net: bool) -> None:
    choice = choose(situation(dirty))
    assert choice.policy == "precopy" and choice.auto_converge is net
    assert ("auto-converge only if the passes stop shrinking" in choice.reason) is net


def test_policy_says_why_post_copy_was_not_taken() -> None:
    choice = choose(situation(190, unsafe="OVS lacks vhost-postcopy-support"))
    assert choice.auto_converge and choice.postcopy_after is None
    assert "OVS lacks vhost-postcopy-support" in choice.reason


def test_postcopy_policy_switches_after_two_passes() -> None:
    choice = choose(situation(500))
    assert choice.postcopy_after == 2 and not choice.auto_converge


# --- plan: what the user asked for, combined with the policy --------------------------------------


@pytest.fixture
def running_guest(testdriver: libvirt.virConnect) -> Host:
    return Host(testdriver, TEST_URI)


def plan_for(host: Host, unsafe: str | None = None, **request: object):
    guest = host.lookup("test")
    return make_plan(
        MigrationRequest(dest_uri="test:///elsewhere", **request),  # type: ignore[arg-type]
        guest,
        memory_mib=1024,
        postcopy_unsafe=unsafe,
    )


@pytest.mark.parametrize(
    "request_",
    [
        {"policy": "precopy", "postcopy": True},
        {"policy": "postcopy"},
        {"policy": "precopy", "postcopy_after": 3},
        {"policy": "precopy", "timeout_s": 5, "on_timeout": "postcopy"},
    ],
)
def test_post_copy_in_any_form_is_refused_when_unsafe(
    running_guest: Host, request_: dict[str, object]
) -> None:
    with pytest.raises(InputError, match=r"--postcopy: post-copy is unsafe for 'test': no vhost support"):
        plan_for(running_guest, unsafe="no vhost support", **request_)


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        ({"on_timeout": "postcopy"}, "--on-timeout postcopy: give --timeout"),
        ({"parallel": 2, "compress": "xbzrle"}, "--parallel with --compress xbzrle"),
    ],
)
def test_contradictions_are_refused_before_anything(request_: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message):
        MigrationRequest(dest_uri="x", **request_).validate()  # type: ignore[arg-type]


def test_explicit_options_add_to_the_policy(running_guest: Host) -> None:
    plan = plan_for(
        running_guest, policy="multifd", auto_converge=True, bandwidth_mib_s=50, max_downtime_ms=300
    )
    assert plan.choice.policy == "multifd" and plan.dirty_mib_s is None
    assert plan.options == MigrationOptions(
        parallel=4, auto_converge=True, bandwidth_mib_s=50, max_downtime_ms=300
    )


def test_postcopy_alone_switches_after_a_few_passes(running_guest: Host) -> None:
    plan = plan_for(running_guest, policy="precopy", postcopy=True)
    assert plan.options.postcopy and plan.postcopy_after == 2


def test_auto_measures_and_compares_with_the_capped_link(
    running_guest: Host, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The test driver has no dirty-rate API; the real measurement runs in the e2e tests.
    monkeypatch.setattr(plan_module, "measure_dirty_rate", lambda guest, seconds: 150.0)
    plan = plan_for(running_guest, unsafe="vhost-user", bandwidth_mib_s=100)
    assert plan.dirty_mib_s == 150.0
    assert plan.choice.policy == "auto-converge" and plan.options.auto_converge
    assert "150% of the link's 100 MiB/s" in plan.choice.reason


# --- destination: sockets and pins move, nothing else changes -------------------------------------


def pinned_spec():
    return vhost_vm_spec(cpu={"count": 2, "pinning": {"vcpus": {"0": "2", "1": "3"}, "emulator": "0"}})


def test_pins_map_cpu_by_cpu_in_order_and_sockets_move() -> None:
    spec = pinned_spec()
    moves = relocation(spec, Path("/srv/vhost"), frozenset({4, 5, 6}))
    assert moves.cpus == {0: 4, 2: 5, 3: 6}
    assert moves.sockets == {"/run/vhost/vm1.sock": "/srv/vhost/vm1.sock"}
    moved = relocated_spec(spec, moves)
    assert moved.cpu.pinning is not None
    assert moved.cpu.pinning.vcpus == {0: frozenset({5}), 1: frozenset({6})}
    assert moved.cpu.pinning.emulator == frozenset({4})
    assert moved.nics[0].socket == "/srv/vhost/vm1.sock"  # type: ignore[union-attr]


def test_too_few_destination_cpus_are_refused() -> None:
    with pytest.raises(InputError, match=r"--dest-cpus 4-5: the guest is pinned to 3 host CPUs \(0,2-3\)"):
        relocation(pinned_spec(), None, frozenset({4, 5}))


def test_without_options_nothing_moves() -> None:
    assert relocation(pinned_spec(), None, None).empty


def test_destination_xml_changes_only_sockets_pins_and_spec() -> None:
    spec = pinned_spec()
    source = render_domain(spec, HostChoices(virt_type="qemu", uuid="5f2b1c2e-0a6d-4c1e-9a55-0f4f6d7a8b9c"))
    compact = etree.XMLParser(remove_blank_text=True)
    root = etree.fromstring(source.to_xml().encode(), compact)
    # What libvirt adds to a live domain, and a user's own change, must survive.
    etree.SubElement(root.find("devices/interface"), "address", type="pci", bus="0x01", slot="0x00")
    etree.SubElement(root, "seclabel", type="none")
    moves = relocation(spec, Path("/srv/vhost"), frozenset({4, 5, 6}))
    moved = relocated_spec(spec, moves)
    out = etree.fromstring(
        relocated_xml(etree.tostring(root, encoding="unicode"), moves, moved).encode(), compact
    )

    assert out.xpath("string(devices/interface/source/@path)") == "/srv/vhost/vm1.sock"
    assert [p.get("cpuset") for p in out.iterfind("cputune/vcpupin")] == ["5", "6"]
    assert out.xpath("string(cputune/emulatorpin/@cpuset)") == "4"
    spec_json = out.findtext("metadata/{https://virtnet.dev/xmlns/domain/1.0}vm/{*}spec")
    assert load_spec(spec_json) == moved
    # Everything else is as it was.
    for changed in ("devices/interface/source", "cputune", "metadata"):
        for tree in (root, out):
            element = tree.find(changed)
            element.getparent().remove(element)
    assert etree.tostring(out, method="c14n") == etree.tostring(root, method="c14n")


# --- report ---------------------------------------------------------------------------------------

STATS = {
    "type": 3,
    "time_elapsed": 1175,
    "downtime": 48,
    "setup_time": 10,
    "data_processed": 97010722,
    "memory_bps": 674_758_656,
    "memory_iteration": 3,
    "memory_normal": 23545,
    "memory_constant": 42433,
    "memory_page_size": 4096,
}


def report() -> MigrationReport:
    return MigrationReport(
        source="qemu+tcp://a/system",
        destination="qemu+tcp://b/system",
        policy="auto-converge",
        reason="dirty rate 190 MiB/s is 190% of the link's 100 MiB/s",
        dirty_rate_mib_s=190.0,
        flags="PEER2PEER LIVE",
        finished_at="2026-11-26T12:00:00+00:00",
        stats_from="destination",
        postcopy_switched=False,
        wall_ms=2797,
        **stats_fields(STATS),
    )


def test_report_reads_like_info_migrate() -> None:
    text = "\n".join(report().lines())
    for words in (
        "total time: 1175 ms",
        "downtime: 48 ms",
        "setup: 10 ms",
        "transferred ram: 92.5 MiB",
        "throughput: 643.5 MiB/s",
        "dirty sync count (iterations): 3",
        "normal: 23545 pages, duplicate (zero): 42433 pages",
        "policy: auto-converge (dirty rate 190 MiB/s",
    ):
        assert words in text


def test_report_round_trips_through_libvirt_metadata_form() -> None:
    plain = report().to_xml()
    assert MigrationReport.from_xml(plain) == report()
    # libvirt hands the element back in the namespace it was stored under.
    root = etree.fromstring(plain.encode())
    namespaced = etree.Element(f"{{{MIGRATION_NS}}}migration", nsmap={"vnmig": MIGRATION_NS})
    for child in root:
        etree.SubElement(namespaced, f"{{{MIGRATION_NS}}}{child.tag}").text = child.text
    assert MigrationReport.from_xml(etree.tostring(namespaced, encoding="unicode")) == report()


# --- the command, where the test driver can answer ------------------------------------------------


def test_migrating_to_the_same_host_is_refused(testdriver: libvirt.virConnect) -> None:
    result = virtnet("migrate", "test", TEST_URI, "--policy", "precopy")
    assert result.exit_code == 2
    assert "is the same host as" in result.stderr and "give another host's URI" in result.stderr
    assert testdriver.lookupByName("test").isActive()


def test_an_unreachable_destination_changes_nothing(testdriver: libvirt.virConnect) -> None:
    result = virtnet("migrate", "test", "qemu+tcp://127.0.0.1:1/system")
    assert result.exit_code == 1
    line = result.stderr.strip()
    assert line.startswith("virtnet: error: cannot connect to libvirt at qemu+tcp://127.0.0.1:1/system")
    assert "the destination's libvirtd" in line and "the guest still runs on the source" in line
    assert testdriver.lookupByName("test").isActive()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--policy", "fastest"], "--policy fastest: choose one of auto, precopy"),
        (["--compress", "zstd"], "--compress zstd: choose one of xbzrle"),
        (["--on-timeout", "pause"], "--on-timeout pause: choose one of abort, postcopy"),
        (["--dest-cpus", "x"], "--dest-cpus"),
    ],
)
def test_bad_options_are_one_line_with_exit_2(
    testdriver: libvirt.virConnect, args: list[str], message: str
) -> None:
    result = virtnet("migrate", "test", "qemu+tcp://127.0.0.1:1/system", *args)
    assert result.exit_code == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


# --- steering: what the plan arms for it, and the report of its steps -----------------------------


def test_auto_arms_post_copy_for_steering_where_it_is_safe(
    running_guest: Host, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(plan_module, "measure_dirty_rate", lambda guest, seconds: 1.0)
    plan = plan_for(running_guest, bandwidth_mib_s=100)
    assert plan.choice.policy == "precopy" and plan.postcopy_after is None  # no switch planned ...
    assert plan.steer_postcopy and "POSTCOPY" in plan.options.flag_names()  # ... but one possible
    assert plan.downtime_ceiling_ms == 1000


@pytest.mark.parametrize(
    ("unsafe", "request_"),
    [
        ("vhost-user without OVS support", {}),
        (None, {"parallel": 4}),  # QEMU 7.2 refuses multifd with post-copy
        (None, {"copy_storage": True}),
        (None, {"policy": "precopy"}),  # the user chose: nothing is added
    ],
)
def test_post_copy_is_not_armed_where_it_cannot_or_should_not_be(
    running_guest: Host, monkeypatch: pytest.MonkeyPatch, unsafe: str | None, request_: dict[str, object]
) -> None:
    monkeypatch.setattr(plan_module, "measure_dirty_rate", lambda guest, seconds: 1.0)
    plan = plan_for(running_guest, unsafe=unsafe, **request_)
    assert not plan.steer_postcopy and "POSTCOPY" not in plan.options.flag_names()


def test_the_downtime_ceiling_defaults_above_the_starting_limit(running_guest: Host) -> None:
    assert plan_for(running_guest, policy="precopy", max_downtime_ms=2000).downtime_ceiling_ms == 2000
    plan = plan_for(running_guest, policy="precopy", max_downtime_ms=50, max_downtime_ceiling_ms=80)
    assert plan.downtime_ceiling_ms == 80


def test_a_ceiling_below_the_starting_limit_is_refused() -> None:
    request = MigrationRequest(dest_uri="x", max_downtime_ms=300, max_downtime_ceiling_ms=100)
    with pytest.raises(InputError, match=r"--max-downtime-ceiling 100: below --max-downtime 300"):
        request.validate()


def test_the_report_lists_each_escalation_and_keeps_them_in_the_metadata() -> None:
    steps = (
        "8.1 s, pass 4: downtime: 2 passes did not shrink; allowed downtime 300 -> 750 ms",
        "14.0 s, pass 6: postcopy: 2 passes did not shrink; switching to post-copy",
    )
    stepped = dataclasses.replace(report(), escalations=steps, max_downtime_ms=750)
    text = stepped.lines()
    assert "steering: 2 step(s)" in text
    assert [line.strip() for line in text if "pass " in line and ": " in line] == list(steps)
    assert "allowed downtime at the end: 750 ms" in text
    assert MigrationReport.from_xml(stepped.to_xml()) == stepped
    assert "steering: no step: the passes kept shrinking" in report().lines()


def test_copy_storage_copies_the_writable_file_disks_only() -> None:
    xml = """<domain type='qemu'><name>d</name><devices>
      <disk type='file' device='disk'><source file='/images/root.qcow2'/><target dev='vda'/></disk>
      <disk type='file' device='disk'><source file='/images/ro.raw'/><readonly/><target dev='vdb'/></disk>
      <disk type='file' device='cdrom'><source file='/images/seed.iso'/><target dev='sda'/></disk>
      <disk type='block' device='disk'><source dev='/dev/sdz'/><target dev='vdc'/></disk>
    </devices></domain>"""
    assert disks.writable_disks(xml) == ["/images/root.qcow2"]
