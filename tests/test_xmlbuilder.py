"""The declarative builder: one declaration builds, parses and edits, in libvirt's element order."""

from __future__ import annotations

from virtnet.domxml.devices import Devices, Interface
from virtnet.domxml.domain import Domain
from virtnet.domxml.memory import Hugepages, MemoryBacking, Page
from virtnet.domxml.xmlbuilder import FLAG, INT, XMLBuilder, XMLChild, XMLProperty


def test_children_follow_declaration_order_whatever_the_assignment_order() -> None:
    domain = Domain()
    domain.devices = Devices()
    domain.vcpus = 2
    domain.name = "vm"
    domain.memory_kib = 1024
    tags = [child.tag for child in domain.node]
    assert tags == ["name", "memory", "vcpu", "devices"]


def test_parse_reads_what_build_wrote() -> None:
    backing = MemoryBacking(access_mode="shared", allocation_mode="immediate")
    backing.hugepages = Hugepages(pages=[Page(size_kib=2048, unit="KiB")])
    parsed = MemoryBacking.parse(backing.to_xml())
    assert parsed == backing
    assert parsed.access_mode == "shared"
    assert parsed.hugepages.pages[0].size_kib == 2048


def test_editing_parsed_xml_keeps_what_it_does_not_declare() -> None:
    xml = """<domain type='kvm'><name>vm</name><clock offset='utc'/>
      <devices><interface type='vhostuser'><mac address='52:54:00:00:00:01'/>
      <address type='pci' bus='0x01'/></interface></devices></domain>"""
    domain = Domain.parse(xml)
    iface = domain.devices.interfaces[0]
    iface.queues = 4
    iface.source_path = "/run/s0"
    out = Domain.parse(domain.to_xml())
    assert out.node.find("clock").get("offset") == "utc"  # a user's `virsh edit` survives
    assert out.node.find("devices/interface/address").get("bus") == "0x01"
    assert out.devices.interfaces[0].queues == 4
    assert out.devices.interfaces[0].source_path == "/run/s0"


def test_setting_none_removes_and_prunes_empty_parents() -> None:
    iface = Interface(type="vhostuser", queues=4)
    assert iface.node.find("driver") is not None
    iface.queues = None
    assert iface.node.find("driver") is None
    assert iface.queues is None


def test_flags_are_element_presence() -> None:
    class Feature(XMLBuilder):
        TAG = "features"
        acpi = XMLProperty("acpi", FLAG)

    features = Feature(acpi=True)
    assert features.to_xml().strip() == "<features>\n  <acpi/>\n</features>"
    assert Feature.parse(features.to_xml()).acpi is True
    features.acpi = False
    assert features.acpi is False and len(features.node) == 0


def test_child_lists_are_placed_in_declaration_order() -> None:
    class Cell(XMLBuilder):
        TAG = "cell"
        id = XMLProperty("@id", INT)

    class Parent(XMLBuilder):
        TAG = "parent"
        cells = XMLChild(Cell, many=True)
        name = XMLProperty("name")

    parent = Parent(name="p")
    parent.cells = [Cell(id=0), Cell(id=1)]
    assert [c.tag for c in parent.node] == ["cell", "cell", "name"]
    assert [c.id for c in parent.cells] == [0, 1]


def test_unknown_property_is_a_type_error() -> None:
    try:
        Interface(queue=4)
    except TypeError as err:
        assert "queue" in str(err)
    else:
        raise AssertionError("expected TypeError")
