"""The key, certificate and CA an OVSDB `ssl:` remote is reached with (no ovs import: the CLI's
global options record them before any command decides whether it needs OVS at all)."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from pathlib import Path  # only a type here: pathlib is a measurable part of a port command's start


class OvsdbTls(NamedTuple):
    key: Path
    cert: Path
    ca: Path


_BY_REMOTE: dict[str, OvsdbTls] = {}


def remember(remote: str, tls: OvsdbTls) -> None:
    """Use these files whenever `remote` is opened in this process."""
    _BY_REMOTE[remote] = tls


def for_remote(remote: str) -> OvsdbTls | None:
    return _BY_REMOTE.get(remote)
