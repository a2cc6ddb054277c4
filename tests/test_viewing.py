"""Seeing a guest, without libvirt: screenshot formats and files, and which viewer can show a console."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest

from virtnet.errors import InputError, ScreenshotError, ViewerFailed, ViewerNotFound, ViewerUnusable
from virtnet.viewing import screenshot, viewer
from virtnet.viewing.viewables import GraphicsEndpoint

LOOPBACK_VNC = GraphicsEndpoint(type="vnc", listen="127.0.0.1", port=5900)
ANY_VNC = GraphicsEndpoint(type="vnc", listen="0.0.0.0", port=5900)
X11 = {"DISPLAY": ":99"}


def png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = b"".join(b"\0" + b"\0\0\0" * width for _ in range(height))
    return (
        screenshot.PNG_MAGIC
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def test_png_and_ppm_are_told_by_their_bytes() -> None:
    image = screenshot.identify(png(720, 400), "image/png")
    assert (image.format, image.width, image.height) == ("PNG", 720, 400)
    ppm = screenshot.identify(b"P6\n# QEMU\n640 480\n255\n" + b"\0" * 640 * 480 * 3)
    assert (ppm.format, ppm.width, ppm.height) == ("PPM", 640, 480)
    assert ppm.describe() == f"PPM 640x480, {len(ppm.data)} bytes"


def test_an_unknown_format_is_refused_with_what_libvirt_said() -> None:
    with pytest.raises(ScreenshotError, match="image/x-mystery"):
        screenshot.identify(b"GIF89a....", "image/x-mystery")


def test_a_name_that_promises_another_format_is_pointed_out() -> None:
    image = screenshot.identify(png(1, 1))
    assert screenshot.extension_mismatch(Path("shot.png"), image) is None
    assert screenshot.extension_mismatch(Path("shot"), image) is None
    warning = screenshot.extension_mismatch(Path("/tmp/shot.ppm"), image)
    assert warning is not None
    assert "holds a PNG image" in warning and "shot.png" in warning and "ppm:/tmp/shot.ppm" in warning


def test_save_replaces_the_file_whole_and_leaves_nothing_behind(tmp_path: Path) -> None:
    target = tmp_path / "shot.png"
    target.write_bytes(b"old")
    image = screenshot.identify(png(2, 2))
    screenshot.save(image, target)
    assert target.read_bytes() == image.data
    assert [p.name for p in tmp_path.iterdir()] == ["shot.png"]
    assert target.stat().st_mode & 0o777 == 0o644


def test_save_into_a_missing_directory_names_it(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=f"check that {tmp_path / 'nowhere'} exists"):
        screenshot.save(screenshot.identify(png(1, 1)), tmp_path / "nowhere" / "shot.png")


def test_save_onto_a_directory_leaves_no_temporary_file(tmp_path: Path) -> None:
    (tmp_path / "shot.png").mkdir()
    with pytest.raises(InputError, match="cannot write"):
        screenshot.save(screenshot.identify(png(1, 1)), tmp_path / "shot.png")
    assert [p.name for p in tmp_path.iterdir()] == ["shot.png"]


@pytest.fixture
def fake_viewers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A PATH holding only the viewers a test installs (as executable stubs)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))

    def install(*names: str) -> None:
        for name in names:
            stub = bin_dir / name
            stub.write_text("#!/bin/sh\nexit 0\n")
            stub.chmod(0o755)

    return install


def test_virt_viewer_is_preferred(fake_viewers) -> None:
    fake_viewers("virt-viewer", "virt-manager")
    launch = viewer.choose("auto", "qemu:///system", "vm1", LOOPBACK_VNC, environ=X11)
    assert launch.argv == ["virt-viewer", "--connect", "qemu:///system", "--wait", "vm1"]


def test_virt_manager_when_it_is_the_only_one(fake_viewers) -> None:
    fake_viewers("virt-manager")
    launch = viewer.choose("auto", "qemu:///system", "vm1", LOOPBACK_VNC, environ=X11)
    assert launch.argv == [
        "virt-manager",
        "--connect",
        "qemu:///system",
        "--no-fork",
        "--show-domain-console",
        "vm1",
    ]


def test_no_viewer_installed_says_what_to_install(fake_viewers) -> None:
    missing = r"neither virt-viewer nor virt-manager is installed.*apt install virt-viewer"
    with pytest.raises(ViewerNotFound, match=missing):
        viewer.choose("auto", "qemu:///system", "vm1", LOOPBACK_VNC, environ=X11)
    fake_viewers("virt-viewer")
    with pytest.raises(ViewerNotFound, match=r"^virt-manager is not installed.*apt install virt-manager"):
        viewer.choose("virt-manager", "qemu:///system", "vm1", LOOPBACK_VNC, environ=X11)


def test_without_a_display_server_nothing_is_launched(fake_viewers) -> None:
    fake_viewers("virt-viewer")
    with pytest.raises(ViewerUnusable, match=r"\$DISPLAY is not set.*virtnet screenshot vm1"):
        viewer.choose("auto", "qemu:///system", "vm1", LOOPBACK_VNC, environ={})


def test_an_unknown_viewer_is_bad_input() -> None:
    with pytest.raises(InputError, match="--viewer 'vncviewer' is unknown"):
        viewer.choose("vncviewer", "qemu:///system", "vm1", LOOPBACK_VNC, environ=X11)


@pytest.mark.parametrize(
    ("uri", "graphics", "virt_viewer", "virt_manager"),
    [
        ("qemu:///system", LOOPBACK_VNC, True, True),
        ("qemu:///system?socket=/lab/sock/libvirt-sock", LOOPBACK_VNC, True, True),
        ("qemu+tcp://127.0.0.2/system", LOOPBACK_VNC, True, False),  # virt-manager's own refusal
        ("qemu+unix:///system", LOOPBACK_VNC, True, False),
        ("qemu+ssh://root@host.example/system", LOOPBACK_VNC, True, True),  # both tunnel
        ("qemu+tcp://192.0.2.7/system", LOOPBACK_VNC, False, False),  # another machine's loopback
        ("qemu://192.0.2.7/system", LOOPBACK_VNC, False, False),  # tls by default
        ("qemu+tcp://192.0.2.7/system", ANY_VNC, True, True),
    ],
)
def test_which_viewer_reaches_which_console(
    uri: str, graphics: GraphicsEndpoint, virt_viewer: bool, virt_manager: bool
) -> None:
    assert (viewer.unreachable("virt-viewer", uri, graphics) is None) is virt_viewer
    assert (viewer.unreachable("virt-manager", uri, graphics) is None) is virt_manager


def test_auto_falls_back_to_the_viewer_that_can_connect(fake_viewers) -> None:
    fake_viewers("virt-manager")
    with pytest.raises(ViewerUnusable, match=r"virt-manager refuses a console that listens on 127\.0\.0\.1"):
        viewer.choose("auto", "qemu+tcp://127.0.0.2/system", "vm1", LOOPBACK_VNC, environ=X11)
    fake_viewers("virt-viewer")
    launch = viewer.choose("auto", "qemu+tcp://127.0.0.2/system", "vm1", LOOPBACK_VNC, environ=X11)
    assert launch.viewer == "virt-viewer"


def test_a_failing_viewer_is_a_runtime_error() -> None:
    launch = viewer.Launch("virt-viewer", ["virt-viewer"])
    viewer.run(launch, runner=lambda argv: 0)
    with pytest.raises(ViewerFailed, match="virt-viewer exited with status 1") as failed:
        viewer.run(launch, runner=lambda argv: 1)
    assert failed.value.exit_code == 1


@pytest.mark.parametrize(
    ("listen", "loopback"), [("127.0.0.1", True), ("127.0.0.30", True), ("::1", True), ("0.0.0.0", False)]
)
def test_loopback_listen_addresses(listen: str, loopback: bool) -> None:
    assert GraphicsEndpoint("vnc", listen, None).listens_on_loopback is loopback
    assert str(GraphicsEndpoint("spice", listen, 5901)) == f"spice on {listen}:5901"
