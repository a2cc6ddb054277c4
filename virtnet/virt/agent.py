"""The QEMU guest agent through libvirt: ping, OS facts, addresses, and commands run in the guest.

Everything goes through libvirtd (virDomainQemuAgentCommand, virDomainGetGuestInfo,
virDomainInterfaceAddresses), so it works on a remote host as on this one, and libvirt serialises
the agent's one channel between its clients (virsh qemu-agent-command, virt-manager, virtnet).
"""

from __future__ import annotations

import base64
import contextlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import libvirt
import libvirt_qemu

from virtnet.errors import (
    AgentNotResponding,
    DomainNotRunning,
    GuestCommandFailed,
    GuestCommandTimeout,
    NoAgentChannel,
)
from virtnet.virt.errors import libvirt_errors, translate
from virtnet.virt.guest import Guest

AGENT_CHANNEL = "org.qemu.guest_agent.0"
# qemu-guest-agent keeps at most this much of a command's output (GUEST_EXEC_MAX_OUTPUT).
MAX_OUTPUT_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class GuestFacts:
    """What the agent says about the guest OS (guest-get-osinfo, guest-get-host-name)."""

    os_name: str | None
    os_version: str | None
    hostname: str | None


@dataclass(frozen=True)
class GuestNic:
    """One guest interface as the agent reports it: name, MAC and addresses ('10.77.9.1/24')."""

    name: str
    mac: str | None
    addresses: tuple[str, ...]


@dataclass(frozen=True)
class Completed:
    """A command that ran to its end in the guest."""

    exit_code: int  # the status, or 128+N when signal N ended it (as a shell reports it)
    stdout: bytes
    stderr: bytes
    truncated: bool = False


@dataclass
class Running:
    """A command started with guest-exec; poll() until it has completed."""

    agent: Agent
    pid: int
    argv: tuple[str, ...]
    started: float = field(default_factory=time.monotonic)

    def poll(self) -> Completed | None:
        status = self.agent.command("guest-exec-status", {"pid": self.pid})
        if not status.get("exited"):
            return None
        signal = status.get("signal")
        code = 128 + int(signal) if signal is not None else int(status.get("exitcode", 0))
        return Completed(
            exit_code=code,
            stdout=base64.b64decode(status.get("out-data", "")),
            stderr=base64.b64decode(status.get("err-data", "")),
            truncated=bool(status.get("out-truncated") or status.get("err-truncated")),
        )

    def wait(self, timeout_s: float | None) -> Completed:
        """Poll until the command ends; on timeout kill it in the guest and raise GuestCommandTimeout."""
        interval = 0.01
        try:
            while True:
                done = self.poll()
                if done is not None:
                    return done
                if timeout_s is not None and time.monotonic() - self.started > timeout_s:
                    self.kill()
                    raise GuestCommandTimeout(
                        f"{self.argv[0]} did not finish within {timeout_s:g} s in "
                        f"{self.agent.guest.name!r}; it was killed (allow longer with --timeout)"
                    )
                time.sleep(interval)
                interval = min(interval * 2, 0.2)  # quick commands return fast; long ones cost few calls
        except KeyboardInterrupt:
            self.kill()  # Ctrl-C ends the command in the guest too, as it would over ssh
            raise

    def kill(self, signal: str = "KILL") -> None:
        """Send the command a signal, SIGKILL by default (the agent has no verb: the guest's kill does it)."""
        # A guest that is gone or has no kill leaves nothing more to do from here.
        with contextlib.suppress(AgentNotResponding, GuestCommandFailed):
            self.agent.command("guest-exec", {"path": "kill", "arg": [f"-{signal}", str(self.pid)]})


class Agent:
    """The guest agent of one running domain."""

    def __init__(self, guest: Guest) -> None:
        self.guest = guest

    @staticmethod
    def configured(guest: Guest) -> bool:
        """Whether the domain has the agent's virtio-serial channel."""
        from virtnet.domxml.domain import Domain

        devices = Domain.parse(guest.xml()).devices
        channels = devices.channels if devices is not None else []
        return any(channel.target_name == AGENT_CHANNEL for channel in channels)

    def require(self) -> Agent:
        """Self, once the domain runs and has the channel; else the error that says what to do."""
        name = self.guest.name
        if not self.guest.is_active:
            raise DomainNotRunning(f"domain {name!r} is not running; start it with `virtnet start {name}`")
        if not self.configured(self.guest):
            raise NoAgentChannel(
                f"domain {name!r} has no guest agent channel (agent = false in its spec); "
                "set agent = true and redefine it, or use `virtnet ssh`"
            )
        return self

    def command(self, execute: str, arguments: dict[str, Any] | None = None, timeout_s: int = 10) -> Any:
        """One agent command; its 'return' value."""
        request: dict[str, Any] = {"execute": execute}
        if arguments:
            request["arguments"] = arguments
        try:
            reply = libvirt_qemu.qemuAgentCommand(self.guest.domain, json.dumps(request), timeout_s, 0)
        except libvirt.libvirtError as err:
            raise self._translate(err) from None
        return json.loads(reply).get("return")

    def ping(self, timeout_s: int = 2) -> None:
        self.command("guest-ping", timeout_s=timeout_s)

    def facts(self) -> GuestFacts:
        flags = libvirt.VIR_DOMAIN_GUEST_INFO_OS | libvirt.VIR_DOMAIN_GUEST_INFO_HOSTNAME
        try:
            info = self.guest.domain.guestInfo(flags, 0)
        except libvirt.libvirtError as err:
            raise self._translate(err) from None
        # PRETTY_NAME carries the version ("Debian GNU/Linux 12 (bookworm)"); not every OS sets it.
        name = info.get("os.pretty-name") or " ".join(
            part for part in (info.get("os.name"), info.get("os.version")) if part
        )
        return GuestFacts(
            os_name=name or None,
            os_version=info.get("os.version"),
            hostname=info.get("hostname"),
        )

    def nics(self) -> list[GuestNic]:
        try:
            found = self.guest.domain.interfaceAddresses(libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT, 0)
        except libvirt.libvirtError as err:
            raise self._translate(err) from None
        return [
            GuestNic(
                name=name,
                mac=(info.get("hwaddr") or "").lower() or None,
                addresses=tuple(f"{a['addr']}/{a['prefix']}" for a in info.get("addrs") or []),
            )
            for name, info in sorted(found.items())
        ]

    def start(self, argv: Sequence[str], *, stdin: bytes | None = None) -> Running:
        """Start argv[0] with argv[1:] as its arguments (no shell), capturing its output."""
        arguments: dict[str, Any] = {"path": argv[0], "arg": list(argv[1:]), "capture-output": True}
        if stdin is not None:
            arguments["input-data"] = base64.b64encode(stdin).decode()
        pid = self.command("guest-exec", arguments)["pid"]
        return Running(self, int(pid), tuple(argv))

    def run(
        self, argv: Sequence[str], *, timeout_s: float | None = None, stdin: bytes | None = None
    ) -> Completed:
        return self.start(argv, stdin=stdin).wait(timeout_s)

    def _translate(self, err: libvirt.libvirtError) -> Exception:
        code = err.get_error_code()
        message = (err.get_error_message() or str(err)).strip()
        name = self.guest.name
        if code == libvirt.VIR_ERR_ARGUMENT_UNSUPPORTED and "not configured" in message:
            return NoAgentChannel(
                f"domain {name!r} has no guest agent channel; set agent = true in its spec and redefine it"
            )
        if code in (libvirt.VIR_ERR_AGENT_UNRESPONSIVE, libvirt.VIR_ERR_AGENT_UNSYNCED):
            return AgentNotResponding(
                f"the guest agent of {name!r} does not answer ({message}); a booting guest: "
                f"`virtnet wait {name} --for agent`; else install and start qemu-guest-agent in the guest",
                code=code,
                uri=self.guest.uri,
            )
        if code == libvirt.VIR_ERR_OPERATION_INVALID and "not running" in message:
            return DomainNotRunning(f"domain {name!r} is not running; start it with `virtnet start {name}`")
        if "guest-exec" in message and "Failed to execute" in message:
            detail = message.split("error was", 1)[-1].strip(" '\u2018\u2019")
            return GuestCommandFailed(f"the guest cannot run the command: {detail}")
        return translate(err, self.guest.uri)


def agent_of(guest: Guest) -> Agent:
    """The agent of a running domain that has the channel (else the error with the fix)."""
    with libvirt_errors(guest.uri):
        return Agent(guest).require()
