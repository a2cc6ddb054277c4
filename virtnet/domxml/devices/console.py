"""<serial> and <console>: the guest's serial port, as `virsh console` reaches it."""

from virtnet.domxml.xmlbuilder import INT, ON_OFF, XMLBuilder, XMLProperty


class Serial(XMLBuilder):
    TAG = "serial"
    type = XMLProperty("@type")
    source_path = XMLProperty("source/@path")
    log_file = XMLProperty("log/@file")
    log_append = XMLProperty("log/@append", ON_OFF)
    target_port = XMLProperty("target/@port", INT)


class Console(XMLBuilder):
    TAG = "console"
    type = XMLProperty("@type")
    source_path = XMLProperty("source/@path")
    target_type = XMLProperty("target/@type")
    target_port = XMLProperty("target/@port", INT)
