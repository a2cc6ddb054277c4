"""Controlling VMs: each thing a user does to a domain, as one function — the Python API.

Named for what it does: this package is where a domain is controlled (defined, started, stopped,
removed, shown, adopted, migrated, listed). Every `virtnet` command is one call into it plus printing,
and a script or an Ansible module calls the same functions:

    from pathlib import Path

    from virtnet import control
    from virtnet.spec import load_spec_file
    from virtnet.virt.host import Host

    with Host.open("qemu:///system") as host:
        control.define(host, load_spec_file(Path("vm.toml")), ovsdb="unix:/run/openvswitch/db.sock")

Each function takes its targets explicitly (an open virtnet.virt.host.Host; an OVSDB remote),
returns a frozen result object, prints nothing and raises only virtnet.errors.VirtnetError's
subclasses. Those that change a domain hold its lock (virtnet/vmlock.py) on the libvirt host, so
a script and a `virtnet` command never act on one VM at once: `wait_lock=True` waits for the other
run instead of raising VmLocked.

domains    define (and plan_define, the dry run), start, stop, undefine, gc_ports
report     show: state, spec, NIC backends, guest side, OVS vrings, last migration
adoption   adopt a domain virt-install or virt-manager made
migration  migrate (and its dry run) with its ports, under the lock on both hosts
network    a VM's switch checks, socket directories and OVS ports, for define, start and migrate

Seeing a guest (console, screenshot, viewer) is virtnet.viewing; listing is inventory.list_domains,
re-exported here. The names below load on first use, so importing this package stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from virtnet.lazy import lazy_exports

if TYPE_CHECKING:
    from virtnet.control.adoption import Adoption, adopt
    from virtnet.control.domains import (
        DefinePlan,
        DefineResult,
        UndefineResult,
        define,
        gc_ports,
        plan_define,
        start,
        stop,
        undefine,
    )
    from virtnet.control.migration import Outcome, migrate
    from virtnet.control.report import DomainReport, show
    from virtnet.inventory import DomainView, list_domains
    from virtnet.migration.plan import MigrationRequest

__all__ = [
    "Adoption",
    "DefinePlan",
    "DefineResult",
    "DomainReport",
    "DomainView",
    "MigrationRequest",
    "Outcome",
    "UndefineResult",
    "adopt",
    "define",
    "gc_ports",
    "list_domains",
    "migrate",
    "plan_define",
    "show",
    "start",
    "stop",
    "undefine",
]

__getattr__ = lazy_exports(
    __name__,
    {
        "Adoption": "virtnet.control.adoption",
        "adopt": "virtnet.control.adoption",
        "DefinePlan": "virtnet.control.domains",
        "DefineResult": "virtnet.control.domains",
        "UndefineResult": "virtnet.control.domains",
        "define": "virtnet.control.domains",
        "gc_ports": "virtnet.control.domains",
        "plan_define": "virtnet.control.domains",
        "start": "virtnet.control.domains",
        "stop": "virtnet.control.domains",
        "undefine": "virtnet.control.domains",
        "Outcome": "virtnet.control.migration",
        "migrate": "virtnet.control.migration",
        "DomainReport": "virtnet.control.report",
        "show": "virtnet.control.report",
        "DomainView": "virtnet.inventory",
        "list_domains": "virtnet.inventory",
        "MigrationRequest": "virtnet.migration.plan",
    },
)
