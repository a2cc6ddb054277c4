"""virtnet: high-performance VMs on libvirt, with OVS-DPDK vhost-user networking."""

__version__ = "0.1.0"
