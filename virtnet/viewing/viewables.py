"""What a guest offers to look at, read from its live XML, and the checks that refuse with the fix.

The live XML, not the spec: a domain virsh or virt-manager changed, or one virtnet did not make, is
seen as libvirt runs it (libvirt adds a video device to a guest that has graphics but names none).
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import ip_address

from virtnet.domxml.domain import Domain
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
    return viewables_of(guest.xml(), guest.name, running=guest.is_active)


def viewables_of(xml: str, name: str, *, running: bool) -> Viewables:
    """What the domain XML offers to look at (read through the element classes)."""
    devices = Domain.read_only(xml).devices
    if devices is None:
        return Viewables(name, running, (), (), None, None)
    graphics = tuple(
        GraphicsEndpoint(type=g.type, listen=g.listen or g.listen_address, port=_port(g.port))
        for g in devices.graphics
        if g.type in ("vnc", "spice")
    )
    videos = tuple(video.model for video in devices.videos if video.model and video.model != "none")
    # virDomainOpenConsole(NULL) takes the first <console>, else the first <serial>.
    first = next(iter([*devices.consoles, *devices.serials]), None)
    return Viewables(
        name=name,
        running=running,
        graphics=graphics,
        videos=videos,
        console_type=None if first is None else first.type,
        console_path=None if first is None else first.source_path,
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


def _port(port: int | None) -> int | None:
    return port if port and port > 0 else None  # autoport shows -1 while the domain is off
