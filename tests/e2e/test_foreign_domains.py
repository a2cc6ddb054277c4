"""Domains virt-install wrote, defined with virsh on the lab's libvirtd: listed, shown and adopted by
virtnet without losing one element or attribute (canonical XML from `virsh dumpxml`, before and after).

`--update-golden` writes tests/data/virtinst/*.xml again with virt-install against the lab's libvirtd.
"""

from __future__ import annotations

import json
import shutil

import pytest
from lab_support import LabClient
from lxml import etree
from virtinst_cases import CASES, DATA, make_images, print_xml

from virtnet.domxml.namespaces import VIRTNET_NS


def canonical(xml: str, *, without_virtnet: bool = False) -> bytes:
    root = etree.fromstring(xml.encode(), etree.XMLParser(remove_blank_text=True))
    metadata = root.find("metadata")
    if without_virtnet and metadata is not None:
        for ours in metadata.findall(f"{{{VIRTNET_NS}}}vm"):
            metadata.remove(ours)
        if not len(metadata):
            root.remove(metadata)
    return etree.tostring(root, method="c14n")


def test_virt_install_domains_are_adopted_without_losing_anything(
    lab0: LabClient, request: pytest.FixtureRequest
) -> None:
    if request.config.getoption("--update-golden"):
        if shutil.which("virt-install") is None:
            pytest.fail("--update-golden needs virt-install: apt-get install virtinst")
        make_images()
        for case in CASES:
            (DATA / f"{case}.xml").write_text(print_xml(lab0.host.uri, case))
    names = [f"vi-{case}" for case in CASES]
    before = {}
    for case, name in zip(CASES, names, strict=True):
        lab0.virsh("define", str(DATA / f"{case}.xml"))
        before[name] = lab0.virsh("dumpxml", "--inactive", "--security-info", name).stdout

    rows = {row["name"]: row for row in json.loads(lab0.virtnet("list", "--all", "--json").stdout)}
    assert {name: rows[name]["managed"] for name in names} == dict.fromkeys(names, False)
    for name in names:
        assert "not defined by virtnet" in lab0.virtnet("show", name).stdout
        lab0.virtnet("adopt", name)
        after = lab0.virsh("dumpxml", "--inactive", "--security-info", name).stdout
        assert canonical(after, without_virtnet=True) == canonical(before[name]), name
        assert f'name = "{name}"' in lab0.virtnet("show", name, "--spec").stdout
    rows = {row["name"]: row for row in json.loads(lab0.virtnet("list", "--all", "--json").stdout)}
    assert {name: rows[name]["managed"] for name in names} == dict.fromkeys(names, True)


# Disks (their images must exist for define), hugepages with NUMA, vhost-user, a device zoo.
ROUND_TRIPS = (
    "virtio-disks",
    "cdrom-boot",
    "ide-disk-q35",
    "numa-shared",
    "vhostuser-queues-hugepages",
    "extras",
)


@pytest.mark.parametrize("case", ROUND_TRIPS)
def test_an_adopted_domain_defined_from_its_shown_spec_is_unchanged(lab0: LabClient, case: str) -> None:
    make_images()
    name = f"vi-{case}"
    lab0.virsh("define", str(DATA / f"{case}.xml"))
    lab0.virtnet("adopt", name)
    before = lab0.virsh("dumpxml", "--inactive", "--security-info", name).stdout
    spec = lab0.workdir / f"{name}.toml"
    spec.write_text(lab0.virtnet("show", name, "--spec").stdout)
    done = lab0.virtnet("define", str(spec))
    assert "changed outside virtnet" not in done.stdout
    assert lab0.virsh("dumpxml", "--inactive", "--security-info", name).stdout == before
