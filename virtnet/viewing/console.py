"""`virtnet console`: the guest must run and have a serial console libvirt can stream; then a session."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from virtnet.viewing.viewables import require_running, require_serial_console, viewables
from virtnet.virt.console import ConsoleSession
from virtnet.virt.host import Host


@contextmanager
def attach(
    host: Host, name: str, output: Callable[[bytes], None], *, input_fd: int | None, force: bool = False
) -> Iterator[ConsoleSession]:
    """A console session on domain `name` (open `host` with events=True), closed on exit.

    Args:
        host: the libvirt host, opened with its event loop.
        name: the domain.
        output: called with the guest's output as it arrives.
        input_fd: the keyboard to pass on, or None to follow the output read-only.
        force: take the console over from another client holding it.

    Raises:
        DomainNotFound, DomainNotRunning, NoSerialConsole, ConsoleBusy, HypervisorError.
    """
    guest = host.lookup(name)
    found = viewables(guest)
    require_running(found)
    require_serial_console(found)
    with ConsoleSession(guest, output, input_fd=input_fd, force=force) as session:
        yield session
