"""<memoryBacking>: hugepages, shared access, immediate allocation."""

from virtnet.domxml.xmlbuilder import INT, XMLBuilder, XMLChild, XMLProperty


class Page(XMLBuilder):
    """<page> inside <hugepages>: one page size, optionally for some guest NUMA nodes."""

    TAG = "page"
    size_kib = XMLProperty("@size", INT)
    unit = XMLProperty("@unit")
    nodeset = XMLProperty("@nodeset")


class Hugepages(XMLBuilder):
    TAG = "hugepages"
    pages = XMLChild(Page, many=True)


class MemoryBacking(XMLBuilder):
    TAG = "memoryBacking"
    hugepages = XMLChild(Hugepages)
    source_type = XMLProperty("source/@type")
    access_mode = XMLProperty("access/@mode")
    allocation_mode = XMLProperty("allocation/@mode")
