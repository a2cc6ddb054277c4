"""Read, edit, write: a redefine changes only what the spec owns, on libvirt's test driver.

The lab's real libvirtd does the same with `virsh edit` in tests/e2e/test_virsh_interop.py.
"""

from __future__ import annotations

from pathlib import Path

import libvirt
from lxml import etree
from test_cli import virtnet

from virtnet.domxml.edit import edit

SPEC = """name = "keep"
{top}[cpu]
count = 1
[memory]
size = "{memory}"
[[disks]]
path = "/default-pool/keep.qcow2"
size = "64MiB"
{more}"""
FLAGS = libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE
# What a user adds by hand: devices virtnet has no field for, a second disk, a crash action.
HAND_ADDED = (
    "<watchdog model='i6300esb' action='reset'/>",
    "<rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>",
    "<disk type='file' device='disk'><driver name='qemu' type='raw'/>"
    "<source file='/default-pool/extra.img'/><target dev='vdz' bus='virtio'/></disk>",
)


def write(tmp_path: Path, memory: str = "256MiB", more: str = "", top: str = "") -> str:
    path = tmp_path / "keep.toml"
    path.write_text(SPEC.format(memory=memory, more=more, top=top))
    return str(path)


def hand_edit(conn: libvirt.virConnect, *, memory_kib: int | None = None) -> None:
    """What `virsh edit` does: change the persistent XML and define it again."""
    root = etree.fromstring(conn.lookupByName("keep").XMLDesc(FLAGS))
    devices = root.find("devices")
    for xml in HAND_ADDED:
        devices.append(etree.fromstring(xml))
    root.find("on_crash").text = "restart"
    if memory_kib is not None:
        root.find("memory").text = str(memory_kib)
    conn.defineXML(etree.tostring(root, encoding="unicode"))


def dumpxml(conn: libvirt.virConnect) -> etree._Element:
    return etree.fromstring(conn.lookupByName("keep").XMLDesc(FLAGS))


def test_hand_added_devices_survive_a_redefine_with_a_changed_spec(
    tmp_path: Path, testdriver: libvirt.virConnect
) -> None:
    assert virtnet("define", write(tmp_path)).exit_code == 0
    hand_edit(testdriver)
    result = virtnet("define", write(tmp_path, memory="512MiB"))
    assert result.exit_code == 0, result.stderr
    assert "changed outside virtnet" not in result.stdout

    root = dumpxml(testdriver)
    assert root.findtext("memory") == root.findtext("currentMemory") == str(512 * 1024)
    assert root.find("devices/watchdog").get("model") == "i6300esb"
    assert root.findtext("devices/rng/backend") == "/dev/urandom"
    assert root.findtext("on_crash") == "restart"
    disks = {disk.get("dev") for disk in root.iterfind("devices/disk/target")}
    assert disks == {"vda", "vdz"}


def test_a_hand_changed_field_the_spec_owns_is_set_back_and_named(
    tmp_path: Path, testdriver: libvirt.virConnect
) -> None:
    assert virtnet("define", write(tmp_path)).exit_code == 0
    hand_edit(testdriver, memory_kib=1024 * 1024)
    result = virtnet("define", write(tmp_path))
    assert result.exit_code == 0, result.stderr
    overrides = [line for line in result.stdout.splitlines() if "overrides" in line]
    assert overrides == [
        "  overrides domain/memory: changed outside virtnet to '1048576'; the spec's '262144' replaces it"
    ]
    root = dumpxml(testdriver)
    assert root.findtext("memory") == str(256 * 1024)
    assert root.find("devices/watchdog") is not None


def test_dry_run_prints_exactly_the_change_and_changes_nothing(
    tmp_path: Path, testdriver: libvirt.virConnect
) -> None:
    assert virtnet("define", write(tmp_path)).exit_code == 0
    hand_edit(testdriver)
    before = testdriver.lookupByName("keep").XMLDesc(FLAGS)
    result = virtnet("define", "--dry-run", write(tmp_path, memory="512MiB"))
    assert result.exit_code == 0, result.stderr
    assert testdriver.lookupByName("keep").XMLDesc(FLAGS) == before
    changed = [
        line
        for line in result.stdout.splitlines()
        if line.startswith(("-", "+")) and not line.startswith(("---", "+++"))
    ]
    assert [line[0] + line[1:].strip() for line in changed] == [
        '-<virtnet:spec>{"cpu":{"count":1},"disks":[{"path":"/default-pool/keep.qcow2","size":"64MiB"}],'
        '"memory":{"size":"256MiB"},"name":"keep"}</virtnet:spec>',
        '+<virtnet:spec>{"cpu":{"count":1},"disks":[{"path":"/default-pool/keep.qcow2","size":"64MiB"}],'
        '"memory":{"size":"512MiB"},"name":"keep"}</virtnet:spec>',
        '-<memory unit="KiB">262144</memory>',
        '-<currentMemory unit="KiB">262144</currentMemory>',
        '+<memory unit="KiB">524288</memory>',
        '+<currentMemory unit="KiB">524288</currentMemory>',
    ]
    assert result.stdout.rstrip().endswith("# dry run: nothing was changed")


def test_an_unchanged_spec_leaves_the_xml_as_it_is(tmp_path: Path, testdriver: libvirt.virConnect) -> None:
    spec = write(tmp_path, top='video = "vga"\n', more='[graphics]\ntype = "vnc"\npassword = "pw-1"\n')
    assert virtnet("define", spec).exit_code == 0
    hand_edit(testdriver)
    before = testdriver.lookupByName("keep").XMLDesc(FLAGS)
    dry = virtnet("define", "--dry-run", spec)
    assert "# domain XML: no change" in dry.stdout
    assert virtnet("define", spec).exit_code == 0
    assert testdriver.lookupByName("keep").XMLDesc(FLAGS) == before


def test_what_the_spec_no_longer_has_is_taken_out_and_the_users_values_stay() -> None:
    base = etree.fromstring(
        "<domain><devices><disk><driver cache='none'/><target dev='vda'/></disk>"
        "<disk><target dev='vdb'/></disk></devices></domain>"
    )
    new = etree.fromstring("<domain><devices><disk><driver/><target dev='vda'/></disk></devices></domain>")
    current = etree.fromstring(
        "<domain><devices><disk><driver cache='none' io='native'/><target dev='vda'/><address slot='3'/>"
        "</disk><disk><target dev='vdb'/></disk><disk><target dev='vdc'/></disk></devices></domain>"
    )
    result = edit(current, base, new)
    assert etree.tostring(result.node, encoding="unicode") == (
        '<domain><devices><disk><driver io="native"/><target dev="vda"/><address slot="3"/></disk>'
        '<disk><target dev="vdc"/></disk></devices></domain>'
    )
    assert result.overrides == []
