"""`virtnet list`: what the typer command and the launcher's fast path both print."""

from __future__ import annotations

import json

from virtnet.units import KIB, format_size

COLUMNS = ("Id", "Name", "State", "Type", "vCPUs", "Memory", "Managed")


def list_output(uri: str | None, *, include_inactive: bool, as_json: bool) -> str:
    """Connect, read each domain, and return the table (or JSON) `virtnet list` prints."""
    from virtnet.inventory import list_domains
    from virtnet.virt.host import Host

    with Host.open(uri) as host:
        views = list_domains(host, include_inactive=include_inactive)
    if as_json:
        return json.dumps([v.as_dict() for v in views], indent=2) + "\n"
    rows = [
        [
            "-" if v.id is None else str(v.id),
            v.name,
            v.state,
            v.virt_type,
            str(v.vcpus),
            format_size(v.memory_kib * KIB),
            "virtnet" if v.managed else "unmanaged",
        ]
        for v in views
    ]
    return table([list(COLUMNS), *rows])


def table(rows: list[list[str]]) -> str:
    """Left-aligned columns two spaces apart, as `virsh list` (and rich's borderless table) print them."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() + "\n" for row in rows
    )
