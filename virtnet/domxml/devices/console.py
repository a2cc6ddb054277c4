"""<serial>, <console> and <channel>: the serial port `virsh console` reaches, and the agent's channel."""

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


class Channel(XMLBuilder):
    """<channel type='unix'> with a virtio target: the guest agent's port (libvirt picks the socket)."""

    TAG = "channel"
    type = XMLProperty("@type")
    target_type = XMLProperty("target/@type")
    target_name = XMLProperty("target/@name")
