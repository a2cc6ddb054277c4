"""Many hosts: the hosts file, the fleet view, placement and evacuation."""
