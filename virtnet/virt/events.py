"""libvirt's default event loop, run on a daemon thread: what non-blocking streams need.

A connection uses the event loop that was registered when it opened, so `start()` must come before
`Host.open(..., events=True)`. Stream and handle callbacks then run on the loop's thread, while the
main thread stays free to wait and to take Ctrl-C.
"""

from __future__ import annotations

import threading

import libvirt

_lock = threading.Lock()
_started = False


def start() -> None:
    """Register libvirt's default event loop and run it on a daemon thread; idempotent."""
    global _started
    with _lock:
        if _started:
            return
        libvirt.virEventRegisterDefaultImpl()
        threading.Thread(target=_run, name="libvirt-events", daemon=True).start()
        _started = True


def _run() -> None:
    while True:
        libvirt.virEventRunDefaultImpl()
