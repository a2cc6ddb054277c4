"""The declarative VM spec."""

from virtnet.spec.load import load_spec_file, spec_from_dict
from virtnet.spec.models import VMSpec

__all__ = ["VMSpec", "load_spec_file", "spec_from_dict"]
