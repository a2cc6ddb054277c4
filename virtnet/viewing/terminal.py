"""The local terminal in raw mode for an interactive console, and always put back."""

from __future__ import annotations

import os
import signal
import termios
import tty
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


@contextmanager
def raw_mode(fd: int) -> Iterator[None]:
    """Keys reach the guest as typed (Ctrl-C too); the saved settings come back however the block ends.

    SIGTERM and SIGHUP end the block with SystemExit meanwhile: their default action would kill the
    process without restoring the terminal. A non-terminal fd (a pipe) is left as it is.
    """
    if not os.isatty(fd):
        yield
        return
    saved = termios.tcgetattr(fd)
    handlers = {sig: signal.signal(sig, _exit) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        tty.setraw(fd, termios.TCSADRAIN)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


def _exit(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)
