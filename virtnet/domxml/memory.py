"""<memoryBacking>: hugepages, shared access, immediate allocation."""

from virtnet.domxml.xmlbuilder import INT, XMLBuilder, XMLChild, XMLProperty


class Page(XMLBuilder):
    """<page> inside <hugepages>: the page size backing guest memory."""

    TAG = "page"
    size_kib = XMLProperty("@size", INT)
    unit = XMLProperty("@unit")


class Hugepages(XMLBuilder):
    TAG = "hugepages"
    pages = XMLChild(Page, many=True)


class MemoryBacking(XMLBuilder):
    TAG = "memoryBacking"
    hugepages = XMLChild(Hugepages)
    access_mode = XMLProperty("access/@mode")
    allocation_mode = XMLProperty("allocation/@mode")
