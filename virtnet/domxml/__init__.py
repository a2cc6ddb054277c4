"""Domain XML: element classes, the spec -> XML designer, and schema validation."""

from typing import TYPE_CHECKING

from virtnet.lazy import lazy_exports

if TYPE_CHECKING:
    from virtnet.domxml.designer import HostChoices, render_domain
    from virtnet.domxml.domain import Domain
    from virtnet.domxml.schema import validate_domain

__all__ = ["Domain", "HostChoices", "render_domain", "validate_domain"]
__getattr__ = lazy_exports(
    __name__,
    {
        "Domain": "virtnet.domxml.domain",
        "HostChoices": "virtnet.domxml.designer",
        "render_domain": "virtnet.domxml.designer",
        "validate_domain": "virtnet.domxml.schema",
    },
)
