"""Policy: how a VM spec becomes libvirt domain XML.

The element classes say how XML looks; this module decides what goes in it. Everything the target
host decides (virt type, how port forwards are expressed, an existing UUID) comes in a HostChoices,
so rendering itself is a pure, deterministic function.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from virtnet.domxml import devices as dev
from virtnet.domxml.cpu import Cell, Cpu, Numa
from virtnet.domxml.cputune import CpuTune, EmulatorPin, VcpuPin
from virtnet.domxml.domain import Domain
from virtnet.domxml.features import Features
from virtnet.domxml.memory import Hugepages, MemoryBacking, Page
from virtnet.domxml.metadata import Metadata, VirtnetInfo
from virtnet.domxml.namespaces import VIRTNET_NS, VIRTNET_PREFIX
from virtnet.domxml.os import BootDevice, Os
from virtnet.domxml.qemu import QEMU_NS, QemuArg, QemuCommandline
from virtnet.spec.codec import SPEC_VERSION, dump_spec
from virtnet.spec.derived import nic_mac, seed_path, vcpu_sockets_cores_threads
from virtnet.spec.models import BridgeNic, UserNic, VhostUserNic, VMSpec
from virtnet.units import KIB, format_cpuset

# How host->guest port forwards are written: libvirt's <portForward> with the passt backend where
# the connected libvirt accepts it, else QEMU's own hostfwd through <qemu:commandline>.
ForwardStyle = Literal["passt", "qemu-args"]
_DISK_PREFIX = {"virtio": "vd", "sata": "sd", "scsi": "sd", "usb": "sd", "ide": "hd"}
AGENT_CHANNEL = "org.qemu.guest_agent.0"  # the port name qemu-guest-agent's udev rule waits for


@dataclass(frozen=True)
class HostChoices:
    """What the target host decides about a render."""

    virt_type: Literal["kvm", "qemu"]
    forward_style: ForwardStyle = "qemu-args"
    uuid: str | None = None  # keep an existing domain's UUID on redefine
    # Whether the host has /dev/vhost-net, for bridge NICs with backend 'auto'; None: not known
    # (a remote host), and libvirt chooses when the domain starts.
    vhost_net: bool | None = None


def render_domain(spec: VMSpec, host: HostChoices) -> Domain:
    """The Domain element tree for `spec` on a host that made `host`'s choices."""
    uses_qemu_args = host.forward_style == "qemu-args" and spec.has_port_forwards
    domain = Domain(nsmap={"qemu": QEMU_NS} if uses_qemu_args else None)
    domain.type = host.virt_type
    domain.name = spec.name
    domain.uuid = str(spec.uuid) if spec.uuid else host.uuid
    domain.title = spec.title
    domain.description = spec.description
    domain.metadata = _metadata(spec)
    domain.memory_kib = spec.memory.size // KIB
    domain.memory_unit = "KiB"
    domain.current_memory_kib = spec.memory.size // KIB
    domain.current_memory_unit = "KiB"
    domain.memory_backing = _memory_backing(spec)
    domain.vcpus = spec.cpu.count
    domain.vcpu_placement = "static"
    domain.cputune = _cputune(spec)
    domain.os = _os(spec)
    domain.features = Features(acpi=True, apic=True)
    domain.cpu = _cpu(spec, host)
    domain.devices = _devices(spec, host)
    if uses_qemu_args:
        domain.qemu_commandline = QemuCommandline(args=_hostfwd_args(spec))
    return domain


def _metadata(spec: VMSpec) -> Metadata:
    info = VirtnetInfo(nsmap={VIRTNET_PREFIX: VIRTNET_NS}, version=SPEC_VERSION, spec_json=dump_spec(spec))
    return Metadata(virtnet=info)


def _memory_backing(spec: VMSpec) -> MemoryBacking | None:
    memory = spec.memory
    if memory.hugepages is None and memory.access is None and memory.allocation is None:
        return None
    backing = MemoryBacking(access_mode=memory.access, allocation_mode=memory.allocation)
    if memory.hugepages is not None:
        page = Page(size_kib=memory.hugepages.page_size // KIB, unit="KiB")
        backing.hugepages = Hugepages(pages=[page])
    return backing


def _cputune(spec: VMSpec) -> CpuTune | None:
    pinning = spec.cpu.pinning
    if pinning is None or (not pinning.vcpus and pinning.emulator is None):
        return None
    tune = CpuTune()
    tune.vcpupins = [
        VcpuPin(vcpu=vcpu, cpuset=format_cpuset(cpus)) for vcpu, cpus in sorted(pinning.vcpus.items())
    ]
    if pinning.emulator is not None:
        tune.emulatorpin = EmulatorPin(cpuset=format_cpuset(pinning.emulator))
    return tune


def _os(spec: VMSpec) -> Os:
    os = Os(type="hvm", arch="x86_64", machine=spec.machine)
    boot = spec.boot
    if boot is not None:
        os.kernel = boot.kernel
        os.initrd = boot.initrd
        os.cmdline = boot.cmdline
        os.boot_devices = [BootDevice(dev=device) for device in boot.order]
    return os


def _cpu(spec: VMSpec, host: HostChoices) -> Cpu | None:
    cpu = Cpu()
    if spec.cpu.mode == "auto":
        # KVM: expose the host CPU, as the walkthrough's -enable-kvm VMs had. TCG: QEMU's default.
        cpu.mode = "host-passthrough" if host.virt_type == "kvm" else None
    else:
        cpu.mode = spec.cpu.mode
    topology = vcpu_sockets_cores_threads(spec)
    if topology is not None:
        cpu.sockets, cpu.dies, cpu.cores, cpu.threads = topology[0], 1, topology[1], topology[2]
    cpu.numa = _numa(spec)
    return cpu if len(cpu.node) or cpu.node.attrib else None


def _numa(spec: VMSpec) -> Numa | None:
    default_access = spec.memory.access
    if spec.numa:
        cells = [
            Cell(
                id=i,
                cpus=format_cpuset(cell.cpus),
                memory_kib=cell.memory // KIB,
                unit="KiB",
                mem_access=cell.access or default_access,
            )
            for i, cell in enumerate(spec.numa)
        ]
        return Numa(cells=cells)
    if default_access == "shared":
        # One node holding everything, like the walkthrough's `-numa node,memdev=mem` with share=on.
        cell = Cell(
            id=0,
            cpus=f"0-{spec.cpu.count - 1}",
            memory_kib=spec.memory.size // KIB,
            unit="KiB",
            mem_access="shared",
        )
        return Numa(cells=[cell])
    return None


def _devices(spec: VMSpec, host: HostChoices) -> dev.Devices:
    devices = dev.Devices()
    devices.disks = _disks(spec)
    if spec.usb_input:
        devices.controllers = [dev.Controller(type="usb", model="qemu-xhci")]
    devices.interfaces = [
        iface for i in range(len(spec.nics)) if (iface := _interface(spec, i, host)) is not None
    ]
    devices.serials, devices.consoles = _console(spec)
    if spec.agent:
        devices.channels = [dev.Channel(type="unix", target_type="virtio", target_name=AGENT_CHANNEL)]
    if spec.usb_input:
        devices.inputs = [dev.Input(type="keyboard", bus="usb"), dev.Input(type="tablet", bus="usb")]
    if spec.graphics is not None:
        devices.graphics = [_graphics(spec)]
    if spec.sound == "intel-hda":
        devices.sounds = [dev.Sound(model="ich6", codec="duplex")]
    if spec.video is not None:
        devices.videos = [dev.Video(model=spec.video)]
    if spec.memory.hugepages is not None:
        # Ballooning cannot return preallocated hugepages to the host: leave it out.
        devices.memballoon = dev.MemBalloon(model="none")
    return devices


def _disks(spec: VMSpec) -> list[dev.Disk]:
    used: dict[str, int] = {}
    wanted = [
        (disk.device, disk.effective_format, disk.cache, disk.path, disk.effective_bus) for disk in spec.disks
    ]
    seed = seed_path(spec)
    if seed is not None:
        # The NoCloud seed: a read-only cdrom cloud-init finds by its volume label 'cidata', on the
        # machine's built-in controller (PIIX's IDE, q35's AHCI) so that no PCI device is added.
        wanted.append(("cdrom", "raw", None, seed, "sata" if _is_q35(spec) else "ide"))
    disks = []
    for device, fmt, cache, path, bus in wanted:
        prefix = _DISK_PREFIX[bus]
        index = used.get(prefix, 0)
        used[prefix] = index + 1
        disks.append(
            dev.Disk(
                type="file",
                device=device,
                driver_name="qemu",
                driver_type=fmt,
                driver_cache=cache,
                source_file=path,
                target_dev=prefix + disk_letters(index),
                target_bus=bus,
                readonly=device == "cdrom",
            )
        )
    return disks


def disk_letters(index: int) -> str:
    """0 -> 'a', 25 -> 'z', 26 -> 'aa', as libvirt names vda..vdz, vdaa."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("a") + rest) + letters
    return letters


def _interface(spec: VMSpec, index: int, host: HostChoices) -> dev.Interface | None:
    nic = spec.nics[index]
    mac = nic_mac(spec, index)
    if isinstance(nic, VhostUserNic):
        return dev.Interface(
            type="vhostuser",
            mac=mac,
            source_type="unix",
            source_path=nic.socket,
            source_mode=nic.mode,
            model="virtio",
            queues=nic.queues if nic.queues > 1 else None,
            mtu=nic.mtu,
        )
    if isinstance(nic, BridgeNic):
        return dev.Interface(
            type="bridge",
            mac=mac,
            source_bridge=nic.bridge,
            model=nic.model,
            driver_name=bridge_backend(nic, host.vhost_net),
            queues=nic.queues if nic.queues > 1 else None,
        )
    if nic.forwards and host.forward_style == "qemu-args":
        return None  # the whole NIC is in <qemu:commandline>: libvirt 9.0's user NIC has no hostfwd
    iface = dev.Interface(type="user", mac=mac, model=nic.model)
    if nic.forwards:
        iface.port_forwards = [
            dev.PortForward(
                proto=fwd.protocol,
                address=str(fwd.host_address),
                ranges=[dev.PortRange(start=fwd.host_port, to=fwd.guest_port)],
            )
            for fwd in nic.forwards
        ]
        iface.backend_type = "passt"
    return iface


def bridge_backend(nic: BridgeNic, vhost_net: bool | None) -> str | None:
    """The <driver name> of a bridge NIC: the spec's backend, or for 'auto' what the host offers.

    Written out, so that `virsh dumpxml` and `virtnet show` say which backend the NIC got; libvirt
    would otherwise fall back from vhost-net to QEMU's backend with only a log line.
    """
    if nic.backend != "auto":
        return nic.backend
    if nic.model != "virtio" or vhost_net is None:
        return None
    return "vhost" if vhost_net else "qemu"


def _console(spec: VMSpec) -> tuple[list[dev.Serial], list[dev.Console]]:
    console = spec.console
    serial = dev.Serial(type=console.type, target_port=0)
    if console.type == "file":
        serial.source_path = console.log
    elif console.log:
        serial.log_file = console.log
        serial.log_append = True
    return [serial], [
        dev.Console(type=console.type, source_path=serial.source_path, target_type="serial", target_port=0)
    ]


def _graphics(spec: VMSpec) -> dev.Graphics:
    graphics = spec.graphics
    assert graphics is not None
    listen = str(graphics.listen)
    return dev.Graphics(
        type=graphics.type,
        port=graphics.port,
        autoport=graphics.port is None,
        passwd=graphics.password.get_secret_value() if graphics.password else None,
        listen_type="address",
        listen_address=listen,
    )


def _is_q35(spec: VMSpec) -> bool:
    return "q35" in (spec.machine or "")


def _hostfwd_args(spec: VMSpec) -> list[QemuArg]:
    """-netdev user,hostfwd=... -device ... for each user NIC with forwards (QEMU's own syntax).

    The device gets an explicit PCI slot from the top of the root bus, where libvirt's own address
    assignment (which starts at slot 2 and knows nothing of these arguments) does not reach: QEMU
    creates these devices before libvirt's, and an automatic slot would take one libvirt assigned.
    """
    args: list[QemuArg] = []
    # q35's slot 0x1f is the LPC/SATA/SMBus function block; i440fx's root bus ends at 0x1f.
    slots = iter(range(0x1D, 0x10, -1) if _is_q35(spec) else range(0x1F, 0x10, -1))
    bus = "pcie.0" if _is_q35(spec) else "pci.0"
    for index, nic in enumerate(spec.nics):
        if not isinstance(nic, UserNic) or not nic.forwards:
            continue
        netdev_id = f"virtnet-user{index}"
        hostfwd = ",".join(
            f"hostfwd={fwd.protocol}:{fwd.host_address}:{fwd.host_port}-:{fwd.guest_port}"
            for fwd in nic.forwards
        )
        device = (
            f"{_QEMU_NIC_DEVICE[nic.model]},netdev={netdev_id},mac={nic_mac(spec, index)},id={netdev_id}-nic"
            f",bus={bus},addr={next(slots):#x}"
        )
        for value in ("-netdev", f"user,id={netdev_id},{hostfwd}", "-device", device):
            args.append(QemuArg(value=value))
    return args


_QEMU_NIC_DEVICE = {"virtio": "virtio-net-pci", "e1000": "e1000", "e1000e": "e1000e", "rtl8139": "rtl8139"}
