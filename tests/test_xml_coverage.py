"""A meta-test, as virtinst has: every XML property virtnet declares is written by some render.

A property no spec ever sets is dead code or a missing feature; either way this test says so.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator

import pytest
from support import EXAMPLES, ROOT

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


@pytest.mark.parametrize("cls", all_builders(), ids=lambda cls: cls.__name__)
def test_every_declared_property_is_rendered(cls: type[XMLBuilder]) -> None:
    declared = {name for name, prop in vars(cls).items() if isinstance(prop, (XMLProperty, XMLChild))}
    rendered = {name for owner, name in set_properties() if owner == cls.__name__}
    assert declared - rendered == set(), f"{cls.__name__}: never rendered"


def test_kitchen_sink_keeps_its_password_out_of_metadata() -> None:
    spec = load_spec_file(SPECS[-1])
    xml = render_domain(spec, HostChoices(virt_type="qemu")).to_xml()
    assert xml.count("not-in-metadata") == 1  # only in <graphics passwd>
