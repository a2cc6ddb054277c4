"""USB controller, input devices, sound and the memory balloon."""

from virtnet.domxml.xmlbuilder import XMLBuilder, XMLProperty


class Controller(XMLBuilder):
    TAG = "controller"
    type = XMLProperty("@type")
    model = XMLProperty("@model")


class Input(XMLBuilder):
    TAG = "input"
    type = XMLProperty("@type")
    bus = XMLProperty("@bus")


class Sound(XMLBuilder):
    TAG = "sound"
    model = XMLProperty("@model")
    codec = XMLProperty("codec/@type")


class MemBalloon(XMLBuilder):
    TAG = "memballoon"
    model = XMLProperty("@model")
