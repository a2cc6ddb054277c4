"""`virtnet host check`: every check of the walkthrough's host set-up, one Finding each."""

from __future__ import annotations

import functools
import grp
import pwd
from collections.abc import Callable
from typing import TYPE_CHECKING

from virtnet.errors import ConnectionFailed, HypervisorError, OvsdbError, SwitchNotReady, VirtnetError
from virtnet.hostcheck.daemon import daemon_pid
from virtnet.hostcheck.finding import Finding, Status
from virtnet.hostcheck.machine import Machine, can_open_rw
from virtnet.hostcheck.resources import resource_findings
from virtnet.hostcheck.transport import transport_findings
from virtnet.socketdir import QemuOwner
from virtnet.units import format_cpuset, format_size
from virtnet.virt import kvm_probe

if TYPE_CHECKING:
    from virtnet.spec.models import VMSpec
    from virtnet.virt.host import Host

KVM_FIX = "load kvm_intel or kvm_amd and enable VT-x/AMD-V in the firmware"


def host_report(uri: str | None, machine: Machine, ovsdb: str, spec: VMSpec | None = None) -> list[Finding]:
    """Every check that can run. libvirtd or ovsdb-server out of reach fails its own checks with the fix;
    the checks of the machine itself still run (for a local URI), and so does the rest."""
    from virtnet.virt.host import Host, default_uri, is_local_uri

    uri = uri or default_uri()
    try:
        host: Host | None = Host.open(uri)
    except ConnectionFailed as err:
        host = None
        findings = [_failed("libvirt", err)]
    try:
        if host is not None:
            findings = _section("libvirt", lambda: libvirt_findings(host))
            findings += transport_findings(uri)
        if is_local_uri(uri):
            # hugetlbfs mounts as libvirtd sees them: it may live in a mount namespace of its own.
            machine = Machine(machine.root, mounts_of=daemon_pid(uri, machine.path("/proc")))
            findings += _section("/dev/kvm", lambda: kvm_findings(machine, host))
            findings += hugepage_findings(machine)
            findings += iommu_findings(machine)
        else:
            findings.append(
                Finding(
                    "machine",
                    "warn",
                    f"{uri} is remote: its /dev/kvm, hugepages and IOMMU are not checked from here",
                    "run `virtnet host check` on that host",
                )
            )
        findings += ovs_findings(ovsdb, spec)
        if spec is not None:
            findings += _section("spec", lambda: spec_findings(host, uri, machine, spec))
    finally:
        if host is not None:
            host.close()
    return findings


def _failed(name: str, err: VirtnetError) -> Finding:
    detail, _, fix = str(err).partition("; ")
    return Finding(name, "fail", detail, fix)


def _section(name: str, checks: Callable[[], list[Finding]]) -> list[Finding]:
    """A group of checks, or one failure when the daemon they ask goes away half-way."""
    try:
        return checks()
    except HypervisorError as err:
        return [_failed(name, err)]


def libvirt_findings(host: Host) -> list[Finding]:
    major, minor, micro = host.libvirt_version
    qemu = host.hypervisor_version if host.driver == "QEMU" else None
    qemu_text = f" with QEMU {qemu[0]}.{qemu[1]}.{qemu[2]}" if qemu else ""
    findings = [
        Finding("libvirt", "ok", f"libvirtd {major}.{minor}.{micro} ({host.driver}){qemu_text} at {host.uri}")
    ]
    types = [t for t in ("kvm", "qemu") if host.domain_capabilities_xml(t) is not None]
    if "kvm" in types:
        findings.append(Finding("domain types", "ok", "libvirt offers " + ", ".join(types)))
    else:
        findings.append(
            Finding(
                "domain types",
                "warn",
                "libvirt offers no kvm: guests run under TCG, several times slower",
                KVM_FIX,
            )
        )
    return findings


def kvm_findings(machine: Machine, host: Host | None) -> list[Finding]:
    owner = host.qemu_runs_as() if host is not None else None
    access = dev_kvm_finding(machine, owner)
    if access.status == "warn":
        return [access]  # no /dev/kvm: nothing more to learn about KVM
    return [access, kvm_guest_finding()]


def dev_kvm_finding(machine: Machine, owner: QemuOwner | None) -> Finding:
    """Whether libvirt's QEMU user can open /dev/kvm: the re-probe trap of host.md when it cannot."""
    node = machine.device("/dev/kvm")
    if node is None:
        return Finding("/dev/kvm", "warn", "/dev/kvm is missing: guests run under TCG", KVM_FIX)
    mode = f"{_name(pwd.getpwuid, node.uid)}:{_name(grp.getgrgid, node.gid)} {node.mode:o}"
    if owner is None:
        return Finding("/dev/kvm", "ok", f"/dev/kvm exists ({mode}); libvirt did not say who runs QEMU")
    if can_open_rw(node, owner.uid, {owner.gid, *_supplementary_groups(owner.uid)}):
        return Finding("/dev/kvm", "ok", f"QEMU ({owner.describe()}) can open /dev/kvm ({mode})")
    return Finding(
        "/dev/kvm",
        "fail",
        f"QEMU runs as {owner.describe()} and cannot open /dev/kvm ({mode}), while libvirtd probes QEMU "
        "as root: libvirt then throws its QEMU capability cache away on every call (30-45 s per define)",
        f"chgrp kvm /dev/kvm && chmod 660 /dev/kvm && usermod -aG kvm {_name(pwd.getpwuid, owner.uid)} "
        '(what udev\'s rule does), or user = "root" in qemu.conf',
    )


def kvm_guest_finding() -> Finding:
    """The KVM probe's verdict: does a KVM guest really boot here? (probed once, then cached)."""
    verdict = kvm_probe.cached_verdict()
    if verdict is None and (kernel := kvm_probe.probe_kernel()) is not None:
        verdict = kvm_probe.probe(kernel)
    if verdict is None:
        return Finding(
            "kvm guest",
            "warn",
            "not probed whether a KVM guest really runs",
            "set VIRTNET_PROBE_KERNEL to a kernel image, or run `virtnet lab up` once",
        )
    if verdict.usable:
        return Finding("kvm guest", "ok", verdict.reason)
    return Finding(
        "kvm guest",
        "warn",
        f"{verdict.reason}; virt_type 'auto' uses qemu (TCG)",
        "check nested virtualisation on the hypervisor under this machine",
    )


def hugepage_findings(machine: Machine) -> list[Finding]:
    findings = []
    for pool in machine.hugepage_pools():
        size = format_size(pool.page_size)
        counts = f"total {pool.total}, free {pool.free}, reserved {pool.reserved}"
        if pool.total == 0:
            status: Status = "warn" if pool.page_size == machine.default_hugepage_size() else "ok"
            findings.append(
                Finding(
                    f"hugepages {size}",
                    status,
                    f"{size} pages: none reserved",
                    f"virtnet host prepare --hugepages 2GiB --page-size {size}",
                )
            )
            continue
        findings.append(Finding(f"hugepages {size}", "ok", f"{size} pages: {counts}"))
        mounts = machine.hugetlbfs_mounts(pool.page_size)
        seen_by = f" (as libvirtd, pid {machine.mounts_of}, sees it)" if machine.mounts_of else ""
        if mounts:
            findings.append(
                Finding(
                    f"hugetlbfs {size}", "ok", "mounted on " + ", ".join(m.target for m in mounts) + seen_by
                )
            )
        else:
            findings.append(
                Finding(
                    f"hugetlbfs {size}",
                    "fail",
                    f"{pool.total} {size} pages but no hugetlbfs mounted for them{seen_by}",
                    f"virtnet host prepare --hugepages {format_size(pool.total * pool.page_size)} "
                    f"--page-size {size}",
                )
            )
    return findings


def iommu_findings(machine: Machine) -> list[Finding]:
    grub = 'GRUB_CMDLINE_LINUX="intel_iommu=on iommu=pt" in /etc/default/grub, update-grub, reboot'
    groups = machine.iommu_groups()
    asked = [w for w in machine.cmdline() if w.startswith(("intel_iommu=", "amd_iommu=", "iommu="))]
    if groups:
        iommu = Finding(
            "iommu", "ok", f"IOMMU on ({', '.join(groups)}){' with ' + ' '.join(asked) if asked else ''}"
        )
    else:
        iommu = Finding(
            "iommu",
            "warn",
            "no IOMMU: a physical NIC cannot be given to DPDK (vhost-user alone does not need it)",
            grub,
        )
    if machine.module_loaded("vfio_pci"):
        vfio = Finding("vfio-pci", "ok", "vfio-pci is loaded")
    else:
        vfio = Finding(
            "vfio-pci",
            "warn",
            "vfio-pci is not loaded (needed only to bind a NIC to DPDK)",
            "modprobe vfio-pci",
        )
    return [iommu, vfio]


def ovs_findings(remote: str, spec: VMSpec | None) -> list[Finding]:
    from virtnet.ovs import switch
    from virtnet.ovs.connection import Ovsdb

    try:
        db = Ovsdb(remote, timeout_s=3)
    except OvsdbError as err:
        # DPDK, masks, bridges and the spec's switch checks all ask ovsdb-server: this one line says why
        # they are missing, and fails as libvirtd out of reach does.
        return [
            Finding(
                "ovsdb",
                "fail",
                str(err).split(";")[0],
                "start Open vSwitch (openvswitch-switch-dpdk) or pass --ovsdb",
            )
        ]
    with db:
        state = switch.dpdk_state(db)
        info = switch.describe(db)
        findings = [Finding("ovsdb", "ok", f"ovsdb-server answers at {remote}")]
        if state.initialized:
            findings.append(Finding("dpdk", "ok", f"{state.version or 'DPDK'} initialised"))
        else:
            findings.append(
                Finding("dpdk", "fail", "DPDK is not initialised in ovs-vswitchd", "virtnet switch setup")
            )
        config = state.other_config
        for key, label in (("pmd-cpu-mask", "pmd cores"), ("dpdk-lcore-mask", "lcore cores")):
            cpus = state.cpus(key)
            detail = (
                f"{key}={config[key]} (CPUs {format_cpuset(cpus)})" if cpus else f"{key} not set: OVS picks"
            )
            findings.append(Finding(label, "ok", detail))
        socket_mem = config.get("dpdk-socket-mem")
        findings.append(
            Finding(
                "dpdk memory",
                "ok" if socket_mem else "warn",
                f"dpdk-socket-mem={socket_mem} MiB" if socket_mem else "dpdk-socket-mem not set",
                "virtnet switch setup --socket-mem 1024",
            )
        )
        netdev = [b["name"] for b in info["bridges"] if b["datapath_type"] == "netdev"]
        findings.append(
            Finding(
                "bridges",
                "ok" if netdev else "warn",
                f"netdev bridges: {', '.join(netdev)}" if netdev else "no netdev bridge",
                "virtnet switch setup --bridge br0",
            )
        )
        if spec is not None:
            findings.append(
                _guarded(
                    "spec switch",
                    lambda: switch.check_can_carry(db, spec),
                    "the switch can carry its vhost-user NICs and pinning",
                )
            )
    return findings


def spec_findings(host: Host | None, uri: str, machine: Machine, spec: VMSpec) -> list[Finding]:
    from virtnet import socketdir
    from virtnet.spec.derived import socket_dirs
    from virtnet.virt.host import is_local_uri

    local = is_local_uri(uri)
    findings = resource_findings(machine, spec) if local else []
    if host is None or not local:
        return findings  # who runs QEMU is libvirt's to say
    owner = host.qemu_runs_as()
    if owner is None:
        return findings
    for directory in socket_dirs(spec):
        if directory.exists():
            findings.append(
                _guarded(
                    "socket dir",
                    functools.partial(socketdir.check, directory, owner),
                    f"QEMU can create sockets in {directory}",
                )
            )
        else:
            findings.append(Finding("socket dir", "ok", f"{directory} will be created for QEMU's group"))
    return findings


def _guarded(name: str, check: Callable[[], None], ok: str) -> Finding:
    try:
        check()
    except (SwitchNotReady, VirtnetError) as err:
        detail, _, fix = str(err).partition("; ")
        return Finding(name, "fail", detail, fix)
    return Finding(name, "ok", ok)


def _supplementary_groups(uid: int) -> set[int]:
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:
        return set()
    return {group.gr_gid for group in grp.getgrall() if user in group.gr_mem}


def _name(lookup: Callable[[int], object], ident: int) -> str:
    try:
        return str(lookup(ident)[0])  # type: ignore[index]
    except KeyError:
        return str(ident)
