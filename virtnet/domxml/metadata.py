"""<metadata>: virtnet's own element, holding the spec a domain was made from.

libvirt keeps foreign-namespace metadata verbatim, so the spec travels with the domain (across
migration too) and virtnet needs no state of its own.
"""

from virtnet.domxml.namespaces import VIRTNET_NS
from virtnet.domxml.xmlbuilder import INT, XMLBuilder, XMLChild, XMLProperty


class Keep(XMLBuilder):
    """<virtnet:keep path=...>: a field of an adopted domain the spec renders otherwise, left as it was."""

    TAG = f"{{{VIRTNET_NS}}}keep"
    path = XMLProperty("@path")


class VirtnetInfo(XMLBuilder):
    """<virtnet:vm>: the spec as canonical JSON, and the schema version it follows."""

    TAG = f"{{{VIRTNET_NS}}}vm"
    version = XMLProperty("@version", INT)
    spec_json = XMLProperty(f"{{{VIRTNET_NS}}}spec")
    kept = XMLChild(Keep, many=True)


class Metadata(XMLBuilder):
    TAG = "metadata"
    virtnet = XMLChild(VirtnetInfo)
