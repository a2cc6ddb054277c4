"""Read, edit, write: put what a spec renders into a domain's existing XML, and keep everything else.

A redefine does not replace the domain's XML with a fresh render: devices a user added with virsh or
virt-manager, libvirt's own defaults and device addresses, unknown elements and namespaces would be
lost. It is a three-way merge instead, element by element:

- `current`: the domain's persistent XML as libvirt has it now (the user's edits are in it);
- `base`: what virtnet rendered last time (the stored spec, rendered again): what virtnet owns;
- `new`: what the spec renders now.

Every attribute and text the new render sets is written into `current`; what the base render set and
the new one does not is taken out; anything neither render mentions is left alone. Where `current`
differs from `base` in something the spec sets, a user changed a field the spec owns by hand: the
spec wins, and the merge reports it (an Override), one per field.

Elements are matched by identity, not position: a disk by its target, a NIC by its MAC, a serial port
by its port number (see _IDENTITY); other repeated elements by their order among equals.

`kept` names paths that an adoption found the spec renders differently from a foreign domain (a
serial port virt-install did not add, its own <features>): those are left as they are until the
spec itself changes them.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from lxml import etree
from lxml.etree import _Element as Element

from virtnet.units import parse_cpuset

# (child holding the identity, attribute) per tag; "" is the element itself.
_IDENTITY: dict[str, tuple[tuple[str, str], ...]] = {
    "disk": (("target", "dev"),),
    "interface": (("mac", "address"),),
    "serial": (("target", "port"),),
    "console": (("target", "port"),),
    "channel": (("target", "name"),),
    "graphics": (("", "type"),),
    "sound": (("", "model"),),
    "controller": (("", "type"), ("", "index")),
    "input": (("", "type"), ("", "bus")),
    "vcpupin": (("", "vcpu"),),
    "cell": (("", "id"),),
}
# What libvirt writes when an attribute is left out, where the renderer leaves it out.
_IMPLIED = {("controller", "index"): "0", ("serial", "port"): "0", ("console", "port"): "0"}
_CPUSET_ATTRIBUTES = {"cpuset", "cpus"}
# libvirt replaces a machine alias with the versioned type it stands for (q35 -> pc-q35-7.2).
_MACHINE_PREFIX = {"pc": "pc-i440fx-", "q35": "pc-q35-"}


@dataclass(frozen=True)
class Override:
    """A field the spec owns that was changed outside virtnet; the spec's value replaces it."""

    path: str
    found: str | None  # None: the user removed it
    spec: str | None  # None: the spec leaves it out

    def __str__(self) -> str:
        found = "absent" if self.found is None else repr(self.found)
        spec = "absent" if self.spec is None else repr(self.spec)
        return f"{self.path}: changed outside virtnet to {found}; the spec's {spec} replaces it"


@dataclass
class EditResult:
    node: Element
    overrides: list[Override] = field(default_factory=list)
    # Paths where the new render differs from `current` but were left as they are (see `kept`).
    left: list[str] = field(default_factory=list)


def edit(
    current: Element, base: Element | None, new: Element, kept: frozenset[str] = frozenset()
) -> EditResult:
    """`current` with `new` merged in over `base` (a copy; the arguments are not changed)."""
    result = EditResult(copy.deepcopy(current))
    _Merge(result, kept).element(result.node, base, new, _tag(new))
    return result


def changed_paths(current: Element, new: Element) -> list[str]:
    """The paths where writing `new` into `current` (with `new` as its own base) would change it."""
    found: list[str] = []
    _Merge(EditResult(copy.deepcopy(current)), frozenset(), found).element(
        copy.deepcopy(current), new, new, _tag(new)
    )
    return found


class _Merge:
    def __init__(self, result: EditResult, kept: frozenset[str], changes: list[str] | None = None) -> None:
        self.result = result
        self.kept = kept
        self.changes = changes  # when set: only record the paths that would change

    def element(self, ours: Element, base: Element | None, new: Element, path: str) -> None:
        self._attributes(ours, base, new, path)
        self._text(ours, base, new, path)
        self._children(ours, base, new, path)

    def _leave(self, path: str, base_value: object, new_value: object) -> bool:
        """Whether to leave `path` as it is: kept, and the spec has not changed it since."""
        if path in self.kept and base_value == new_value:
            self.result.left.append(path)
            return True
        return False

    def _change(self, path: str, found: str | None, base_value: str | None, spec: str | None) -> bool:
        """Record a change at `path`; False when only recording (changed_paths)."""
        if self.changes is not None:
            self.changes.append(path)
            return False
        if base_value is not None and not _same(path, found, base_value):
            self.result.overrides.append(Override(path, found, spec))
        return True

    def _attributes(self, ours: Element, base: Element | None, new: Element, path: str) -> None:
        base_attrib: dict[str, str] = (
            {str(k): str(v) for k, v in base.attrib.items()} if base is not None else {}
        )
        for name in sorted({str(k) for k in new.attrib} | set(base_attrib)):
            where = f"{path}@{name}"
            want, was, found = new.get(name), base_attrib.get(name), ours.get(name)
            if want is None and found is None:
                continue
            if want is not None and _same(where, found, want):
                continue
            if self._leave(where, was, want):
                continue
            if want is None:
                # The spec no longer sets it: take it out, unless the user set another value.
                if _same(where, found, was) and self._change(where, found, None, None):
                    del ours.attrib[name]
            elif self._change(where, found, was, want):
                ours.set(name, want)

    def _text(self, ours: Element, base: Element | None, new: Element, path: str) -> None:
        want, was, found = _text(new), _text(base) if base is not None else None, _text(ours)
        if want is None or want == found:
            return
        if self._leave(path, was, want):
            return
        if self._change(path, found, was, want):
            ours.text = want

    def _children(self, ours: Element, base: Element | None, new: Element, path: str) -> None:
        mine = _keyed(ours)
        theirs = _keyed(new)
        before = _keyed(base) if base is not None else {}
        for key, child in theirs.items():
            where = f"{path}/{_describe(key)}"
            old = before.get(key)
            if key in mine:
                self.element(mine[key], old, child, where)
                continue
            if self._leave(where, _canonical(old), _canonical(child)):
                continue
            if self._change(where, None, _describe(key) if old is not None else None, _describe(key)):
                _insert(ours, copy.deepcopy(child), new)
        for key, child in before.items():
            if key in theirs or key not in mine:
                continue
            where = f"{path}/{_describe(key)}"
            if self._leave(where, _canonical(child), None):
                continue
            if self._change(where, _describe(key), _describe(key), None):
                ours.remove(mine[key])


Key = tuple[str, str, int]


def _keyed(node: Element) -> dict[Key, Element]:
    """Element children by (tag, identity, n-th with these two)."""
    found: dict[Key, Element] = {}
    seen: dict[tuple[str, str], int] = {}
    for child in node:
        if not isinstance(child.tag, str):
            continue  # comments and processing instructions are the user's
        identity = _identity(child)
        count = seen.get((child.tag, identity), 0)
        seen[(child.tag, identity)] = count + 1
        found[(child.tag, identity, count)] = child
    return found


def _identity(node: Element) -> str:
    tag = node.tag if isinstance(node.tag, str) else ""
    parts = []
    for sub, attribute in _IDENTITY.get(tag, ()):
        holder = node if not sub else node.find(sub)
        value = holder.get(attribute) if holder is not None else None
        value = value if value is not None else _IMPLIED.get((tag, attribute), "")
        parts.append(value.lower() if attribute == "address" else value)
    return ",".join(parts)


def _describe(key: Key) -> str:
    tag, identity, count = key
    name = etree.QName(tag).localname if tag.startswith("{") else tag
    where = identity if identity else ""
    if count:
        where = f"{where}#{count}" if where else f"#{count}"
    return f"{name}[{where}]" if where else name


def _tag(node: Element) -> str:
    return etree.QName(node).localname


def _text(node: Element) -> str | None:
    text = node.text.strip() if node.text else ""
    return text or None


def _canonical(node: Element | None) -> bytes | None:
    return None if node is None else etree.tostring(node, method="c14n")


def _same(path: str, found: str | None, want: str | None) -> bool:
    """Equal as libvirt means them: libvirt rewrites some values it was given."""
    if found == want:
        return True
    if found is None or want is None:
        return False
    name = path.rsplit("@", 1)[-1]
    if name in _CPUSET_ATTRIBUTES:
        try:
            return parse_cpuset(found) == parse_cpuset(want)
        except ValueError:
            return False
    if name == "machine" and want in _MACHINE_PREFIX:
        return found.startswith(_MACHINE_PREFIX[want])
    if name == "address" and "/mac" in path:
        return found.lower() == want.lower()
    return False


def _insert(parent: Element, child: Element, rendered: Element) -> None:
    """Put `child` where the render has it: after the sibling the render puts before it."""
    order = [node.tag for node in rendered if isinstance(node.tag, str)]
    rank = order.index(child.tag) if child.tag in order else len(order)
    for index, sibling in enumerate(parent):
        if isinstance(sibling.tag, str) and sibling.tag in order and order.index(sibling.tag) > rank:
            parent.insert(index, child)
            return
    parent.append(child)
