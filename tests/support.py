"""Helpers shared by the tests (fixtures live in conftest.py)."""

from __future__ import annotations

from pathlib import Path

import libvirt

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.toml"))
TEST_URI = "test:///default"


def add_volume(conn: libvirt.virConnect, pool_name: str, name: str, fmt: str = "raw") -> str:
    """Put an image into a test-driver pool (the test driver has no real files)."""
    pool = conn.storagePoolLookupByName(pool_name)
    xml = (
        f"<volume><name>{name}</name><capacity unit='MiB'>1</capacity>"
        f"<target><format type='{fmt}'/></target></volume>"
    )
    return str(pool.createXML(xml, 0).path())
