"""The declarative VM spec: what a user writes in TOML, validated field by field.

Shapes and ranges live here; rules that relate several fields live in `checks.py`, so that each
error can name the exact field path it is about.
"""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Annotated, Literal
from uuid import UUID

from virtnet.record import Field, Record
from virtnet.spec.types import (
    AbsolutePath,
    CpuSet,
    FileMode,
    GroupName,
    GuestAddress,
    Hostname,
    Mac,
    Name,
    Owner,
    PasswordHash,
    SecretText,
    Size,
    SshPublicKey,
    Text,
    Title,
    UserName,
)

MAX_VHOST_QUEUES = 256  # QEMU's limit for virtio-net queue pairs

VirtType = Literal["auto", "kvm", "qemu"]
MemoryAccess = Literal["shared", "private"]
DiskBus = Literal["virtio", "sata", "scsi", "ide", "usb"]
CacheMode = Literal["none", "writethrough", "writeback", "directsync", "unsafe", "default"]


class Pinning(Record):
    """Host CPUs for each vCPU and for QEMU's emulator threads (what `taskset` did by hand)."""

    vcpus: dict[Annotated[int, Field(ge=0)], CpuSet] = {}
    emulator: CpuSet | None = None


class Cpu(Record):
    count: int = Field(ge=1, le=4096)
    sockets: int | None = Field(default=None, ge=1)
    cores: int | None = Field(default=None, ge=1)
    threads: int | None = Field(default=None, ge=1)
    # auto: host-passthrough on KVM (the walkthrough's performance VMs), QEMU's default under TCG.
    mode: Literal["auto", "host-passthrough", "host-model", "maximum"] = "auto"
    pinning: Pinning | None = None


class Hugepages(Record):
    page_size: Size


class Memory(Record):
    size: Size
    hugepages: Hugepages | None = None
    # shared: other processes (OVS's vhost-user backend) may map guest memory. Required by vhost-user.
    access: MemoryAccess | None = None
    # immediate: allocate all guest memory at start, QEMU's -mem-prealloc.
    allocation: Literal["immediate", "ondemand"] | None = None


class NumaCell(Record):
    cpus: CpuSet
    memory: Size
    access: MemoryAccess | None = None  # default: memory.access


class Disk(Record):
    path: AbsolutePath
    device: Literal["disk", "cdrom"] = "disk"
    format: Literal["qcow2", "raw"] | None = None  # default: qcow2 for disks, raw for cdroms
    bus: DiskBus | None = None  # default: virtio for disks, sata for cdroms
    cache: CacheMode | None = None
    size: Size | None = None  # create the volume with this capacity when it is missing
    # Create the disk as a qcow2 overlay of this image (read-only, shared by every VM made from it).
    backing: AbsolutePath | None = None

    @property
    def effective_format(self) -> str:
        return self.format or ("raw" if self.device == "cdrom" else "qcow2")

    @property
    def effective_bus(self) -> str:
        return self.bus or ("sata" if self.device == "cdrom" else "virtio")


class PortForward(Record):
    """host_address:host_port on the host -> guest_port in the guest (QEMU's hostfwd)."""

    protocol: Literal["tcp", "udp"] = "tcp"
    host_port: int = Field(ge=1, le=65535)
    guest_port: int = Field(ge=1, le=65535)
    # Loopback by default: reachable from this host only, as the walkthrough uses it (ssh -p 10122 localhost).
    host_address: IPv4Address = IPv4Address("127.0.0.1")


class _GuestNetwork(Record):
    """The guest's side of a NIC, applied by cloud-init at first boot (needs [cloud_init])."""

    address: GuestAddress | None = None  # '10.77.9.1/24' or 'dhcp'; a user NIC defaults to dhcp
    gateway: IPv4Address | None = None
    dns: list[IPv4Address] = []


class UserNic(_GuestNetwork):
    type: Literal["user"]
    mac: Mac | None = None
    model: Literal["virtio", "e1000", "e1000e", "rtl8139"] = "virtio"
    forwards: list[PortForward] = []


class VhostUserNic(_GuestNetwork):
    type: Literal["vhostuser"]
    socket: AbsolutePath
    # server: QEMU creates the socket and OVS's dpdkvhostuserclient port connects to it, so the
    # guest's network comes back by itself after an OVS restart.
    mode: Literal["server", "client"] = "server"
    mac: Mac | None = None
    queues: int = Field(default=1, ge=1, le=MAX_VHOST_QUEUES)
    mtu: int | None = Field(default=None, ge=68, le=65535)
    bridge: Name = "br0"
    port: Name | None = None  # OVS port name; default derived from the VM name and NIC index
    # virtnet creates and removes the NIC's dpdkvhostuserclient port on OVS. False for another
    # vhost-user backend (VPP, SPDK, testpmd...) that the user runs.
    ovs: bool = True


class BridgeNic(_GuestNetwork):
    """A tap on a Linux bridge of the host: what a user picks without OVS-DPDK (libvirt's type='bridge')."""

    type: Literal["bridge"]
    bridge: Name  # the Linux bridge, made by the host's own network set-up
    mac: Mac | None = None
    model: Literal["virtio", "e1000", "e1000e", "rtl8139"] = "virtio"
    queues: int = Field(default=1, ge=1, le=MAX_VHOST_QUEUES)  # virtio only: one tap queue per pair
    # vhost: the kernel's vhost-net moves the packets (needs /dev/vhost-net on the host); qemu:
    # QEMU's own userspace virtio backend; auto: vhost-net where the host has it, else qemu.
    backend: Literal["auto", "vhost", "qemu"] = "auto"


Nic = Annotated[UserNic | VhostUserNic | BridgeNic, Field(discriminator="type")]


class Boot(Record):
    order: list[Literal["hd", "cdrom", "network"]] = []
    kernel: AbsolutePath | None = None
    initrd: AbsolutePath | None = None
    cmdline: Text | None = None


class Graphics(Record):
    type: Literal["vnc", "spice"] = "vnc"
    listen: IPv4Address = IPv4Address("127.0.0.1")
    port: int | None = Field(default=None, ge=5900, le=65535)  # default: libvirt picks a free one
    password: SecretText | None = None


class Console(Record):
    """The serial console: a pty for `virsh console`, optionally logged to a file."""

    type: Literal["pty", "file"] = "pty"
    log: AbsolutePath | None = None  # pty: also write everything to this file; file: the file itself


class GuestUser(Record):
    """A user cloud-init creates at first boot."""

    name: UserName
    ssh_authorized_keys: list[SshPublicKey] = []
    sudo: bool | Text = False  # true: passwordless sudo for everything; or a sudoers rule
    shell: AbsolutePath | None = None
    groups: list[GroupName] = []
    password_hash: PasswordHash | None = None  # crypt(3), e.g. from `mkpasswd -m sha-512`; else locked


class WriteFile(Record):
    path: AbsolutePath
    content: Text
    permissions: FileMode = "0644"
    owner: Owner = "root:root"


class CloudInit(Record):
    """First-boot provisioning: a NoCloud seed (ISO 'cidata') attached as a read-only cdrom."""

    hostname: Hostname | None = None  # default: the VM name
    # Keep the image's own user (cloud-init's `default` entry: `debian` on Debian's cloud images).
    default_user: bool = True
    users: list[GuestUser] = []
    # An argv list runs without a shell; a string runs through `sh -c`, as cloud-init does.
    runcmd: list[list[Text] | Text] = []
    write_files: list[WriteFile] = []
    # A #cloud-config file of the user's own, passed through after validation (instead of the above).
    user_data: AbsolutePath | None = None
    seed: AbsolutePath | None = None  # the seed volume; default: <first disk's dir>/<name>-cidata.iso


class VMSpec(Record):
    name: Name
    uuid: UUID | None = None
    title: Title | None = None
    description: Text | None = None
    virt_type: VirtType = "auto"
    machine: str | None = None
    cpu: Cpu
    memory: Memory
    numa: list[NumaCell] = []
    boot: Boot | None = None
    disks: list[Disk] = []
    nics: list[Nic] = []
    console: Console = Console()
    graphics: Graphics | None = None
    video: Literal["virtio", "vga", "qxl", "bochs", "cirrus"] | None = None
    usb_input: bool = False  # qemu-xhci controller with a USB keyboard and tablet
    sound: Literal["intel-hda"] | None = None  # intel-hda with an hda-duplex codec
    # The virtio-serial channel org.qemu.guest_agent.0: exec, addresses, OS info, quiesce.
    agent: bool = True
    cloud_init: CloudInit | None = None

    @property
    def vhost_user_nics(self) -> list[VhostUserNic]:
        return [nic for nic in self.nics if isinstance(nic, VhostUserNic)]

    @property
    def ovs_nics(self) -> list[VhostUserNic]:
        """The vhost-user NICs whose OVS ports virtnet manages."""
        return [nic for nic in self.vhost_user_nics if nic.ovs]

    @property
    def multiqueue_nics(self) -> list[tuple[int, VhostUserNic | BridgeNic]]:
        """(index, NIC) of each NIC with more than one queue pair, which the guest must enable."""
        return [
            (i, nic)
            for i, nic in enumerate(self.nics)
            if isinstance(nic, VhostUserNic | BridgeNic) and nic.queues > 1
        ]

    @property
    def has_port_forwards(self) -> bool:
        return any(isinstance(nic, UserNic) and nic.forwards for nic in self.nics)
