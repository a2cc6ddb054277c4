"""OVSDB remotes a client can connect to: checked before python-ovs sees them.

python-ovs takes any string: "garbage" fails as "Address family not supported", tcp:300.1.1.1:6640
as "Connection refused", and a port above 65535 with an OverflowError from the socket module. The
forms are ovsdb-server's active connection methods, with the port python-ovs needs (it has no default).
Importing this module does not import python-ovs.
"""

from __future__ import annotations

import ipaddress
import re

FORMS = "unix:PATH, tcp:HOST:PORT or ssl:HOST:PORT"
_INET = re.compile(r"(?:ssl|tcp):(?:\[(?P<ipv6>[^\]]+)\]|(?P<host>[^\s:\[\]]+)):(?P<port>\d+)")
_PASSIVE = ("punix:", "ptcp:", "pssl:")


def problem(remote: str) -> str | None:
    """Why `remote` is not an OVSDB remote to connect to, with the fix; None when it is one."""
    if remote.startswith("unix:") and len(remote) > len("unix:"):
        return None
    if remote.startswith(_PASSIVE):
        return f"{remote!r} is a remote ovsdb-server listens on; a client connects with {FORMS}"
    found = _INET.fullmatch(remote)
    if found is None:
        return f"{remote!r} is not an OVSDB remote; use {FORMS}"
    if found["ipv6"] is not None:
        try:
            ipaddress.IPv6Address(found["ipv6"])
        except ValueError:
            return f"{remote!r}: [{found['ipv6']}] is not an IPv6 address; write e.g. tcp:[::1]:6640"
    elif re.fullmatch(r"[\d.]+", found["host"]):
        try:
            ipaddress.IPv4Address(found["host"])
        except ValueError:
            return f"{remote!r}: {found['host']} is not an IPv4 address; write e.g. tcp:192.0.2.10:6640"
    if not 0 < int(found["port"]) < 65536:
        return (
            f"{remote!r}: port {found['port']} is out of range; use a port from 1 to 65535 (OVSDB's is 6640)"
        )
    return None
