"""<cpu>: mode, topology and guest NUMA cells."""

from virtnet.domxml.xmlbuilder import INT, XMLBuilder, XMLChild, XMLProperty


class Cell(XMLBuilder):
    """<cell> of <numa>: a guest NUMA node with its vCPUs and memory."""

    TAG = "cell"
    id = XMLProperty("@id", INT)
    cpus = XMLProperty("@cpus")
    memory_kib = XMLProperty("@memory", INT)
    unit = XMLProperty("@unit")
    mem_access = XMLProperty("@memAccess")


class Numa(XMLBuilder):
    TAG = "numa"
    cells = XMLChild(Cell, many=True)


class Cpu(XMLBuilder):
    TAG = "cpu"
    mode = XMLProperty("@mode")
    model = XMLProperty("model")  # a named CPU model (virt-install's --cpu Haswell): read by pre-flight
    sockets = XMLProperty("topology/@sockets", INT)
    dies = XMLProperty("topology/@dies", INT)
    cores = XMLProperty("topology/@cores", INT)
    threads = XMLProperty("topology/@threads", INT)
    numa = XMLChild(Numa)
