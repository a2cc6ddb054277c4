"""virtnet's domains are ordinary libvirt domains: virsh drives them, and both tools agree."""

from __future__ import annotations

import json

from lab_support import LabClient
from lxml import etree

from virtnet.changes import unified
from virtnet.domxml.domain import Domain

FOREIGN_XML = """<domain type='qemu'>
  <name>made-by-virsh</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64'>hvm</type></os>
</domain>
"""


def dominfo(lab0: LabClient, name: str) -> dict[str, str]:
    lines = lab0.virsh("dominfo", name).stdout.splitlines()
    return {key.strip(): value.strip() for key, value in (line.split(":", 1) for line in lines)}


def listing(lab0: LabClient) -> dict[str, dict[str, object]]:
    return {row["name"]: row for row in json.loads(lab0.virtnet("list", "--all", "--json").stdout)}


def test_virsh_starts_and_stops_a_virtnet_domain(lab0: LabClient) -> None:
    lab0.virtnet("define", str(lab0.spec("interop", ips=("10.77.2.1/24",), vcpus=2)))
    lab0.virsh("start", "interop")
    lab0.wait_console("interop", "VIRTNET-BOOTED")

    row = listing(lab0)["interop"]
    info = dominfo(lab0, "interop")
    assert row["state"] == info["State"] == "running"
    assert str(row["id"]) == info["Id"] == lab0.virsh("domid", "interop").stdout.strip()
    assert row["uuid"] == info["UUID"]
    assert str(row["vcpus"]) == info["CPU(s)"] == "2"
    assert f"{row['memory_kib']} KiB" == info["Max memory"]
    assert row["managed"] is True

    shown = json.loads(lab0.virtnet("show", "interop", "--json").stdout)
    assert shown["domain"]["uuid"] == info["UUID"]
    assert shown["spec"]["name"] == "interop"  # recovered from libvirt's <metadata> alone
    running = {line.split()[1] for line in lab0.virsh("list").stdout.splitlines()}
    assert "interop" in running and "interop" in lab0.virtnet("list").stdout

    lab0.virsh("destroy", "interop")
    assert listing(lab0)["interop"]["state"] == dominfo(lab0, "interop")["State"] == "shut off"
    assert "interop" not in lab0.virtnet("list").stdout


def test_a_virsh_domain_is_listed_as_unmanaged_and_left_alone(lab0: LabClient) -> None:
    xml = lab0.workdir / "foreign.xml"
    xml.write_text(FOREIGN_XML)
    lab0.virsh("define", str(xml))
    row = listing(lab0)["made-by-virsh"]
    assert row["managed"] is False and row["state"] == "shut off"
    assert "unmanaged" in lab0.virtnet("list", "--all").stdout
    assert "not defined by virtnet" in lab0.virtnet("show", "made-by-virsh").stdout

    uuid = lab0.virsh("domuuid", "made-by-virsh").stdout.strip()
    clash = lab0.spec("made-by-virsh")
    refused = lab0.virtnet("define", str(clash), check=False)
    assert refused.returncode == 2
    assert "virtnet did not define it" in refused.stderr and refused.stderr.count("\n") == 1
    assert lab0.virsh("domuuid", "made-by-virsh").stdout.strip() == uuid
    assert "<metadata" not in lab0.virsh("dumpxml", "made-by-virsh").stdout


# What a user adds with virsh that virtnet has no field for.
HAND_ADDED = (
    "<watchdog model='i6300esb' action='reset'/>",
    "<rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>",
)


def inactive_xml(lab0: LabClient, name: str) -> str:
    return lab0.virsh("dumpxml", "--inactive", "--security-info", name).stdout


def changed_lines(diff: str) -> list[str]:
    """The -/+ lines of a unified diff, stripped of indentation (headers left out)."""
    return [
        line[0] + line[1:].strip()
        for line in diff.splitlines()
        if line[:1] in "-+" and not line.startswith(("---", "+++"))
    ]


def test_virsh_edits_survive_a_redefine_and_dry_run_shows_exactly_the_change(lab0: LabClient) -> None:
    lab0.virtnet("define", str(lab0.spec("edited")))
    root = etree.fromstring(inactive_xml(lab0, "edited").encode())
    devices = root.find("devices")
    for xml in HAND_ADDED:
        devices.append(etree.fromstring(xml))
    root.find("on_crash").text = "restart"
    address = root.find("devices/interface/address")
    address.set("slot", "0x0c")  # a device address moved by hand
    edited = lab0.workdir / "edited.xml"
    edited.write_text(etree.tostring(root, encoding="unicode"))
    lab0.virsh("define", str(edited))
    extra = lab0.workdir / "extra.img"
    extra.write_bytes(b"\0" * 1024 * 1024)
    lab0.virsh("attach-disk", "edited", str(extra), "vdz", "--config")
    before = inactive_xml(lab0, "edited")

    bigger = lab0.spec("edited", memory="512MiB")
    dry = lab0.virtnet("define", "--dry-run", str(bigger))
    assert inactive_xml(lab0, "edited") == before  # the dry run changed nothing
    assert "# OVS rows: no change" in dry.stdout
    lab0.virtnet("define", str(bigger))
    after = inactive_xml(lab0, "edited")

    # Exactly the change the dry run printed is what libvirt now holds.
    happened = unified(Domain.parse(before).to_xml(), Domain.parse(after).to_xml(), "a", "b")
    assert changed_lines(dry.stdout) == changed_lines(happened)
    assert '-<memory unit="KiB">262144</memory>' in changed_lines(happened)
    assert '+<memory unit="KiB">524288</memory>' in changed_lines(happened)

    root = etree.fromstring(after.encode())
    assert root.findtext("memory") == root.findtext("currentMemory") == str(512 * 1024)
    assert root.find("devices/watchdog").get("model") == "i6300esb"
    assert root.findtext("devices/rng/backend") == "/dev/urandom"
    assert root.findtext("on_crash") == "restart"
    assert root.find("devices/interface/address").get("slot") == "0x0c"
    assert root.find("devices/disk/target").get("dev") == "vdz"
    assert root.find("devices/disk/source").get("file") == str(extra)
