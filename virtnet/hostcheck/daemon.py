"""Which local process answers a libvirt URI, so checks can read its view (its mount namespace).

A libvirtd may run in a mount namespace of its own (a container, or virtnet's lab), where its
hugetlbfs mounts differ from the caller's. The daemon is the process holding the listening socket.
"""

from __future__ import annotations

import socket
import struct
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

LIBVIRTD_TCP_PORT = 16509
LIBVIRTD_TLS_PORT = 16514
SYSTEM_SOCKET = "/run/libvirt/libvirt-sock"


def daemon_pid(uri: str, proc: Path = Path("/proc")) -> int | None:
    """The PID listening for `uri` on this machine, or None when it cannot be told."""
    parts = urlsplit(uri)
    transport = parts.scheme.partition("+")[2]
    if transport in ("tcp", "tls"):
        default_port = LIBVIRTD_TCP_PORT if transport == "tcp" else LIBVIRTD_TLS_PORT
        inode = _tcp_listener(proc, parts.hostname or "127.0.0.1", parts.port or default_port)
    elif transport in ("", "unix") and not parts.hostname:
        path = parse_qs(parts.query).get("socket", [SYSTEM_SOCKET])[0]
        inode = _unix_listener(proc, path)
    else:
        return None
    return _owner(proc, inode) if inode else None


def _tcp_listener(proc: Path, host: str, port: int) -> int | None:
    try:
        wanted = socket.inet_aton(socket.gethostbyname(host))
    except OSError:
        return None
    for line in _lines(proc / "net" / "tcp"):
        fields = line.split()
        local, state, inode = fields[1], fields[3], fields[9]
        address, _, hex_port = local.partition(":")
        if state != "0A" or int(hex_port, 16) != port:  # 0A: LISTEN
            continue
        raw = struct.pack("<I", int(address, 16))
        if raw in (wanted, b"\0\0\0\0"):
            return int(inode)
    return None


def _unix_listener(proc: Path, path: str) -> int | None:
    for line in _lines(proc / "net" / "unix"):
        fields = line.split()
        if len(fields) >= 8 and fields[7] == path and fields[5] == "01":  # 01: listening
            return int(fields[6])
    return None


def _owner(proc: Path, inode: int) -> int | None:
    target = f"socket:[{inode}]"
    for fd_dir in proc.glob("[0-9]*/fd"):
        try:
            if any(str(fd.readlink()) == target for fd in fd_dir.iterdir()):
                return int(fd_dir.parent.name)
        except OSError:
            continue  # gone, or not ours to read
    return None


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text().splitlines()[1:]
    except OSError:
        return []
