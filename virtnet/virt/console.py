"""A guest's serial console through libvirt's stream API, as `virsh console` reaches it.

The stream is non-blocking and driven by libvirt's event loop (virt/events.py), as virsh drives it:
guest output is handed to `output` as it arrives; keyboard input, when there is an input fd, is read
by the same loop, cut at the escape key and queued until the stream can take it. Everything that
touches the stream runs under one lock, so `close()` from the caller's thread never races a
callback. The caller's thread only waits, so Ctrl-C and signals reach it.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Literal

import libvirt

from virtnet.errors import ConsoleBusy, HypervisorError
from virtnet.virt.errors import libvirt_errors, translate
from virtnet.virt.guest import Guest

ESCAPE = b"\x1d"  # Ctrl-], as virsh console and telnet use
READ_SIZE = 64 * 1024
TAKEOVER_GRACE_S = 3.0  # how long a guest may still look running after its QEMU closed the console
# Why a session ended: the user pressed the escape key, the input reached its end, the guest
# stopped (its console stream closed), or the output went away (`virtnet console --log | head`).
EndReason = Literal["escape", "input-closed", "guest-stopped", "output-closed"]

_WATCH = libvirt.VIR_STREAM_EVENT_READABLE | libvirt.VIR_STREAM_EVENT_ERROR | libvirt.VIR_STREAM_EVENT_HANGUP


class ConsoleSession:
    """One attachment to a guest's console; a context manager that always lets the console go."""

    def __init__(
        self,
        guest: Guest,
        output: Callable[[bytes], None],
        *,
        input_fd: int | None = None,
        force: bool = False,
    ) -> None:
        self.guest = guest
        self.error: HypervisorError | None = None  # the stream's own error, when it ended with one
        self._output = output
        self._input_fd = input_fd
        self._force = force
        self._stream: libvirt.virStream | None = None
        self._watch: int | None = None
        self._pending = bytearray()
        self._lock = threading.Lock()
        self._ended = threading.Event()
        self._reason: EndReason | Literal["stream-closed"] | None = None
        self._closed = False

    def __enter__(self) -> ConsoleSession:
        self.open()
        return self

    def __exit__(self, *_exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def open(self) -> None:
        stream = self.guest.open_console(force=self._force)
        try:
            with self._lock, libvirt_errors(self.guest.uri):
                self._stream = stream
                stream.eventAddCallback(_WATCH, self._on_stream, None)
                if self._input_fd is not None:
                    self._watch = libvirt.virEventAddHandle(
                        self._input_fd, libvirt.VIR_EVENT_HANDLE_READABLE, self._on_input, None
                    )
        except BaseException:
            self.close()
            raise

    def wait(self) -> EndReason:
        """Block until the session ends; ConsoleBusy when another client took the console over.

        Short waits keep the caller's thread open to signals (Ctrl-C while following a console).
        """
        while not self._ended.wait(0.25):
            pass
        assert self._reason is not None
        if self._reason != "stream-closed":
            return self._reason
        # QEMU exiting closes the stream cleanly (EOF); a client forcing the console away aborts it
        # with an error. libvirt may still call the guest running for a moment after either.
        if self.error is not None and self._still_running(TAKEOVER_GRACE_S):
            raise ConsoleBusy(
                f"the console of {self.guest.name!r} closed while the domain runs: another client took "
                f"it over (virsh console --force, virtnet console --force); libvirt said: {self.error}",
                uri=self.guest.uri,
            )
        return "guest-stopped"

    def _still_running(self, grace_s: float) -> bool:
        deadline = time.monotonic() + grace_s
        while self.guest.is_active:
            if time.monotonic() >= deadline:
                return True
            time.sleep(0.1)
        return False

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._watch is not None:
                libvirt.virEventRemoveHandle(self._watch)
            if self._stream is not None:
                # As virsh does: the stream may already be gone with its guest; nothing left to report.
                with contextlib.suppress(libvirt.libvirtError):
                    self._stream.eventRemoveCallback()
                with contextlib.suppress(libvirt.libvirtError):
                    self._stream.abort()

    # ---- on the event loop's thread -------------------------------------------------------------

    def _on_stream(self, _stream: libvirt.virStream, events: int, _opaque: object) -> None:
        with self._lock:
            if self._closed or self._stream is None:
                return
            if events & libvirt.VIR_STREAM_EVENT_READABLE:
                self._receive()
            if events & libvirt.VIR_STREAM_EVENT_WRITABLE:
                self._flush()
            if events & (libvirt.VIR_STREAM_EVENT_ERROR | libvirt.VIR_STREAM_EVENT_HANGUP):
                self._end("stream-closed")

    def _on_input(self, _watch: int, fd: int, _events: int, _opaque: object) -> None:
        with self._lock:
            if self._closed:
                return
            try:
                data = os.read(fd, READ_SIZE)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self._end("input-closed")
                return
            before, escape, _after = data.partition(ESCAPE)
            self._pending += before
            self._flush()
            if escape:
                self._end("escape")

    def _receive(self) -> None:
        assert self._stream is not None
        while self._reason is None:
            data = self._call(self._stream.recv, READ_SIZE)
            if isinstance(data, int):  # -2: nothing more for now (or an error already recorded)
                return
            if not data:
                self._end("stream-closed")
                return
            assert isinstance(data, bytes)
            try:
                self._output(data)
            except OSError:  # the reader went away, e.g. `virtnet console --log | head`
                self._end("output-closed")

    def _flush(self) -> None:
        assert self._stream is not None
        while self._pending and self._reason is None:
            sent = self._call(self._stream.send, bytes(self._pending))
            if not isinstance(sent, int) or sent < 0:
                break  # -2: the stream is full; WRITABLE calls back
            del self._pending[:sent]
        writable = libvirt.VIR_STREAM_EVENT_WRITABLE if self._pending else 0
        if self._reason is None:
            self._call(self._stream.eventUpdateCallback, _WATCH | writable)

    def _call(self, method: Callable[..., object], *args: object) -> object:
        """A stream call whose libvirt error ends the session (kept for the caller) instead of raising."""
        try:
            return method(*args)
        except libvirt.libvirtError as err:
            self.error = translate(err, self.guest.uri)
            self._end("stream-closed")
            return -1

    def _end(self, reason: EndReason | Literal["stream-closed"]) -> None:
        if self._reason is None:
            self._reason = reason
        self._ended.set()
