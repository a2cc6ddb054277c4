"""`virtnet ssh`: the way into a guest, and the system ssh with the guest's host keys pinned.

The way in is, in order: a user-NIC forward to guest port 22 (the walkthrough's
`ssh -p 10122 localhost`), else a guest address the agent reports that answers on port 22 from
here. Host keys come from the guest itself (through the agent, or the block cloud-init prints on
the console at first boot) into a known_hosts file of this VM's own, and ssh checks them strictly
under an alias for the VM's UUID: no StrictHostKeyChecking=no, and no entries in ~/.ssh/known_hosts
that a re-provisioned VM would turn into a scary warning.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from virtnet.cache import cache_dir
from virtnet.errors import AgentNotResponding, NoAgentChannel, NoWayIn, VirtnetError
from virtnet.spec.derived import nic_mac
from virtnet.spec.models import UserNic, VMSpec
from virtnet.virt.agent import Agent
from virtnet.virt.guest import Guest
from virtnet.virt.host import Host

SSH_PORT = 22
HOST_KEY_FILES = tuple(f"/etc/ssh/ssh_host_{kind}_key.pub" for kind in ("ed25519", "ecdsa", "rsa"))
_KEY_LINE = re.compile(r"^(ssh-ed25519|ecdsa-sha2-nistp\d+|ssh-rsa) [A-Za-z0-9+/=]+")


@dataclass(frozen=True)
class SshTarget:
    address: str
    port: int
    via: str  # how it was found, for the user


@dataclass(frozen=True)
class SshLogin:
    argv: list[str]
    target: SshTarget
    keys_from: str  # where the pinned host keys came from


def find_target(host: Host, guest: Guest, spec: VMSpec | None, *, probe: bool = True) -> SshTarget:
    """The address and port to reach the guest's sshd from this machine."""
    forward = _forward(host, spec)
    if forward is not None:
        return forward
    if not Agent.configured(guest):
        raise NoWayIn(
            f"no way into {guest.name!r}: no user NIC forwards a port to guest port 22, and without a "
            "guest agent virtnet cannot learn its addresses; add forwards = [{ host_port = 10122, "
            "guest_port = 22 }] to a user NIC"
        )
    candidates = _agent_addresses(Agent(guest), spec)
    if not candidates:
        raise NoWayIn(
            f"no way into {guest.name!r}: the guest agent reports no IPv4 address yet; "
            f"wait with `virtnet wait {guest.name} --for agent`, or forward a port to guest port 22"
        )
    if not probe:
        return candidates[0]
    for target in candidates:
        try:
            with socket.create_connection((target.address, target.port), timeout=1.0):
                return target
        except OSError:
            continue
    shown = ", ".join(t.address for t in candidates)
    raise NoWayIn(
        f"no way into {guest.name!r}: none of its addresses ({shown}) answers on port 22 from this "
        "machine; forward a port to guest port 22 on a user NIC, or route to its network"
    )


def login(
    host: Host,
    guest: Guest,
    spec: VMSpec | None,
    *,
    user: str | None,
    identity: Path | None,
    command: list[str],
) -> SshLogin:
    """The ssh command line for the guest, with its host keys pinned in virtnet's known_hosts for it."""
    target = find_target(host, guest, spec)
    known_hosts = known_hosts_path(guest.uuid)
    alias = f"virtnet-{guest.uuid}"
    keys, source = _host_keys(guest, spec)
    if keys:
        known_hosts.parent.mkdir(parents=True, exist_ok=True)
        known_hosts.write_text("".join(f"{alias} {key}\n" for key in keys))
    elif known_hosts.exists():
        source = f"pinned earlier in {known_hosts} (the guest could not be asked again)"
    else:
        raise NoWayIn(
            f"cannot pin the ssh host keys of {guest.name!r}: the guest agent does not answer and no "
            f"console log shows them; wait with `virtnet wait {guest.name} --for agent` and try again"
        )
    argv = ["ssh", "-p", str(target.port)]
    argv += ["-o", f"HostKeyAlias={alias}", "-o", f"UserKnownHostsFile={known_hosts}"]
    argv += ["-o", "StrictHostKeyChecking=yes", "-o", "GlobalKnownHostsFile=/dev/null"]
    if identity is not None:
        argv += ["-i", str(identity), "-o", "IdentitiesOnly=yes"]
    login_user = user or default_user(spec)
    if login_user:
        argv += ["-l", login_user]
    argv.append(target.address)
    if command:
        argv += ["--", *command]
    return SshLogin(argv, target, source)


def default_user(spec: VMSpec | None) -> str | None:
    """The first user the spec provisions with a key (else the first user), else ssh's own default."""
    users = spec.cloud_init.users if spec and spec.cloud_init else []
    with_keys = [u for u in users if u.ssh_authorized_keys]
    chosen = with_keys or users
    return chosen[0].name if chosen else None


def known_hosts_path(uuid: str) -> Path:
    return cache_dir() / "ssh" / uuid / "known_hosts"


def _forward(host: Host, spec: VMSpec | None) -> SshTarget | None:
    if spec is None:
        return None
    for index, nic in enumerate(spec.nics):
        if not isinstance(nic, UserNic):
            continue
        for fwd in nic.forwards:
            if fwd.protocol != "tcp" or fwd.guest_port != SSH_PORT:
                continue
            address = fwd.host_address
            if address.is_loopback and not host.is_local:
                continue  # the forward listens on the libvirt host's loopback, not ours
            if address.is_unspecified:  # every address of the libvirt host: reach it by its name
                shown = "127.0.0.1" if host.is_local else (urlsplit(host.uri).hostname or "127.0.0.1")
            else:
                shown = str(address)
            return SshTarget(
                shown, fwd.host_port, f"nics[{index}] forwards {shown}:{fwd.host_port} to port 22"
            )
    return None


def _agent_addresses(agent: Agent, spec: VMSpec | None) -> list[SshTarget]:
    """The guest's IPv4 addresses, the spec's NICs first (in order), link-local and loopback left out."""
    order = {nic_mac(spec, i): i for i in range(len(spec.nics))} if spec else {}
    found: list[tuple[int, SshTarget]] = []
    for nic in agent.nics():
        for cidr in nic.addresses:
            ip = ipaddress.ip_interface(cidr).ip
            if ip.version != 4 or ip.is_loopback or ip.is_link_local:
                continue
            rank = order.get(nic.mac or "", len(order))
            found.append((rank, SshTarget(str(ip), SSH_PORT, f"{nic.name} address {ip} (guest agent)")))
    return [target for _, target in sorted(found, key=lambda item: item[0])]


def _host_keys(guest: Guest, spec: VMSpec | None) -> tuple[list[str], str]:
    """The guest's public host keys and where they came from: the agent, else the console log."""
    try:
        if Agent.configured(guest):
            done = Agent(guest).run(["cat", *HOST_KEY_FILES], timeout_s=20)
            keys = _key_lines(done.stdout.decode(errors="replace"))
            if keys:
                return keys, "the guest agent (cat /etc/ssh/ssh_host_*_key.pub)"
    except (AgentNotResponding, NoAgentChannel):
        pass
    except VirtnetError:
        pass  # a guest without cat: the console may still have them
    log = spec.console.log if spec else None
    if log:
        try:
            text = Path(log).read_text(errors="replace")
        except OSError:
            return [], ""
        # cloud-init's cc_keys_to_console prints this block at every first boot of an instance.
        blocks = re.findall(
            r"-----BEGIN SSH HOST KEY KEYS-----(.*?)-----END SSH HOST KEY KEYS-----", text, re.S
        )
        if blocks:
            return _key_lines(blocks[-1]), f"the console log {log} (printed by cloud-init at first boot)"
    return [], ""


def _key_lines(text: str) -> list[str]:
    keys = []
    for line in text.splitlines():
        match = _KEY_LINE.match(line.strip().replace("\r", ""))
        if match:
            keys.append(" ".join(line.split()[:2]))
    return keys
