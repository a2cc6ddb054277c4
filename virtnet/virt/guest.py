"""A libvirt domain, with verbs for what virtnet does to it."""

from __future__ import annotations

import time

import libvirt

from virtnet.errors import ConsoleBusy, InvalidDomainState
from virtnet.virt.errors import libvirt_errors, translate
from virtnet.virt.streams import aborted_on_error, receive_all

SCREENSHOT_CHUNK = 256 * 1024

# virsh's names for domain states, so `virtnet list` and `virsh list` read alike.
STATE_NAMES = {
    libvirt.VIR_DOMAIN_NOSTATE: "no state",
    libvirt.VIR_DOMAIN_RUNNING: "running",
    libvirt.VIR_DOMAIN_BLOCKED: "idle",
    libvirt.VIR_DOMAIN_PAUSED: "paused",
    libvirt.VIR_DOMAIN_SHUTDOWN: "in shutdown",
    libvirt.VIR_DOMAIN_SHUTOFF: "shut off",
    libvirt.VIR_DOMAIN_CRASHED: "crashed",
    libvirt.VIR_DOMAIN_PMSUSPENDED: "pmsuspended",
}


class Guest:
    def __init__(self, dom: libvirt.virDomain, uri: str) -> None:
        self._dom = dom
        self.uri = uri

    @property
    def domain(self) -> libvirt.virDomain:
        """The libvirt object, for the other modules of virtnet.virt."""
        return self._dom

    @property
    def name(self) -> str:
        return str(self._dom.name())

    @property
    def uuid(self) -> str:
        with libvirt_errors(self.uri):
            return str(self._dom.UUIDString())

    @property
    def id(self) -> int | None:
        with libvirt_errors(self.uri):
            dom_id = self._dom.ID()
        return dom_id if dom_id >= 0 else None

    @property
    def state(self) -> str:
        with libvirt_errors(self.uri):
            state, _reason = self._dom.state()
        return STATE_NAMES.get(state, "unknown")

    @property
    def is_active(self) -> bool:
        with libvirt_errors(self.uri):
            return bool(self._dom.isActive())

    @property
    def is_persistent(self) -> bool:
        with libvirt_errors(self.uri):
            return bool(self._dom.isPersistent())

    def xml(self, *, inactive: bool = False, secure: bool = False, migratable: bool = False) -> str:
        """The domain XML; `migratable` leaves out what only this host's libvirt may write."""
        flags = (
            (libvirt.VIR_DOMAIN_XML_INACTIVE if inactive else 0)
            | (libvirt.VIR_DOMAIN_XML_SECURE if secure else 0)
            | (libvirt.VIR_DOMAIN_XML_MIGRATABLE if migratable else 0)
        )
        with libvirt_errors(self.uri):
            return str(self._dom.XMLDesc(flags))

    def metadata(self, namespace: str) -> str | None:
        """Our element in <metadata> under `namespace`, or None when there is none."""
        try:
            return str(self._dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, namespace, 0))
        except libvirt.libvirtError as err:
            if err.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN_METADATA:
                return None
            raise translate(err, self.uri) from None

    def set_metadata(self, namespace: str, prefix: str, xml: str) -> None:
        """Store an element in <metadata>, in the running domain and in its definition."""
        flags = libvirt.VIR_DOMAIN_AFFECT_CONFIG | (libvirt.VIR_DOMAIN_AFFECT_LIVE if self.is_active else 0)
        with libvirt_errors(self.uri):
            self._dom.setMetadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, xml, prefix, namespace, flags)

    def start(self) -> None:
        with libvirt_errors(self.uri):
            self._dom.create()

    def shutdown(self, timeout_s: float) -> bool:
        """Ask the guest OS to power off (ACPI) and wait up to timeout_s; True when it did."""
        self._require_active()
        with libvirt_errors(self.uri):
            self._dom.shutdown()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.is_active:
                return True
            time.sleep(0.2)
        return not self.is_active

    def destroy(self) -> None:
        """Power off at once, like pulling the plug."""
        self._require_active()
        with libvirt_errors(self.uri):
            self._dom.destroy()

    def undefine(self) -> None:
        """Remove the definition with its managed save, snapshot and checkpoint metadata."""
        flags = libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
        try:
            self._dom.undefineFlags(flags | libvirt.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA)
            return
        except libvirt.libvirtError as err:
            if err.get_error_code() != libvirt.VIR_ERR_INVALID_ARG:
                raise translate(err, self.uri) from None
        # Drivers without checkpoints (the test driver) refuse that flag, as virsh finds too.
        with libvirt_errors(self.uri):
            self._dom.undefineFlags(flags)

    def screenshot(self, screen: int = 0) -> tuple[str, bytes]:
        """What the display shows, as QEMU dumps it: (the MIME type libvirt names, the image bytes)."""
        with libvirt_errors(self.uri), aborted_on_error(self._dom.connect().newStream(0)) as stream:
            mime = str(self._dom.screenshot(stream, screen, 0))
            return mime, receive_all(stream, SCREENSHOT_CHUNK)

    def open_console(self, *, force: bool = False) -> libvirt.virStream:
        """A non-blocking stream on the first serial console; `force` takes it from another client.

        The connection must have been opened with events=True: the stream is driven by the event loop.
        """
        with libvirt_errors(self.uri):
            stream = self._dom.connect().newStream(libvirt.VIR_STREAM_NONBLOCK)
        try:
            self._dom.openConsole(None, stream, libvirt.VIR_DOMAIN_CONSOLE_FORCE if force else 0)
        except libvirt.libvirtError as err:
            failure = translate(err, self.uri)
            if isinstance(failure, ConsoleBusy):
                raise ConsoleBusy(
                    f"another client (virsh console, virtnet console) holds the console of {self.name!r}; "
                    "close it, or take the console over with --force",
                    code=failure.code,
                    uri=self.uri,
                ) from None
            raise failure from None
        return stream

    def _require_active(self) -> None:
        if not self.is_active:
            raise InvalidDomainState(f"domain {self.name!r} is not running", uri=self.uri)
