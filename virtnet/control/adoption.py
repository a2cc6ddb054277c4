"""Adopt a domain virt-install or virt-manager made: store its spec, change nothing else.

The spec is what virtnet can express of the domain (virtnet.domxml.derive). Where virtnet would
render a field otherwise (its own <features>, a serial port virt-install did not add), the domain
keeps its own: the field's path is stored beside the spec, and later defines leave it alone until
the spec changes it. The adopted XML is checked to differ from the original only in <metadata>.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from virtnet import vmlock
from virtnet.domxml.derive import derive_spec
from virtnet.domxml.designer import HostChoices, render_domain
from virtnet.domxml.domain import Domain
from virtnet.domxml.edit import changed_paths, edit
from virtnet.domxml.metadata import Keep, VirtnetInfo
from virtnet.domxml.update import previous_choices
from virtnet.errors import DomainExists, InvalidDomainState
from virtnet.inventory import spec_of_xml
from virtnet.spec.models import VMSpec
from virtnet.virt.host import Host


@dataclass(frozen=True)
class Adoption:
    """What adopt stored (or, for a dry run, would store), and what it left as the domain has it."""

    spec: VMSpec
    left: tuple[str, ...]  # what the spec does not express, left as it is
    kept: tuple[str, ...]  # fields the spec renders otherwise, kept as the domain has them
    xml_before: str
    xml_after: str
    adopted: bool  # False for a dry run


def adopt(host: Host, name: str, *, dry_run: bool = False, wait_lock: bool = False) -> Adoption:
    """Store the spec of a domain virtnet did not make in its metadata (with dry_run: only say so).

    Args:
        host: the libvirt host.
        name: the domain (persistent, not yet virtnet's).
        dry_run: derive and check, define nothing (and take no lock).
        wait_lock: wait while another virtnet run holds the VM, instead of raising VmLocked.

    Raises:
        DomainNotFound; InvalidDomainState (a transient domain); DomainExists (already virtnet's);
        VmLocked; HypervisorError.
    """
    if dry_run:
        return _adopt(host, name, dry_run=True)
    with vmlock.held(host, name, f"adopt {name}", wait=wait_lock):
        return _adopt(host, name, dry_run=False)


def _adopt(host: Host, name: str, *, dry_run: bool) -> Adoption:
    guest = host.lookup(name)
    if not guest.is_persistent:
        raise InvalidDomainState(
            f"domain {name!r} is transient: libvirt keeps no configuration to store a spec in; "
            f"make it persistent first (virsh dumpxml {name} > {name}.xml; virsh define {name}.xml)",
            uri=host.uri,
        )
    xml = guest.xml(inactive=True, secure=True)
    if spec_of_xml(xml) is not None:
        raise DomainExists(
            f"domain {name!r} is already virtnet's; change it with `virtnet define`", uri=host.uri
        )
    plan = adopted_xml(xml, vhost_net=host.has_vhost_net)
    if not dry_run:
        host.define(plan.xml_after)
    return Adoption(plan.spec, plan.left, plan.kept, plan.xml_before, plan.xml_after, not dry_run)


def adopted_xml(xml: str, *, vhost_net: bool | None = None) -> Adoption:
    """The domain XML with its derived spec in <metadata>, and nothing else changed."""
    current = Domain.parse(xml)
    derived = derive_spec(current)
    choices = previous_choices(current, HostChoices(virt_type="qemu", vhost_net=vhost_net))
    rendered = render_domain(derived.spec, choices)
    kept = tuple(path for path in changed_paths(current.node, rendered.node) if not _is_metadata(path))
    result = edit(current.node, rendered.node, rendered.node, frozenset(kept))
    domain = Domain(result.node)
    assert domain.metadata is not None and domain.metadata.virtnet is not None
    domain.metadata.virtnet.kept = [Keep(path=path) for path in kept]
    _require_only_metadata_changed(current, domain)
    return Adoption(derived.spec, derived.left, kept, current.to_xml(), domain.to_xml(), False)


def _is_metadata(path: str) -> bool:
    return path.startswith("domain/metadata")


def _require_only_metadata_changed(before: Domain, after: Domain) -> None:
    """The promise of adoption, checked: a bug here must not reach libvirt."""
    after_copy = etree.fromstring(etree.tostring(after.node))
    metadata = after_copy.find("metadata")
    assert metadata is not None
    for ours in metadata.findall(VirtnetInfo.TAG):
        metadata.remove(ours)
    if before.metadata is None and not len(metadata):
        after_copy.remove(metadata)
    if etree.tostring(before.node, method="c14n") != etree.tostring(after_copy, method="c14n"):
        raise AssertionError("adoption would change the domain outside virtnet's <metadata>")
