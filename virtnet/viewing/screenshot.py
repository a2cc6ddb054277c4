"""Screenshots: the image format told by its magic bytes, and a file written whole or not at all.

QEMU 7.2 writes PNG whatever the file is called (libvirt asks for PNG when QEMU offers it; older
QEMUs write PPM), so the name never decides the format: the bytes do.
"""

from __future__ import annotations

import contextlib
import os
import re
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

from virtnet.errors import InputError, ScreenshotError
from virtnet.viewing.viewables import require_display, require_running, viewables
from virtnet.virt.host import Host

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# P6 width height maxval, separated by whitespace, with optional # comments (netpbm's grammar).
_PPM_HEADER = re.compile(rb"P6(?:\s+|#[^\n]*\n)+(\d+)(?:\s+|#[^\n]*\n)+(\d+)(?:\s+|#[^\n]*\n)+(\d+)\s")
EXTENSIONS = {"PNG": (".png",), "PPM": (".ppm", ".pnm")}


@dataclass(frozen=True)
class Image:
    format: str  # "PNG" or "PPM"
    width: int
    height: int
    data: bytes

    def describe(self) -> str:
        return f"{self.format} {self.width}x{self.height}, {len(self.data)} bytes"


def identify(data: bytes, mime: str = "") -> Image:
    """The image's real format and size, from its header."""
    if data.startswith(PNG_MAGIC) and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk comes first
        return Image("PNG", width, height, data)
    ppm = _PPM_HEADER.match(data)
    if ppm:
        return Image("PPM", int(ppm[1]), int(ppm[2]), data)
    raise ScreenshotError(
        f"libvirt sent {len(data)} bytes in a format virtnet does not know (MIME type {mime or 'none'}, "
        f"starting {data[:8]!r}); nothing was written"
    )


def extension_mismatch(path: Path, image: Image) -> str | None:
    """A warning when the file name promises another format than the bytes hold."""
    suffix = path.suffix.lower()
    if not suffix or suffix in EXTENSIONS[image.format]:
        return None
    wanted = suffix.lstrip(".")
    return (
        f"{path} holds a {image.format} image, not what its name says: QEMU picks the format, not the "
        f"file name; rename it to {path.with_suffix(EXTENSIONS[image.format][0]).name}, or convert it "
        f"with `convert {path} {wanted}:{path}`"
    )


def save(image: Image, path: Path) -> None:
    """Write the image whole: a reader sees the old file or the new one, never half of it."""
    directory = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=directory)
    except OSError as err:
        raise InputError(f"cannot write {path}: {err.strerror}; check that {directory} exists") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(image.data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as err:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise InputError(f"cannot write {path}: {err.strerror}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@dataclass(frozen=True)
class Screenshot:
    """A screenshot saved: the image, where, and a warning when the file's name says another format."""

    image: Image
    path: Path
    mismatch: str | None


def take(host: Host, name: str, path: Path, *, screen: int = 0) -> Screenshot:
    """Save what domain `name`'s display `screen` shows to `path`, written whole or not at all.

    Raises:
        DomainNotFound, DomainNotRunning, NoDisplay, ScreenshotError, InputError (an unusable path).
    """
    guest = host.lookup(name)
    found = viewables(guest)
    require_running(found)
    require_display(found)
    mime, data = guest.screenshot(screen)
    image = identify(data, mime)
    save(image, path)
    return Screenshot(image, path, extension_mismatch(path, image))
