"""<disk>: an image file attached as a disk or cdrom."""

from virtnet.domxml.xmlbuilder import FLAG, XMLBuilder, XMLProperty


class Disk(XMLBuilder):
    TAG = "disk"
    type = XMLProperty("@type")
    device = XMLProperty("@device")
    driver_name = XMLProperty("driver/@name")
    driver_type = XMLProperty("driver/@type")
    driver_cache = XMLProperty("driver/@cache")
    source_file = XMLProperty("source/@file")
    target_dev = XMLProperty("target/@dev")
    target_bus = XMLProperty("target/@bus")
    readonly = XMLProperty("readonly", FLAG)
