"""The spec of a domain virtnet did not make: what its XML says that a spec can express.

`virtnet adopt` stores this spec; what the spec cannot say (a NIC on a libvirt network, a block
disk, a watchdog) is named in `left`, and stays in the XML as it is, untouched by later defines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from virtnet.domxml.designer import AGENT_CHANNEL, disk_letters
from virtnet.domxml.domain import Domain
from virtnet.domxml.memory import page_size_kib
from virtnet.errors import InputError, SpecError
from virtnet.spec.load import spec_from_dict
from virtnet.spec.models import VMSpec

_DISK_PREFIX = {"virtio": "vd", "sata": "sd", "scsi": "sd", "usb": "sd", "ide": "hd"}
_NIC_MODELS = ("virtio", "e1000", "e1000e", "rtl8139")
_VIDEO_MODELS = ("virtio", "vga", "qxl", "bochs", "cirrus")
_CPU_MODES = ("host-passthrough", "host-model", "maximum")
_CACHE_MODES = ("none", "writethrough", "writeback", "directsync", "unsafe", "default")
_BOOT_DEVICES = ("hd", "cdrom", "network")


@dataclass(frozen=True)
class Derived:
    spec: VMSpec
    left: tuple[str, ...]  # what the spec does not express, one line each


def derive_spec(domain: Domain) -> Derived:
    """The spec of `domain` (a virtnet spec, validated); raise InputError when there is none."""
    left: list[str] = []
    data = _spec_data(domain, left)
    # A rule the spec's checks hold that the domain breaks: leave that part out and say so.
    for _ in range(8):
        try:
            return Derived(spec_from_dict(data), tuple(left))
        except SpecError as err:
            if not _drop(data, err, left):
                problems = "; ".join(str(problem) for problem in err.problems)
                raise InputError(f"domain {domain.name!r}: virtnet cannot describe it: {problems}") from None
    raise InputError(f"domain {domain.name!r}: virtnet cannot describe it")


def _spec_data(domain: Domain, left: list[str]) -> dict[str, Any]:
    if domain.type not in ("kvm", "qemu"):
        raise InputError(
            f"domain {domain.name!r} has type {domain.type!r}; virtnet adopts kvm and qemu domains only"
        )
    data: dict[str, Any] = {"name": domain.name, "virt_type": domain.type}
    for key in ("title", "description"):
        if getattr(domain, key):
            data[key] = getattr(domain, key)
    if domain.os is not None and domain.os.machine:
        data["machine"] = domain.os.machine
    data["cpu"] = _cpu(domain, left)
    data["memory"] = _memory(domain)
    cells = domain.cpu.numa.cells if domain.cpu is not None and domain.cpu.numa is not None else []
    if cells:
        data["numa"] = [
            {"cpus": cell.cpus, "memory": f"{cell.memory_kib}KiB"}
            | ({"access": cell.mem_access} if cell.mem_access else {})
            for cell in cells
        ]
    boot = _boot(domain)
    if boot:
        data["boot"] = boot
    devices = domain.devices
    if devices is None:
        data["agent"] = False
        return data
    data["disks"] = _disks(domain, left)
    data["nics"] = _nics(domain, left)
    console = _console(domain)
    if console is not None:
        data["console"] = console
    graphics = next((g for g in devices.graphics if g.type in ("vnc", "spice")), None)
    if graphics is not None and graphics.listen_type == "address" and graphics.listen_address:
        data["graphics"] = {"type": graphics.type, "listen": graphics.listen_address}
        if graphics.autoport is False and graphics.port:
            data["graphics"]["port"] = graphics.port
        if graphics.passwd:
            data["graphics"]["password"] = graphics.passwd
    elif devices.graphics:
        left.append("graphics: virtnet describes VNC and SPICE listening on an address only")
    video = devices.videos[0].model if devices.videos else None
    if video in _VIDEO_MODELS:
        data["video"] = video
    elif video not in (None, "none"):
        left.append(f"video model {video!r}")
    data["usb_input"] = any(c.type == "usb" and c.model == "qemu-xhci" for c in devices.controllers) and {
        (i.type, i.bus) for i in devices.inputs
    } >= {("keyboard", "usb"), ("tablet", "usb")}
    if any(s.model == "ich6" and s.codec == "duplex" for s in devices.sounds):
        data["sound"] = "intel-hda"
    elif devices.sounds:
        left.append("sound: virtnet describes intel-hda with a duplex codec only")
    data["agent"] = any(
        c.type == "unix" and c.target_type == "virtio" and c.target_name == AGENT_CHANNEL
        for c in devices.channels
    )
    return data


def _cpu(domain: Domain, left: list[str]) -> dict[str, Any]:
    cpu: dict[str, Any] = {"count": domain.vcpus or 1}
    found = domain.cpu
    if found is not None and found.mode in _CPU_MODES:
        cpu["mode"] = found.mode
    if found is not None and found.model:
        left.append(f"cpu model {found.model!r}: virtnet describes host-passthrough, host-model, maximum")
    if found is not None and found.sockets:
        cpu |= {"sockets": found.sockets, "cores": found.cores or 1, "threads": found.threads or 1}
    tune = domain.cputune
    if tune is not None and (tune.vcpupins or tune.emulatorpin is not None):
        pinning: dict[str, Any] = {"vcpus": {str(pin.vcpu): pin.cpuset for pin in tune.vcpupins}}
        if tune.emulatorpin is not None:
            pinning["emulator"] = tune.emulatorpin.cpuset
        cpu["pinning"] = pinning
    return cpu


def _memory(domain: Domain) -> dict[str, Any]:
    memory: dict[str, Any] = {"size": f"{domain.memory_kib or 0}KiB"}
    backing = domain.memory_backing
    if backing is None:
        return memory
    if backing.hugepages is not None:
        memory["hugepages"] = {"page_size": f"{page_size_kib(domain)}KiB"}
    if backing.access_mode in ("shared", "private"):
        memory["access"] = backing.access_mode
    if backing.allocation_mode in ("immediate", "ondemand"):
        memory["allocation"] = backing.allocation_mode
    return memory


def _boot(domain: Domain) -> dict[str, Any]:
    os = domain.os
    if os is None:
        return {}
    boot: dict[str, Any] = {}
    order = [device.dev for device in os.boot_devices]
    if order and all(dev in _BOOT_DEVICES for dev in order) and not os.kernel:
        boot["order"] = order
    for key in ("kernel", "initrd", "cmdline"):
        if getattr(os, key):
            boot[key] = getattr(os, key)
    return boot


def _disks(domain: Domain, left: list[str]) -> list[dict[str, Any]]:
    """The file disks whose target names are the ones virtnet gives them, in order."""
    assert domain.devices is not None
    disks: list[dict[str, Any]] = []
    used: dict[str, int] = {}
    for disk in domain.devices.disks:
        target = disk.target_dev or "?"
        bus = disk.target_bus or ""
        prefix = _DISK_PREFIX.get(bus)
        expected = prefix + disk_letters(used.get(prefix, 0)) if prefix else None
        why = None
        if disk.type != "file" or disk.device not in ("disk", "cdrom") or not disk.source_file:
            why = "virtnet describes disks and cdroms backed by an image file"
        elif disk.driver_type not in ("qcow2", "raw"):
            why = f"format {disk.driver_type!r}"
        elif disk.driver_cache not in (None, *_CACHE_MODES):
            why = f"cache {disk.driver_cache!r}"
        elif target != expected:
            why = f"virtnet would name it {expected}"
        if why is not None:
            left.append(f"disk {target}: {why}")
            continue
        assert prefix is not None
        used[prefix] = used.get(prefix, 0) + 1
        entry: dict[str, Any] = {"path": disk.source_file, "device": disk.device, "format": disk.driver_type}
        entry["bus"] = bus
        if disk.driver_cache:
            entry["cache"] = disk.driver_cache
        disks.append(entry)
    return disks


def _nics(domain: Domain, left: list[str]) -> list[dict[str, Any]]:
    assert domain.devices is not None
    nics: list[dict[str, Any]] = []
    for iface in domain.devices.interfaces:
        mac = (iface.mac or "").lower()
        model = iface.model or "virtio"
        if not mac:
            left.append(f"NIC of type {iface.type!r} without a MAC address")
        elif iface.type == "vhostuser" and iface.source_type == "unix" and iface.source_path:
            nic: dict[str, Any] = {"type": "vhostuser", "socket": iface.source_path, "mac": mac, "ovs": False}
            nic["mode"] = iface.source_mode or "client"
            if iface.queues:
                nic["queues"] = iface.queues
            if iface.mtu:
                nic["mtu"] = iface.mtu
            nics.append(nic)
        elif iface.type == "bridge" and iface.source_bridge and model in _NIC_MODELS:
            nic = {"type": "bridge", "bridge": iface.source_bridge, "mac": mac, "model": model}
            if iface.queues:
                nic["queues"] = iface.queues
            if iface.driver_name in ("vhost", "qemu"):
                nic["backend"] = iface.driver_name
            nics.append(nic)
        elif iface.type == "user" and model in _NIC_MODELS and not iface.port_forwards:
            nics.append({"type": "user", "mac": mac, "model": model})
        else:
            left.append(f"NIC {mac}: type {iface.type!r} (virtnet describes user, vhostuser and bridge NICs)")
    return nics


def _console(domain: Domain) -> dict[str, Any] | None:
    assert domain.devices is not None
    serial = next(iter(domain.devices.serials), None)
    if serial is None:
        return None
    if serial.type == "file" and serial.source_path:
        return {"type": "file", "log": serial.source_path}
    if serial.type == "pty":
        return {"type": "pty", "log": serial.log_file} if serial.log_file else {}
    return None


def _drop(data: dict[str, Any], err: SpecError, left: list[str]) -> bool:
    """Leave out the part of `data` a spec problem names; False when it names none we can leave out."""
    dropped = False
    for problem in sorted(err.problems, key=lambda p: str(p.path), reverse=True):
        path = str(problem.path)
        found = re.match(r"(nics|disks|numa)\[(\d+)\]", path)
        if found and found.group(1) in data and int(found.group(2)) < len(data[found.group(1)]):
            del data[found.group(1)][int(found.group(2))]
        elif path.startswith("numa") and "numa" in data:
            del data["numa"]
        elif path == "cpu" or path.startswith("cpu."):
            for key in ("sockets", "cores", "threads", "pinning", "mode"):
                data["cpu"].pop(key, None)
        elif path.startswith("boot") and "boot" in data:
            del data["boot"]
        elif path.startswith("memory.hugepages") and "hugepages" in data["memory"]:
            del data["memory"]["hugepages"]
        else:
            continue
        left.append(f"left out {problem}")
        dropped = True
    return dropped
