"""<qemu:commandline>: extra QEMU arguments, for what the connected libvirt cannot express."""

from virtnet.domxml.xmlbuilder import XMLBuilder, XMLChild, XMLProperty

QEMU_NS = "http://libvirt.org/schemas/domain/qemu/1.0"


class QemuArg(XMLBuilder):
    TAG = f"{{{QEMU_NS}}}arg"
    value = XMLProperty("@value")


class QemuCommandline(XMLBuilder):
    TAG = f"{{{QEMU_NS}}}commandline"
    args = XMLChild(QemuArg, many=True)
