"""First-boot provisioning with cloud-init: the NoCloud seed a spec's [cloud_init] becomes."""

from virtnet.cloudinit.seed import Seed, build_seed

__all__ = ["Seed", "build_seed"]
