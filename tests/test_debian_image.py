"""The Debian guest image builder without a real build: key, apt answers, customisation, tools, and
the whole pipeline with a fake mmdebstrap whose tarball holds a tiny tree (real tar, mkfs.ext4 and
qemu-img, well under a second)."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from virtnet.lab import debian_image as di
from virtnet.lab.debian_image import (
    CUSTOMISATION,
    Customisation,
    DebianInputs,
    GuestFile,
    apply_customisation,
    build_debian_image,
    image_key,
)
from virtnet.lab.guest_image import GuestImageError

VERSIONS = tuple((p, f"1.{i}") for i, p in enumerate(di.PACKAGES))
FAKE = DebianInputs("bookworm", di.PACKAGES, VERSIONS, CUSTOMISATION)


def with_version(package: str, version: str) -> DebianInputs:
    versions = tuple((p, version if p == package else v) for p, v in VERSIONS)
    return dataclasses.replace(FAKE, versions=versions)


# --------------------------------------------------------------------------------------------------
# Key


def test_equal_inputs_give_the_same_key() -> None:
    copy = DebianInputs(
        "bookworm",
        tuple(di.PACKAGES),
        tuple(VERSIONS),
        Customisation(CUSTOMISATION.removed, CUSTOMISATION.files, CUSTOMISATION.symlinks),
    )
    assert image_key(copy) == image_key(FAKE)
    assert len(image_key(FAKE)) == 16


@pytest.mark.parametrize(
    "changed",
    [
        dataclasses.replace(FAKE, suite="trixie"),
        dataclasses.replace(FAKE, packages=(*di.PACKAGES, "htop")),
        with_version("linux-image-amd64", "6.1.999-1"),
        with_version("cloud-init", "22.4.2-1+deb12u5"),
        dataclasses.replace(
            FAKE,
            customisation=dataclasses.replace(
                CUSTOMISATION, files=(*CUSTOMISATION.files[:-1], GuestFile("etc/fstab", "changed\n"))
            ),
        ),
        dataclasses.replace(
            FAKE,
            customisation=dataclasses.replace(
                CUSTOMISATION, files=tuple(dataclasses.replace(f, mode=0o600) for f in CUSTOMISATION.files)
            ),
        ),
        dataclasses.replace(
            FAKE,
            customisation=dataclasses.replace(
                CUSTOMISATION, symlinks=(*CUSTOMISATION.symlinks, ("etc/systemd/system/x.timer", "/dev/null"))
            ),
        ),
        dataclasses.replace(
            FAKE, customisation=dataclasses.replace(CUSTOMISATION, removed=CUSTOMISATION.removed[1:])
        ),
    ],
)
def test_every_input_changes_the_key(changed: DebianInputs) -> None:
    assert image_key(changed) != image_key(FAKE)


def test_builder_version_changes_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    before = image_key(FAKE)
    monkeypatch.setattr(di, "BUILDER_VERSION", di.BUILDER_VERSION + "-next")
    assert image_key(FAKE) != before


# --------------------------------------------------------------------------------------------------
# apt's candidate versions

POLICY = """\
linux-image-amd64:
  Installed: (none)
  Candidate: 6.1.192-3
  Version table:
     6.1.192-3 500
        500 http://deb.debian.org/debian-security bookworm-security/main amd64 Packages
sudo:amd64:
  Installed: 1.9.13p3-1+deb12u4
  Candidate: 1.9.13p3-1+deb12u4
ghost:
  Installed: (none)
  Candidate: (none)
"""


def test_parse_apt_policy() -> None:
    assert di.parse_apt_policy(POLICY) == {
        "linux-image-amd64": "6.1.192-3",
        "sudo": "1.9.13p3-1+deb12u4",
        "ghost": "(none)",
    }


class FakeApt:
    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, cmd: list[str], **kwargs: object) -> str:
        self.calls.append(cmd)
        return POLICY


def test_versions_are_remembered_until_apt_changes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    apt = FakeApt()
    fingerprint = ["one"]
    monkeypatch.setattr(di, "_run", apt)
    monkeypatch.setattr(di, "_apt_lists_present", lambda: True)
    monkeypatch.setattr(di, "apt_fingerprint", lambda: fingerprint[0])
    packages = ("linux-image-amd64", "sudo")
    expected = {"linux-image-amd64": "6.1.192-3", "sudo": "1.9.13p3-1+deb12u4"}
    assert di.candidate_versions(tmp_path, packages) == expected
    assert di.candidate_versions(tmp_path, packages) == expected
    assert len(apt.calls) == 1  # the second answer came from versions.json
    fingerprint[0] = "two"  # apt-get update ran, or a pin or source changed
    assert di.candidate_versions(tmp_path, packages) == expected
    assert len(apt.calls) == 2
    assert di.candidate_versions(tmp_path, ("sudo",)) == {"sudo": "1.9.13p3-1+deb12u4"}
    assert len(apt.calls) == 3  # another package list is another question


def test_apt_update_runs_only_without_lists(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    apt = FakeApt()
    monkeypatch.setattr(di, "_run", apt)
    monkeypatch.setattr(di, "_apt_lists_present", lambda: False)
    di.candidate_versions(tmp_path, ("sudo",))
    assert apt.calls == [["apt-get", "update", "-q"], ["apt-cache", "policy", "sudo"]]


@pytest.mark.parametrize("package", ["ghost", "not-in-apt-at-all"])
def test_unknown_package_says_to_run_apt_get_update(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, package: str
) -> None:
    monkeypatch.setattr(di, "_run", FakeApt())
    monkeypatch.setattr(di, "_apt_lists_present", lambda: True)
    with pytest.raises(GuestImageError, match=rf"no installable version of {package}.*apt-get update"):
        di.candidate_versions(tmp_path, ("sudo", package))


def test_resolve_inputs_pins_every_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(di, "candidate_versions", lambda root, packages: {p: "9" for p in packages})
    inputs = di.resolve_inputs(tmp_path)
    assert inputs.packages == di.PACKAGES and inputs.suite == "bookworm"
    assert inputs.versions == tuple((p, "9") for p in di.PACKAGES)
    assert inputs.customisation is CUSTOMISATION


# --------------------------------------------------------------------------------------------------
# Customisation


def fake_root(tmp_path: Path) -> tuple[Path, Path]:
    """A tree shaped like mmdebstrap's, and a file outside it that must never be touched."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    outside.write_text("host file\n")
    for name in ("ssh_host_ed25519_key", "ssh_host_ed25519_key.pub", "ssh_host_rsa_key", "sshd_config"):
        (root / "etc/ssh").mkdir(parents=True, exist_ok=True)
        (root / "etc/ssh" / name).write_text(name)
    (root / "etc/hostname").write_text("buildhost\n")
    (root / "etc/resolv.conf").symlink_to(outside)  # written through, it would change the host
    (root / "etc/machine-id").write_text("0123456789abcdef0123456789abcdef\n")
    (root / "etc/fstab").write_text("# UNCONFIGURED FSTAB FOR BASE SYSTEM\n")
    wants = root / "etc/systemd/system/timers.target.wants"
    wants.mkdir(parents=True)
    (wants / "apt-daily.timer").symlink_to("/lib/systemd/system/apt-daily.timer")
    (root / "var/lib/dbus").mkdir(parents=True)
    (root / "var/lib/dbus/machine-id").write_text("0123456789abcdef0123456789abcdef\n")
    return root, outside


def test_customisation_writes_what_it_should(tmp_path: Path) -> None:
    root, outside = fake_root(tmp_path)
    apply_customisation(root)
    etc = root / "etc"
    assert (etc / "fstab").read_text() == "LABEL=rootfs / ext4 defaults 0 1\n"
    assert (etc / "machine-id").read_text() == "" and not (root / "var/lib/dbus/machine-id").exists()
    cfg = (etc / "cloud/cloud.cfg.d/90-virtnet.cfg").read_text()
    assert "datasource_list: [ NoCloud, None ]" in cfg.splitlines()
    assert sorted(p.name for p in (etc / "ssh").iterdir()) == ["sshd_config"]
    assert not os.path.lexists(etc / "hostname") and not os.path.lexists(etc / "resolv.conf")
    assert outside.read_text() == "host file\n"
    for unit in ("apt-daily.timer", "apt-daily-upgrade.timer", "fstrim.timer", "e2scrub_reap.service"):
        assert os.readlink(etc / "systemd/system" / unit) == "/dev/null"
    assert "locale: C.UTF-8" in cfg.splitlines() and "manage_etc_hosts: true" in cfg.splitlines()
    keygen = (etc / "systemd/system/ssh.service.d/virtnet-hostkeys.conf").read_text()
    lines = keygen.splitlines()
    assert lines[:2] == ["[Service]", "ExecStartPre="]  # reset: Debian's `sshd -t` fails without keys
    assert lines[2].startswith("ExecStartPre=-/bin/sh -c '") and lines[2].endswith("ssh-keygen -A'")
    assert lines[3:] == ["ExecStartPre=/usr/sbin/sshd -t"]
    assert stat.S_IMODE((etc / "fstab").stat().st_mode) == 0o644


def test_customisation_bakes_in_no_identity(tmp_path: Path) -> None:
    """No user, password, key or hostname: those come from cloud-init at each VM's first boot."""
    root, _ = fake_root(tmp_path)
    apply_customisation(root)
    settings = [
        line.strip().lower()
        for f in CUSTOMISATION.files
        for line in f.content.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    forbidden = ("hostname", "fqdn", "users", "user", "password", "passwd", "chpasswd", "ssh_authorized_keys")
    assert not [line for line in settings if line.split(":", 1)[0] in forbidden]
    assert not [line for line in settings if "ssh-ed25519" in line or "ssh-rsa" in line]
    assert not list(root.rglob("ssh_host_*"))


def test_customisation_never_writes_outside_the_tree(tmp_path: Path) -> None:
    root, outside_dir = tmp_path / "root", tmp_path / "elsewhere"
    root.mkdir()
    outside_dir.mkdir()
    (root / "etc").symlink_to(outside_dir)  # an absolute link in the image would point at the host
    with pytest.raises(GuestImageError, match="points outside"):
        apply_customisation(root, Customisation((), (GuestFile("etc/fstab", "x"),), ()))
    assert list(outside_dir.iterdir()) == []
    with pytest.raises(GuestImageError, match="relative and inside"):
        apply_customisation(root, Customisation(("../elsewhere/*",), (), ()))


# --------------------------------------------------------------------------------------------------
# Tools and the build pipeline


def fake_tool(folder: Path, name: str, body: str) -> None:
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body))
    path.chmod(0o755)


@pytest.fixture
def no_apt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(di, "candidate_versions", lambda root, packages: {p: "1.0" for p in packages})


def only_path(monkeypatch: pytest.MonkeyPatch, *folders: Path) -> None:
    monkeypatch.setenv("PATH", os.pathsep.join(str(f) for f in folders))
    monkeypatch.setattr(di, "SBIN_DIRS", ())


def nothing_visible(cache: Path) -> bool:
    return [p.name for p in (cache / "debian").iterdir() if p.is_dir()] == []


@pytest.mark.parametrize(
    ("present", "fix"),
    [
        ((), "apt-get install mmdebstrap"),
        (("mmdebstrap",), "apt-get install util-linux"),
        (("mmdebstrap", "unshare", "tar"), "apt-get install e2fsprogs"),
        (("mmdebstrap", "unshare", "tar", "mkfs.ext4"), "apt-get install qemu-utils"),
    ],
)
def test_missing_tool_names_the_package_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_apt: None, present: tuple[str, ...], fix: str
) -> None:
    bin_dir = tmp_path / "bin"
    for tool in present:
        fake_tool(bin_dir, tool, "raise SystemExit('must not run')\n")
    only_path(monkeypatch, bin_dir)
    with pytest.raises(GuestImageError, match=rf"needs .*not installed; run `{fix}`") as info:
        build_debian_image(tmp_path)
    assert "\n" not in str(info.value)
    assert nothing_visible(tmp_path)


def test_mkfs_is_found_in_sbin_even_off_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake_tool(tmp_path / "sbin", "mkfs.ext4", "")
    fake_tool(tmp_path / "bin", "mmdebstrap", "")
    for tool in ("unshare", "tar", "qemu-img"):
        fake_tool(tmp_path / "bin", tool, "")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    monkeypatch.setattr(di, "SBIN_DIRS", (str(tmp_path / "sbin"),))
    assert di.find_tools()["mkfs.ext4"] == str(tmp_path / "sbin/mkfs.ext4")


needs_root_and_tools = pytest.mark.skipif(
    os.geteuid() != 0 or not all(shutil.which(t, path="/usr/sbin:/sbin:/usr/bin:/bin") for t in di.TOOLS),
    reason="the build unpacks as root and needs tar, mkfs.ext4 and qemu-img",
)

# A stand-in for mmdebstrap: a tarball of a tiny tree shaped like Debian's, at the last argument.
FAKE_MMDEBSTRAP = """\
import io, sys, tarfile, pathlib
import os, shlex
with open(pathlib.Path(sys.argv[0]).with_name("mmdebstrap.calls"), "a") as log:
    log.write(" ".join(sys.argv[1:]) + " TMPDIR=" + os.environ["TMPDIR"] + "\\n")
for arg in sys.argv[1:]:
    if arg.startswith("--essential-hook=sync-in "):
        _, outside, inside = shlex.split(arg.split("=", 1)[1])
        with open(pathlib.Path(sys.argv[0]).with_name("synced-in"), "a") as log:
            for path in sorted(pathlib.Path(outside).rglob("*")):
                mode = oct(path.stat().st_mode & 0o7777)
                content = repr(path.read_text()) if path.is_file() else "dir"
                log.write(f"{inside} {path.relative_to(outside)} {mode} {content}\\n")
files = {
    "boot/vmlinuz-6.1.0-57-amd64": b"kernel",
    "boot/initrd.img-6.1.0-57-amd64": b"initrd",
    "etc/hostname": b"buildhost\\n",
    "etc/ssh/ssh_host_ed25519_key": b"secret",
    "etc/ssh/sshd_config": b"# sshd\\n",
    "var/lib/dpkg/status": (
        b"Package: sudo\\nStatus: install ok installed\\nVersion: 1.9\\n\\n"
        b"Package: gone\\nStatus: deinstall ok config-files\\nVersion: 2\\n"
    ),
}
with tarfile.open(sys.argv[-1], "w") as tar:
    for name, data in files.items():
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.uid, info.gid = len(data), 0o644, 0, 0
        tar.addfile(info, io.BytesIO(data))
"""


def fake_mmdebstrap_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, body: str) -> Path:
    bin_dir = tmp_path / "bin"
    fake_tool(bin_dir, "mmdebstrap", body)
    monkeypatch.setenv("PATH", os.pathsep.join([str(bin_dir), "/usr/bin", "/bin"]))
    return bin_dir


@needs_root_and_tools
def test_pipeline_with_a_fake_mmdebstrap(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_apt: None
) -> None:
    bin_dir = fake_mmdebstrap_path(monkeypatch, tmp_path, FAKE_MMDEBSTRAP)
    key = image_key(di.resolve_inputs(tmp_path))
    crashed = tmp_path / "cache/debian" / f".build-{key}-crashed"  # a build killed half way
    (crashed / "rootfs").mkdir(parents=True)
    image = build_debian_image(tmp_path / "cache")
    assert image.key == key and not crashed.exists()
    final = tmp_path / "cache/debian" / image.key
    assert image.base == final / "base.qcow2" and image.cmdline == di.CMDLINE
    assert image.kernel.read_bytes() == b"kernel" and image.initrd.read_bytes() == b"initrd"
    assert stat.S_IMODE(image.base.stat().st_mode) == 0o444
    info = json.loads(
        subprocess.run(
            ["qemu-img", "info", "--output=json", str(image.base)], capture_output=True, check=True
        ).stdout
    )
    assert info["format"] == "qcow2" and info["virtual-size"] == 3 * 1024**3
    manifest = json.loads((final / "manifest.json").read_text())
    assert manifest["installed"] == {"sudo": "1.9"}
    assert manifest["requested"] == [f"{p}=1.0" for p in di.PACKAGES]
    assert sorted(p.name for p in final.iterdir()) == ["base.qcow2", "initrd.img", "manifest.json", "vmlinuz"]
    (call,) = (bin_dir / "mmdebstrap.calls").read_text().splitlines()
    assert call.startswith("--variant=apt --include=linux-image-amd64=1.0,") and " bookworm " in call
    # initramfs-tools learns the root filesystem's type before the kernel's postinst builds the
    # initrd (so fsck goes in)
    assert (bin_dir / "synced-in").read_text().splitlines() == [
        "/ etc 0o755 dir",
        "/ etc/initramfs-tools 0o755 dir",
        "/ etc/initramfs-tools/conf.d 0o755 dir",
        "/ etc/initramfs-tools/conf.d/virtnet-rootfs 0o644 'FSTYPE=ext4\\n'",
    ]
    # mmdebstrap's temporary chroot is made inside the build's work dir, which is gone now
    assert Path(call.rsplit("TMPDIR=", 1)[1]).parent.name.startswith(f".build-{image.key}-")

    # A second call is a cache hit: mmdebstrap does not run again.
    assert build_debian_image(tmp_path / "cache") == image
    assert len((bin_dir / "mmdebstrap.calls").read_text().splitlines()) == 1

    debugfs, blkid = (shutil.which(tool, path="/usr/sbin:/sbin") for tool in ("debugfs", "blkid"))
    if debugfs is None or blkid is None:
        return
    raw = tmp_path / "check.raw"
    subprocess.run(["qemu-img", "convert", "-O", "raw", str(image.base), str(raw)], check=True)

    def cat(path: str) -> str:
        done = subprocess.run(
            [debugfs, "-R", f"cat {path}", str(raw)], capture_output=True, text=True, check=True
        )
        return done.stdout

    assert cat("/etc/fstab") == "LABEL=rootfs / ext4 defaults 0 1\n"
    assert cat("/etc/initramfs-tools/conf.d/virtnet-rootfs") == "FSTYPE=ext4\n"
    assert "NoCloud" in cat("/etc/cloud/cloud.cfg.d/90-virtnet.cfg")
    listing = subprocess.run([debugfs, "-R", "ls /etc/ssh", str(raw)], capture_output=True, text=True)
    assert "sshd_config" in listing.stdout and "ssh_host" not in listing.stdout
    label = subprocess.run([blkid, "-o", "value", "-s", "LABEL", str(raw)], capture_output=True, text=True)
    assert label.stdout.strip() == "rootfs"


@needs_root_and_tools
def test_failed_step_says_why_and_leaves_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_apt: None
) -> None:
    fake_mmdebstrap_path(
        monkeypatch,
        tmp_path,
        "import sys\nprint('I: downloading packages...')\n"
        "print('E: Version 1.0 for sudo was not found', file=sys.stderr)\nsys.exit(1)\n",
    )
    cache = tmp_path / "cache"
    (cache / "debian").mkdir(parents=True)
    with pytest.raises(GuestImageError) as info:
        build_debian_image(cache)
    message = str(info.value)
    assert message.startswith("mmdebstrap failed: E: Version 1.0 for sudo was not found; ")
    assert "apt-get update" in message and "\n" not in message
    log = Path(message.rsplit("log: ", 1)[1])
    assert "I: downloading packages" in log.read_text()
    assert sorted(p.name for p in (cache / "debian").iterdir()) == [f"{log.stem}.lock", log.name]


def test_cloud_cfg_is_the_yaml_cloud_init_reads() -> None:
    yaml = pytest.importorskip("yaml")
    cfg = yaml.safe_load(di.CLOUD_CFG)
    assert cfg["datasource_list"] == ["NoCloud", "None"]
    assert cfg["locale"] == "C.UTF-8" and cfg["grub_dpkg"] == {"enabled": False}
    assert cfg["ssh_genkeytypes"] == ["ed25519", "ecdsa"]
    assert cfg["ssh"] == {"emit_keys_to_console": False} and cfg["manage_etc_hosts"] is True
