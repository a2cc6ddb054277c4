"""Domain XML as virtnet prints it: the graphics password replaced, everything else as it was."""

from __future__ import annotations

from lxml import etree

from virtnet.domxml.secrets import REDACTED, without_passwords

LIBVIRT_XML = """<domain type='kvm'>
  <name>vm</name>
  <devices>
    <graphics type='vnc' port='-1' autoport='yes' passwd='hunter2-secret'>
      <listen type='address' address='127.0.0.1'/>
    </graphics>
    <graphics type='spice' autoport='yes' passwd='other-secret'/>
  </devices>
</domain>
"""


def test_every_graphics_password_is_replaced() -> None:
    shown = without_passwords(LIBVIRT_XML)
    assert "hunter2" not in shown and "other-secret" not in shown
    root = etree.fromstring(shown.encode())
    assert [g.get("passwd") for g in root.iterfind("devices/graphics")] == [REDACTED, REDACTED]
    assert root.find("devices/graphics/listen").get("address") == "127.0.0.1"


def test_xml_without_a_password_is_left_as_it_is() -> None:
    plain = LIBVIRT_XML.replace(" passwd='hunter2-secret'", "").replace(" passwd='other-secret'", "")
    assert without_passwords(plain) == plain
