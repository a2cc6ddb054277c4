"""Domain XML: element classes, the spec -> XML designer, and schema validation."""

from virtnet.domxml.designer import HostChoices, render_domain
from virtnet.domxml.domain import Domain
from virtnet.domxml.schema import validate_domain

__all__ = ["Domain", "HostChoices", "render_domain", "validate_domain"]
