"""The walkthrough's VMs: golden XML, libvirt's schema, the round trip, and the settings that matter.

Golden files show what a Debian 12 KVM host gets: virt type kvm for 'auto', and port forwards as
QEMU hostfwd arguments (libvirt 9.0 refuses the passt backend). `make golden` rewrites them.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import libvirt
import pytest
from lxml import etree
from support import EXAMPLES, ROOT, add_volume

from virtnet.domxml import Domain, HostChoices, render_domain, validate_domain
from virtnet.inventory import spec_of_xml
from virtnet.spec import VMSpec, load_spec_file

GOLDEN_DIR = ROOT / "xml"
ids = [path.stem for path in EXAMPLES]


def golden_choices(spec: VMSpec) -> HostChoices:
    return HostChoices(
        virt_type="kvm" if spec.virt_type == "auto" else spec.virt_type, forward_style="qemu-args"
    )


def render_example(path: Path) -> tuple[VMSpec, Domain]:
    spec = load_spec_file(path)
    return spec, render_domain(spec, golden_choices(spec))


def golden(name: str) -> etree._Element:
    return etree.parse(str(GOLDEN_DIR / f"{name}.xml")).getroot()


@pytest.mark.parametrize("example", EXAMPLES, ids=ids)
def test_golden_xml(example: Path, request: pytest.FixtureRequest) -> None:
    _, domain = render_example(example)
    rendered = domain.to_xml()
    target = GOLDEN_DIR / f"{example.stem}.xml"
    if request.config.getoption("--update-golden"):
        target.write_text(rendered)
    expected = target.read_text()
    diff = "".join(
        difflib.unified_diff(expected.splitlines(True), rendered.splitlines(True), str(target), "rendered")
    )
    assert rendered == expected, f"run `make golden` if this change is intended:\n{diff}"


def test_every_golden_file_has_an_example() -> None:
    assert {p.stem for p in GOLDEN_DIR.glob("*.xml")} == set(ids)


def test_there_is_an_example_per_walkthrough_scenario() -> None:
    assert set(ids) == {
        "install-vm",
        "kvm-ssh-vm",
        "vhostuser-vm",
        "multiqueue-vm",
        "migration-vm1",
        "migration-vm2",
    }


@pytest.mark.parametrize("example", EXAMPLES, ids=ids)
@pytest.mark.parametrize("style", ["qemu-args", "passt"])
def test_schema_valid(example: Path, style: str) -> None:
    spec = load_spec_file(example)
    validate_domain(render_domain(spec, HostChoices(virt_type="qemu", forward_style=style)))  # type: ignore[arg-type]


@pytest.mark.parametrize("example", EXAMPLES, ids=ids)
def test_spec_round_trips_through_the_xml(example: Path) -> None:
    spec, domain = render_example(example)
    assert spec_of_xml(domain.to_xml()) == spec
    assert Domain.parse(domain.to_xml()) == domain


@pytest.mark.parametrize("example", EXAMPLES, ids=ids)
def test_libvirt_accepts_it(example: Path, testdriver: libvirt.virConnect) -> None:
    spec, domain = render_example(example)
    for disk in spec.disks:
        if disk.device == "cdrom":
            add_volume(testdriver, "default-pool", "install.iso")
            domain.devices.disks[-1].source_file = "/default-pool/install.iso"
    dom = testdriver.defineXMLFlags(domain.to_xml(), libvirt.VIR_DOMAIN_DEFINE_VALIDATE)
    assert dom.name() == spec.name
    # libvirt keeps virtnet's metadata, so the spec comes back from libvirt alone.
    assert spec_of_xml(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_SECURE)) == spec


def test_multiqueue_vm_has_the_walkthrough_settings() -> None:
    root = golden("multiqueue-vm")
    assert root.get("type") == "kvm"
    assert root.findtext("vcpu") == "2"
    topology = root.find("cpu/topology")
    assert (topology.get("sockets"), topology.get("cores"), topology.get("threads")) == ("1", "2", "1")
    assert root.findtext("memory") == str(4 * 1024 * 1024) and root.find("memory").get("unit") == "KiB"
    assert root.find("memoryBacking/hugepages/page").attrib == {"size": "2048", "unit": "KiB"}
    assert root.find("memoryBacking/access").get("mode") == "shared"
    assert root.find("memoryBacking/allocation").get("mode") == "immediate"  # -mem-prealloc
    assert [c.get("memAccess") for c in root.iterfind("cpu/numa/cell")] == ["shared"]
    vhost = root.find("devices/interface[@type='vhostuser']")
    assert vhost.find("driver").get("queues") == "4"  # libvirt: mq=on,vectors=10
    assert vhost.find("source").attrib == {
        "type": "unix",
        "path": "/run/virtnet/vhost/sock0",
        "mode": "server",
    }
    assert vhost.find("mac").get("address") == "00:00:00:00:00:01"


def test_vhostuser_vm_is_pinned_like_taskset() -> None:
    root = golden("vhostuser-vm")
    pins = {p.get("vcpu"): p.get("cpuset") for p in root.iterfind("cputune/vcpupin")}
    assert pins == {"0": "3", "1": "4"}
    assert root.find("cputune/emulatorpin").get("cpuset") == "5-6"
    assert root.find("devices/interface[@type='vhostuser']/driver") is None  # one queue: no mq
    assert root.find("devices/memballoon").get("model") == "none"


def test_install_vm_has_media_and_gui_devices() -> None:
    root = golden("install-vm")
    disk, cdrom = root.findall("devices/disk")
    assert disk.find("driver").attrib == {"name": "qemu", "type": "qcow2", "cache": "writethrough"}
    assert disk.find("target").attrib == {"dev": "vda", "bus": "virtio"}
    assert cdrom.get("device") == "cdrom" and cdrom.find("readonly") is not None
    assert [b.get("dev") for b in root.iterfind("os/boot")] == ["cdrom", "hd"]
    assert root.find("devices/video/model").get("type") == "virtio"  # virtio-gpu-pci
    assert root.find("devices/controller[@type='usb']").get("model") == "qemu-xhci"
    assert {(i.get("type"), i.get("bus")) for i in root.iterfind("devices/input")} == {
        ("keyboard", "usb"),
        ("tablet", "usb"),
    }
    assert root.find("devices/sound").get("model") == "ich6"  # intel-hda
    assert root.find("devices/sound/codec").get("type") == "duplex"  # hda-duplex
    assert root.find("devices/graphics").get("type") == "vnc"
    assert root.find("devices/serial").get("type") == "pty"
    assert root.find("devices/interface").get("type") == "user"


def test_kvm_ssh_vm_forwards_ssh() -> None:
    root = golden("kvm-ssh-vm")
    assert root.get("type") == "kvm"
    assert root.find("cpu").get("mode") == "host-passthrough"
    qemu = "{http://libvirt.org/schemas/domain/qemu/1.0}"
    args = [a.get("value") for a in root.iterfind(f"{qemu}commandline/{qemu}arg")]
    assert args[0] == "-netdev" and "hostfwd=tcp:127.0.0.1:10122-:22" in args[1]
    assert args[2] == "-device" and args[3].startswith("virtio-net-pci,netdev=virtnet-user0,mac=")
    assert root.find("devices/interface") is None  # the user NIC lives in the QEMU arguments


def test_migration_vms_differ_only_where_the_walkthrough_does() -> None:
    one, two = golden("migration-vm1"), golden("migration-vm2")
    sock = "devices/interface[@type='vhostuser']/source"
    assert (one.find(sock).get("path"), two.find(sock).get("path")) == (
        "/run/virtnet/vhost/sock0",
        "/run/virtnet/vhost/sock1",
    )
    assert one.find("devices/interface[@type='vhostuser']/driver").get("queues") == "4"
    assert one.find("devices/disk/source").get("file") == "/srv/shared/debian-mig1.qcow2"
