"""A meta-test, as virtinst has: every XML property virtnet declares is exercised, read or written.

Written by the renderer (every example and the kitchen sink); read by what reads libvirt's XML
(inventory, viewing, migration's pre-flight and rewrite, adoption), over those renders and over the
XML virt-install writes (tests/data/virtinst); and a Debian 12 host's capabilities. A property
nothing exercises is dead code or a missing feature; either way this test says so.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from typing import Any

import pytest
from support import EXAMPLES, ROOT
from virtinst_cases import DATA

import virtnet.domxml
from virtnet.domxml import HostChoices, render_domain
from virtnet.domxml.domain import Domain
from virtnet.domxml.xmlbuilder import XMLBuilder, XMLChild, XMLProperty
from virtnet.spec import VMSpec, load_spec_file

SPECS = [*EXAMPLES, ROOT / "tests" / "data" / "kitchen-sink.toml"]


def all_builders() -> list[type[XMLBuilder]]:
    for module in pkgutil.walk_packages(virtnet.domxml.__path__, "virtnet.domxml."):
        importlib.import_module(module.name)
    found: list[type[XMLBuilder]] = []
    pending = list(XMLBuilder.__subclasses__())
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return [cls for cls in found if cls.__module__.startswith("virtnet.domxml.")]


def renders() -> Iterator[Domain]:
    for path in SPECS:
        spec: VMSpec = load_spec_file(path)
        for style in ("passt", "qemu-args"):
            yield render_domain(spec, HostChoices(virt_type="kvm", forward_style=style))  # type: ignore[arg-type]


def builders_in(builder: XMLBuilder) -> Iterator[XMLBuilder]:
    yield builder
    for prop in vars(type(builder)).values():
        if isinstance(prop, XMLChild):
            value = prop.__get__(builder, type(builder))
            for child in value if prop.many else [value] if value is not None else []:
                yield from builders_in(child)


def set_properties() -> set[tuple[str, str]]:
    seen: set[tuple[str, str]] = set()
    for domain in renders():
        for builder in builders_in(domain):
            for name, prop in vars(type(builder)).items():
                if isinstance(prop, XMLProperty):
                    value = prop.__get__(builder, type(builder))
                    if value is not None and value is not False:  # 0 is a rendered value
                        seen.add((type(builder).__name__, name))
                if isinstance(prop, XMLChild) and prop.__get__(builder, type(builder)) not in (None, []):
                    seen.add((type(builder).__name__, name))
    return seen


def read_properties() -> set[tuple[str, str]]:
    """(class, property) for every property the XML readers get or set, over renders and virt-install XML."""
    from virtnet.control.adoption import adopted_xml
    from virtnet.domxml.capabilities import Capabilities, dac_label
    from virtnet.domxml.memory import page_size_kib
    from virtnet.inventory import spec_of_xml, stored_spec_json
    from virtnet.migration.destination import Relocation, relocated_xml
    from virtnet.viewing.viewables import viewables_of
    from virtnet.virt.facts import domain_pins
    from virtnet.virt.hoststate import disk_paths

    seen: set[tuple[str, str]] = set()
    originals = {kind: (kind.__get__, kind.__set__) for kind in (XMLProperty, XMLChild)}

    def recording(kind: type, method: str) -> Any:
        original = getattr(kind, method)

        def record(descriptor: Any, obj: Any, *args: Any) -> Any:
            if obj is not None:
                seen.add((type(obj).__name__, descriptor.name))
            return original(descriptor, obj, *args)

        return record

    xmls = [domain.to_xml() for domain in renders()] + [
        path.read_text() for path in sorted(DATA.glob("*.xml"))
    ]
    try:
        for kind in originals:
            kind.__get__ = recording(kind, "__get__")  # type: ignore[method-assign]
            kind.__set__ = recording(kind, "__set__")  # type: ignore[method-assign]
        caps = Capabilities.read_only((ROOT / "tests" / "data" / "capabilities.xml").read_text())
        assert dac_label(caps, "qemu") == "+0:+0" and caps.host is not None
        assert caps.host.uuid and caps.host.cpu is not None and caps.host.cpu.model
        for xml in xmls:
            domain = Domain.parse(xml)
            viewables_of(xml, "vm", running=False)
            spec_of_xml(xml)
            stored_spec_json(Domain.read_only(xml))
            page_size_kib(domain)
            domain_pins(domain)
            disk_paths(xml)
            relocated_xml(xml, Relocation({}, {}), None)
            if stored_spec_json(domain) is None:
                adopted_xml(xml)
    finally:
        for kind, (get, set_) in originals.items():
            kind.__get__ = get  # type: ignore[method-assign]
            kind.__set__ = set_  # type: ignore[method-assign]
    return seen


EXERCISED = set_properties() | read_properties()


@pytest.mark.parametrize("cls", all_builders(), ids=lambda cls: cls.__name__)
def test_every_declared_property_is_read_or_written(cls: type[XMLBuilder]) -> None:
    declared = {name for name, prop in vars(cls).items() if isinstance(prop, (XMLProperty, XMLChild))}
    exercised = {name for owner, name in EXERCISED if owner == cls.__name__}
    assert declared - exercised == set(), f"{cls.__name__}: never read nor written"


def test_kitchen_sink_keeps_its_password_out_of_metadata() -> None:
    spec = load_spec_file(SPECS[-1])
    xml = render_domain(spec, HostChoices(virt_type="qemu")).to_xml()
    assert xml.count("not-in-metadata") == 1  # only in <graphics passwd>
