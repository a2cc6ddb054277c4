"""Foreign domains (virt-install's XML) listed, shown and adopted with nothing lost; spec round trips.

On libvirt's test driver; tests/e2e/test_foreign_domains.py does the same against the lab's libvirtd
with virsh.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import libvirt
import pytest
from lxml import etree
from support import EXAMPLES, ROOT, TEST_URI
from test_cli import virtnet
from virtinst_cases import CASES, DATA

from virtnet.control.adoption import adopt
from virtnet.domxml import HostChoices, render_domain
from virtnet.domxml.namespaces import VIRTNET_NS
from virtnet.domxml.update import update_domain
from virtnet.inventory import spec_of_xml
from virtnet.spec import load_spec_file
from virtnet.virt.host import Host

FLAGS = libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE
GOLDEN_SPECS = [*EXAMPLES, ROOT / "tests" / "data" / "kitchen-sink.toml"]


def canonical(xml: str, *, without_virtnet: bool = False) -> bytes:
    """The XML in canonical form; without virtnet's own <metadata> element if asked."""
    root = etree.fromstring(xml.encode(), etree.XMLParser(remove_blank_text=True))
    if without_virtnet:
        metadata = root.find("metadata")
        assert metadata is not None
        for ours in metadata.findall(f"{{{VIRTNET_NS}}}vm"):
            metadata.remove(ours)
        if not len(metadata):
            root.remove(metadata)
    return etree.tostring(root, method="c14n")


def test_every_case_has_its_xml() -> None:
    assert len(CASES) >= 20
    assert sorted(path.stem for path in DATA.glob("*.xml")) == sorted(CASES)


def define_case(conn: libvirt.virConnect, case: str) -> str:
    """Define the case's virt-install XML as `virsh define` would; return the XML libvirt keeps."""
    conn.defineXML((DATA / f"{case}.xml").read_text())
    return conn.lookupByName(f"vi-{case}").XMLDesc(FLAGS)


def managed(names: list[str]) -> dict[str, bool]:
    rows = {row["name"]: row for row in json.loads(virtnet("list", "--all", "--json").stdout)}
    return {name: rows[name]["managed"] for name in names}


def test_virt_install_domains_are_listed_unmanaged_then_managed_once_adopted(
    testdriver: libvirt.virConnect,
) -> None:
    names = [f"vi-{case}" for case in CASES]
    for case in CASES:
        define_case(testdriver, case)
    assert managed(names) == dict.fromkeys(names, False)
    with Host.open(TEST_URI) as host:
        for name in names:
            adopt(host, name)
    assert managed(names) == dict.fromkeys(names, True)


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_virt_install_domain_is_shown_and_adopted_without_loss(
    case: str, testdriver: libvirt.virConnect
) -> None:
    name = f"vi-{case}"
    before = define_case(testdriver, case)
    shown = virtnet("show", name)
    assert shown.exit_code == 0 and "not defined by virtnet" in shown.stdout
    with Host.open(TEST_URI) as host:
        planned = adopt(host, name, dry_run=True)
    assert testdriver.lookupByName(name).XMLDesc(FLAGS) == before  # the dry run changed nothing

    adopted = virtnet("adopt", name)
    assert adopted.exit_code == 0, adopted.stderr
    after = testdriver.lookupByName(name).XMLDesc(FLAGS)
    assert canonical(after, without_virtnet=True) == canonical(before)
    assert canonical(after) == canonical(planned.xml_after)  # the dry run showed what adopt did

    spec = virtnet("show", name, "--spec")
    assert spec.exit_code == 0, spec.stderr
    assert f'name = "{name}"' in spec.stdout


@pytest.mark.parametrize(
    "case", sorted(name for name in CASES if "none" in CASES[name][CASES[name].index("--disk") + 1 :][:1])
)
def test_an_adopted_domain_redefined_from_its_shown_spec_is_unchanged(
    case: str, tmp_path: Path, testdriver: libvirt.virConnect
) -> None:
    name = f"vi-{case}"
    testdriver.defineXML((DATA / f"{case}.xml").read_text())
    assert virtnet("adopt", name).exit_code == 0
    before = testdriver.lookupByName(name).XMLDesc(FLAGS)
    spec = tmp_path / "vm.toml"
    printed = virtnet("show", name, "--spec")
    password = etree.fromstring(before.encode()).xpath("string(devices/graphics/@passwd)")
    spec.write_text(with_password(printed.stdout, printed.stderr, password))
    result = virtnet("define", str(spec))
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "changed outside virtnet" not in result.stdout
    assert testdriver.lookupByName(name).XMLDesc(FLAGS) == before


@pytest.mark.parametrize("path", GOLDEN_SPECS, ids=lambda path: path.stem)
def test_show_spec_then_define_changes_nothing(
    path: Path, tmp_path: Path, testdriver: libvirt.virConnect
) -> None:
    """The domain XML part of it: disks, seeds and ports are each define's own (tests/e2e does it all)."""
    spec = load_spec_file(path)
    choices = HostChoices(virt_type="kvm" if spec.virt_type == "auto" else spec.virt_type)
    domain = render_domain(spec, choices)
    testdriver.defineXML(domain.to_xml())
    before = testdriver.lookupByName(spec.name).XMLDesc(FLAGS)

    printed = virtnet("show", spec.name, "--spec")
    assert printed.exit_code == 0, printed.stderr
    shown = tmp_path / "vm.toml"
    password = spec.graphics.password if spec.graphics is not None else None
    shown.write_text(with_password(printed.stdout, printed.stderr, password and password.get_secret_value()))
    again = load_spec_file(shown)
    assert again == spec_of_xml(before)
    choices = replace(choices, uuid=testdriver.lookupByName(spec.name).UUIDString())  # as define keeps it
    update = update_domain(before, spec_of_xml(before), render_domain(again, choices), choices)
    assert update.overrides == ()
    testdriver.defineXML(update.domain.to_xml())
    assert testdriver.lookupByName(spec.name).XMLDesc(FLAGS) == before


def with_password(toml: str, stderr: str, password: str | None) -> str:
    """What the note on stderr asks a user to do: put the graphics password back into the file."""
    if "graphics.password is not printed" not in stderr:
        return toml
    assert password is not None
    return toml.replace("[graphics]\n", f'[graphics]\npassword = "{password}"\n')


def test_adoption_refuses_what_is_not_foreign_or_not_a_vm(
    tmp_path: Path, testdriver: libvirt.virConnect
) -> None:
    define_case(testdriver, "plain")
    assert virtnet("adopt", "vi-plain").exit_code == 0
    again = virtnet("adopt", "vi-plain")
    assert again.exit_code == 2
    assert again.stderr == (
        "virtnet: error: domain 'vi-plain' is already virtnet's; change it with `virtnet define`\n"
    )
    # The test driver's own domain has type 'test': no spec can describe it.
    other = virtnet("adopt", "test")
    assert other.exit_code == 2
    assert other.stderr == (
        "virtnet: error: domain 'test' has type 'test'; virtnet adopts kvm and qemu domains only\n"
    )
    assert "<metadata" not in testdriver.lookupByName("test").XMLDesc(0)
    no_spec = virtnet("show", "test", "--spec")
    assert no_spec.exit_code == 2
    assert "adopt it first with `virtnet adopt test`" in no_spec.stderr
