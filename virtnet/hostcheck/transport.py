"""How virtnet reaches libvirtd: a URI over plain TCP that needed no credentials is open to anyone."""

from __future__ import annotations

from urllib.parse import urlsplit

from virtnet.hostcheck.finding import Finding


def transport_findings(uri: str) -> list[Finding]:
    """For a URI virtnet just connected with: warn when it is TCP and so had no authentication.

    virtnet opens connections without an auth callback, so a tcp:// connection that succeeded was
    one libvirtd let in without asking (auth_tcp = "none"): unencrypted and unauthenticated.
    """
    scheme = urlsplit(uri).scheme
    if not scheme.endswith("+tcp"):
        return []
    tls_uri = uri.replace("+tcp://", "+tls://", 1)
    return [
        Finding(
            "transport",
            "warn",
            f"{uri} is plain TCP that asked no credentials: anyone who reaches the port controls "
            "libvirtd, and migration and console traffic is readable on the wire",
            f"listen_tls = 1 with certificates in libvirtd.conf and connect with {tls_uri}",
        )
    ]
