"""Declarative XML elements: a class per libvirt element, a descriptor per attribute or child.

A builder wraps one lxml element. Reading a property reads the XML and writing it writes the XML, so
the same declaration builds new XML and edits parsed XML, keeping everything it does not declare
(what a user changed with `virsh edit` survives). Child elements are placed in the order their
properties are declared, so no class keeps a hand-written ordering list.

Paths are relative to the builder's element: "@mode" is an attribute, "source/@path" an attribute
of a child, "name" a child's text, "." the element's own text.

Reading needs only what the standard library's ElementTree offers too (find, get, text, findall):
`virtnet list` reads every domain through these classes over xml.etree (see `read_only`), without
importing lxml. Building and editing use lxml.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

if TYPE_CHECKING:
    from lxml.etree import _Element as Element

B = TypeVar("B", bound="XMLBuilder")


def _yes_no(value: bool) -> str:
    return "yes" if value else "no"


def _on_off(value: bool) -> str:
    return "on" if value else "off"


class Kind:
    """How a property's Python value maps to XML text."""

    def __init__(self, parse: Callable[[str], Any], format: Callable[[Any], str]) -> None:
        self.parse = parse
        self.format = format


TEXT = Kind(str, str)
INT = Kind(int, str)
YES_NO = Kind(lambda text: text == "yes", _yes_no)
ON_OFF = Kind(lambda text: text == "on", _on_off)
FLAG = Kind(bool, str)  # a bool that is the presence of an empty element, like <acpi/>


class XMLBuilder:
    """Base of all element classes. Subclasses set TAG and declare properties."""

    TAG: ClassVar[str]
    _declared: ClassVar[list[str]]  # set per class by _register: child tags in declaration order

    def __init__(self, node: Element | None = None, *, nsmap: dict[str, str] | None = None, **values: Any):
        if node is None:
            from lxml import etree

            node = etree.Element(self.TAG, nsmap=nsmap)
        self.node = node
        for name, value in values.items():
            if not isinstance(getattr(type(self), name, None), (XMLProperty, XMLChild)):
                raise TypeError(f"{type(self).__name__} has no XML property {name!r}")
            setattr(self, name, value)

    @classmethod
    def parse(cls: type[B], xml: str | bytes) -> B:
        from lxml import etree

        # Layout whitespace is not content: dropping it makes parsed and built trees compare equal.
        parser = etree.XMLParser(remove_blank_text=True)
        node = etree.fromstring(xml.encode() if isinstance(xml, str) else xml, parser)
        if node.tag != cls.TAG:
            raise ValueError(f"expected <{cls.TAG}>, got <{node.tag}>")
        return cls(node)

    @classmethod
    def read_only(cls: type[B], xml: str) -> B:
        """The XML parsed by the standard library, for reading only (no lxml import; see above)."""
        from xml.etree import ElementTree

        node = ElementTree.fromstring(xml)
        if node.tag != cls.TAG:
            raise ValueError(f"expected <{cls.TAG}>, got <{node.tag}>")
        return cls(node)  # type: ignore[arg-type]

    def to_xml(self) -> str:
        return pretty_xml(self.node)

    def __eq__(self, other: object) -> bool:
        from lxml import etree

        if not isinstance(other, XMLBuilder):
            return NotImplemented
        return etree.tostring(self.node, method="c14n") == etree.tostring(other.node, method="c14n")

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        from lxml import etree

        return f"<{type(self).__name__} {etree.tostring(self.node, encoding='unicode')[:80]}>"

    # --- child placement -------------------------------------------------------------------
    @classmethod
    def _register(cls, step: str) -> None:
        """Record the tag of a declared child; called while the class body is being created."""
        declared = cls.__dict__.get("_declared")
        if declared is None:
            declared = []
            cls._declared = declared
        if step not in declared:
            declared.append(step)

    def _rank(self, tag: str) -> int:
        declared: list[str] = type(self).__dict__.get("_declared", [])
        return declared.index(tag) if tag in declared else len(declared)

    def insert_child(self, parent: Element, child: Element) -> None:
        """Insert `child` under `parent` (this builder's node) before the first sibling declared later."""
        if parent is not self.node:
            parent.append(child)
            return
        rank = self._rank(child.tag)
        for index, sibling in enumerate(parent):
            if isinstance(sibling.tag, str) and self._rank(sibling.tag) > rank:
                parent.insert(index, child)
                return
        parent.append(child)


class XMLProperty:
    """One attribute or text value at a path below the builder's element."""

    def __init__(self, path: str, kind: Kind = TEXT) -> None:
        self.steps, self.leaf = _split(path)
        self.kind = kind
        self.name = ""

    def __set_name__(self, owner: type[XMLBuilder], name: str) -> None:
        self.name = name
        first = self.steps[0] if self.steps else self.leaf
        if not first.startswith("@") and first != ".":
            owner._register(first)

    def __get__(self, obj: XMLBuilder | None, owner: type) -> Any:
        if obj is None:
            return self
        node = _find(obj.node, self.steps)
        if self.kind is FLAG:
            return node is not None and node.find(self.leaf) is not None
        if node is None:
            return None
        if self.leaf == ".":
            text = node.text
        elif self.leaf.startswith("@"):
            text = node.get(self.leaf[1:])
        else:
            child = node.find(self.leaf)
            text = child.text if child is not None else None
        return None if text is None else self.kind.parse(text)

    def __set__(self, obj: XMLBuilder, value: Any) -> None:
        from lxml import etree

        if value is None or (self.kind is FLAG and not value):
            self._remove(obj)
            return
        node = _make(obj, self.steps)
        if self.kind is FLAG:
            if node.find(self.leaf) is None:
                obj.insert_child(node, etree.Element(self.leaf))
        elif self.leaf == ".":
            node.text = self.kind.format(value)
        elif self.leaf.startswith("@"):
            node.set(self.leaf[1:], self.kind.format(value))
        else:
            child = node.find(self.leaf)
            if child is None:
                child = etree.Element(self.leaf)
                obj.insert_child(node, child)
            child.text = self.kind.format(value)

    def _remove(self, obj: XMLBuilder) -> None:
        node = _find(obj.node, self.steps)
        if node is None:
            return
        if self.leaf.startswith("@"):
            node.attrib.pop(self.leaf[1:], "")
        elif self.leaf == ".":
            node.text = None
        else:
            child = node.find(self.leaf)
            if child is not None:
                node.remove(child)
        _prune(obj.node, self.steps)


class XMLChild(Generic[B]):
    """Child elements of one builder class: a list (many=True) or a single optional child."""

    def __init__(self, cls: type[B], *, many: bool = False) -> None:
        self.cls = cls
        self.many = many

    def __set_name__(self, owner: type[XMLBuilder], name: str) -> None:
        self.name = name
        owner._register(self.cls.TAG)

    def __get__(self, obj: XMLBuilder | None, owner: type) -> Any:
        if obj is None:
            return self
        children = [self.cls(node) for node in obj.node.findall(self.cls.TAG)]
        if self.many:
            return children
        return children[0] if children else None

    def __set__(self, obj: XMLBuilder, value: Any) -> None:
        for node in obj.node.findall(self.cls.TAG):
            obj.node.remove(node)
        items = value if self.many else ([] if value is None else [value])
        for item in items:
            obj.insert_child(obj.node, item.node)


def pretty_xml(node: Element) -> str:
    """Deterministic, indented XML text (attribute order is the order they were set)."""
    from lxml import etree

    copy = etree.fromstring(etree.tostring(node))
    etree.indent(copy, space="  ")
    return etree.tostring(copy, encoding="unicode") + "\n"


def _split(path: str) -> tuple[list[str], str]:
    # Split on "/" but not inside a namespace URI: "{https://x/ns}spec" is one step.
    parts = re.findall(r"\{[^}]*\}[^/]*|[^/]+", path)
    return parts[:-1], parts[-1]


def _find(node: Element, steps: list[str]) -> Element | None:
    found: Element | None = node
    for step in steps:
        found = found.find(step) if found is not None else None
    return found


def _make(obj: XMLBuilder, steps: list[str]) -> Element:
    from lxml import etree

    node = obj.node
    for step in steps:
        child = node.find(step)
        if child is None:
            child = etree.Element(step)
            obj.insert_child(node, child)
        node = child
    return node


def _prune(root: Element, steps: list[str]) -> None:
    """Remove intermediate elements a removal left empty."""
    chain = [root]
    for step in steps:
        nxt = chain[-1].find(step)
        if nxt is None:
            return
        chain.append(nxt)
    for parent, child in zip(reversed(chain[:-1]), reversed(chain[1:]), strict=True):
        if len(child) or child.attrib or (child.text and child.text.strip()):
            return
        parent.remove(child)
