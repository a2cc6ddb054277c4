"""What a define would change, as unified diffs: of the domain XML and of the VM's OVSDB rows."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Protocol


class PortRow(Protocol):
    """A vhost-user port as OVS holds it (virtnet.ovs.commands.PortSnapshot)."""

    bridge: str
    name: str
    type: str
    options: dict[str, str]
    external_ids: dict[str, str]
    mtu_request: list[int]


def unified(before: str, after: str, before_name: str, after_name: str) -> str:
    """A unified diff, empty when nothing changes."""
    lines = difflib.unified_diff(
        before.splitlines(keepends=True), after.splitlines(keepends=True), before_name, after_name
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def port_text(rows: Sequence[PortRow]) -> str:
    """The rows as `ovs-vsctl list` would name their columns, one column a line, sorted."""
    lines = []
    for row in sorted(rows, key=lambda r: r.name):
        lines.append(f"Port {row.name} (bridge {row.bridge})\n")
        lines.append(f"  type={row.type}\n")
        lines += [f"  options:{key}={value}\n" for key, value in sorted(row.options.items())]
        lines += [f"  mtu_request={mtu}\n" for mtu in row.mtu_request]
        lines += [f"  external_ids:{key}={value}\n" for key, value in sorted(row.external_ids.items())]
    return "".join(lines)
