"""<memoryBacking>: hugepages, shared access, immediate allocation."""

from __future__ import annotations

from typing import TYPE_CHECKING

from virtnet.domxml.xmlbuilder import INT, XMLBuilder, XMLChild, XMLProperty
from virtnet.units import KIB, parse_size

if TYPE_CHECKING:
    from virtnet.domxml.domain import Domain


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


def page_size_kib(domain: Domain, default_kib: int = 2048) -> int | None:
    """The hugepage size backing the guest in KiB (the host's default when no <page> says), or None.

    The one place a domain's hugepage size is read: pre-flight, host checks and adoption agree.
    """
    backing = domain.memory_backing
    if backing is None or backing.hugepages is None:
        return None
    pages = backing.hugepages.pages
    if not pages or pages[0].size_kib is None:
        return default_kib
    return parse_size(f"{pages[0].size_kib}{pages[0].unit or 'KiB'}") // KIB
