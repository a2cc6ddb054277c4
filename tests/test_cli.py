"""Every command through typer's CliRunner against libvirt's test driver."""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

import libvirt
import pytest
from lxml import etree
from support import ROOT, TEST_URI
from typer.testing import CliRunner

from virtnet.cli import app
from virtnet.spec import load_spec_file

runner = CliRunner()


def _without_provisioning(path: Path) -> str:
    """The example minus [cloud_init] and its base image: the test driver has no volume upload for
    the seed, and no Debian cloud image to put an overlay on."""
    text = path.read_text().split("\n[cloud_init]")[0]
    text = "\n".join(line for line in text.splitlines() if not line.startswith("backing = "))
    target = Path(tempfile.mkdtemp(prefix="virtnet-cli-")) / path.name
    target.write_text(text)
    return str(target)


EXAMPLE = _without_provisioning(ROOT / "examples" / "kvm-ssh-vm.toml")


def virtnet(*args: str, uri: str | None = TEST_URI):
    argv = (["-c", uri] if uri else []) + list(args)
    result = runner.invoke(app, argv)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception  # a bug: show its traceback
    return result


@pytest.fixture
def defined(testdriver: libvirt.virConnect) -> str:
    assert virtnet("define", EXAMPLE).exit_code == 0
    return "debian-kvm"


def test_xml_needs_no_libvirt() -> None:
    result = virtnet("xml", EXAMPLE, "--virt-type", "qemu", uri="qemu+tcp://192.0.2.1/nowhere")
    assert result.exit_code == 0, result.stderr
    root = etree.fromstring(result.stdout.encode())
    assert root.get("type") == "qemu" and root.findtext("name") == "debian-kvm"


def test_xml_port_forward_styles() -> None:
    passt = etree.fromstring(virtnet("xml", EXAMPLE, "--port-forward", "passt").stdout.encode())
    assert passt.find("devices/interface/backend").get("type") == "passt"
    bad = virtnet("xml", EXAMPLE, "--port-forward", "slirp")
    assert bad.exit_code == 2 and "--port-forward" in bad.stderr


def test_xml_prints_warnings_on_stderr_only() -> None:
    result = virtnet("xml", str(ROOT / "examples" / "multiqueue-vm.toml"))
    assert result.exit_code == 0
    assert "warning: " in result.stderr and "ethtool" in result.stderr
    etree.fromstring(result.stdout.encode())  # stdout stays pure XML


def test_bad_spec_is_one_line_and_exit_2(tmp_path: Path) -> None:
    spec = tmp_path / "vm.toml"
    spec.write_text('name = "vm"\n[cpu]\ncount = 2\n[memory]\nsize = "1GB"\n')
    result = virtnet("define", str(spec))
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert "memory.size" in result.stderr and "1GiB" in result.stderr
    assert result.stdout == ""


def test_bad_virt_type_override_is_exit_2() -> None:
    result = virtnet("xml", EXAMPLE, "--virt-type", "xen")
    assert result.exit_code == 2 and "--virt-type" in result.stderr


def test_unreachable_libvirt_is_exit_1() -> None:
    result = virtnet("list", uri="qemu+unix:///system?socket=/nonexistent/virtnet.sock")
    assert result.exit_code == 1
    assert "cannot connect to libvirt" in result.stderr and "-c" in result.stderr


def test_default_uri_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, testdriver: libvirt.virConnect
) -> None:
    monkeypatch.setenv("LIBVIRT_DEFAULT_URI", TEST_URI)
    result = virtnet("list", uri=None)
    assert result.exit_code == 0 and "test" in result.stdout


def test_define_twice_updates(defined: str, testdriver: libvirt.virConnect) -> None:
    uuid = testdriver.lookupByName(defined).UUIDString()
    again = virtnet("define", EXAMPLE)
    assert again.exit_code == 0 and again.stdout.startswith(f"Updated domain 'debian-kvm' ({uuid})")
    # Like libvirt 9.0's QEMU driver, the test driver refuses the passt backend.
    assert "port forwards: QEMU hostfwd via <qemu:commandline>" in again.stdout
    assert "changed outside virtnet" not in again.stdout  # nothing was


def test_list_and_show(defined: str, testdriver: libvirt.virConnect) -> None:
    listing = virtnet("list", "--all")
    assert listing.exit_code == 0
    rows = {line.split()[1]: line for line in listing.stdout.splitlines()[1:]}
    assert "virtnet" in rows["debian-kvm"] and "shut off" in rows["debian-kvm"]
    assert "unmanaged" in rows["test"]
    assert "debian-kvm" not in virtnet("list").stdout

    data = json.loads(virtnet("list", "--all", "--json").stdout)
    by_name = {row["name"]: row for row in data}
    assert by_name["debian-kvm"]["managed"] is True and by_name["debian-kvm"]["id"] is None

    shown = virtnet("show", defined)
    assert shown.exit_code == 0
    assert "Managed:  by virtnet" in shown.stdout and "tcp 127.0.0.1:10122->22" in shown.stdout

    as_json = json.loads(virtnet("show", defined, "--json").stdout)
    assert as_json["spec"]["nics"][0]["forwards"] == [{"guest_port": 22, "host_port": 10122}]
    assert as_json["domain"]["uuid"] == testdriver.lookupByName(defined).UUIDString()

    as_xml = virtnet("show", defined, "--xml").stdout
    assert etree.fromstring(as_xml.encode()).findtext("name") == defined

    foreign = virtnet("show", "test")
    assert "not defined by virtnet" in foreign.stdout
    assert json.loads(virtnet("show", "test", "--json").stdout)["spec"] is None
    assert virtnet("show", defined, "--json", "--xml").exit_code == 2


def test_lifecycle(defined: str, testdriver: libvirt.virConnect) -> None:
    assert virtnet("start", defined).exit_code == 0
    assert testdriver.lookupByName(defined).isActive()
    again = virtnet("start", defined)
    assert again.exit_code == 1 and "already running" in again.stderr
    refused = virtnet("undefine", defined)
    assert refused.exit_code == 1 and f"virtnet stop {defined}" in refused.stderr
    assert virtnet("stop", defined).exit_code == 0  # the test driver obeys ACPI at once
    assert not testdriver.lookupByName(defined).isActive()
    assert virtnet("start", defined).exit_code == 0
    assert virtnet("stop", defined, "--force").stdout.strip() == f"Domain '{defined}' powered off"
    assert virtnet("undefine", defined).exit_code == 0
    missing = virtnet("show", defined)
    assert missing.exit_code == 2 and "virtnet list --all" in missing.stderr


def test_version() -> None:
    result = virtnet("--version", uri=None)
    assert result.exit_code == 0 and result.stdout.startswith("virtnet ")


def test_the_graphics_password_reaches_libvirt_and_nothing_else(
    testdriver: libvirt.virConnect, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spec = tmp_path / "vnc.toml"
    spec.write_text(
        'name = "vnc"\nvideo = "vga"\n[cpu]\ncount = 1\n[memory]\nsize = "64MiB"\n'
        '[graphics]\ntype = "vnc"\npassword = "hunter2-secret"\n'
    )
    caplog.set_level("DEBUG")
    # A dry run of a new domain prints its whole XML (a redefine prints a diff, empty here).
    dry_run = virtnet("define", "--dry-run", str(spec))
    assert 'passwd="&lt;secret: not shown&gt;"' in dry_run.stdout
    assert "--show-secrets` prints it" in dry_run.stderr
    outputs = [dry_run, virtnet("define", str(spec)), virtnet("start", "vnc")]
    secure = testdriver.lookupByName("vnc").XMLDesc(libvirt.VIR_DOMAIN_XML_SECURE)
    assert etree.fromstring(secure.encode()).find("devices/graphics").get("passwd") == "hunter2-secret"
    for args in (("show", "vnc"), ("show", "vnc", "--json"), ("show", "vnc", "--xml"), ("list", "--json")):
        outputs.append(virtnet(*args))
    for args in (("xml", str(spec)),):
        outputs.append(virtnet(*args))
        assert 'passwd="&lt;secret: not shown&gt;"' in outputs[-1].stdout  # there is one: not shown
        assert "--show-secrets` prints it" in outputs[-1].stderr
    metadata = testdriver.lookupByName("vnc").metadata(
        libvirt.VIR_DOMAIN_METADATA_ELEMENT, "https://virtnet.dev/xmlns/domain/1.0"
    )
    assert "vnc" in metadata and "hunter2" not in metadata  # the stored spec
    shown = virtnet("show", "vnc")
    assert re.search(r"Graphics:\s+vnc on 127.0.0.1", shown.stdout)  # listen defaults to loopback
    for result in outputs:
        assert result.exit_code == 0
        assert "hunter2" not in result.stdout + result.stderr
    assert "hunter2" not in caplog.text
    assert "hunter2" not in repr(load_spec_file(spec))


def test_show_secrets_prints_the_graphics_password(tmp_path: Path) -> None:
    spec = tmp_path / "vnc.toml"
    spec.write_text(
        'name = "vnc"\n[cpu]\ncount = 1\n[memory]\nsize = "64MiB"\n'
        '[graphics]\ntype = "vnc"\npassword = "hunter2-secret"\n'
    )
    shown = virtnet("xml", str(spec), "--show-secrets")
    assert shown.exit_code == 0 and shown.stderr == ""
    assert etree.fromstring(shown.stdout.encode()).find("devices/graphics").get("passwd") == "hunter2-secret"
    hidden = virtnet("xml", str(spec))
    assert (
        etree.fromstring(hidden.stdout.encode()).find("devices/graphics").get("passwd")
        == "<secret: not shown>"
    )


def test_no_secret_in_errors_about_other_fields(tmp_path: Path) -> None:
    spec = tmp_path / "vnc.toml"
    spec.write_text(
        'name = "vnc"\nvideo = "hologram"\n[cpu]\ncount = 0\n[memory]\nsize = "64MiB"\n'
        '[graphics]\ntype = "vnc"\nport = 1\npassword = "hunter2-secret"\n'
        '[cloud_init]\nusers = [{ name = "t", password_hash = "hunter2-plain" }]\n'
    )
    for args in (("xml", str(spec)), ("define", str(spec)), ("xml", str(spec), "--show-secrets")):
        result = virtnet(*args)
        assert result.exit_code == 2
        assert len(result.stderr.splitlines()) == 4  # video, cpu.count, graphics.port, password_hash
        assert "hunter2" not in result.stdout + result.stderr
