"""<domain>: the root element, in the order libvirt itself writes it."""

from virtnet.domxml.cpu import Cpu
from virtnet.domxml.cputune import CpuTune
from virtnet.domxml.devices import Devices
from virtnet.domxml.features import Features
from virtnet.domxml.memory import MemoryBacking
from virtnet.domxml.metadata import Metadata
from virtnet.domxml.os import Os
from virtnet.domxml.qemu import QemuCommandline
from virtnet.domxml.xmlbuilder import INT, XMLBuilder, XMLChild, XMLProperty


class Domain(XMLBuilder):
    TAG = "domain"
    type = XMLProperty("@type")
    name = XMLProperty("name")
    uuid = XMLProperty("uuid")
    title = XMLProperty("title")
    description = XMLProperty("description")
    metadata = XMLChild(Metadata)
    memory_kib = XMLProperty("memory", INT)
    memory_unit = XMLProperty("memory/@unit")
    current_memory_kib = XMLProperty("currentMemory", INT)
    current_memory_unit = XMLProperty("currentMemory/@unit")
    memory_backing = XMLChild(MemoryBacking)
    vcpus = XMLProperty("vcpu", INT)
    vcpu_placement = XMLProperty("vcpu/@placement")
    vcpu_cpuset = XMLProperty("vcpu/@cpuset")  # read only: virsh's `vcpu cpuset=` pins all vCPUs
    cputune = XMLChild(CpuTune)
    os = XMLChild(Os)
    features = XMLChild(Features)
    cpu = XMLChild(Cpu)
    devices = XMLChild(Devices)
    qemu_commandline = XMLChild(QemuCommandline)
