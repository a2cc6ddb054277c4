"""A redefine as an edit of the domain's own XML: the spec's render merged into what libvirt has.

The base of the merge is the stored spec rendered again with the choices the existing domain shows
(its virt type, how its port forwards are written), so a field counts as changed by hand only when
libvirt's XML differs from what virtnet wrote there.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from virtnet.domxml.designer import HostChoices, render_domain
from virtnet.domxml.domain import Domain
from virtnet.domxml.edit import Override, edit
from virtnet.spec.models import VMSpec


@dataclass(frozen=True)
class Update:
    """The domain XML a redefine writes, and the hand changes it overrides."""

    domain: Domain
    overrides: tuple[Override, ...]
    left: tuple[str, ...]  # paths an adoption left as they are, and still leaves


def previous_choices(current: Domain, choices: HostChoices) -> HostChoices:
    """The choices the existing domain was rendered with, as its XML shows them."""
    virt_type = current.type if current.type in ("kvm", "qemu") else choices.virt_type
    style = "qemu-args" if current.qemu_commandline is not None else "passt"
    return replace(choices, virt_type=virt_type, forward_style=style, uuid=current.uuid)  # type: ignore[arg-type]


def update_domain(current_xml: str, stored: VMSpec | None, rendered: Domain, choices: HostChoices) -> Update:
    """`current_xml` with `rendered` merged in; `stored` is the spec it was defined from (None: adopted
    by nothing yet, so nothing is virtnet's to take out)."""
    current = Domain.parse(current_xml)
    base = render_domain(stored, previous_choices(current, choices)).node if stored is not None else None
    result = edit(current.node, base, rendered.node, kept_paths(current))
    return Update(Domain(result.node), tuple(result.overrides), tuple(result.left))


def kept_paths(domain: Domain) -> frozenset[str]:
    info = domain.metadata.virtnet if domain.metadata is not None else None
    return frozenset(keep.path for keep in info.kept) if info is not None else frozenset()
