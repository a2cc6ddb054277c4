"""<cputune>: vCPU and emulator pinning, what `taskset` did by hand."""

from virtnet.domxml.xmlbuilder import INT, XMLBuilder, XMLChild, XMLProperty


class VcpuPin(XMLBuilder):
    TAG = "vcpupin"
    vcpu = XMLProperty("@vcpu", INT)
    cpuset = XMLProperty("@cpuset")


class EmulatorPin(XMLBuilder):
    TAG = "emulatorpin"
    cpuset = XMLProperty("@cpuset")


class IOThreadPin(XMLBuilder):
    TAG = "iothreadpin"
    cpuset = XMLProperty("@cpuset")


class CpuTune(XMLBuilder):
    TAG = "cputune"
    vcpupins = XMLChild(VcpuPin, many=True)
    emulatorpin = XMLChild(EmulatorPin)
    iothreadpins = XMLChild(IOThreadPin, many=True)  # read only: other tools' pins count as taken
