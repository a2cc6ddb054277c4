"""<graphics> and <video>: what virt-manager and virt-viewer show."""

from virtnet.domxml.xmlbuilder import INT, YES_NO, XMLBuilder, XMLProperty


class Graphics(XMLBuilder):
    TAG = "graphics"
    type = XMLProperty("@type")
    port = XMLProperty("@port", INT)
    autoport = XMLProperty("@autoport", YES_NO)
    passwd = XMLProperty("@passwd")
    listen = XMLProperty("@listen")  # libvirt's older form, still written beside <listen>: read only
    listen_type = XMLProperty("listen/@type")
    listen_address = XMLProperty("listen/@address")


class Video(XMLBuilder):
    TAG = "video"
    model = XMLProperty("model/@type")
