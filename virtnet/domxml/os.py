"""<os>: machine type, boot order and direct kernel boot."""

from virtnet.domxml.xmlbuilder import XMLBuilder, XMLChild, XMLProperty


class BootDevice(XMLBuilder):
    TAG = "boot"
    dev = XMLProperty("@dev")


class Os(XMLBuilder):
    TAG = "os"
    type = XMLProperty("type")
    arch = XMLProperty("type/@arch")
    machine = XMLProperty("type/@machine")
    kernel = XMLProperty("kernel")
    initrd = XMLProperty("initrd")
    cmdline = XMLProperty("cmdline")
    boot_devices = XMLChild(BootDevice, many=True)
