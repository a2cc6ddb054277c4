"""The lab's hosts as a hosts file (virtnet/fleet/hostsfile.py), so `virtnet --hosts` can name them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from virtnet.lab.lab import LabHost


def write_hosts_file(path: Path, hosts: Sequence[LabHost]) -> None:
    """One [[host]] per lab host; TOML strings written as JSON ones (the same escapes)."""
    lines = ["# Written by `virtnet lab up`: the lab's hosts, for `virtnet --hosts THIS-FILE ...`."]
    for host in hosts:
        tls = host.tls_files
        lines += [
            "",
            "[[host]]",
            f"name = {json.dumps(host.name)}",
            f"uri = {json.dumps(host.uri)}",
            f"ovsdb = {json.dumps(host.ovsdb_tls_remote or host.ovsdb)}",
            f"socket_dir = {json.dumps(str(host.vhost_dir))}",
            'labels = { lab = "true" }',
        ]
        if tls is not None:
            client = host.client_pki
            lines += [
                "[host.ovsdb_tls]",
                f"key = {json.dumps(str(client / 'clientkey.pem'))}",
                f"cert = {json.dumps(str(client / 'clientcert.pem'))}",
                f"ca = {json.dumps(str(client / 'cacert.pem'))}",
            ]
    path.write_text("\n".join(lines) + "\n")
