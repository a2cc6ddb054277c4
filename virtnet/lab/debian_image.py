"""A real Debian 12 guest for the lab: a qcow2 base image built from Debian packages only.

`mmdebstrap` installs the packages below into a tarball (against Debian's mirror, with the suites
the host's apt uses), the tarball is unpacked as root so owners, modes and file capabilities
survive, `CUSTOMISATION` is applied to the tree, and `mkfs.ext4 -d` turns the tree into a
filesystem image without mounting anything. `qemu-img convert` makes that the qcow2 base that
per-VM overlays use read-only as their backing file. The kernel and initrd are copied out of the
image's /boot for libvirt's direct kernel boot with `CMDLINE`.

Nothing about a particular VM is in the image: no user, password, ssh key, ssh host key, hostname
or machine-id. cloud-init supplies all of that at first boot from a NoCloud seed (a cdrom labelled
`cidata`), and systemd makes a machine-id.

Images are cached under `<cache>/debian/<key>/`; the key hashes the builder version, the suite, the
package list, the customisation and apt's candidate versions of the listed packages. A cache hit
asks apt nothing while apt's lists are unchanged, so it costs a few stat calls.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import shlex
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from virtnet.cache import cache_dir as virtnet_cache_dir
from virtnet.errors import LabError
from virtnet.lab.guest_image import GuestImageError
from virtnet.lab.image_cache import apt_fingerprint, cached_build, write_atomic, write_synced
from virtnet.lab.process import run

# Bump whenever the build changes in a way the other inputs (suite, packages, versions,
# customisation content) do not capture, e.g. a different mkfs option or extraction flag.
BUILDER_VERSION = "3"

SUITE = "bookworm"
PACKAGES = (
    "linux-image-amd64",
    "systemd-sysv",
    "openssh-server",
    "cloud-init",
    "qemu-guest-agent",
    "iperf3",
    "ethtool",
    "iproute2",
    "ifupdown",
    "netbase",
    "udev",
    # cloud-init's locale module fails without it, and `cloud-init status` then says "error".
    "locales",
    "iputils-ping",
    # cloud-init only recommends sudo, and mmdebstrap installs no recommends: without it the
    # `sudo:` rule a user gets from user-data is written but nobody can use it.
    "sudo",
    # cloud-init's resizefs grows the root filesystem to the overlay's size at first boot with
    # resize2fs; --variant=apt leaves e2fsprogs out, and `cloud-init status` then says "error".
    "e2fsprogs",
    # systemd-logind needs D-Bus; without it nothing handles the ACPI power button, and a graceful
    # `virtnet stop` (virsh shutdown) waits for ever.
    "dbus",
)

ROOT_LABEL = "rootfs"
DISK_SIZE = "3G"
# net.ifnames=0: NICs are eth0, eth1, ... in PCI order, the names network-config uses.
CMDLINE = f"root=LABEL={ROOT_LABEL} rw console=ttyS0 net.ifnames=0"

BASE_FILE = "base.qcow2"
KERNEL_FILE = "vmlinuz"
INITRD_FILE = "initrd.img"
MANIFEST_FILE = "manifest.json"

# Each tool the build runs and the Debian package that provides it.
TOOLS = {
    "mmdebstrap": "mmdebstrap",
    "unshare": "util-linux",
    "tar": "tar",
    "mkfs.ext4": "e2fsprogs",
    "qemu-img": "qemu-utils",
}
# mkfs.ext4 lives in /usr/sbin, which is not in every PATH.
SBIN_DIRS: tuple[str, ...] = ("/usr/local/sbin", "/usr/sbin", "/sbin")

MMDEBSTRAP_TIMEOUT = 1800.0
STEP_TIMEOUT = 600.0


@dataclass(frozen=True)
class DebianImage:
    """A bootable Debian guest.

    `base` is used read-only as the backing file of per-VM overlays
    (`qemu-img create -f qcow2 -b BASE -F qcow2 overlay.qcow2`); `kernel`, `initrd` and `cmdline`
    are for direct kernel boot.
    """

    base: Path
    kernel: Path
    initrd: Path
    cmdline: str
    key: str


# --------------------------------------------------------------------------------------------------
# Customisation: what the build changes in the tree mmdebstrap made. Plain data, so that the key can
# hash exactly what is applied.


@dataclass(frozen=True)
class GuestFile:
    """A file written into the image; `path` is relative to the image's root."""

    path: str
    content: str
    mode: int = 0o644


@dataclass(frozen=True)
class Customisation:
    """Paths removed (glob patterns), then files written and symlinks made, relative to the root."""

    removed: tuple[str, ...]
    files: tuple[GuestFile, ...]
    symlinks: tuple[tuple[str, str], ...]

    def content(self) -> bytes:
        """A canonical serialisation: equal customisations give equal bytes."""
        record = {
            "removed": list(self.removed),
            "files": [[f.path, f.content, f.mode] for f in self.files],
            "symlinks": [list(link) for link in self.symlinks],
        }
        return json.dumps(record, sort_keys=True).encode()


CLOUD_CFG = """\
# virtnet lab image: cloud-init defaults for throwaway VMs under TCG. user-data overrides any of them.

# The NoCloud seed (a cdrom labelled cidata), else no datasource at all: never probe the cloud
# metadata services (EC2, OpenStack, ...), which costs minutes of timeouts with no route to them.
datasource_list: [ NoCloud, None ]

# C.UTF-8 is built into glibc. The default, en_US.UTF-8, is not generated: Debian's locale-gen
# ignores the locale cloud-init names, so update-locale fails and `cloud-init status` says error.
locale: C.UTF-8

# Direct kernel boot, no GRUB: the grub-dpkg module only costs ~8 s of debconf under TCG.
grub_dpkg:
  enabled: false

# Write /etc/hosts with the VM's name (127.0.1.1), so that sudo and others resolve the hostname
# cloud-init sets; otherwise every sudo prints "unable to resolve host".
manage_etc_hosts: true

# An RSA host key takes 5-40 s to generate under TCG, ed25519 and ecdsa about a second each (and
# DSA is obsolete).
ssh_genkeytypes: [ed25519, ecdsa]

# Printing the host keys' fingerprints on the console costs ~5 s under TCG; lab clients do not
# check host keys against the console.
ssh:
  emit_keys_to_console: false
"""

# Units that only cost boot time and CPU in a throwaway guest: package list refreshes and
# unattended upgrades (a lab VM lives minutes and has no route to a mirror), the dpkg database
# backup, periodic TRIM of a qcow2 overlay, man page indexing and ext4 metadata scrubbing. Masked
# by a symlink to /dev/null in /etc/systemd/system, which is what `systemctl mask` does.
MASKED_UNITS = (
    "apt-daily.timer",
    "apt-daily.service",
    "apt-daily-upgrade.timer",
    "apt-daily-upgrade.service",
    "dpkg-db-backup.timer",
    "fstrim.timer",
    "man-db.timer",
    "e2scrub_all.timer",
    "e2scrub_reap.service",
)

CUSTOMISATION = Customisation(
    removed=(
        # openssh-server's postinst made host keys while mmdebstrap installed it; every VM made from
        # this image would share them. cloud-init's ssh module makes a VM's own keys at first boot.
        "etc/ssh/ssh_host_*",
        # mmdebstrap copies the build host's /etc/hostname and /etc/resolv.conf into the tree: the
        # hostname comes from cloud-init, the resolver from the guest's own DHCP lease.
        "etc/hostname",
        "etc/resolv.conf",
        # Per-machine identity and state that must not be shared by every VM of this image.
        "var/lib/dbus/machine-id",
        "var/lib/systemd/random-seed",
    ),
    files=(
        # The root filesystem is found by its label (the kernel command line says the same), which
        # every overlay of this image shares; pass 1: checked at boot (by the initrd, see below).
        GuestFile("etc/fstab", f"LABEL={ROOT_LABEL} / ext4 defaults 0 1\n"),
        # initramfs-tools puts fsck and fsck.ext4 into the initrd only for a root filesystem type it
        # can name, and for / it probes the device, which does not exist while the image is built:
        # the initrd would say "fsck not present" and, the kernel mounting / rw, systemd-fsck-root
        # skips it too, so the root filesystem would never be checked. Uploaded before the kernel is
        # installed (EARLY_FILES), and kept for initrds built later inside the VM.
        GuestFile("etc/initramfs-tools/conf.d/virtnet-rootfs", "FSTYPE=ext4\n"),
        # Empty, as machine-id(5) asks of images used on many machines: systemd makes a new id at
        # each VM's first boot and saves it. (mmdebstrap leaves it empty too; written here so the
        # image does not depend on that.)
        GuestFile("etc/machine-id", ""),
        # cloud-init settings for a lab VM; user-data can override each of them.
        GuestFile("etc/cloud/cloud.cfg.d/90-virtnet.cfg", CLOUD_CFG),
        # sshd refuses to start without host keys. cloud-init makes them before sshd starts
        # (cloud-init.service is ordered Before=sshd.service); should it have made none (a broken
        # seed, cloud-init failing), this makes them, so the VM can still be logged in to and
        # looked at. Only when there is no key at all: `ssh-keygen -A` alone would add the RSA key
        # cloud-init is told not to make, at every boot. A drop-in's ExecStartPre= runs after the
        # unit's own `sshd -t`, which fails without keys, so the list is reset and restated.
        GuestFile(
            "etc/systemd/system/ssh.service.d/virtnet-hostkeys.conf",
            "[Service]\n"
            "ExecStartPre=\n"
            "ExecStartPre=-/bin/sh -c "
            "'ls /etc/ssh/ssh_host_*_key >/dev/null 2>&1 || exec /usr/bin/ssh-keygen -A'\n"
            "ExecStartPre=/usr/sbin/sshd -t\n",
        ),
    ),
    symlinks=tuple((f"etc/systemd/system/{unit}", "/dev/null") for unit in MASKED_UNITS),
)
# qemu-guest-agent needs nothing here: Debian's unit is BindsTo= the virtio port's device and its
# udev rule (60-qemu-guest-agent.rules) adds SYSTEMD_WANTS=qemu-guest-agent.service when the port
# org.qemu.guest_agent.0 appears, so it starts whenever the VM has the channel, and only then.


def apply_customisation(root: Path, customisation: Customisation = CUSTOMISATION) -> None:
    """Apply `customisation` to the unpacked tree at `root`.

    Never follows a symlink out of the tree: existing entries are removed, not written through, and
    a parent directory that resolves outside `root` is refused.
    """
    for pattern in customisation.removed:
        for found in sorted(glob.glob(str(_inside(root, pattern)))):
            path = Path(found)
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
    for item in customisation.files:
        target = _prepare(root, item.path)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, item.mode)
        with os.fdopen(fd, "w") as handle:
            handle.write(item.content)
        os.chmod(target, item.mode)  # the umask may have narrowed it
    for link, link_target in customisation.symlinks:
        os.symlink(link_target, _prepare(root, link))


def _inside(root: Path, relative: str) -> Path:
    if os.path.isabs(relative) or ".." in Path(relative).parts:
        raise GuestImageError(f"customisation path {relative!r} must be relative and inside the image")
    return root / relative


def _prepare(root: Path, relative: str) -> Path:
    """`root/relative` with its parents made and any existing entry there removed."""
    target = _inside(root, relative)
    target.parent.mkdir(parents=True, exist_ok=True)
    real_root = os.path.realpath(root)
    if os.path.commonpath([real_root, os.path.realpath(target.parent)]) != real_root:
        raise GuestImageError(f"{relative}: a parent directory in the image points outside it")
    if target.is_symlink() or target.is_file():
        target.unlink()
    elif target.exists():
        raise GuestImageError(f"{relative}: the image has a directory there, not a file")
    return target


# --------------------------------------------------------------------------------------------------
# Inputs and key


@dataclass(frozen=True)
class DebianInputs:
    """Everything an image is built from; `image_key` hashes exactly these."""

    suite: str
    packages: tuple[str, ...]
    versions: tuple[tuple[str, str], ...]  # (package, candidate version), in `packages` order
    customisation: Customisation


def image_key(inputs: DebianInputs) -> str:
    """16 hex digits naming the image built from `inputs` (and this builder's version)."""
    material = {
        "builder": BUILDER_VERSION,
        "suite": inputs.suite,
        "packages": list(inputs.packages),
        "versions": [f"{package}={version}" for package, version in inputs.versions],
        "customisation": hashlib.sha256(inputs.customisation.content()).hexdigest(),
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:16]


def resolve_inputs(debian_root: Path) -> DebianInputs:
    """The current inputs: the constants above and apt's candidates for `PACKAGES`."""
    versions = candidate_versions(debian_root, PACKAGES)
    return DebianInputs(SUITE, PACKAGES, tuple((p, versions[p]) for p in PACKAGES), CUSTOMISATION)


def candidate_versions(debian_root: Path, packages: Sequence[str]) -> dict[str, str]:
    """apt's candidate version of each package, remembered while apt's state is unchanged.

    `apt-cache policy` takes about a second here (apt's binary cache is disabled), too slow for a
    cache hit, so the answer is kept with a fingerprint of apt's lists, sources, pins and dpkg status.
    """
    memo = debian_root / "versions.json"
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        saved = json.loads(memo.read_text())
        if saved["fingerprint"] == apt_fingerprint() and saved["packages"] == list(packages):
            return {str(k): str(v) for k, v in saved["versions"].items()}
    if not _apt_lists_present():
        _run(
            ["apt-get", "update", "-q"],
            timeout=STEP_TIMEOUT,
            hint="the Debian guest's package versions come from apt; check that the mirror is reachable",
        )
    versions = parse_apt_policy(_run(["apt-cache", "policy", *packages], hint="apt-cache comes with apt"))
    unknown = [p for p in packages if versions.get(p, "(none)") == "(none)"]
    if unknown:
        raise GuestImageError(
            f"apt has no installable version of {', '.join(unknown)} for the Debian guest; "
            "run `apt-get update` (and check /etc/apt/sources.list has Debian's main component)"
        )
    result = {p: versions[p] for p in packages}
    record = {"fingerprint": apt_fingerprint(), "packages": list(packages), "versions": result}
    write_atomic(memo, json.dumps(record, indent=1).encode())
    return result


def parse_apt_policy(text: str) -> dict[str, str]:
    """{package: candidate} from `apt-cache policy P...` output ("(none)" when there is none)."""
    versions: dict[str, str] = {}
    package = None
    for line in text.splitlines():
        if line and not line[0].isspace() and line.endswith(":"):
            package = line[:-1].split(":", 1)[0]  # drop an ":amd64" architecture qualifier
        elif package and line.strip().startswith("Candidate:"):
            versions[package] = line.split(":", 1)[1].strip()
    return versions


def _apt_lists_present() -> bool:
    return any(Path("/var/lib/apt/lists").glob("*_Packages*"))


# --------------------------------------------------------------------------------------------------
# Public API


def build_debian_image(cache_dir: Path | None = None) -> DebianImage:
    """Return the cached image for the current inputs, building it first (2-3 min) if there is none.

    A cache hit runs no build tool and, while apt's lists are unchanged, does not ask apt either.
    Builders of the same key serialise on a lock file, and a build becomes visible only by renaming
    its finished directory into place, so a crashed or concurrent build never exposes half an image.
    Raises GuestImageError, with what to install or fix, when a tool is missing or a step fails.
    """
    debian_root = (virtnet_cache_dir() if cache_dir is None else cache_dir) / "debian"
    debian_root.mkdir(parents=True, exist_ok=True)
    inputs = resolve_inputs(debian_root)
    key = image_key(inputs)
    final = cached_build(debian_root, key, _complete, lambda work: _build(work, inputs, key))
    return DebianImage(
        base=final / BASE_FILE,
        kernel=final / KERNEL_FILE,
        initrd=final / INITRD_FILE,
        cmdline=CMDLINE,
        key=key,
    )


# --------------------------------------------------------------------------------------------------
# Building


def _complete(final: Path) -> bool:
    return all((final / name).is_file() for name in (BASE_FILE, KERNEL_FILE, INITRD_FILE, MANIFEST_FILE))


def find_tools() -> dict[str, str]:
    """The path of every build tool; GuestImageError naming the package of the first one missing."""
    search = os.pathsep.join([os.environ.get("PATH", os.defpath), *SBIN_DIRS])
    found = {}
    for tool, package in TOOLS.items():
        path = shutil.which(tool, path=search)
        if path is None:
            raise GuestImageError(
                f"building the Debian guest image needs {tool}, which is not installed; "
                f"run `apt-get install {package}` (or `make deps`)"
            )
        found[tool] = path
    return found


def _build(work: Path, inputs: DebianInputs, key: str) -> None:
    """Fill the empty work directory `work`; `cached_build` renames it into place afterwards."""
    tools = find_tools()
    if os.geteuid() != 0:
        raise GuestImageError(
            "building the Debian guest image needs root: the unpacked tree must keep its files' "
            "owners and capabilities; run it as root (the lab runs as root)"
        )
    log = work.parent / f"{key}.log"  # beside the work dir, so it outlives a failed build
    log.write_text("")
    tarball, root, raw = work / "rootfs.tar", work / "rootfs", work / "disk.raw"
    include = ",".join(f"{package}={version}" for package, version in inputs.versions)
    # As root, mmdebstrap mounts proc, sys, devpts and a tmpfs inside its temporary chroot, and
    # a killed mmdebstrap leaves them (and the chroot) behind. In a mount namespace of its own the
    # mounts die with it, and with TMPDIR in the work dir the chroot goes with the work dir.
    (work / "tmp").mkdir()
    _step(
        [
            tools["unshare"],
            "--mount",
            "--propagation=private",
            tools["mmdebstrap"],
            "--variant=apt",
            f"--include={include}",
            *_early_file_hooks(work / "early", inputs.customisation),
            inputs.suite,
            str(tarball),
        ],
        log=log,
        timeout=MMDEBSTRAP_TIMEOUT,
        env={**os.environ, "TMPDIR": str(work / "tmp")},
        name="mmdebstrap",
        hint="check that Debian's mirror is reachable; if a version is not found, run `apt-get update`",
    )
    shutil.rmtree(work / "tmp")
    shutil.rmtree(work / "early")
    root.mkdir()
    # As root tar keeps owners by default; --numeric-owner maps them by number (the build host's
    # names do not matter), and --xattrs-include=* restores security.capability (ping's
    # cap_net_raw), which tar leaves out by default.
    _step(
        [
            tools["tar"],
            "--extract",
            f"--file={tarball}",
            f"--directory={root}",
            "--numeric-owner",
            "--same-owner",
            "--preserve-permissions",
            "--xattrs",
            "--xattrs-include=*",
        ],
        log=log,
        hint="the disk holding the cache may be full",
    )
    tarball.unlink()
    apply_customisation(root, inputs.customisation)
    _copy_boot_file(root, "vmlinuz-*", work / KERNEL_FILE)
    _copy_boot_file(root, "initrd.img-*", work / INITRD_FILE)
    write_synced(work / MANIFEST_FILE, _manifest(inputs, key, root))
    _step(
        [tools["mkfs.ext4"], "-q", "-L", ROOT_LABEL, "-d", str(root), str(raw), DISK_SIZE],
        log=log,
        hint=f"the image's files must fit in {DISK_SIZE}; the disk holding the cache may be full",
    )
    shutil.rmtree(root)
    base = work / BASE_FILE
    _step(
        [tools["qemu-img"], "convert", "-O", "qcow2", str(raw), str(base)],
        log=log,
        hint="the disk holding the cache may be full",
    )
    raw.unlink()
    _fsync(base)
    base.chmod(0o444)  # a base image is only ever read; overlays take the writes


# Files the package scripts must see while mmdebstrap installs: the kernel's postinst builds the
# initrd then, and initramfs-tools adds fsck to it only if it knows the root filesystem's type (see
# INITRAMFS_FSTYPE).
EARLY_FILES = ("etc/initramfs-tools/conf.d/virtnet-rootfs",)


def _early_file_hooks(stage: Path, customisation: Customisation) -> list[str]:
    """mmdebstrap options that copy `EARLY_FILES` in after the essential packages, before the rest.

    The files are staged under the new directory `stage` at their paths in the image, and copied
    in with `sync-in`, which makes missing directories (`upload` needs the directory to exist).
    """
    stage.mkdir(mode=0o755)
    stage.chmod(0o755)  # sync-in gives / the stage's mode, owner and all
    early = [item for item in customisation.files if item.path in EARLY_FILES]
    for item in early:
        target = _inside(stage, item.path)
        for parent in reversed(target.relative_to(stage).parents[:-1]):
            (stage / parent).mkdir(exist_ok=True)
            (stage / parent).chmod(0o755)
        target.write_text(item.content)
        target.chmod(item.mode)
    # mmdebstrap splits a special hook's words like a shell: quote the path.
    return [f"--essential-hook=sync-in {shlex.quote(str(stage))} /"] if early else []


def _step(
    cmd: list[str],
    *,
    log: Path,
    hint: str,
    timeout: float = STEP_TIMEOUT,
    env: Mapping[str, str] | None = None,
    name: str = "",
) -> None:
    """Run one build step (argument list, no shell), its output appended to `log`.

    On failure raises GuestImageError naming the step (`name`, else the command), its last output
    line, `hint` and where the log is. On a timeout or an interrupt (Ctrl-C) the step gets SIGTERM
    and time to clean up before SIGKILL (subprocess.run would kill it at once).
    """
    name = name or Path(cmd[0]).name
    with log.open("a") as handle:
        handle.write(f"$ {' '.join(cmd)}\n")
        handle.flush()
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=handle, stderr=subprocess.STDOUT, env=env
        )
        try:
            returncode = proc.wait(timeout=timeout)
        except BaseException as exc:
            _stop(proc)
            if isinstance(exc, subprocess.TimeoutExpired):
                raise GuestImageError(
                    f"{name} did not finish within {timeout:g} s; {hint}; log: {log}"
                ) from None
            raise
    if returncode != 0:
        lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
        last = lines[-1] if lines and not lines[-1].startswith("$ ") else f"exit {returncode}"
        raise GuestImageError(f"{name} failed: {last}; {hint}; log: {log}")


def _stop(proc: subprocess.Popen[bytes], grace: float = 30.0) -> None:
    """SIGTERM, wait up to `grace` seconds, then SIGKILL: only this child."""
    proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _run(cmd: list[str], *, hint: str, timeout: float = 120.0) -> str:
    """A short apt query: stdout, or GuestImageError with the failure and `hint` (as guest_image's)."""
    try:
        return run(cmd, timeout=timeout)
    except LabError as err:
        raise GuestImageError(f"{err}; {hint}") from None


def _copy_boot_file(root: Path, pattern: str, dest: Path) -> None:
    """Copy the one /boot/<pattern> (a kernel has exactly one of each) out for direct kernel boot."""
    found = sorted((root / "boot").glob(pattern))
    if len(found) != 1:
        names = ", ".join(p.name for p in found) or "none"
        raise GuestImageError(f"expected one /boot/{pattern} in the Debian image, found {names}")
    shutil.copyfile(found[0], dest)
    dest.chmod(0o644)  # whatever the umask: QEMU may run as another user
    _fsync(dest)


def _fsync(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


def installed_packages(status: str) -> dict[str, str]:
    """{package: version} of the installed packages in a dpkg status file's text."""
    installed: dict[str, str] = {}
    for stanza in status.split("\n\n"):
        fields = _fields(stanza)
        if fields.get("Status", "").endswith(" installed") and "Package" in fields:
            installed[fields["Package"]] = fields.get("Version", "")
    return installed


def _fields(stanza: str) -> Mapping[str, str]:
    fields: dict[str, str] = {}
    for line in stanza.splitlines():
        name, sep, value = line.partition(":")
        if sep and line and not line[0].isspace():
            fields[name] = value.strip()
    return fields


def _manifest(inputs: DebianInputs, key: str, root: Path) -> bytes:
    """What went into the image, for people wondering what a cached key holds."""
    status = (root / "var/lib/dpkg/status").read_text(errors="replace")
    record = {
        "key": key,
        "builder": BUILDER_VERSION,
        "suite": inputs.suite,
        "cmdline": CMDLINE,
        "requested": [f"{package}={version}" for package, version in inputs.versions],
        "customisation-sha256": hashlib.sha256(inputs.customisation.content()).hexdigest(),
        "installed": installed_packages(status),
    }
    return json.dumps(record, indent=2, sort_keys=True).encode() + b"\n"
