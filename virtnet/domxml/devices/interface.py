"""<interface>: user-mode (slirp/passt), vhost-user and Linux bridge NICs."""

from virtnet.domxml.xmlbuilder import INT, XMLBuilder, XMLChild, XMLProperty


class PortRange(XMLBuilder):
    """<range start=host_port to=guest_port> inside <portForward>."""

    TAG = "range"
    start = XMLProperty("@start", INT)
    to = XMLProperty("@to", INT)


class PortForward(XMLBuilder):
    """<portForward>: host ports forwarded into the guest (passt backend only)."""

    TAG = "portForward"
    proto = XMLProperty("@proto")
    address = XMLProperty("@address")
    ranges = XMLChild(PortRange, many=True)


class Interface(XMLBuilder):
    TAG = "interface"
    type = XMLProperty("@type")
    mac = XMLProperty("mac/@address")
    source_type = XMLProperty("source/@type")
    source_path = XMLProperty("source/@path")
    source_mode = XMLProperty("source/@mode")
    source_bridge = XMLProperty("source/@bridge")
    port_forwards = XMLChild(PortForward, many=True)
    model = XMLProperty("model/@type")
    # 'vhost' (the kernel's vhost-net) or 'qemu' (QEMU's userspace virtio): which backend moves packets.
    driver_name = XMLProperty("driver/@name")
    # libvirt turns queues=N into QEMU's mq=on,vectors=2N+2: nobody has to compute vectors.
    queues = XMLProperty("driver/@queues", INT)
    mtu = XMLProperty("mtu/@size", INT)
    backend_type = XMLProperty("backend/@type")
