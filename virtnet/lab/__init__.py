"""A throwaway lab: libvirt hosts with OVS-DPDK on one machine, for tests, benchmarks and the demo."""
