"""The secrets domain XML carries (the graphics password), shown only where the user asks for them.

libvirt needs the password in <graphics passwd>, so the XML virtnet defines has it; the XML virtnet
prints (`virtnet xml`, `define --dry-run`, `migrate --dry-run --json`) shows REDACTED in its place
unless `virtnet xml --show-secrets` asks for the real one. The spec virtnet stores never holds it
(virtnet.spec.codec), and libvirt leaves it out of the XML it returns without VIR_DOMAIN_XML_SECURE.
"""

from __future__ import annotations

from virtnet.domxml.domain import Domain

REDACTED = "<secret: not shown>"  # the words the cloud-init seed's printout uses too
SHOW_HOW = "virtnet: note: the graphics password is not shown; `virtnet xml --show-secrets` prints it"


def hide_passwords(domain: Domain) -> bool:
    """Put REDACTED in place of each graphics password; whether there was one."""
    hidden = False
    for graphics in domain.devices.graphics if domain.devices is not None else []:
        if graphics.passwd:
            graphics.passwd = REDACTED
            hidden = True
    return hidden


def without_passwords(xml: str) -> str:
    """Domain XML with REDACTED in place of each graphics password."""
    domain = Domain.parse(xml)
    return domain.to_xml() if hide_passwords(domain) else xml
