"""Opening a guest's graphical console with virt-viewer or virt-manager, whichever is installed.

Both viewers connect to the VNC or SPICE server themselves, at the address in the domain's XML, and
each has its own rule for a server listening on loopback (the spec's default): virt-viewer connects
to it directly (right when libvirtd runs on this machine) and tunnels over ssh; virt-manager 4.1
tunnels over ssh but refuses it outright over any other transport, qemu+tcp and qemu+unix included
("Guest is on a remote host with transport 'tcp' but is only configured to listen locally"). Those
rules are checked here, so a refusal is one line with its fix instead of an error window.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from virtnet.errors import InputError, ViewerFailed, ViewerNotFound, ViewerUnusable
from virtnet.viewing.viewables import GraphicsEndpoint, require_graphics, viewables
from virtnet.virt.host import Host, is_local_uri

ViewerName = Literal["virt-viewer", "virt-manager"]
VIEWERS: tuple[ViewerName, ...] = ("virt-viewer", "virt-manager")  # in order of preference


@dataclass(frozen=True)
class Launch:
    viewer: ViewerName
    argv: list[str]


@dataclass(frozen=True)
class Viewing:
    """What `virtnet view` opens: the viewer's command, the console it shows, whether the guest runs."""

    launch: Launch
    graphics: GraphicsEndpoint
    running: bool


def prepare(host: Host, name: str, preference: str = "auto") -> Viewing:
    """Choose and check the viewer for domain `name`'s graphical console; run it with `run(...launch)`.

    Args:
        preference: auto (virt-viewer, else virt-manager), virt-viewer or virt-manager.

    Raises:
        DomainNotFound, NoDisplay, ViewerNotFound, ViewerUnusable, InputError (an unknown viewer).
    """
    found = viewables(host.lookup(name))
    graphics = require_graphics(found)
    return Viewing(choose(preference, host.uri, name, graphics), graphics, found.running)


def choose(
    preference: str,
    uri: str,
    name: str,
    graphics: GraphicsEndpoint,
    *,
    which: Callable[[str], str | None] = shutil.which,
    environ: Mapping[str, str] = os.environ,
) -> Launch:
    """The viewer to run and its argument list; a typed error naming the fix when none can work."""
    candidates = _candidates(preference)
    if not (environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY")):
        raise ViewerUnusable(
            "no graphical display ($DISPLAY is not set); run it in a desktop session or with ssh -X, "
            f"or look with `virtnet screenshot {name} FILE.png` or `virtnet console {name}`"
        )
    installed = [viewer for viewer in candidates if which(viewer)]
    if not installed:
        missing = (
            f"neither {' nor '.join(candidates)} is" if len(candidates) > 1 else f"{candidates[0]} is not"
        )
        raise ViewerNotFound(f"{missing} installed; install it with `apt install {candidates[0]}`")
    problems = {viewer: unreachable(viewer, uri, graphics) for viewer in installed}
    usable = [viewer for viewer in installed if problems[viewer] is None]
    if not usable:
        raise ViewerUnusable(str(problems[installed[0]]))
    return Launch(usable[0], argv(usable[0], uri, name))


def argv(viewer: ViewerName, uri: str, name: str) -> list[str]:
    if viewer == "virt-viewer":
        return ["virt-viewer", "--connect", uri, "--wait", name]  # --wait: until the guest runs
    # --no-fork: stay in the foreground like virt-viewer, so `view` returns when the window closes.
    return ["virt-manager", "--connect", uri, "--no-fork", "--show-domain-console", name]


def unreachable(viewer: ViewerName, uri: str, graphics: GraphicsEndpoint) -> str | None:
    """Why `viewer` cannot reach the console's server through `uri`, or None when it can."""
    if not graphics.listens_on_loopback:
        return None
    parts = urlsplit(uri)
    transport = parts.scheme.partition("+")[2] or ("tls" if parts.hostname else "")
    if transport == "ssh":
        return None  # both viewers tunnel through the ssh connection
    if viewer == "virt-manager" and transport:
        return (
            f"virt-manager refuses a console that listens on {graphics.listen} over a qemu+{transport} "
            "connection; use virt-viewer (`apt install virt-viewer` if it is missing), a local URI "
            "(qemu:///system; a lab host's local URI is in `virtnet lab status`), or qemu+ssh://"
        )
    if not is_local_uri(uri):
        return (
            f"the console listens on {graphics.listen} of {parts.hostname}, which this machine cannot "
            "reach; connect with qemu+ssh:// (the viewer tunnels), or set graphics.listen to an "
            "address of that host"
        )
    return None


def run(launch: Launch, *, runner: Callable[[Sequence[str]], int] | None = None) -> None:
    """Run the viewer in the foreground until its window closes."""
    code = (runner or _run)(launch.argv)
    if code != 0:
        raise ViewerFailed(f"{launch.viewer} exited with status {code}; its messages are above")


def _candidates(preference: str) -> list[ViewerName]:
    if preference == "auto":
        return list(VIEWERS)
    for viewer in VIEWERS:
        if preference == viewer:
            return [viewer]
    raise InputError(f"--viewer {preference!r} is unknown; use auto, virt-viewer or virt-manager")


def _run(args: Sequence[str]) -> int:
    return subprocess.run(list(args), check=False).returncode
