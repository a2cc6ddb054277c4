"""`virtnet wait`: poll a guest until it is ready for what comes next (agent, ssh or cloud-init).

Each probe asks the guest itself, the way the next step will use it: the agent answers guest-ping;
sshd sends its banner on the address `virtnet ssh` would use; cloud-init's own `status --wait`,
run through the agent, returns. On timeout the error says what was last seen and carries the
console's last lines.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from virtnet.errors import AgentNotResponding, GuestCommandTimeout, GuestNotReady, NoWayIn
from virtnet.spec.models import VMSpec
from virtnet.virt.agent import Agent, agent_of
from virtnet.virt.guest import Guest
from virtnet.virt.host import Host

Readiness = Literal["agent", "ssh", "cloud-init"]
READINESS: tuple[Readiness, ...] = ("agent", "ssh", "cloud-init")
POLL_INTERVAL_S = 0.5  # what `virtnet wait` may add to the moment the guest was ready
CONSOLE_LINES = 10


@dataclass(frozen=True)
class Ready:
    what: Readiness
    elapsed_s: float
    detail: str  # what answered, e.g. "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3 on 127.0.0.1:10122"


Progress = Callable[[str], None]


def wait_ready(
    host: Host,
    guest: Guest,
    spec: VMSpec | None,
    what: Readiness,
    *,
    timeout_s: float,
    progress: Progress = lambda _seen: None,
) -> Ready:
    """Return once `guest` is ready for `what`; GuestNotReady after timeout_s."""
    started = time.monotonic()
    deadline = started + timeout_s
    if what == "ssh":
        detail = _wait_ssh(host, guest, spec, deadline, progress)
    else:
        agent = agent_of(guest)
        detail = _wait_agent(agent, spec, deadline, progress)
        if what == "cloud-init":
            detail = _wait_cloud_init(agent, spec, deadline, progress)
    return Ready(what, time.monotonic() - started, detail)


class _Watch:
    """The last thing seen, reported to `progress` as it changes, and the timeout error."""

    def __init__(self, guest: Guest, spec: VMSpec | None, what: str, deadline: float, progress: Progress):
        self.guest, self.spec, self.what, self.deadline, self.progress = guest, spec, what, deadline, progress
        self.seen = "nothing yet"

    def saw(self, seen: str) -> None:
        if seen != self.seen:
            self.seen = seen
            self.progress(seen)

    def expired(self) -> bool:
        return time.monotonic() >= self.deadline

    def timeout(self, started: float) -> GuestNotReady:
        waited = time.monotonic() - started
        err = GuestNotReady(
            f"{self.guest.name!r} is not ready for {self.what} after {waited:.0f} s; last seen: {self.seen}"
        )
        err.details = console_tail(self.spec)
        return err


def _wait_agent(agent: Agent, spec: VMSpec | None, deadline: float, progress: Progress) -> str:
    watch = _Watch(agent.guest, spec, "the guest agent", deadline, progress)
    started = time.monotonic()
    while True:
        try:
            agent.ping(timeout_s=2)
            return "the guest agent answers guest-ping"
        except AgentNotResponding as err:
            watch.saw(f"agent not answering ({_reason(err)})")
        if not agent.guest.is_active:
            raise GuestNotReady(f"{agent.guest.name!r} stopped while waiting for its guest agent")
        if watch.expired():
            raise watch.timeout(started)
        time.sleep(POLL_INTERVAL_S)


def _wait_cloud_init(agent: Agent, spec: VMSpec | None, deadline: float, progress: Progress) -> str:
    """cloud-init's own verdict: `cloud-init status --wait` exits when it has finished (or failed)."""
    progress("waiting for cloud-init (cloud-init status --wait)")
    started = time.monotonic()
    try:
        done = agent.start(["cloud-init", "status", "--wait", "--long"]).wait(max(1.0, deadline - started))
    except GuestCommandTimeout:
        watch = _Watch(agent.guest, spec, "cloud-init", deadline, progress)
        watch.seen = "cloud-init still running"
        raise watch.timeout(started) from None
    text = done.stdout.decode(errors="replace")
    status = next(
        (line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("status:")), ""
    )
    if done.exit_code != 0 or status != "done":
        err = GuestNotReady(
            f"cloud-init in {agent.guest.name!r} finished with status {status or 'unknown'} "
            f"(exit {done.exit_code}); see `virtnet exec {agent.guest.name} -- cloud-init status --long`"
        )
        err.details = tuple(line for line in text.splitlines() if line.strip())
        raise err
    return "cloud-init status: done"


def _wait_ssh(host: Host, guest: Guest, spec: VMSpec | None, deadline: float, progress: Progress) -> str:
    from virtnet.sshlogin import find_target

    watch = _Watch(guest, spec, "ssh", deadline, progress)
    started = time.monotonic()
    while True:
        try:
            target = find_target(host, guest, spec, probe=False)
            banner = ssh_banner(target.address, target.port, timeout_s=2.0)
            if banner:
                return f"{banner} on {target.address}:{target.port}"
            watch.saw(f"no ssh banner on {target.address}:{target.port}")
        except NoWayIn as err:
            watch.saw(str(err).split(";")[0])
        except OSError as err:
            watch.saw(f"{err.strerror or err} on {target.address}:{target.port}")
        except AgentNotResponding:
            watch.saw("no address yet (the guest agent does not answer)")
        if not guest.is_active:
            raise GuestNotReady(f"{guest.name!r} stopped while waiting for ssh")
        if watch.expired():
            raise watch.timeout(started)
        time.sleep(POLL_INTERVAL_S)


def ssh_banner(address: str, port: int, *, timeout_s: float) -> str | None:
    """sshd's identification line (RFC 4253 4.2), or None when something else or nothing answers."""
    with socket.create_connection((address, port), timeout=timeout_s) as conn:
        conn.settimeout(timeout_s)
        try:
            data = conn.recv(256)
        except TimeoutError:
            return None
    line = data.split(b"\r\n", 1)[0].decode(errors="replace")
    return line if line.startswith("SSH-") else None


def console_tail(spec: VMSpec | None, lines: int = CONSOLE_LINES) -> tuple[str, ...]:
    """The console log's last lines, when the spec writes one that this machine can read."""
    log = spec.console.log if spec is not None else None
    if log is None:
        return ("(no console log: set console.log in the spec to see the guest's last lines here)",)
    try:
        with Path(log).open("rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 64 * 1024))
            text = f.read().decode(errors="replace")
    except OSError as err:
        return (f"(console log {log} is not readable here: {err.strerror})",)
    tail = [line.rstrip("\r") for line in text.splitlines() if line.strip()][-lines:]
    return (f"last console lines ({log}):", *tail)


def _reason(err: Exception) -> str:
    text = str(err)
    return text.split("(", 1)[1].split(")", 1)[0] if "(" in text else text
