"""<features>: the hypervisor features the guest sees."""

from virtnet.domxml.xmlbuilder import FLAG, XMLBuilder, XMLProperty


class Features(XMLBuilder):
    TAG = "features"
    acpi = XMLProperty("acpi", FLAG)
    apic = XMLProperty("apic", FLAG)
