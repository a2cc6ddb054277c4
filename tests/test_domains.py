"""Lifecycle through libvirt's test driver: define, redefine, refuse, roll back."""

from __future__ import annotations

from typing import Any

import libvirt
import pytest
from support import TEST_URI, add_volume

from virtnet import control
from virtnet.control import domains
from virtnet.errors import DomainExists, DomainNotFound, InvalidDomainState, StorageError
from virtnet.inventory import spec_of
from virtnet.spec import spec_from_dict
from virtnet.virt.host import Host


def vm(**changes: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": "vm1",
        "cpu": {"count": 2},
        "memory": {"size": "1GiB", "access": "shared", "hugepages": {"page_size": "2MiB"}},
        "disks": [{"path": "/default-pool/vm1.qcow2", "size": "1GiB"}],
        "nics": [{"type": "vhostuser", "socket": "/run/vhost/vm1", "queues": 2, "ovs": False}],
    }
    spec.update(changes)
    return spec


@pytest.fixture
def host(testdriver: libvirt.virConnect) -> Host:
    with Host.open(TEST_URI) as opened:
        yield opened


def volumes(conn: libvirt.virConnect) -> set[str]:
    return {vol.path() for pool in conn.listAllStoragePools(0) for vol in pool.listAllVolumes(0)}


def test_define_creates_missing_disk_and_stores_the_spec(host: Host, testdriver: libvirt.virConnect) -> None:
    spec = spec_from_dict(vm())
    result = domains.define(host, spec)
    assert result.created_disks == ("/default-pool/vm1.qcow2",)
    assert not result.redefined
    assert result.virt_type == "qemu"  # the test driver offers no KVM
    dom = testdriver.lookupByName("vm1")
    vol = testdriver.storageVolLookupByPath("/default-pool/vm1.qcow2")
    assert vol.info()[1] == 1024**3  # capacity
    assert spec_of(host.lookup("vm1")) == spec
    assert dom.isPersistent()


def test_redefine_keeps_uuid_and_disk(host: Host) -> None:
    first = domains.define(host, spec_from_dict(vm()))
    second = domains.define(host, spec_from_dict(vm(cpu={"count": 2, "cores": 2})))
    assert second.redefined and second.created_disks == ()
    assert second.guest.uuid == first.guest.uuid
    assert spec_of(host.lookup("vm1")).cpu.cores == 2


def test_define_refuses_to_take_over_a_foreign_domain(host: Host) -> None:
    with pytest.raises(DomainExists, match="virtnet did not define it"):
        domains.define(host, spec_from_dict(vm(name="test")))


def test_define_refuses_another_uuid(host: Host) -> None:
    domains.define(host, spec_from_dict(vm()))
    with pytest.raises(DomainExists, match="UUID"):
        domains.define(host, spec_from_dict(vm(uuid="11111111-2222-3333-4444-555555555555")))


def test_missing_image_without_size_is_refused_and_nothing_is_made(
    host: Host, testdriver: libvirt.virConnect
) -> None:
    before = volumes(testdriver)
    spec = spec_from_dict(
        vm(
            disks=[
                {"path": "/default-pool/new.qcow2", "size": "1GiB"},
                {"path": "/default-pool/missing.iso", "device": "cdrom"},
            ]
        )
    )
    with pytest.raises(StorageError, match=r"disks\[1\].path: /default-pool/missing.iso does not exist"):
        domains.define(host, spec)
    assert volumes(testdriver) == before  # the first disk was created, then deleted again
    assert host.find("vm1") is None


def test_rejected_domain_deletes_the_disks_it_created(host: Host, testdriver: libvirt.virConnect) -> None:
    before = volumes(testdriver)
    # Same UUID as the test driver's own domain under another name: libvirt refuses the define.
    uuid = testdriver.lookupByName("test").UUIDString()
    with pytest.raises(DomainExists):
        domains.define(host, spec_from_dict(vm(uuid=uuid)))
    assert volumes(testdriver) == before
    assert host.find("vm1") is None


def test_existing_image_is_used_as_is(host: Host, testdriver: libvirt.virConnect) -> None:
    add_volume(testdriver, "default-pool", "install.iso")
    spec = spec_from_dict(vm(disks=[{"path": "/default-pool/install.iso", "device": "cdrom"}]))
    assert domains.define(host, spec).created_disks == ()


def test_port_forwards_fall_back_to_qemu_arguments_on_libvirt_9_0(host: Host) -> None:
    spec = spec_from_dict(vm(nics=[{"type": "user", "forwards": [{"host_port": 2222, "guest_port": 22}]}]))
    result = domains.define(host, spec)
    expected = "passt" if host.libvirt_version >= (9, 2, 0) else "qemu-args"
    assert result.forward_style == expected


def test_start_stop_undefine(host: Host, testdriver: libvirt.virConnect) -> None:
    domains.define(host, spec_from_dict(vm()))
    domains.start(host, "vm1")
    assert testdriver.lookupByName("vm1").isActive()
    with pytest.raises(InvalidDomainState, match="already running"):
        domains.start(host, "vm1")
    with pytest.raises(InvalidDomainState, match="stop it first"):
        domains.undefine(host, "vm1")
    domains.stop(host, "vm1", force=True)
    assert not testdriver.lookupByName("vm1").isActive()
    with pytest.raises(InvalidDomainState, match="not running"):
        domains.stop(host, "vm1")
    domains.undefine(host, "vm1")
    with pytest.raises(DomainNotFound):
        host.lookup("vm1")


def test_list_marks_managed_domains(host: Host) -> None:
    domains.define(host, spec_from_dict(vm()))
    views = {v.name: v for v in control.list_domains(host, include_inactive=True)}
    assert views["vm1"].managed and not views["test"].managed
    assert views["vm1"].vcpus == 2 and views["vm1"].memory_kib == 1024 * 1024
    assert [v.name for v in control.list_domains(host)] == ["test"]  # only running ones
