"""<devices> and the device elements virtnet writes."""

from virtnet.domxml.devices.console import Channel, Console, Serial
from virtnet.domxml.devices.disk import Disk
from virtnet.domxml.devices.graphics import Graphics, Video
from virtnet.domxml.devices.interface import Interface, PortForward, PortRange
from virtnet.domxml.devices.peripherals import Controller, Input, MemBalloon, Sound
from virtnet.domxml.xmlbuilder import XMLBuilder, XMLChild


class Devices(XMLBuilder):
    TAG = "devices"
    disks = XMLChild(Disk, many=True)
    controllers = XMLChild(Controller, many=True)
    interfaces = XMLChild(Interface, many=True)
    serials = XMLChild(Serial, many=True)
    consoles = XMLChild(Console, many=True)
    channels = XMLChild(Channel, many=True)
    inputs = XMLChild(Input, many=True)
    graphics = XMLChild(Graphics, many=True)
    sounds = XMLChild(Sound, many=True)
    videos = XMLChild(Video, many=True)
    memballoon = XMLChild(MemBalloon)


__all__ = [
    "Channel",
    "Console",
    "Controller",
    "Devices",
    "Disk",
    "Graphics",
    "Input",
    "Interface",
    "MemBalloon",
    "PortForward",
    "PortRange",
    "Serial",
    "Sound",
    "Video",
]
