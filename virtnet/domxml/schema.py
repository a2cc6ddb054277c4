"""Validation of rendered XML against libvirt's own RelaxNG schema."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from lxml import etree

from virtnet.domxml.xmlbuilder import XMLBuilder
from virtnet.errors import SchemaValidationError

DOMAIN_RNG = Path("/usr/share/libvirt/schemas/domain.rng")


@cache
def _domain_schema(path: Path = DOMAIN_RNG) -> etree.RelaxNG:
    if not path.exists():
        raise SchemaValidationError(f"{path} is missing; install libvirt-daemon (it ships the schemas)")
    return etree.RelaxNG(etree.parse(str(path)))


def validate_domain(domain: XMLBuilder) -> None:
    """Raise SchemaValidationError naming the first offending line when libvirt's schema rejects it."""
    schema = _domain_schema()
    document = etree.fromstring(domain.to_xml())
    if not schema.validate(document):
        error = schema.error_log.last_error
        raise SchemaValidationError(
            f"rendered XML fails libvirt's domain.rng at line {error.line}: {error.message} "
            "(a virtnet bug; please report it with the spec)"
        )
