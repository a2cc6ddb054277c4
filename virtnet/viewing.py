"""What a guest offers to look at, read from its live XML, and the checks that refuse with the fix.

The live XML, not the spec: a domain virsh or virt-manager changed, or one virtnet did not make, is
seen as libvirt runs it (libvirt adds a video device to a guest that has graphics but names none).
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import ip_address

from lxml import etree

from virtnet.errors import DomainNotRunning, NoDisplay, NoSerialConsole
from virtnet.virt.guest import Guest

# The character devices libvirt can stream (virchrdev.c); a file or null console cannot be attached.
STREAMABLE_CONSOLES = ("pty", "unix")


@dataclass(frozen=True)
class GraphicsEndpoint:
    """One <graphics> device: where its VNC or SPICE server listens."""

    type: str
    listen: str | None
    port: int | None  # None until the domain runs (autoport)

    @property
    def listens_on_loopback(self) -> bool:
        try:
            return self.listen is not None and ip_address(self.listen).is_loopback
        except ValueError:
            return self.listen == "localhost"

    def __str__(self) -> str:
        where = self.listen or "(no address)"
        return f"{self.type} on {where}:{self.port}" if self.port else f"{self.type} on {where}"


@dataclass(frozen=True)
class Viewables:
    name: str
    running: bool
    graphics: tuple[GraphicsEndpoint, ...]
    videos: tuple[str, ...]  # video models other than 'none'
    console_type: str | None  # 'pty', 'file', ... of the first <console> or <serial>
    console_path: str | None


def viewables(guest: Guest) -> Viewables:
    root = etree.fromstring(guest.xml().encode())
    graphics = tuple(
        GraphicsEndpoint(
            type=g.get("type", ""),
            listen=g.get("listen") or _attr(g, "listen[@type='address']", "address"),
            port=_port(g.get("port")),
        )
        for g in root.iterfind("devices/graphics")
        if g.get("type") in ("vnc", "spice")
    )
    models = (model.get("type") for model in root.iterfind("devices/video/model"))
    videos = tuple(model for model in models if model and model != "none")
    # virDomainOpenConsole(NULL) takes the first <console>, else the first <serial>.
    first = next(iter(root.findall("devices/console") + root.findall("devices/serial")), None)
    return Viewables(
        name=guest.name,
        running=guest.is_active,
        graphics=graphics,
        videos=videos,
        console_type=None if first is None else first.get("type"),
        console_path=None if first is None else _attr(first, "source", "path"),
    )


def require_running(v: Viewables) -> None:
    if not v.running:
        raise DomainNotRunning(f"domain {v.name!r} is not running; start it with `virtnet start {v.name}`")


def require_display(v: Viewables) -> None:
    """A screenshot needs a video device: QEMU dumps what it shows."""
    if not v.videos:
        raise NoDisplay(
            f'domain {v.name!r} has no display to capture (no video device); add video = "vga" and '
            "[graphics] to its spec and define it again, or read its serial console with "
            f"`virtnet console {v.name}`"
        )


def require_graphics(v: Viewables) -> GraphicsEndpoint:
    """The VNC or SPICE server a viewer connects to."""
    if not v.graphics:
        raise NoDisplay(
            f"domain {v.name!r} has no graphical console (no VNC or SPICE <graphics>); add [graphics] "
            f'(type = "vnc") to its spec and define it again, or use `virtnet console {v.name}`'
        )
    return v.graphics[0]


def require_serial_console(v: Viewables) -> None:
    if v.console_type is None:
        raise NoSerialConsole(
            f'domain {v.name!r} has no serial console; add [console] type = "pty" to its spec and '
            "define it again"
        )
    if v.console_type not in STREAMABLE_CONSOLES:
        where = f" ({v.console_path})" if v.console_path else ""
        raise NoSerialConsole(
            f"domain {v.name!r} writes its serial console to a {v.console_type}{where}, which a console "
            'cannot attach to; read that instead, or set [console] type = "pty" (log = "..." keeps '
            "a file too)"
        )


def _attr(element: etree._Element, path: str, name: str) -> str | None:
    found = element.find(path)
    return None if found is None else found.get(name)


def _port(text: str | None) -> int | None:
    try:
        port = int(text) if text else None
    except ValueError:
        return None
    return port if port and port > 0 else None  # autoport shows -1 while the domain is off
