"""A connection to one libvirt host: the only way virtnet reaches libvirtd."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from ipaddress import ip_address
from types import TracebackType
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import libvirt

from virtnet.errors import ConnectionFailed, DomainNotFound
from virtnet.virt.errors import libvirt_errors, translate
from virtnet.virt.guest import Guest

if TYPE_CHECKING:
    from virtnet import socketdir

DEFAULT_URI = "qemu:///system"
TLS_FIX = (
    "the certificates do not match: the client's CA (cacert.pem in the URI's pkipath, else "
    "/etc/pki/CA/cacert.pem) must have signed the server's certificate and the server's CA the client's"
)


def default_uri() -> str:
    """As virsh: LIBVIRT_DEFAULT_URI, else the system QEMU driver."""
    return os.environ.get("LIBVIRT_DEFAULT_URI") or DEFAULT_URI


class Host:
    def __init__(self, conn: libvirt.virConnect, uri: str) -> None:
        self.conn = conn
        self.uri = uri

    @classmethod
    def open(
        cls,
        uri: str | None = None,
        *,
        events: bool = False,
        fix: str = "check that libvirtd runs there or pass another URI with -c",
    ) -> Host:
        """Connect to libvirtd; `events` runs libvirt's event loop first (a console stream needs it)."""
        uri = uri or default_uri()
        if events:
            from virtnet.virt import events as event_loop

            event_loop.start()
        try:
            conn = libvirt.open(uri)
        except libvirt.libvirtError as err:
            failure = translate(err, uri)
            if "certificate" in (err.get_error_message() or "").lower():
                fix = TLS_FIX  # libvirtd answered: starting it is not the fix
            raise ConnectionFailed(
                f"cannot connect to libvirt at {uri}: {err.get_error_message()}; {fix}",
                code=failure.code,
                uri=uri,
            ) from None
        return cls(conn, uri)

    def close(self) -> None:
        with contextlib.suppress(libvirt.libvirtError):  # closing a dead connection is no error
            self.conn.close()

    def __enter__(self) -> Host:
        return self

    def __exit__(self, *_exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    @property
    def is_local(self) -> bool:
        """Whether libvirtd runs on this machine (no host in the URI, or a loopback address)."""
        return is_local_uri(self.uri)

    @property
    def runs_qemu_here(self) -> bool:
        """Whether this machine's CPUs and hugepages are the guests' (a local QEMU driver)."""
        return self.is_local and self.driver == "QEMU"

    @property
    def has_vhost_net(self) -> bool | None:
        """Whether QEMU here can use the kernel's vhost-net; None for a host that is not this machine.

        libvirt reports no such fact, so only a local QEMU host can be asked (as Nova does).
        """
        if not self.runs_qemu_here:
            return None
        return os.path.exists("/dev/vhost-net")

    @property
    def driver(self) -> str:
        """'QEMU' or 'TEST': which libvirt driver answers."""
        with libvirt_errors(self.uri):
            return str(self.conn.getType())

    @property
    def hypervisor_version(self) -> tuple[int, int, int] | None:
        """QEMU's version for the QEMU driver (None where the driver has no such number)."""
        with libvirt_errors(self.uri):
            number = self.conn.getVersion()
        return _version_triple(number) if number else None

    @property
    def libvirt_version(self) -> tuple[int, int, int]:
        with libvirt_errors(self.uri):
            return _version_triple(self.conn.getLibVersion())

    def find(self, name: str) -> Guest | None:
        return self._find(self.conn.lookupByName, name)

    def lookup(self, name: str) -> Guest:
        guest = self.find(name)
        if guest is None:
            raise DomainNotFound(f"no domain {name!r} on {self.uri}; see `virtnet list --all`", uri=self.uri)
        return guest

    def find_uuid(self, uuid: str) -> Guest | None:
        return self._find(self.conn.lookupByUUIDString, uuid)

    def _find(self, lookup: Callable[[str], libvirt.virDomain], key: str) -> Guest | None:
        try:
            return Guest(lookup(key), self.uri)
        except libvirt.libvirtError as err:
            if err.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return None
            raise translate(err, self.uri) from None

    def guests(self) -> list[Guest]:
        """Every domain, running or defined, sorted by name."""
        with libvirt_errors(self.uri):
            doms = self.conn.listAllDomains(0)
        return sorted((Guest(dom, self.uri) for dom in doms), key=lambda g: g.name)

    def define(self, xml: str) -> Guest:
        """Define (or redefine) a persistent domain; libvirt validates the XML against its schema."""
        with libvirt_errors(self.uri):
            dom = self.conn.defineXMLFlags(xml, libvirt.VIR_DOMAIN_DEFINE_VALIDATE)
        return Guest(dom, self.uri)

    def free_hugepages(self, page_kib: int) -> int:
        """Free pages of that size on the host, summed over its NUMA cells, as libvirt reads them."""
        with libvirt_errors(self.uri):
            cells = self.conn.getInfo()[4] or 1
            free = self.conn.getFreePages([page_kib], 0, cells, 0)
        return sum(int(sizes.get(page_kib, 0)) for sizes in free.values())

    def online_cpus(self) -> frozenset[int]:
        with libvirt_errors(self.uri):
            _count, online, _n_online = self.conn.getCPUMap(0)
        return frozenset(cpu for cpu, up in enumerate(online) if up)

    def compare_cpu(self, cpu_xml: str, *, virt_type: str, arch: str, machine: str | None) -> None:
        """Raise with libvirt's reason when this host's hypervisor cannot provide that guest CPU."""
        with libvirt_errors(self.uri):
            self.conn.compareHypervisorCPU(
                None, arch, machine, virt_type, cpu_xml, libvirt.VIR_CONNECT_COMPARE_CPU_FAIL_INCOMPATIBLE
            )

    def qemu_owner(self, virt_type: str) -> socketdir.QemuOwner | None:
        """The uid:gid libvirt runs QEMU as (the DAC base label), or None when it does not say."""
        from virtnet.domxml.capabilities import Capabilities, dac_label
        from virtnet.socketdir import QemuOwner

        label = dac_label(Capabilities.read_only(self.capabilities_xml()), virt_type)
        if label is None:
            return None
        uid, _, gid = label.partition(":")
        try:
            return QemuOwner(int(uid.lstrip("+")), int(gid.lstrip("+")))
        except ValueError:
            return None

    def qemu_runs_as(self) -> socketdir.QemuOwner | None:
        """Whom QEMU runs as here: the kvm domain type's DAC label, else plain qemu's (TCG-only hosts)."""
        return self.qemu_owner("kvm") or self.qemu_owner("qemu")

    def capabilities_xml(self) -> str:
        with libvirt_errors(self.uri):
            return str(self.conn.getCapabilities())

    def domain_capabilities_xml(self, virt_type: str) -> str | None:
        """The domain capabilities for a virt type, or None where the host cannot run that type."""
        try:
            return str(self.conn.getDomainCapabilities(None, "x86_64", None, virt_type, 0))
        except libvirt.libvirtError as err:
            if err.get_error_code() in (
                libvirt.VIR_ERR_NO_SUPPORT,
                libvirt.VIR_ERR_INVALID_ARG,
                libvirt.VIR_ERR_CONFIG_UNSUPPORTED,
                libvirt.VIR_ERR_OPERATION_INVALID,
            ):
                return None
            raise translate(err, self.uri) from None


def is_local_uri(uri: str) -> bool:
    """Whether a URI names this machine: no host in it, or a loopback address."""
    hostname = urlsplit(uri).hostname
    if not hostname or hostname == "localhost":
        return True
    try:
        return ip_address(hostname).is_loopback
    except ValueError:
        return False


def _version_triple(number: int) -> tuple[int, int, int]:
    return number // 1_000_000, number // 1000 % 1000, number % 1000
