"""The declarative VM spec."""

from typing import TYPE_CHECKING

from virtnet.lazy import lazy_exports

if TYPE_CHECKING:
    from virtnet.spec.load import load_spec_file, spec_from_dict
    from virtnet.spec.models import VMSpec

__all__ = ["VMSpec", "load_spec_file", "spec_from_dict"]
__getattr__ = lazy_exports(
    __name__,
    {
        "VMSpec": "virtnet.spec.models",
        "load_spec_file": "virtnet.spec.load",
        "spec_from_dict": "virtnet.spec.load",
    },
)
