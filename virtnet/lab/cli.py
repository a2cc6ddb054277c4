"""`virtnet lab`: the lab's typer commands, attached to the CLI only when `lab` is the command given.

They live here, not in virtnet/cli.py, so that the product never imports the test lab: virtnet.cli
names this module only as a string (its root group loads it on demand), and tests/test_layers.py
fails when a product module imports virtnet.lab.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from virtnet.cli import command
from virtnet.errors import InputError

if TYPE_CHECKING:
    from virtnet.lab.lab import Lab, LabState

lab_app = typer.Typer(
    name="lab",
    add_completion=False,
    help="A throwaway lab on this machine: libvirt hosts with OVS-DPDK, for tests and the demo.",
    rich_markup_mode=None,
    no_args_is_help=True,
)


LabDir = Annotated[
    Path,
    typer.Option("--dir", envvar="VIRTNET_LAB_DIR", help="where the lab keeps its state and files"),
]
DEFAULT_LAB_DIR = Path("/var/tmp/virtnet-lab")


@command("up", group=lab_app)
def lab_up(
    hosts: Annotated[int, typer.Option(help="how many libvirt hosts (2 for migration)")] = 1,
    hugepages_mib: Annotated[int, typer.Option(help="2 MiB hugepages for guests, on top of OVS's")] = 1024,
    lab_dir: LabDir = DEFAULT_LAB_DIR,
    prefix: Annotated[
        str, typer.Option(help="names of the hosts and their namespaces: PREFIX0, PREFIX1, ...")
    ] = "virtnet-lab",
    address: Annotated[
        str, typer.Option(help="loopback address of the first host; the next hosts take the next ones")
    ] = "127.0.0.2",
    debian: Annotated[
        bool,
        typer.Option("--debian", help="also build (or reuse) the Debian guest image, linked under guest/"),
    ] = False,
    tls: Annotated[
        bool,
        typer.Option(
            "--tls/--tcp",
            help="TLS between hosts with a throwaway CA; --tcp: plain TCP without authentication (LAB ONLY)",
        ),
    ] = True,
    postcopy: Annotated[
        bool,
        typer.Option("--postcopy", help="switches with vhost-user post-copy support, set before they start"),
    ] = False,
) -> None:
    """Start lab hosts: libvirtd on 127.0.0.2, .3, ... (TLS) and OVS-DPDK with bridge br0 on each."""
    import time

    from virtnet.lab.lab import Lab

    lab = Lab(lab_dir, prefix=prefix, first_address=address)
    state = lab.up(hosts=hosts, hugepages_mib=hugepages_mib, tls=tls, postcopy=postcopy)
    if debian:
        typer.echo(
            "Debian guest image: building it from Debian packages, or reusing the cached one "
            "(the first build takes a few minutes) ...",
            err=True,
        )
        started = time.monotonic()
        image = lab.provide_debian()
        typer.echo(
            f"Debian guest image ready in {time.monotonic() - started:.1f} s: {image.base} "
            f"(linked as {lab.guest_dir}/debian-*)",
            err=True,
        )
    if not tls:
        typer.echo(
            "WARNING: LAB ONLY. The lab's libvirtd accepts unauthenticated TCP connections on loopback: "
            "any local user can control its VMs (without --tcp the lab uses TLS with certificates). "
            "Bring it down with `virtnet lab down`.",
            err=True,
        )
    _print_lab(lab, state)


@command("down", group=lab_app)
def lab_down(lab_dir: LabDir = DEFAULT_LAB_DIR) -> None:
    """Stop everything `lab up` started (by PID) and give its hugepages back."""
    from virtnet.lab.lab import Lab

    Lab(lab_dir).down()
    typer.echo("lab is down")


@command("status", group=lab_app)
def lab_status(
    lab_dir: LabDir = DEFAULT_LAB_DIR,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Each lab host's URIs, OVSDB remotes and health, and how to connect (hosts file, TLS files)."""
    from virtnet.lab.lab import Lab

    lab = Lab(lab_dir)
    state = lab.load()
    if state is None:
        if as_json:
            typer.echo(json.dumps({"hosts": [], "guests": None}))
            return
        raise InputError(f"no lab in {lab_dir}; start one with `virtnet lab up`")
    _print_lab(lab, state, as_json=as_json)


def _print_lab(lab: Lab, state: LabState, *, as_json: bool = False) -> None:
    rows = [
        {
            "name": h.host.name,
            "uri": h.host.uri,
            "local_uri": h.host.local_uri,
            "ovsdb": h.host.ovsdb,
            "ovsdb_tls": h.host.ovsdb_tls_remote,  # for clients with the lab's client certificate
            "vhost_dir": str(h.host.vhost_dir),
            "netns": h.host.netns,
            "lan_addresses": h.host.lan_addresses,
            "libvirtd": "up" if h.libvirtd else "DOWN",
            "ovs": "up" if h.ovs else "DOWN",
        }
        for h in lab.health(state)
    ]
    guests = {"virt_type": state.virt_type, "reason": state.virt_type_reason, "kernel": str(lab.guest_dir)}
    network = {"bridge": state.lan_bridge, "addresses": state.lan_addresses}
    client = lab.client_pki(state)
    connect = {"hosts_file": str(lab.hosts_file), "client_pki": str(client) if client else None}
    if as_json:
        typer.echo(json.dumps({"hosts": rows, "lan": network, "guests": guests, **connect}, indent=2))
        return
    for row in rows:
        tls_remote = f" (TLS: {row['ovsdb_tls']})" if row["ovsdb_tls"] else ""
        typer.echo(
            f"{row['name']}: libvirtd {row['libvirtd']} at {row['uri']}, "
            f"OVS-DPDK {row['ovs']} at {row['ovsdb']}{tls_remote}, vhost-user sockets in {row['vhost_dir']}"
        )
        typer.echo(f"  local URI (virt-manager's console): {row['local_uri']}")
        if row["lan_addresses"]:
            typer.echo(
                f"  on the LAN: br0 {', '.join(row['lan_addresses'])} in network namespace {row['netns']}"
            )
    if state.lan_bridge:
        typer.echo(
            f"LAN: Linux bridge {state.lan_bridge} ({', '.join(state.lan_addresses)}) wires the hosts' br0 "
            "together; Linux bridge NICs plug into it"
        )
    typer.echo(f"guests: type {guests['virt_type']} ({guests['reason']}); test guest in {guests['kernel']}")
    first = rows[0]["name"] if rows else "NAME"
    typer.echo(
        f"hosts file: {lab.hosts_file} (virtnet --hosts {lab.hosts_file} hosts; "
        f"virtnet --hosts {lab.hosts_file} -H {first} list)"
    )
    if client is not None:
        typer.echo(
            f"TLS client files: {client} (cacert.pem, clientcert.pem, clientkey.pem): "
            f"virsh -c URI as above; ovs-vsctl --db=TLS-REMOTE -p {client / 'clientkey.pem'} "
            f"-c {client / 'clientcert.pem'} -C {client / 'cacert.pem'} show"
        )
