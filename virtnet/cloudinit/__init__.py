"""First-boot provisioning with cloud-init: the NoCloud seed a spec's [cloud_init] becomes."""

from typing import TYPE_CHECKING

from virtnet.lazy import lazy_exports

if TYPE_CHECKING:
    from virtnet.cloudinit.seed import Seed, build_seed

__all__ = ["Seed", "build_seed"]
__getattr__ = lazy_exports(
    __name__, {"Seed": "virtnet.cloudinit.seed", "build_seed": "virtnet.cloudinit.seed"}
)
