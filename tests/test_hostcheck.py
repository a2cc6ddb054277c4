"""`virtnet host check` and `prepare` on fake /proc, /sys and /dev trees: every check, every verdict."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from virtnet.errors import HostNotReady, InputError
from virtnet.hostcheck.daemon import daemon_pid
from virtnet.hostcheck.machine import Machine
from virtnet.hostcheck.prepare import prepare_hugepages
from virtnet.hostcheck.report import dev_kvm_finding, hugepage_findings, iommu_findings
from virtnet.hostcheck.resources import require_resources, resource_findings
from virtnet.socketdir import QemuOwner
from virtnet.spec import spec_from_dict
from virtnet.units import GIB, MIB

QEMU = QemuOwner(uid=64055, gid=64055)


class FakeHost:
    """A machine's files under a temporary root."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.write("/proc/meminfo", "MemTotal: 24000000 kB\nHugePages_Rsvd: 0\nHugepagesize: 2048 kB\n")
        self.write("/proc/mounts", "proc /proc proc rw 0 0\n")
        self.write("/proc/cmdline", "BOOT_IMAGE=/vmlinuz root=/dev/sda1\n")
        self.write("/sys/devices/system/cpu/online", "0-3\n")
        self.pool(2 * MIB, 0, 0)
        self.pool(GIB, 0, 0)

    def write(self, path: str, text: str) -> Path:
        target = self.root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        return target

    def pool(self, size: int, total: int, free: int) -> None:
        base = f"/sys/kernel/mm/hugepages/hugepages-{size // 1024}kB"
        self.write(f"{base}/nr_hugepages", f"{total}\n")
        self.write(f"{base}/free_hugepages", f"{free}\n")

    def mount(self, line: str) -> None:
        self.write("/proc/mounts", (self.root / "proc/mounts").read_text() + line + "\n")

    @property
    def machine(self) -> Machine:
        return Machine(self.root)


@pytest.fixture
def fake(tmp_path: Path) -> FakeHost:
    return FakeHost(tmp_path)


def spec(**changes: object) -> object:
    data: dict[str, object] = {
        "name": "vm",
        "cpu": {"count": 2, "pinning": {"vcpus": {"0": "2", "1": "3"}, "emulator": "1"}},
        "memory": {"size": "1GiB", "access": "shared", "hugepages": {"page_size": "2MiB"}},
    }
    data.update(changes)
    return spec_from_dict(data)


def by_name(findings: list) -> dict:
    return {f.name: f for f in findings}


def test_no_hugepages_is_a_warning_with_the_prepare_command(fake: FakeHost) -> None:
    found = by_name(hugepage_findings(fake.machine))
    assert found["hugepages 2MiB"].status == "warn"
    assert "virtnet host prepare --hugepages" in found["hugepages 2MiB"].fix
    assert found["hugepages 1GiB"].status == "ok"  # a non-default size may well be unused


def test_reserved_but_unmounted_pages_fail(fake: FakeHost) -> None:
    fake.pool(2 * MIB, 512, 500)
    found = by_name(hugepage_findings(fake.machine))
    assert found["hugepages 2MiB"].status == "ok" and "total 512, free 500" in found["hugepages 2MiB"].detail
    assert found["hugetlbfs 2MiB"].status == "fail"
    assert found["hugetlbfs 2MiB"].fix == "virtnet host prepare --hugepages 1GiB --page-size 2MiB"


def test_mounts_are_matched_by_page_size(fake: FakeHost) -> None:
    fake.pool(2 * MIB, 512, 512)
    fake.pool(GIB, 2, 2)
    fake.mount("hugetlbfs /dev/hugepages hugetlbfs rw,relatime,pagesize=2M 0 0")
    found = by_name(hugepage_findings(fake.machine))
    assert found["hugetlbfs 2MiB"].status == "ok" and "/dev/hugepages" in found["hugetlbfs 2MiB"].detail
    assert found["hugetlbfs 1GiB"].status == "fail"
    fake.mount("none /dev/hugepages1G hugetlbfs rw,pagesize=1024M 0 0")
    assert by_name(hugepage_findings(fake.machine))["hugetlbfs 1GiB"].status == "ok"


def test_mount_without_pagesize_serves_the_default_size(fake: FakeHost) -> None:
    fake.pool(2 * MIB, 8, 8)
    fake.mount("hugetlbfs /dev/hugepages hugetlbfs rw 0 0")
    assert by_name(hugepage_findings(fake.machine))["hugetlbfs 2MiB"].status == "ok"


def test_mounts_are_read_as_another_process_sees_them(fake: FakeHost) -> None:
    fake.pool(2 * MIB, 8, 8)
    fake.write("/proc/4242/mounts", "hugetlbfs /dev/hugepages hugetlbfs rw,pagesize=2M 0 0\n")
    assert by_name(hugepage_findings(fake.machine))["hugetlbfs 2MiB"].status == "fail"
    libvirtd_view = Machine(fake.root, mounts_of=4242)
    finding = by_name(hugepage_findings(libvirtd_view))["hugetlbfs 2MiB"]
    assert finding.status == "ok" and "pid 4242" in finding.detail


def test_iommu_and_vfio(fake: FakeHost) -> None:
    found = by_name(iommu_findings(fake.machine))
    assert found["iommu"].status == "warn" and "intel_iommu=on" in found["iommu"].fix
    assert found["vfio-pci"].status == "warn" and found["vfio-pci"].fix == "modprobe vfio-pci"
    (fake.root / "sys/class/iommu/dmar0").mkdir(parents=True)
    (fake.root / "sys/module/vfio_pci").mkdir(parents=True)
    fake.write("/proc/cmdline", "root=/dev/sda1 intel_iommu=on iommu=pt\n")
    found = by_name(iommu_findings(fake.machine))
    assert (
        found["iommu"].status == "ok"
        and "dmar0" in found["iommu"].detail
        and "iommu=pt" in found["iommu"].detail
    )
    assert found["vfio-pci"].status == "ok"


@pytest.mark.skipif(os.geteuid() != 0, reason="chown of the fake /dev/kvm needs root")
def test_dev_kvm_access_and_the_reprobe_trap(fake: FakeHost) -> None:
    assert dev_kvm_finding(fake.machine, QEMU).status == "warn"  # missing
    kvm = fake.write("/dev/kvm", "")
    os.chown(kvm, 0, 0)
    kvm.chmod(0o600)  # as on the CI machine
    trap = dev_kvm_finding(fake.machine, QEMU)
    assert trap.status == "fail" and "capability cache" in trap.detail
    assert "chgrp kvm /dev/kvm && chmod 660 /dev/kvm" in trap.fix
    assert dev_kvm_finding(fake.machine, QemuOwner(0, 0)).status == "ok"  # root QEMU (the lab)
    os.chown(kvm, 0, QEMU.gid)
    kvm.chmod(0o660)  # what udev's rule does, with QEMU's group
    assert dev_kvm_finding(fake.machine, QEMU).status == "ok"


def test_spec_needs_free_hugepages_of_its_size(fake: FakeHost) -> None:
    fake.pool(2 * MIB, 600, 300)
    finding = by_name(resource_findings(fake.machine, spec()))["spec hugepages"]
    assert finding.status == "fail" and "needs 512 free 2MiB hugepages" in finding.detail
    assert "only 300 of 600 are free" in finding.detail
    assert finding.fix == "virtnet host prepare --hugepages 1624MiB --page-size 2MiB"
    with pytest.raises(HostNotReady, match=r"needs 512 free 2MiB hugepages.*virtnet host prepare"):
        require_resources(fake.machine, spec())
    fake.pool(2 * MIB, 600, 600)
    assert by_name(resource_findings(fake.machine, spec()))["spec hugepages"].status == "ok"


def test_spec_reserved_pages_do_not_count_as_free(fake: FakeHost) -> None:
    fake.pool(2 * MIB, 600, 600)
    fake.write("/proc/meminfo", "HugePages_Rsvd: 200\nHugepagesize: 2048 kB\n")
    assert by_name(resource_findings(fake.machine, spec()))["spec hugepages"].status == "fail"


def test_spec_page_size_the_kernel_lacks(fake: FakeHost) -> None:
    (fake.root / "sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages").unlink()
    (fake.root / "sys/kernel/mm/hugepages/hugepages-1048576kB/free_hugepages").unlink()
    (fake.root / "sys/kernel/mm/hugepages/hugepages-1048576kB").rmdir()
    big = spec(memory={"size": "2GiB", "access": "shared", "hugepages": {"page_size": "1GiB"}})
    finding = by_name(resource_findings(fake.machine, big))["spec hugepages"]
    assert finding.status == "fail" and "no 1GiB hugepages" in finding.detail


def test_spec_pins_must_exist(fake: FakeHost) -> None:
    fake.pool(2 * MIB, 600, 600)
    fake.write("/sys/devices/system/cpu/online", "0-1\n")
    finding = by_name(resource_findings(fake.machine, spec()))["spec cpus"]
    assert finding.status == "fail"
    assert finding.detail == "cpu.pinning.vcpus.0: host CPU 2 does not exist here (online: 0-1)"


def test_prepare_sets_the_pool_and_is_idempotent(fake: FakeHost) -> None:
    changes = prepare_hugepages(fake.machine, 2 * GIB, 2 * MIB, mount=False)
    assert changes == ["2MiB hugepages: 0 -> 1024 (2GiB)"]
    assert (fake.root / "sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages").read_text().strip() == "1024"
    assert prepare_hugepages(fake.machine, 2 * GIB, 2 * MIB, mount=False) == []


def test_prepare_persists_sysctl_and_fstab_once(fake: FakeHost) -> None:
    fake.write("/etc/fstab", "UUID=abc / ext4 defaults 0 1\n")
    changes = prepare_hugepages(fake.machine, 2 * GIB, 2 * MIB, mount=False, persist=True)
    assert "wrote /etc/sysctl.d/80-virtnet-hugepages.conf: vm.nr_hugepages = 1024" in changes
    assert "added to /etc/fstab: hugetlbfs /dev/hugepages hugetlbfs pagesize=2M 0 0" in changes
    fstab = (fake.root / "etc/fstab").read_text()
    assert fstab.startswith("UUID=abc") and fstab.count("hugetlbfs") == 2
    assert prepare_hugepages(fake.machine, 2 * GIB, 2 * MIB, mount=False, persist=True) == []


def test_prepare_1g_pages_says_they_belong_on_the_kernel_command_line(fake: FakeHost) -> None:
    changes = prepare_hugepages(fake.machine, 4 * GIB, GIB, mount=False, persist=True)
    assert changes[0] == "1GiB hugepages: 0 -> 4 (4GiB)"
    assert any("hugepagesz=1G hugepages=4" in change for change in changes)
    assert any("/dev/hugepages1G" in change for change in changes)


def test_prepare_refuses_sizes_that_do_not_fit(fake: FakeHost) -> None:
    with pytest.raises(InputError, match="not a multiple"):
        prepare_hugepages(fake.machine, 3 * MIB, 2 * MIB, mount=False)
    with pytest.raises(HostNotReady, match="no 16MiB hugepages"):
        prepare_hugepages(fake.machine, 32 * MIB, 16 * MIB, mount=False)


def test_daemon_pid_finds_the_listening_process(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    (proc / "net").mkdir(parents=True)
    header = (
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
    )
    # 127.0.0.2:16509 listening (0A), socket inode 777; 127.0.0.4:16514 (TLS), inode 555
    (proc / "net/tcp").write_text(
        header + "   0: 0200007F:407D 00000000:0000 0A 00000000:00000000 00:00000000 "
        "00000000     0        0 777 1 0000000000000000 100 0 0 10 0\n"
        "   1: 0400007F:4082 00000000:0000 0A 00000000:00000000 00:00000000 "
        "00000000     0        0 555 1 0000000000000000 100 0 0 10 0\n"
    )
    (proc / "net/unix").write_text(
        "Num RefCount Protocol Flags Type St Inode Path\n"
        "0000: 00000002 00000000 00010000 0001 01 888 /run/libvirt/libvirt-sock\n"
    )
    (proc / "4321/fd").mkdir(parents=True)
    (proc / "4321/fd/5").symlink_to("socket:[777]")
    (proc / "99/fd").mkdir(parents=True)
    (proc / "99/fd/3").symlink_to("socket:[888]")
    (proc / "77/fd").mkdir(parents=True)
    (proc / "77/fd/4").symlink_to("socket:[555]")
    assert daemon_pid("qemu+tcp://127.0.0.2/system", proc) == 4321
    assert daemon_pid("qemu+tls://127.0.0.4/system?pkipath=/lab/pki/client", proc) == 77
    assert daemon_pid("qemu+tls://127.0.0.2/system", proc) is None  # 16509 is TCP's port, not TLS's
    assert daemon_pid("qemu+tcp://127.0.0.3/system", proc) is None
    assert daemon_pid("qemu:///system", proc) == 99
    assert daemon_pid("qemu+ssh://elsewhere/system", proc) is None


# --- the whole report when a daemon is down ---------------------------------------------------------

DOWN_LIBVIRT = "qemu+tcp://127.0.0.1:9/system"  # the discard port: nothing answers libvirt there
DOWN_OVSDB = "unix:/nonexistent/virtnet-test/db.sock"


@pytest.fixture
def cli_on_fake(fake: FakeHost, monkeypatch: pytest.MonkeyPatch) -> FakeHost:
    """`virtnet host check` reading the fake machine, with no KVM probe of the real one."""
    import virtnet.hostcheck.machine
    from virtnet.virt import kvm_probe

    monkeypatch.setattr(virtnet.hostcheck.machine, "Machine", lambda: fake.machine)
    monkeypatch.setattr(kvm_probe, "cached_verdict", lambda: None)
    monkeypatch.setattr(kvm_probe, "probe_kernel", lambda: None)
    return fake


def host_check(uri: str, *args: str) -> Any:
    from typer.testing import CliRunner

    from virtnet.cli import app

    result = CliRunner().invoke(app, ["-c", uri, "--ovsdb", DOWN_OVSDB, "host", "check", *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception  # a traceback is a bug
    return result


def test_everything_down_still_reports_every_check_it_can(cli_on_fake: FakeHost) -> None:
    result = host_check(DOWN_LIBVIRT)
    assert result.exit_code == 1
    lines = {line.split()[1]: line for line in result.stdout.splitlines()}
    assert (
        lines["libvirt"].startswith("FAIL")
        and "cannot connect to libvirt at " + DOWN_LIBVIRT in lines["libvirt"]
    )
    assert "-> fix: check that libvirtd runs there" in lines["libvirt"]
    assert lines["ovsdb"].startswith("FAIL") and "-> fix: start Open vSwitch" in lines["ovsdb"]
    # The machine's own checks ran although neither daemon answered.
    assert {"hugepages", "iommu", "vfio-pci", "/dev/kvm"} <= set(lines)
    assert result.stderr == ""


def test_everything_down_json_is_valid_and_complete(cli_on_fake: FakeHost) -> None:
    import json

    result = host_check(DOWN_LIBVIRT, "--json")
    assert result.exit_code == 1
    findings = json.loads(result.stdout)
    by = {f["name"]: f for f in findings}
    assert by["libvirt"]["status"] == "fail" and by["libvirt"]["fix"]
    assert by["ovsdb"]["status"] == "fail" and "--ovsdb" in by["ovsdb"]["fix"]
    assert {"hugepages 2MiB", "iommu"} <= set(by)
    assert all(set(f) == {"name", "status", "detail", "fix"} for f in findings)


def test_down_daemons_with_a_spec_still_check_what_it_needs_of_the_machine(
    cli_on_fake: FakeHost, tmp_path: Path
) -> None:
    spec_file = tmp_path / "vm.toml"
    spec_file.write_text(
        'name = "vm"\n[cpu]\ncount = 2\n[memory]\nsize = "1GiB"\naccess = "shared"\n'
        '[memory.hugepages]\npage_size = "2MiB"\n'
    )
    result = host_check(DOWN_LIBVIRT, "--spec", str(spec_file))
    assert result.exit_code == 1
    assert "FAIL spec hugepages   vm needs 512 free 2MiB hugepages" in result.stdout  # the spec's own need
    assert "FAIL libvirt" in result.stdout and "FAIL ovsdb" in result.stdout


def test_libvirt_up_and_ovsdb_down(cli_on_fake: FakeHost, testdriver: Any) -> None:
    result = host_check("test:///default")
    assert result.exit_code == 1
    assert result.stdout.startswith("OK   libvirt") and "FAIL ovsdb" in result.stdout
