"""Provisioning from the spec: the NoCloud seed, overlays, the agent channel, and the commands that
use them, on libvirt's test driver (the real guest is in tests/e2e/test_debian_guest.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import libvirt
import pytest
import tomli_w
import yaml
from lxml import etree
from test_cli import virtnet

from virtnet.cloudinit import build_seed
from virtnet.cloudinit.iso import read_seed_files, seed_iso
from virtnet.domxml import HostChoices, render_domain, validate_domain
from virtnet.errors import SpecError
from virtnet.spec import spec_from_dict

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMDhDYxVuHzHN0JOd0XhkXVYeI5e5GnfWCgfmmDEHiNq tester@virtnet"


def spec_dict(**changes: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": "deb1",
        "cpu": {"count": 1},
        "memory": {"size": "512MiB", "access": "shared"},
        "disks": [{"path": "/default-pool/deb1.qcow2", "size": "1GiB"}],
        "nics": [
            {"type": "user", "forwards": [{"host_port": 10122, "guest_port": 22}]},
            {"type": "vhostuser", "socket": "/run/vhost/deb1", "address": "10.77.9.1/24", "ovs": False},
        ],
        "cloud_init": {
            "hostname": "cloudy",
            "users": [{"name": "tester", "sudo": True, "shell": "/bin/bash", "ssh_authorized_keys": [KEY]}],
            "runcmd": [["touch", "/run/provisioned"], "echo hi > /run/hi"],
            "write_files": [{"path": "/etc/motd", "content": "provisioned by virtnet\n"}],
        },
    }
    spec.update(changes)
    return spec


def test_user_data_keeps_the_default_user_and_adds_the_spec_users() -> None:
    seed = build_seed(spec_from_dict(spec_dict()))
    assert seed is not None
    assert seed.user_data.startswith(b"#cloud-config\n")
    data = yaml.safe_load(seed.user_data)
    assert data["users"][0] == "default"
    tester = data["users"][1]
    assert tester["name"] == "tester" and tester["ssh_authorized_keys"] == [KEY]
    assert tester["sudo"] == "ALL=(ALL) NOPASSWD:ALL" and tester["lock_passwd"] is True
    assert data["hostname"] == "cloudy"
    assert data["runcmd"] == [["touch", "/run/provisioned"], "echo hi > /run/hi"]
    assert data["write_files"][0] == {
        "path": "/etc/motd",
        "content": "provisioned by virtnet\n",
        "permissions": "0644",
        "owner": "root:root",
    }
    meta = yaml.safe_load(seed.meta_data)
    assert meta == {"instance-id": seed.instance_id, "local-hostname": "cloudy"}


def test_default_user_can_be_left_out() -> None:
    spec = spec_dict()
    spec["cloud_init"]["default_user"] = False
    data = yaml.safe_load(build_seed(spec_from_dict(spec)).user_data)  # type: ignore[union-attr]
    assert [u["name"] for u in data["users"]] == ["tester"]


def test_network_config_matches_each_nic_by_mac() -> None:
    spec = spec_from_dict(spec_dict())
    config = yaml.safe_load(build_seed(spec).network_config)  # type: ignore[union-attr]
    assert config["version"] == 2
    eth0, eth1 = config["ethernets"]["eth0"], config["ethernets"]["eth1"]
    # The user NIC gets DHCP by default; the vhost-user NIC its static address.
    from virtnet.spec.derived import nic_mac

    assert eth0 == {"match": {"macaddress": nic_mac(spec, 0)}, "set-name": "eth0", "dhcp4": True}
    assert eth1["match"] == {"macaddress": nic_mac(spec, 1)} and eth1["set-name"] == "eth1"
    assert eth1["addresses"] == ["10.77.9.1/24"] and eth1["dhcp4"] is False


def test_gateway_and_dns() -> None:
    spec = spec_dict()
    spec["nics"][1].update(gateway="10.77.9.254", dns=["10.77.9.53"])
    eth1 = yaml.safe_load(build_seed(spec_from_dict(spec)).network_config)["ethernets"]["eth1"]  # type: ignore[union-attr]
    assert eth1["gateway4"] == "10.77.9.254"
    assert eth1["nameservers"] == {"addresses": ["10.77.9.53"]}


def test_a_nic_without_address_is_left_alone_and_no_fallback_dhcp() -> None:
    spec = spec_dict()
    del spec["nics"][1]["address"]
    spec["nics"] = spec["nics"][1:]
    config = yaml.safe_load(build_seed(spec_from_dict(spec)).network_config)  # type: ignore[union-attr]
    assert config == {"version": 2, "ethernets": {}}


def test_instance_id_changes_exactly_when_the_provisioning_changes() -> None:
    first = build_seed(spec_from_dict(spec_dict()))
    again = build_seed(spec_from_dict(spec_dict()))
    assert first is not None and again is not None
    assert first.instance_id == again.instance_id
    assert first.files() == again.files()
    # A change outside the provisioning (memory) keeps it; a change inside gives a new one.
    bigger = build_seed(spec_from_dict(spec_dict(memory={"size": "1GiB", "access": "shared"})))
    assert bigger is not None and bigger.instance_id == first.instance_id
    renamed = spec_dict()
    renamed["cloud_init"]["hostname"] = "other"
    assert build_seed(spec_from_dict(renamed)).instance_id != first.instance_id  # type: ignore[union-attr]
    readdressed = spec_dict()
    readdressed["nics"][1]["address"] = "10.77.9.2/24"
    assert build_seed(spec_from_dict(readdressed)).instance_id != first.instance_id  # type: ignore[union-attr]


def test_password_hash_reaches_the_seed_but_not_what_is_shown() -> None:
    spec = spec_dict()
    spec["cloud_init"]["users"][0]["password_hash"] = "$6$salt$HASHVALUE"
    seed = build_seed(spec_from_dict(spec))
    assert seed is not None
    user = yaml.safe_load(seed.user_data)["users"][1]
    assert user["hashed_passwd"] == "$6$salt$HASHVALUE" and user["lock_passwd"] is False
    assert "HASHVALUE" not in "".join(seed.shown().values())


def test_seed_iso_is_labelled_cidata_with_the_three_files(tmp_path: Path) -> None:
    seed = build_seed(spec_from_dict(spec_dict()))
    assert seed is not None
    image = tmp_path / "seed.iso"
    image.write_bytes(seed_iso(seed.files()))
    # util-linux's blkid, the way udev (and so cloud-init's NoCloud) finds the seed by its label.
    probe = subprocess.run(
        ["blkid", "-p", "-o", "export", str(image)], capture_output=True, text=True, check=True
    ).stdout
    assert "LABEL=cidata" in probe.split() and "TYPE=iso9660" in probe.split()
    assert read_seed_files(image.read_bytes(), seed.files()) == seed.files()


# --- a user's own user-data file ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("#cloud-config\nusers: [default\n", "fix the YAML"),
        ("#cloud-config\nusers: [default\nhostname: x\n", "line"),
        ("#!/bin/sh\necho hi\n", "not '#cloud-config'"),
        ("hostname: x\n", "not '#cloud-config'"),
        ("#cloud-config\n- a\n- b\n", "make it a mapping"),
    ],
)
def test_bad_user_data_is_refused_naming_the_field(tmp_path: Path, content: str, words: str) -> None:
    path = tmp_path / "user-data.yaml"
    path.write_text(content)
    spec = spec_dict(cloud_init={"user_data": str(path)})
    with pytest.raises(SpecError) as caught:
        build_seed(spec_from_dict(spec))
    assert caught.value.path == "cloud_init.user_data"
    assert words in str(caught.value)


def test_user_data_file_is_passed_through_and_warned_about(tmp_path: Path) -> None:
    path = tmp_path / "user-data.yaml"
    path.write_text("#cloud-config\nusers:\n  - name: ops\npackages: [htop]\n")
    seed = build_seed(spec_from_dict(spec_dict(cloud_init={"user_data": str(path), "hostname": "h1"})))
    assert seed is not None
    assert seed.user_data == path.read_bytes()
    assert "'default'" in seed.warnings[0]
    assert yaml.safe_load(seed.meta_data)["local-hostname"] == "h1"
    assert "passed through" in seed.shown()["user-data"]


# --- XML ----------------------------------------------------------------------------------------


def test_agent_channel_and_seed_cdrom_in_the_xml() -> None:
    spec = spec_from_dict(spec_dict())
    domain = render_domain(spec, HostChoices(virt_type="qemu"))
    validate_domain(domain)
    root = etree.fromstring(domain.to_xml().encode())
    channel = root.find("devices/channel")
    assert channel.get("type") == "unix"
    assert channel.find("target").attrib == {"type": "virtio", "name": "org.qemu.guest_agent.0"}
    seed = root.find("devices/disk[@device='cdrom']")
    assert seed.find("source").get("file") == "/default-pool/deb1-cidata.iso"
    # On PIIX's own IDE (no PCI device added); q35 has its AHCI built in.
    assert seed.find("readonly") is not None and seed.find("target").get("bus") == "ide"
    q35 = render_domain(spec_from_dict(spec_dict(machine="q35")), HostChoices(virt_type="qemu")).to_xml()
    assert etree.fromstring(q35.encode()).find("devices/disk[@device='cdrom']/target").get("bus") == "sata"


def test_agent_false_leaves_the_channel_out() -> None:
    root = etree.fromstring(
        render_domain(spec_from_dict(spec_dict(agent=False)), HostChoices(virt_type="qemu")).to_xml().encode()
    )
    assert root.find("devices/channel") is None


# --- CLI on the test driver ---------------------------------------------------------------------


def write_spec(tmp_path: Path, **changes: Any) -> str:
    path = tmp_path / "vm.toml"
    path.write_text(tomli_w.dumps(spec_dict(**changes)))
    return str(path)


def test_xml_seed_prints_the_files_without_secrets(tmp_path: Path) -> None:
    spec = spec_dict()
    spec["cloud_init"]["users"][0]["password_hash"] = "$6$salt$HASHVALUE"
    path = tmp_path / "vm.toml"
    path.write_text(tomli_w.dumps(spec))
    result = virtnet("xml", str(path), "--seed")
    assert result.exit_code == 0, result.stderr
    assert "# --- user-data ---" in result.stdout and "# --- network-config ---" in result.stdout
    assert "instance-id: iid-deb1-" in result.stdout
    assert "HASHVALUE" not in result.stdout


def test_define_dry_run_changes_nothing(tmp_path: Path, testdriver: libvirt.virConnect) -> None:
    result = virtnet("define", write_spec(tmp_path), "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert "<domain" in result.stdout and "# --- user-data ---" in result.stdout
    assert "nothing was changed" in result.stdout
    assert "deb1" not in [d.name() for d in testdriver.listAllDomains(0)]
    assert testdriver.storagePoolLookupByName("default-pool").listAllVolumes(0) == []


def test_a_seed_that_cannot_be_uploaded_leaves_nothing(
    tmp_path: Path, testdriver: libvirt.virConnect
) -> None:
    # The test driver has no volume upload: the define fails after the disk was made, and takes it back.
    result = virtnet("define", write_spec(tmp_path))
    assert result.exit_code == 1
    assert "cloud_init.seed" in result.stderr and "virStorageVolUpload" in result.stderr
    assert result.stderr.count("\n") == 1
    assert "deb1" not in [d.name() for d in testdriver.listAllDomains(0)]
    assert testdriver.storagePoolLookupByName("default-pool").listAllVolumes(0) == []


def test_overlay_is_made_over_the_backing_image(tmp_path: Path, testdriver: libvirt.virConnect) -> None:
    pool = testdriver.storagePoolLookupByName("default-pool")
    pool.createXML(
        "<volume><name>base.qcow2</name><capacity unit='GiB'>3</capacity>"
        "<target><format type='qcow2'/></target></volume>",
        0,
    )
    disks = [{"path": "/default-pool/deb1.qcow2", "backing": "/default-pool/base.qcow2"}]
    spec = str(tmp_path / "vm.toml")
    data = spec_dict(disks=disks)  # without provisioning: the test driver cannot upload a seed
    del data["cloud_init"]
    for nic in data["nics"]:
        nic.pop("address", None)
    Path(spec).write_text(tomli_w.dumps(data))
    result = virtnet("define", spec)
    assert result.exit_code == 0, result.stderr
    overlay = etree.fromstring(pool.storageVolLookupByName("deb1.qcow2").XMLDesc(0))
    assert overlay.findtext("backingStore/path") == "/default-pool/base.qcow2"
    assert overlay.find("capacity").text == str(3 * 1024**3)  # the base's size, as none was given
    # A second VM over the same base; the base itself is untouched.
    data2 = dict(
        data, name="deb2", disks=[{"path": "/default-pool/deb2.qcow2", "backing": disks[0]["backing"]}]
    )
    Path(spec).write_text(tomli_w.dumps(data2))
    assert virtnet("define", spec).exit_code == 0
    names = sorted(v.name() for v in pool.listAllVolumes(0))
    assert names == ["base.qcow2", "deb1.qcow2", "deb2.qcow2"]


def test_a_missing_backing_image_is_refused_and_nothing_made(
    tmp_path: Path, testdriver: libvirt.virConnect
) -> None:
    data = spec_dict(disks=[{"path": "/default-pool/deb1.qcow2", "backing": "/default-pool/nope.qcow2"}])
    del data["cloud_init"]
    for nic in data["nics"]:
        nic.pop("address", None)
    path = tmp_path / "vm.toml"
    path.write_text(tomli_w.dumps(data))
    result = virtnet("define", str(path))
    assert result.exit_code == 1
    assert "disks[0]" in result.stderr and "nope.qcow2 does not exist" in result.stderr
    assert testdriver.storagePoolLookupByName("default-pool").listAllVolumes(0) == []
    assert "deb1" not in [d.name() for d in testdriver.listAllDomains(0)]


def _defined_without_seed(tmp_path: Path, **changes: Any) -> str:
    data = spec_dict(**changes)
    del data["cloud_init"]
    for nic in data["nics"]:
        nic.pop("address", None)
    data["console"] = {"type": "pty", "log": str(tmp_path / "console.log")}
    path = tmp_path / "vm.toml"
    path.write_text(tomli_w.dumps(data))
    assert virtnet("define", str(path)).exit_code == 0
    return "deb1"


def test_exec_needs_a_double_dash(tmp_path: Path, testdriver: libvirt.virConnect) -> None:
    name = _defined_without_seed(tmp_path)
    result = virtnet("exec", name, "cat", "/etc/os-release")
    assert result.exit_code == 2
    assert "put -- before the guest command" in result.stderr and result.stderr.count("\n") == 1
    nothing = virtnet("exec", name, "--")
    assert nothing.exit_code == 2 and "no command" in nothing.stderr
    with_option = virtnet("exec", name, "ls", "-l")
    assert with_option.exit_code == 2 and "virtnet exec NAME -- ls -l" in with_option.stderr


def test_exec_without_agent_channel_is_exit_2(tmp_path: Path, testdriver: libvirt.virConnect) -> None:
    name = _defined_without_seed(tmp_path, agent=False)
    assert virtnet("start", name).exit_code == 0
    result = virtnet("exec", name, "--", "true")
    assert result.exit_code == 2
    assert "no guest agent channel" in result.stderr and "agent = true" in result.stderr
    stopped = virtnet("exec", "test", "--", "true")  # the test driver's own domain has no channel either
    assert stopped.exit_code == 2


def test_exec_on_a_stopped_domain_is_exit_2(tmp_path: Path, testdriver: libvirt.virConnect) -> None:
    name = _defined_without_seed(tmp_path)
    result = virtnet("exec", name, "--", "true")
    assert result.exit_code == 2 and "not running" in result.stderr


def test_ssh_print_pins_host_keys_from_the_console(tmp_path: Path, testdriver: libvirt.virConnect) -> None:
    name = _defined_without_seed(tmp_path)
    assert virtnet("start", name).exit_code == 0
    hostkey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBt1fW6ZbK3hH2pXq3mR5o8nAq4C9x0dXQ8a7l9cW7d4 root@cloudy"
    (tmp_path / "console.log").write_text(
        "boot...\n-----BEGIN SSH HOST KEY KEYS-----\n" + hostkey + "\n-----END SSH HOST KEY KEYS-----\n"
    )
    result = virtnet("ssh", name, "--print", "-i", str(tmp_path / "key"), "--", "hostname")
    assert result.exit_code == 0, result.stderr
    argv = result.stdout.split()
    assert argv[:3] == ["ssh", "-p", "10122"] and argv[-3:] == ["127.0.0.1", "--", "hostname"]
    assert "StrictHostKeyChecking=yes" in argv
    known = next(a.split("=", 1)[1] for a in argv if a.startswith("UserKnownHostsFile="))
    alias = next(a.split("=", 1)[1] for a in argv if a.startswith("HostKeyAlias="))
    assert Path(known).read_text() == f"{alias} {' '.join(hostkey.split()[:2])}\n"
    assert "-i" in argv and "-l" not in argv  # no users in this spec: ssh's own default


def test_wait_and_start_wait_refuse_unknown_readiness(tmp_path: Path, testdriver: libvirt.virConnect) -> None:
    name = _defined_without_seed(tmp_path)
    assert virtnet("wait", name, "--for", "dhcp").exit_code == 2
    assert virtnet("start", name, "--wait", "ping").exit_code == 2
    assert "shut off" in virtnet("show", name).stdout  # refused before anything started


def test_wait_for_ssh_times_out_with_what_it_saw_and_the_console(
    tmp_path: Path, testdriver: libvirt.virConnect
) -> None:
    name = _defined_without_seed(
        tmp_path, nics=[{"type": "user", "forwards": [{"host_port": 1, "guest_port": 22}]}]
    )
    assert virtnet("start", name).exit_code == 0
    (tmp_path / "console.log").write_text("Booting...\nKernel panic - not syncing: VFS\n")
    result = virtnet("wait", name, "--for", "ssh", "--timeout", "1")
    assert result.exit_code == 1
    first, *rest = result.stderr.splitlines()
    assert "not ready for ssh after" in first and "127.0.0.1:1" in first
    assert any("Kernel panic" in line for line in rest)


@pytest.mark.parametrize("content", ["#cloud-config\nusers: [default\n", "#!/bin/sh\nreboot\n"])
def test_define_with_bad_user_data_is_exit_2_and_creates_nothing(
    tmp_path: Path, testdriver: libvirt.virConnect, content: str
) -> None:
    user_data = tmp_path / "user-data"
    user_data.write_text(content)
    result = virtnet("define", write_spec(tmp_path, cloud_init={"user_data": str(user_data)}))
    assert result.exit_code == 2
    assert (
        result.stderr.startswith("virtnet: error: cloud_init.user_data: ") and result.stderr.count("\n") == 1
    )
    assert "deb1" not in [d.name() for d in testdriver.listAllDomains(0)]
    assert testdriver.storagePoolLookupByName("default-pool").listAllVolumes(0) == []
