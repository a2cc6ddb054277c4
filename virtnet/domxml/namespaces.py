"""virtnet's XML namespace in a domain's <metadata>, importable without lxml (`virtnet list` reads it)."""

VIRTNET_NS = "https://virtnet.dev/xmlns/domain/1.0"
VIRTNET_PREFIX = "virtnet"
