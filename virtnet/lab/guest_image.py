"""The lab's tiny test guest: Debian's own kernel plus a busybox initramfs, built from packages only.

Tests need a guest that boots in seconds under TCG, brings up its virtio NICs and reports what it
sees on the serial console. No disk image, no network download besides Debian's apt mirror: the
kernel comes from the package `linux-image-amd64` depends on (fetched with `apt-get download`, read
with `dpkg-deb`, never installed), userland is the host's `/bin/busybox` (busybox-static) and
`/usr/bin/iperf3` with the shared libraries `ldd` names, and `/init` is `guest-init.sh` beside this
file. `guest_cmdline()` writes the kernel command line that tells that init what to do.

Images are cached under `<cache>/guest/<key>/`, the key hashing every input, so a changed input
gives a new image and an unchanged one costs a few stat calls.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import ipaddress
import json
import lzma
import re
import shutil
import struct
import subprocess
import tarfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from virtnet.cache import cache_dir as virtnet_cache_dir
from virtnet.errors import LabError
from virtnet.lab.image_cache import apt_fingerprint, cached_build, write_atomic, write_synced
from virtnet.lab.process import run

# Bump whenever the layout of the image changes in a way the other inputs do not capture.
BUILDER_VERSION = "1"

KERNEL_METAPACKAGE = "linux-image-amd64"
BUSYBOX = Path("/bin/busybox")
IPERF3 = Path("/usr/bin/iperf3")
INIT_SCRIPT = Path(__file__).with_name("guest-init.sh")
KERNEL_FILE = "vmlinuz"
INITRD_FILE = "initramfs.cpio.gz"

# The drivers the guest needs; their dependencies are found in the modules' own .modinfo, because the
# kernel package ships no modules.dep (depmod runs at install time, and we never install it).
WANTED_MODULES = ("virtio_pci", "virtio_net", "virtio_blk", "virtio_console")
# Held in memory while streaming the package, so that one pass normally suffices.
LIKELY_MODULES = frozenset(
    {
        "virtio_ring",
        "virtio",
        "virtio_pci_modern_dev",
        "virtio_pci_legacy_dev",
        "failover",
        "net_failover",
        *WANTED_MODULES,
    }
)

# x86's COMMAND_LINE_SIZE is 2048 bytes including the terminating NUL.
MAX_CMDLINE = 2047
MAX_IPERF_SECONDS = 3600


class GuestImageError(LabError):
    """The test guest's image cannot be built; the message says what to install or fix."""


@dataclass(frozen=True)
class GuestImage:
    """A bootable test guest: pass `kernel` and `initrd` to QEMU's -kernel/-initrd (or libvirt's)."""

    kernel: Path
    initrd: Path
    key: str


@dataclass(frozen=True)
class BuildInputs:
    """Everything an image is built from; `image_key` hashes exactly these."""

    kernel_package: str
    kernel_version: str
    busybox_version: str
    iperf3_version: str
    init_script: bytes = field(repr=False)


# --------------------------------------------------------------------------------------------------
# Public API


def build_guest_image(cache_dir: Path | None = None) -> GuestImage:
    """Return the cached image for the current inputs, building it first if there is none.

    A cache hit touches neither apt nor the network. Builders of the same key serialise on a lock
    file, and a build becomes visible only by renaming its finished directory into place, so a
    crashed or concurrent build never leaves or exposes a half image.
    """
    guest_root = (virtnet_cache_dir() if cache_dir is None else cache_dir) / "guest"
    guest_root.mkdir(parents=True, exist_ok=True)
    inputs = resolve_inputs(guest_root)
    key = image_key(inputs)
    final = cached_build(guest_root, key, _complete, lambda work: _build(work, inputs))
    return GuestImage(kernel=final / KERNEL_FILE, initrd=final / INITRD_FILE, key=key)


# "[  5]   3.00-4.00   sec  12.1 MBytes   101 Mbits/sec ...": the interval, the amount, the rate.
_INTERVAL = re.compile(
    r"VIRTNET-IPERF-INTERVAL \[ *\d+\] +([\d.]+)-([\d.]+) +sec +\S+ \S+ +([\d.]+) ([KMG]?)bits/sec"
)
_BIT_UNITS = {"": 1.0, "K": 1e3, "M": 1e6, "G": 1e9}


def iperf_intervals(console: str) -> list[tuple[float, float, float]]:
    """(start s, end s, Mbit/s) of each second of the iperf3 client's run, from its console lines."""
    return [
        (float(start), float(end), float(rate) * _BIT_UNITS[unit] / 1e6)
        for start, end, rate, unit in _INTERVAL.findall(console)
    ]


def guest_cmdline(
    *,
    ips: Sequence[str] = (),
    ping: str | None = None,
    dirty_mib: int = 0,
    dirty_wait: bool = False,
    dirty_pace_mib_s: int | None = None,
    disk: bool = False,
    iperf: str | None = None,
    vga: bool = False,
    extra: str = "",
) -> str:
    """The kernel command line for the test guest; its init reads the `virtnet.*` words.

    `ips` are ADDR/PREFIX, one per virtio NIC (eth0, eth1, ... in PCI order). `ping` is a peer to
    wait for and ping; `dirty_mib` MiB are rewritten in a loop, with `dirty_wait` only once the
    serial console reads a line with VIRTNET-GO, and with `dirty_pace_mib_s` at most that fast (a
    sleep after each MiB: the rate the guest reaches is below it); `disk` writes /dev/vda in a
    loop and reads each chunk back, checking its checksum (VIRTNET-DISK-OK n=N); `iperf` is "server" or
    "client:ADDR:SECONDS". `vga` mirrors the console (and the markers) on the VGA screen. The words
    of `extra` are appended last. Raises ValueError on anything the guest could not use.
    """
    words = ["console=tty0", "console=ttyS0"] if _flag("vga", vga) else ["console=ttyS0"]
    # panic=-1: reboot at once on panic, which -no-reboot turns into QEMU exiting (a dead init
    # fails a test fast). pci=nomsi: QEMU 7.2 under TCG segfaults when virtio-net starts on a
    # vhost-user NIC with MSI-X. loglevel=3: only kernel errors reach the console, so kernel lines
    # do not land in the middle of the init's marker lines.
    words += ["panic=-1", "pci=nomsi", "loglevel=3"]
    addresses = _check_ips(ips)
    if addresses:
        words.append("virtnet.ip=" + ",".join(addresses))
    if ping is not None:
        _need_ips("ping", addresses)
        words.append("virtnet.ping=" + _check_peer("ping", ping))
    if _check_dirty(dirty_mib):
        words.append(f"virtnet.dirty={dirty_mib}")
    if _flag("dirty_wait", dirty_wait):
        if not dirty_mib:
            raise ValueError("dirty_wait needs dirty_mib: the memory to rewrite once told to")
        words.append("virtnet.dirtywait=1")
    if dirty_pace_mib_s is not None:
        if not dirty_mib or isinstance(dirty_pace_mib_s, bool) or not isinstance(dirty_pace_mib_s, int):
            raise ValueError("dirty_pace_mib_s must be a whole number of MiB/s, with dirty_mib")
        if not 1 <= dirty_pace_mib_s <= 1000:
            raise ValueError(f"dirty_pace_mib_s {dirty_pace_mib_s}: use 1 to 1000 MiB/s")
        words.append(f"virtnet.dirtypace={dirty_pace_mib_s}")
    if _flag("disk", disk):
        words.append("virtnet.disk=1")
    if iperf is not None:
        _need_ips("iperf", addresses)
        words.append("virtnet.iperf=" + _check_iperf(iperf))
    words += _check_extra(extra)
    cmdline = " ".join(words)
    if len(cmdline.encode()) > MAX_CMDLINE:
        raise ValueError(f"kernel command line is {len(cmdline.encode())} bytes; x86 allows {MAX_CMDLINE}")
    return cmdline


def resolve_inputs(guest_root: Path) -> BuildInputs:
    """The current inputs; checks the host packages first so a missing one fails before any work."""
    busybox = _installed_version("busybox-static", BUSYBOX)
    iperf3 = _installed_version("iperf3", IPERF3)
    package, version = _kernel_package(guest_root)
    return BuildInputs(package, version, busybox, iperf3, read_init_script())


def image_key(inputs: BuildInputs) -> str:
    """16 hex digits naming the image built from `inputs` (and this builder's version)."""
    material = {
        "builder": BUILDER_VERSION,
        "kernel": f"{inputs.kernel_package}={inputs.kernel_version}",
        "busybox-static": inputs.busybox_version,
        "iperf3": inputs.iperf3_version,
        "init": hashlib.sha256(inputs.init_script).hexdigest(),
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:16]


def read_init_script() -> bytes:
    """The guest's /init. A function so tests can substitute it and watch the key change."""
    return INIT_SCRIPT.read_bytes()


# --------------------------------------------------------------------------------------------------
# Command line validation


def _flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, not {value!r}")
    return value


def _check_ips(ips: Sequence[str]) -> list[str]:
    """Each entry as ADDR/PREFIX; a bare string is refused since it would be split into characters."""
    if isinstance(ips, str) or not isinstance(ips, Sequence):
        raise ValueError(f"ips must be a list of ADDR/PREFIX strings, not {ips!r}")
    seen: set[ipaddress.IPv4Address | ipaddress.IPv6Address] = set()
    result = []
    for index, text in enumerate(ips):
        iface = _parse_interface(index, text)
        if iface.ip in seen:
            raise ValueError(f"ips[{index}]: {iface.ip} is given twice")
        seen.add(iface.ip)
        result.append(str(iface))
    return result


def _parse_interface(index: int, text: object) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
    where = f"ips[{index}]"
    if not isinstance(text, str) or "/" not in text:
        raise ValueError(f"{where}: {text!r} is not ADDR/PREFIX (e.g. 10.0.0.1/24)")
    try:
        iface = ipaddress.ip_interface(text)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    _check_unicast(where, iface.ip)
    net = iface.network
    if net.version == 4 and net.prefixlen <= 30 and iface.ip in (net.network_address, net.broadcast_address):
        raise ValueError(f"{where}: {iface.ip} is the network or broadcast address of {net}")
    return iface


def _check_unicast(where: str, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    if ip.is_unspecified or ip.is_multicast or ip.is_loopback:
        raise ValueError(f"{where}: {ip} is not a unicast address a NIC can use")


def _need_ips(what: str, addresses: list[str]) -> None:
    if not addresses:
        raise ValueError(f"{what} needs the guest to have an address: pass ips=[...]")


def _check_peer(where: str, text: object) -> str:
    if not isinstance(text, str):
        raise ValueError(f"{where}: {text!r} is not an IP address")
    try:
        ip = ipaddress.ip_address(text)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    _check_unicast(where, ip)
    return str(ip)


def _check_dirty(dirty_mib: object) -> int:
    if isinstance(dirty_mib, bool) or not isinstance(dirty_mib, int) or dirty_mib < 0:
        raise ValueError(f"dirty_mib must be a whole number of MiB >= 0, not {dirty_mib!r}")
    return dirty_mib


def _check_iperf(iperf: object) -> str:
    """Either `server` or `client:ADDR:SECONDS`; ADDR may be IPv6, so SECONDS is split off the end."""
    if iperf == "server":
        return "server"
    if not isinstance(iperf, str) or not iperf.startswith("client:") or iperf.count(":") < 2:
        raise ValueError(f"iperf must be 'server' or 'client:ADDR:SECONDS', not {iperf!r}")
    addr, _, seconds = iperf.removeprefix("client:").rpartition(":")
    if not seconds.isdigit() or not 1 <= int(seconds) <= MAX_IPERF_SECONDS:
        raise ValueError(f"iperf: SECONDS must be 1..{MAX_IPERF_SECONDS}, not {seconds!r}")
    return f"client:{_check_peer('iperf', addr)}:{int(seconds)}"


def _check_extra(extra: object) -> list[str]:
    if not isinstance(extra, str) or any(c in extra for c in "\n\r\0"):
        raise ValueError(f"extra must be a one-line string, not {extra!r}")
    return extra.split()


# --------------------------------------------------------------------------------------------------
# Inputs


def _run(cmd: list[str], *, hint: str, timeout: float = 60.0, cwd: Path | None = None) -> str:
    """Run an argument list (no shell) and return stdout; GuestImageError naming `hint` on failure."""
    try:
        return run(cmd, timeout=timeout, cwd=cwd)
    except LabError as err:
        raise GuestImageError(f"{err}; {hint}") from None


def _installed_version(package: str, path: Path) -> str:
    """The installed version of a host package whose file goes into the image."""
    done = subprocess.run(
        ["dpkg-query", "-W", "-f=${db:Status-Abbrev}|${Version}", package],
        capture_output=True,
        text=True,
        check=False,
    )
    status, _, version = done.stdout.partition("|")
    if done.returncode != 0 or not status.startswith("ii") or not path.is_file():
        raise GuestImageError(
            f"the test guest needs {path} from the Debian package {package}, which is not installed; "
            f"run `apt-get install {package}`"
        )
    return version.strip()


def _kernel_package(guest_root: Path) -> tuple[str, str]:
    """The kernel package and version apt would fetch, remembered while apt's state is unchanged.

    Asking apt-cache takes ~0.9 s here (its binary cache is disabled), too slow for a cache hit, so
    the answer is kept with a fingerprint of apt's lists, pinning and dpkg status.
    """
    memo = guest_root / "kernel-package.json"
    fingerprint = apt_fingerprint()
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        saved = json.loads(memo.read_text())
        if saved["fingerprint"] == fingerprint:
            return str(saved["package"]), str(saved["version"])
    package, version = _resolve_kernel_package()
    record = {"fingerprint": fingerprint, "package": package, "version": version}
    write_atomic(memo, json.dumps(record).encode())
    return package, version


def _resolve_kernel_package() -> tuple[str, str]:
    """Follow the metapackage to the versioned kernel package, e.g. linux-image-6.1.0-56-amd64."""
    fields = _apt_show(KERNEL_METAPACKAGE)
    for alternative in re.split(r"[,|]", fields.get("Depends", "")):
        match = re.fullmatch(r"\s*(linux-image-[^\s(]+)\s*(?:\(\s*=\s*([^\s)]+)\s*\))?\s*", alternative)
        if match:
            package, version = match.groups()
            return package, version or _apt_show(package)["Version"]
    raise GuestImageError(f"{KERNEL_METAPACKAGE} does not depend on a linux-image-* package: {fields!r}")


def _apt_show(package: str) -> dict[str, str]:
    """apt's candidate record of `package` as a field dict (first record only)."""
    text = _run(
        ["apt-cache", "show", "--no-all-versions", package],
        hint=f"the test guest's kernel comes from apt; run `apt-get update` so apt knows {package}",
    )
    fields: dict[str, str] = {}
    for line in text.split("\n\n", 1)[0].splitlines():
        name, sep, value = line.partition(":")
        if sep and not line[0].isspace():
            fields[name] = value.strip()
    return fields


# --------------------------------------------------------------------------------------------------
# Building


def _complete(final: Path) -> bool:
    return (final / KERNEL_FILE).is_file() and (final / INITRD_FILE).is_file()


def _build(work: Path, inputs: BuildInputs) -> None:
    """Fill the empty work directory `work`; `cached_build` renames it into place afterwards."""
    deb = _download(inputs.kernel_package, inputs.kernel_version, work / "download")
    kernel = _read_kernel_package(deb, LIKELY_MODULES)
    order = kernel.module_order(WANTED_MODULES)
    if not set(order) <= kernel.modules.keys():  # a new kernel grew a dependency: read it again
        kernel = _read_kernel_package(deb, frozenset(order))
    modules = [(name, kernel.modules[name]) for name in order]
    shutil.rmtree(work / "download")
    write_synced(work / KERNEL_FILE, kernel.vmlinuz)
    archive = _newc_archive(_initramfs_entries(inputs.init_script, modules))
    write_synced(work / INITRD_FILE, gzip.compress(archive, compresslevel=6, mtime=0))
    write_synced(work / "manifest.json", _manifest(inputs, modules, len(archive)))


def _download(package: str, version: str, folder: Path) -> Path:
    """Fetch exactly the version the key names into `folder`; nothing is installed."""
    folder.mkdir()
    _run(
        ["apt-get", "download", "-q", f"{package}={version}"],
        timeout=900,
        cwd=folder,
        hint="check that Debian's apt mirror is reachable and `apt-get update` has run",
    )
    debs = sorted(folder.glob("*.deb"))
    if len(debs) != 1:
        raise GuestImageError(f"apt-get download {package}={version} left {len(debs)} .deb files")
    return debs[0]


@dataclass
class KernelPackage:
    """What the build needs from a kernel .deb, read in one streaming pass."""

    vmlinuz: bytes = b""
    depends: dict[str, tuple[str, ...]] = field(default_factory=dict)
    builtin: set[str] = field(default_factory=set)
    modules: dict[str, bytes] = field(default_factory=dict)

    def module_order(self, wanted: Iterable[str]) -> list[str]:
        """`wanted` and their dependencies, each after what it needs (the order insmod needs)."""
        order: list[str] = []

        def visit(name: str, chain: tuple[str, ...]) -> None:
            if name in order or name in self.builtin:
                return
            if name in chain:
                raise GuestImageError(f"kernel modules depend on each other in a cycle: {chain}")
            if name not in self.depends:
                raise GuestImageError(f"the kernel package has no module {name}")
            for dep in self.depends[name]:
                visit(dep, (*chain, name))
            order.append(name)

        for name in wanted:
            visit(name, ())
        return order


def _read_kernel_package(deb: Path, keep: frozenset[str]) -> KernelPackage:
    """Stream the package's data tarball through dpkg-deb: the ~400 MB module tree never hits disk.

    `dpkg-deb -x` would write all of it (2.8 s, 400 MB) to keep ~0.6 MB; streaming costs the same
    decompression time and no disk. Only the modules named in `keep` are held in memory.
    """
    found = KernelPackage()
    with subprocess.Popen(
        ["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as proc:
        assert proc.stdout is not None
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
            for member in tar:
                _take_member(found, tar, member, keep)
        error = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode != 0:
        raise GuestImageError(f"dpkg-deb could not read {deb.name}: {error.strip()}")
    if not found.vmlinuz:
        raise GuestImageError(f"{deb.name} contains no /boot/vmlinuz-*")
    return found


def _take_member(
    found: KernelPackage, tar: tarfile.TarFile, member: tarfile.TarInfo, keep: frozenset[str]
) -> None:
    path = PurePosixPath(member.name)
    if not member.isfile():
        return
    if path.parent.name == "boot" and path.name.startswith("vmlinuz-"):
        found.vmlinuz = _member_bytes(tar, member)
    elif path.name == "modules.builtin":
        lines = _member_bytes(tar, member).decode().split()
        found.builtin = {_module_name(PurePosixPath(line).name) for line in lines}
    elif "modules" in path.parts and path.name.endswith((".ko", ".ko.xz")):
        name = _module_name(path.name)
        data = _member_bytes(tar, member)
        if path.name.endswith(".xz"):
            data = lzma.decompress(data)
        found.depends[name] = _module_depends(data)
        if name in keep:
            found.modules[name] = data


def _member_bytes(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    handle = tar.extractfile(member)
    assert handle is not None
    return handle.read()


def _module_name(filename: str) -> str:
    """Module names use underscores whatever the file name uses, as modprobe does."""
    return filename.split(".ko", 1)[0].replace("-", "_")


def _module_depends(ko: bytes) -> tuple[str, ...]:
    """The `depends=` entry of a module's ELF .modinfo section (what `modinfo -F depends` prints)."""
    if ko[:5] != b"\x7fELF\x02" or ko[5] != 1:
        raise GuestImageError("a kernel module is not a 64-bit little-endian ELF file")
    (shoff,) = struct.unpack_from("<Q", ko, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", ko, 0x3A)
    sections = [struct.unpack_from("<IIQQQQ", ko, shoff + i * shentsize) for i in range(shnum)]
    strtab_off = sections[shstrndx][4]
    for name_off, _type, _flags, _addr, offset, size in sections:
        name = ko[strtab_off + name_off : ko.index(b"\0", strtab_off + name_off)]
        if name == b".modinfo":
            for entry in ko[offset : offset + size].split(b"\0"):
                if entry.startswith(b"depends="):
                    value = entry.removeprefix(b"depends=").decode()
                    return tuple(dep for dep in value.split(",") if dep)
    return ()


def _shared_libraries(binary: Path) -> list[Path]:
    """The libraries and dynamic loader `binary` needs, from ldd's output, at the paths ldd shows.

    Stored at those paths the guest's loader finds them in its built-in search path, so the
    initramfs needs no ld.so.cache.
    """
    paths: list[Path] = []
    for line in _run(["ldd", str(binary)], hint="ldd comes with libc-bin").splitlines():
        line = line.strip()
        if "=>" in line:
            name, _, target = line.partition("=>")
            target = target.split("(", 1)[0].strip()
            if target == "not found":
                raise GuestImageError(f"{binary} needs {name.strip()}, which is not installed")
            if target:
                paths.append(Path(target))
        elif line.startswith("/"):
            paths.append(Path(line.split()[0]))
    return paths


# --------------------------------------------------------------------------------------------------
# The initramfs


@dataclass(frozen=True)
class CpioEntry:
    """One initramfs member; `path` is relative ("bin/busybox"), `mode` includes the file type."""

    path: str
    mode: int
    data: bytes = b""
    rdev: tuple[int, int] = (0, 0)


def _initramfs_entries(init_script: bytes, modules: list[tuple[str, bytes]]) -> list[CpioEntry]:
    """Everything the guest's root filesystem holds, in archive order (parents before children)."""
    files: dict[str, CpioEntry] = {}

    def add(entry: CpioEntry) -> None:
        parts = PurePosixPath(entry.path).parts
        for depth in range(1, len(parts)):
            parent = "/".join(parts[:depth])
            files.setdefault(parent, CpioEntry(parent, 0o040755))
        files[entry.path] = entry

    add(CpioEntry("init", 0o100755, init_script))
    add(CpioEntry("bin/busybox", 0o100755, BUSYBOX.read_bytes()))
    add(CpioEntry("usr/bin/iperf3", 0o100755, IPERF3.read_bytes()))
    for lib in _shared_libraries(IPERF3):
        add(CpioEntry(str(lib).lstrip("/"), 0o100755, lib.read_bytes()))
    for name, data in modules:
        add(CpioEntry(f"lib/modules/{name}.ko", 0o100644, data))
    add(CpioEntry("etc/virtnet/modules", 0o100644, "".join(f"{n}\n" for n, _ in modules).encode()))
    for folder in ("proc", "sys", "dev", "mnt", "run", "root"):
        add(CpioEntry(folder, 0o040755))
    add(CpioEntry("tmp", 0o041777))
    # The kernel opens /dev/console for init's stdio before init can mount devtmpfs.
    add(CpioEntry("dev/console", 0o020600, rdev=(5, 1)))
    return [files[path] for path in sorted(files)]


def _newc_archive(entries: Sequence[CpioEntry]) -> bytes:
    """A newc ("070701") cpio archive, written here rather than by `cpio -o -H newc`.

    Written in Python because that needs no staging tree: owners are root and mtimes 0 whoever
    builds (so the same inputs give the same bytes), and /dev/console is a device entry without
    mknod or root privileges.
    """
    out = bytearray()
    for ino, entry in enumerate([*entries, CpioEntry("TRAILER!!!", 0)], start=1):
        name = entry.path.encode() + b"\0"
        nlink = 2 if entry.mode & 0o170000 == 0o040000 else 1
        fields = (ino, entry.mode, 0, 0, nlink, 0, len(entry.data), 0, 0, *entry.rdev, len(name), 0)
        out += b"070701" + "".join(f"{value:08x}" for value in fields).encode() + name
        out += b"\0" * (-len(out) % 4)
        out += entry.data
        out += b"\0" * (-len(out) % 4)
    return bytes(out)


def _manifest(inputs: BuildInputs, modules: list[tuple[str, bytes]], cpio_size: int) -> bytes:
    """What went into the image, for people wondering which kernel a cached key holds."""
    record = {
        "key": image_key(inputs),
        "builder": BUILDER_VERSION,
        "kernel": f"{inputs.kernel_package}={inputs.kernel_version}",
        "busybox-static": inputs.busybox_version,
        "iperf3": inputs.iperf3_version,
        "init-sha256": hashlib.sha256(inputs.init_script).hexdigest(),
        "modules": [name for name, _ in modules],
        "cpio-bytes": cpio_size,
    }
    return json.dumps(record, indent=2).encode() + b"\n"
